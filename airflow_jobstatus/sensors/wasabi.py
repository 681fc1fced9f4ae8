"""`WasabiAirJobSensor`: wait for a Wasabi AiR job."""

from airflow_jobstatus.sensors.base import JobSensor
from airflow_jobstatus.services import WASABI_AIR


class WasabiAirJobSensor(JobSensor):
    """Wait for a Wasabi AiR job to end (see `JobSensor`).

    A ``cancelled`` job fails the task; ``failure_states=("failed",)`` skips it instead.

    :param job_id: the job ``Id`` (templated).
    """

    spec = WASABI_AIR
