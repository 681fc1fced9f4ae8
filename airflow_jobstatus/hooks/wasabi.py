"""`WasabiAirHook`: the Wasabi AiR description (services/wasabi_air.py) run by the generic hook."""

from airflow_jobstatus.hooks.base import ListingHookMixin
from airflow_jobstatus.services.wasabi_air import WASABI_AIR


class WasabiAirHook(ListingHookMixin):
    """Wasabi AiR jobs: submit, read, poll, outputs, list by ``status``, ``batch``, ``name``, ``sort_order``.

    :param wasabi_air_conn_id: a ``wasabi_air`` connection (host = AiR base URL, login = access key,
        password = secret key).
    :param metadata_wait: seconds `get_outputs` retries a completed job's ``/metadata`` while it still
        answers 404 (contracts W6). Default 30. Waits read the job alone (W3, W4), never its metadata.
    """

    spec = WASABI_AIR
