"""`DailyJobSensor`: wait for a Daily batch-processor job."""

from __future__ import annotations

from airflow_jobstatus.hooks.daily import DailyHook
from airflow_jobstatus.sensors.base import JobSensor
from airflow_jobstatus.services import DAILY


class DailyJobSensor(JobSensor):
    """Wait for a Daily batch-processor job to end (see `JobSensor` for every parameter).

    :param job_id: the job id (templated).
    """

    spec = DAILY
    hook_class = DailyHook
