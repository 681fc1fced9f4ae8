"""`SymblJobSensor`: wait for a Symbl.ai async job."""

from __future__ import annotations

from typing import Any

from airflow_jobstatus.hooks.symbl import SymblHook
from airflow_jobstatus.sensors.base import JobSensor
from airflow_jobstatus.services import SYMBL


class SymblJobSensor(JobSensor):
    """Wait for a Symbl.ai job to end (see `JobSensor` for every parameter).

    :param job_id: ``"<jobId>:<conversationId>"`` as ``SymblHook.submit_job`` returns it, or a bare
        ``jobId`` (then the final status lists no outputs) (templated).
    :param symbl_conn_id: a ``symbl`` connection. Default ``symbl_default``.
    """

    spec = SYMBL
    hook_class = SymblHook

    def __init__(self, *, job_id: str, symbl_conn_id: str = SYMBL.default_conn_id, **kwargs: Any) -> None:
        super().__init__(job_id=job_id, conn_id=symbl_conn_id, **kwargs)
        self.symbl_conn_id = symbl_conn_id
