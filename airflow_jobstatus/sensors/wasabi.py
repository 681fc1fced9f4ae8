"""`WasabiAirJobSensor`: wait for a Wasabi AiR job."""

from __future__ import annotations

from airflow_jobstatus.hooks.wasabi import WasabiAirHook
from airflow_jobstatus.sensors.base import JobSensor
from airflow_jobstatus.services import WASABI_AIR


class WasabiAirJobSensor(JobSensor):
    """Wait for a Wasabi AiR job to end (see `JobSensor` for every parameter).

    Wasabi AiR jobs can be ``cancelled``; pass ``failure_states=("failed",)`` to skip the task
    instead of failing it when that happens.

    :param job_id: the job ``Id`` (templated).
    """

    spec = WASABI_AIR
    hook_class = WasabiAirHook
