"""`DeepAffectsHook`: the DeepAffects description (services/deepaffects.py) plus the webhook check.

A submission is refused before it is sent without a ``webhook`` (contracts A2): the request may
lack one while the operator validates it, since push completion can supply it when it sends.
"""

from __future__ import annotations

from typing import cast

from airflow_jobstatus.exceptions import InvalidParameterError, NotFoundError
from airflow_jobstatus.hooks.base import JobServiceHook, Plan
from airflow_jobstatus.http.client import Call
from airflow_jobstatus.models import JobStatus
from airflow_jobstatus.services import SubmitRequest
from airflow_jobstatus.services.deepaffects import (
    DEEPAFFECTS,
    STATUS_PATH,
    WEBHOOK_HINT,
    DeepAffectsStatusResponse,
    DeepAffectsSubmitRequest,
    deepaffects_job_status,
)


class DeepAffectsHook(JobServiceHook):
    """DeepAffects async ASR and diarization: submit (a `DeepAffectsSubmitRequest` or its fields;
    ``webhook`` is required), and the transaction status, whose result is inline.

    :param deepaffects_conn_id: a ``deepaffects`` connection (password = API key).
    """

    spec = DEEPAFFECTS
    conn_name_attr = "deepaffects_conn_id"
    default_conn_name = DEEPAFFECTS.default_conn_id
    conn_type = DEEPAFFECTS.conn_type
    hook_name = DEEPAFFECTS.display_name

    def _get_job(self, job_id: str) -> Plan[JobStatus]:
        params = {"request_id": job_id}
        resp = yield Call(
            "get_job", "GET", STATUS_PATH, DeepAffectsStatusResponse, params=params, job_id=job_id
        )
        return deepaffects_job_status(resp, job_id)

    def _submit(self, request: SubmitRequest) -> Plan[str]:
        """Send the request only with a webhook (DeepAffects refuses async requests without one)."""
        request = cast(DeepAffectsSubmitRequest, request)
        if request.webhook is None:
            raise InvalidParameterError(
                "webhook is required for DeepAffects async requests, got None",
                service=self.spec.display_name,
                operation="submit_job",
                hint=WEBHOOK_HINT,
            )
        response = yield request.call()
        return self.usable_id("submit_job", request.job_ref(response), what="request_id")

    def _test_connection(self) -> Plan[str]:
        try:
            yield Call(
                "test_connection", "GET", STATUS_PATH, params={"request_id": "airflow-connection-test"}
            )
        except NotFoundError:
            pass  # the key was accepted; the probe id simply does not exist
        return "Connected to DeepAffects: the API key was accepted"
