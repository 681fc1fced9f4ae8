"""`WasabiAirHook`: the Wasabi AiR description (services/wasabi_air.py) run by the generic hook.

A job's state comes from ``GET /jobs/{Id}`` (or ``/status``) alone (docs/contracts.md W3, W4);
``/metadata`` is read only when the outputs are asked for, and its 404 right after completion
(W6) is retried within ``metadata_wait`` seconds (the description's `OutputsLag`).
"""

from __future__ import annotations

from airflow_jobstatus.hooks.base import ListingHookMixin
from airflow_jobstatus.services.wasabi_air import WASABI_AIR


class WasabiAirHook(ListingHookMixin):
    """Wasabi AiR jobs: submit (a `WasabiSubmitRequest` or its fields), details, status, metadata, list.

    :param wasabi_air_conn_id: a ``wasabi_air`` connection (host = AiR base URL, login = access key,
        password = secret key).
    :param metadata_wait: seconds `get_outputs` retries ``/jobs/{Id}/metadata`` while it still
        answers 404 for a job that completed (the metadata can lag the status). Default 30.

    `get_job`, `get_status` (``/jobs/{Id}/status``) and the sensors decide the state from the job
    alone: a completed job's `JobStatus` lists no outputs; `get_outputs` reads the metadata and
    returns the one output.
    ``list_jobs`` takes the filters ``status``, ``batch``, ``name``, ``sort_order`` (``Asc``) and ``page_size``.
    """

    spec = WASABI_AIR
