"""`DailyJobSensor`: wait for a Daily batch-processor job."""

from airflow_jobstatus.sensors.base import JobSensor
from airflow_jobstatus.services import DAILY


class DailyJobSensor(JobSensor):
    """Wait for a Daily batch-processor job to end (see `JobSensor` for every parameter).

    :param job_id: the job id (templated).
    """

    spec = DAILY
