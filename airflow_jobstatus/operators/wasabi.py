"""`WasabiAirSubmitJobOperator`: submit a Wasabi AiR job and wait for it."""

from __future__ import annotations

from typing import Any

from airflow_jobstatus.hooks.wasabi import WasabiAirHook, wasabi_submit_body
from airflow_jobstatus.operators.base import JobSubmitOperator, as_int, as_structure, need_structure
from airflow_jobstatus.services import WASABI_AIR


class WasabiAirSubmitJobOperator(JobSubmitOperator):
    """Submit a Wasabi AiR job (``POST /jobs``) and, by default, wait for it.

    See `JobSubmitOperator` for waiting, retries (a retry resumes the recorded job) and what it returns.
    Wasabi AiR jobs can be ``cancelled`` (in the AiR console); pass ``failure_states=("failed",)`` to
    skip the task instead of failing it when that happens.

    :param name: the job name, 1 to 256 characters (templated).
    :param services: the AiR services to run, as ``{"s2t": "", "ocr": {"config": {...}}}``: each of
        ``ocr``, ``s2t``, ``nld``, ``audiotag``, ``face``, ``logo`` with ``""`` or its config; a list of
        names means each with its default config (templated).
    :param source: the object to process: ``{"Bucket", "ObjectKey"}`` and optionally ``"Endpoint"``,
        ``"Region"`` (and ``"AccessKey"``/``"SecretKey"`` for a source outside Wasabi) (templated).
    :param destination: where AiR writes its outputs: ``{"Bucket", "Region"}`` (templated).
    :param priority: 1 to 10. Default 5 (templated).
    :param batch: a batch name to group jobs (templated).
    :param wasabi_air_conn_id: a ``wasabi_air`` connection. Default ``wasabi_air_default``.

    Dict parameters may also be given as JSON text (e.g. rendered from XCom).
    """

    spec = WASABI_AIR
    hook_class = WasabiAirHook
    template_fields = ("name", "services", "source", "destination", "priority", "batch")

    def __init__(
        self,
        *,
        name: str,
        services: dict[str, Any] | list[str],
        source: dict[str, Any],
        destination: dict[str, Any],
        priority: int = 5,
        batch: str | None = None,
        wasabi_air_conn_id: str = WASABI_AIR.default_conn_id,
        **kwargs: Any,
    ) -> None:
        super().__init__(conn_id=wasabi_air_conn_id, **kwargs)
        self.name = name
        self.services = services
        self.source = source
        self.destination = destination
        self.priority = priority
        self.batch = batch
        self.wasabi_air_conn_id = wasabi_air_conn_id
        self._check_literal_parameters()

    def _submission(self) -> tuple[dict[str, Any], Any]:
        services = as_structure(self.services)
        if isinstance(services, list | tuple) and all(isinstance(s, str) for s in services):
            services = dict.fromkeys(services, "")
        services = need_structure(services, "services", dict, "Wasabi AiR")
        kwargs: dict[str, Any] = {
            "name": self.name,
            "services": services,
            "source": need_structure(self.source, "source", dict, "Wasabi AiR"),
            "destination": need_structure(self.destination, "destination", dict, "Wasabi AiR"),
            "priority": as_int(self.priority),
            "batch": self.batch or None,
        }
        return kwargs, wasabi_submit_body(**kwargs)
