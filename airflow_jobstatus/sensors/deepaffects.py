"""`DeepAffectsJobSensor`: wait for a DeepAffects async request."""

from airflow_jobstatus.sensors.base import JobSensor
from airflow_jobstatus.services import DEEPAFFECTS


class DeepAffectsJobSensor(JobSensor):
    """Wait for a DeepAffects async request to end (see `JobSensor` for every parameter).

    :param job_id: the ``request_id`` (templated).
    """

    spec = DEEPAFFECTS
