"""`DailySubmitJobOperator`: submit a Daily batch-processor job and wait for it."""

from __future__ import annotations

from typing import Any, cast

from airflow_jobstatus.exceptions import InvalidParameterError
from airflow_jobstatus.hooks.daily import DailyHook
from airflow_jobstatus.operators.base import JobSubmitOperator
from airflow_jobstatus.services.daily import DAILY


class DailySubmitJobOperator(JobSubmitOperator):
    """Submit a Daily batch-processor job (``POST /batch-processor``) and, by default, wait for it.

    See `JobSubmitOperator` for waiting, retries (a retry resumes the recorded job) and what it returns.
    Its submission parameters are the fields of `DailySubmitRequest` (below).

    :param delete_on_kill: delete the job when the task is killed or its ``timeout`` passes (Daily
        has no cancel; deleting removes the job and its outputs in Daily's storage). While deferred,
        a kill deletes only once the task instance is marked failed/skipped or cleared, never when
        the wait moved to another triggerer or the state cannot be read. Default False: the job
        keeps running and a retry resumes it.
    """

    spec = DAILY
    hook_class = DailyHook

    def __init__(self, *, delete_on_kill: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not isinstance(delete_on_kill, bool):
            raise InvalidParameterError(f"delete_on_kill must be True or False, got {delete_on_kill!r}")
        self.delete_on_kill = delete_on_kill

    def _delete(self, job_id: str) -> None:
        cast(DailyHook, self.hook).delete_job(job_id)
