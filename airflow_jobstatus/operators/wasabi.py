"""`WasabiAirSubmitJobOperator`: submit a Wasabi AiR job and wait for it."""

from __future__ import annotations

from airflow_jobstatus.hooks.wasabi import WasabiAirHook
from airflow_jobstatus.operators.base import JobSubmitOperator
from airflow_jobstatus.services.wasabi_air import WASABI_AIR


class WasabiAirSubmitJobOperator(JobSubmitOperator):
    """Submit a Wasabi AiR job (``POST /jobs``) and, by default, wait for it.

    See `JobSubmitOperator` for waiting, retries (a retry resumes the recorded job) and what it returns.
    Wasabi AiR jobs can be ``cancelled`` (in the AiR console); pass ``failure_states=("failed",)`` to
    skip the task instead of failing it when that happens. Its parameters are the fields of
    `WasabiSubmitRequest` (a list of service names, and dicts given as JSON text, are accepted too):
    """

    spec = WASABI_AIR
    hook_class = WasabiAirHook
