"""`WasabiAirJobSensor`: wait for a Wasabi AiR job."""

from __future__ import annotations

from typing import Any

from airflow_jobstatus.hooks.wasabi import WasabiAirHook
from airflow_jobstatus.sensors.base import JobSensor
from airflow_jobstatus.services import WASABI_AIR


class WasabiAirJobSensor(JobSensor):
    """Wait for a Wasabi AiR job to end (see `JobSensor` for every parameter).

    Wasabi AiR jobs can be ``cancelled``; pass ``failure_states=("failed",)`` to skip the task
    instead of failing it when that happens.

    :param job_id: the job ``Id`` (templated).
    :param wasabi_air_conn_id: a ``wasabi_air`` connection. Default ``wasabi_air_default``.
    """

    spec = WASABI_AIR
    hook_class = WasabiAirHook

    def __init__(
        self, *, job_id: str, wasabi_air_conn_id: str = WASABI_AIR.default_conn_id, **kwargs: Any
    ) -> None:
        super().__init__(job_id=job_id, conn_id=wasabi_air_conn_id, **kwargs)
        self.wasabi_air_conn_id = wasabi_air_conn_id
