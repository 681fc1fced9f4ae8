"""`SymblHook`: the Symbl.ai description (services/symbl.py) plus its job references and 429.

Symbl's job status answers only ``{id, status}``, while the outputs live under the conversation:
`SymblHook.submit_job` returns ``"<jobId>:<conversationId>"``, and every method accepts that form
or a bare ``jobId`` (then no outputs can be listed).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, cast

from airflow_jobstatus.exceptions import ConcurrencyLimitError, RateLimitedError
from airflow_jobstatus.hooks.base import JobServiceHook, Plan, segment
from airflow_jobstatus.http.auth import RefreshableTokenAuth
from airflow_jobstatus.http.client import Call
from airflow_jobstatus.http.tokens import ExchangedToken
from airflow_jobstatus.models import JobStatus
from airflow_jobstatus.services import SubmitRequest
from airflow_jobstatus.services.symbl import JOB, SYMBL, SymblJob, split_job_ref, symbl_job_status


class SymblHook(JobServiceHook):
    """Symbl.ai Async, Job and Conversation APIs: submit (a `SymblSubmitRequest` or its fields), job status.

    :param symbl_conn_id: a ``symbl`` connection (login = App ID, password = App secret).

    A 429 on submit (the account's concurrent-job limit) raises `ConcurrencyLimitError`;
    `SymblSubmitJobOperator` waits and submits again.
    """

    spec = SYMBL
    conn_name_attr = "symbl_conn_id"
    default_conn_name = SYMBL.default_conn_id
    conn_type = SYMBL.conn_type
    hook_name = SYMBL.display_name

    def __init__(self, symbl_conn_id: str = SYMBL.default_conn_id, **kwargs: Any) -> None:
        super().__init__(symbl_conn_id, **kwargs)

    @property
    def token_source(self) -> ExchangedToken:
        """The bearer token shared by every hook of this API and App ID in the process."""
        return cast(ExchangedToken, cast(RefreshableTokenAuth, self.get_client().auth).source)

    def _get_job(self, job_id: str) -> Plan[JobStatus]:
        symbl_job_id, conversation_id = split_job_ref(job_id)
        job = yield Call("get_job", "GET", JOB.format(id=segment(symbl_job_id)), SymblJob, job_id=job_id)
        status = symbl_job_status(job, conversation_id)
        if conversation_id:
            status = status.model_copy(
                update={"job_id": job_id, "raw": {**status.raw, "conversationId": conversation_id}}
            )
        return status

    def _submit(self, request: SubmitRequest) -> Plan[str]:
        """S8: a 429 on submit is the account's concurrent-job limit, not a request rate: the same
        error (message, status, URL), typed `ConcurrencyLimitError` so that a submit loop can wait."""
        try:
            response = yield replace(request.call(), hints={429: ConcurrencyLimitError.hint})
        except RateLimitedError as exc:
            if exc.http_status != 429:  # the connection's own request budget, not the service's answer
                raise
            limited = ConcurrencyLimitError.__new__(ConcurrencyLimitError)
            limited.__dict__.update(exc.__dict__)
            limited.args = exc.args
            raise limited from None
        return request.job_ref(response)

    def _test_connection(self) -> Plan[str]:
        yield self.token_source.call()
        return "Connected to Symbl.ai: the App ID and secret were exchanged for a token"
