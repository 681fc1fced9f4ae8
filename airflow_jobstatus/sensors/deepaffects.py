"""`DeepAffectsJobSensor`: wait for a DeepAffects async request."""

from __future__ import annotations

from typing import Any

from airflow_jobstatus.hooks.deepaffects import DeepAffectsHook
from airflow_jobstatus.sensors.base import JobSensor
from airflow_jobstatus.services import DEEPAFFECTS


class DeepAffectsJobSensor(JobSensor):
    """Wait for a DeepAffects async request to end (see `JobSensor` for every parameter).

    :param job_id: the ``request_id`` (templated).
    :param deepaffects_conn_id: a ``deepaffects`` connection. Default ``deepaffects_default``.
    """

    spec = DEEPAFFECTS
    hook_class = DeepAffectsHook

    def __init__(
        self, *, job_id: str, deepaffects_conn_id: str = DEEPAFFECTS.default_conn_id, **kwargs: Any
    ) -> None:
        super().__init__(job_id=job_id, conn_id=deepaffects_conn_id, **kwargs)
        self.deepaffects_conn_id = deepaffects_conn_id
