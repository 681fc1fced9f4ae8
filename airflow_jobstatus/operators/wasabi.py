"""`WasabiAirSubmitJobOperator`: submit a Wasabi AiR job and wait for it."""

from airflow_jobstatus.operators.base import JobSubmitOperator
from airflow_jobstatus.services.wasabi_air import WASABI_AIR


class WasabiAirSubmitJobOperator(JobSubmitOperator):
    """Submit a Wasabi AiR job (``POST /jobs``) and, by default, wait for it (see `JobSubmitOperator`).

    A job ``cancelled`` in the AiR console fails the task; ``failure_states=("failed",)`` skips it instead.
    Its parameters are `WasabiSubmitRequest`'s fields (a list of service names, and JSON text, accepted too):
    """

    spec = WASABI_AIR
