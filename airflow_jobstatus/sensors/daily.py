"""`DailyJobSensor`: wait for a Daily batch-processor job."""

from __future__ import annotations

from typing import Any

from airflow_jobstatus.hooks.daily import DailyHook
from airflow_jobstatus.sensors.base import JobSensor
from airflow_jobstatus.services import DAILY


class DailyJobSensor(JobSensor):
    """Wait for a Daily batch-processor job to end (see `JobSensor` for every parameter).

    :param job_id: the job id (templated).
    :param daily_conn_id: a ``daily`` connection. Default ``daily_default``.
    """

    spec = DAILY
    hook_class = DailyHook

    def __init__(self, *, job_id: str, daily_conn_id: str = DAILY.default_conn_id, **kwargs: Any) -> None:
        super().__init__(job_id=job_id, conn_id=daily_conn_id, **kwargs)
        self.daily_conn_id = daily_conn_id
