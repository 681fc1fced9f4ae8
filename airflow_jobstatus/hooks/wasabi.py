"""Wasabi AiR: ``/jobs`` under the account's AiR base URL; access and secret keys in headers."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from airflow_jobstatus.exceptions import InvalidParameterError, NotFoundError
from airflow_jobstatus.hooks.base import JobServiceHook, ListingHookMixin, Plan, segment
from airflow_jobstatus.http.auth import HeaderAuth
from airflow_jobstatus.http.client import Call
from airflow_jobstatus.models import JobState, JobStatus
from airflow_jobstatus.models.common import normalize_state
from airflow_jobstatus.models.wasabi import (
    WASABI_STATUS_MAP,
    WasabiJob,
    WasabiJobList,
    WasabiJobStatusResponse,
    WasabiMetadata,
    WasabiSubmitResponse,
    wasabi_job_status,
)
from airflow_jobstatus.services import WASABI_AIR

SERVICES: tuple[str, ...] = ("ocr", "s2t", "nld", "audiotag", "face", "logo")


class _WasabiJobState(BaseModel):
    """A list record read only for its ``Id`` and ``Status`` (the rest is ignored, not validated)."""

    model_config = ConfigDict(extra="ignore", strict=True)

    Id: str
    Status: str | None = None


class _WasabiStatePage(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    Records: list[_WasabiJobState] = Field(default_factory=list)


PAGE_SIZE = 100


def wasabi_submit_body(
    name: str,
    services: dict[str, Any],
    source: dict[str, Any],
    destination: dict[str, Any],
    priority: int = 5,
    batch: str | None = None,
) -> dict[str, Any]:
    """The ``POST /jobs`` body, validated before anything is sent."""

    def bad(message: str, hint: str | None = None) -> InvalidParameterError:
        return InvalidParameterError(message, service="Wasabi AiR", operation="submit_job", hint=hint)

    if not isinstance(name, str) or not 1 <= len(name) <= 256:
        raise bad(f"name must be 1 to 256 characters, got {name!r}")
    if isinstance(priority, bool) or not isinstance(priority, int) or not 1 <= priority <= 10:
        raise bad(f"priority must be an integer from 1 to 10, got {priority!r}")
    if not isinstance(services, dict) or not services:
        raise bad("services must name at least one service", hint=f"Use some of: {', '.join(SERVICES)}")
    unknown = sorted(set(services) - set(SERVICES))
    if unknown:
        raise bad(f"unknown services {unknown}", hint=f"Use some of: {', '.join(SERVICES)}")
    for key, config in services.items():
        if config != "" and not (isinstance(config, dict) and isinstance(config.get("config", {}), dict)):
            raise bad(f'service {key!r} takes "" or {{"config": {{...}}}}, got {config!r}')
    missing = [k for k in ("Bucket", "ObjectKey") if not (isinstance(source, dict) and source.get(k))]
    if missing:
        raise bad(
            f"source is missing {', '.join(missing)}",
            hint="Give source as {Endpoint, Bucket, Region, ObjectKey}",
        )
    missing = [k for k in ("Bucket", "Region") if not (isinstance(destination, dict) and destination.get(k))]
    if missing:
        raise bad(f"destination is missing {', '.join(missing)}", hint="Give destination as {Bucket, Region}")
    body: dict[str, Any] = {
        "Name": name,
        "Priority": priority,
        "Services": services,
        "Source": source,
        "Destination": destination,
    }
    if batch:
        body["Batch"] = batch
    return body


class WasabiAirHook(ListingHookMixin, JobServiceHook):
    """Wasabi AiR jobs: submit, details, status, metadata, list.

    :param wasabi_air_conn_id: a ``wasabi_air`` connection (host = AiR base URL, login = access key,
        password = secret key).
    """

    spec = WASABI_AIR
    conn_name_attr = "wasabi_air_conn_id"
    default_conn_name = WASABI_AIR.default_conn_id
    conn_type = WASABI_AIR.conn_type
    hook_name = WASABI_AIR.display_name

    def __init__(self, wasabi_air_conn_id: str = WASABI_AIR.default_conn_id, **kwargs: Any) -> None:
        super().__init__(wasabi_air_conn_id, **kwargs)

    def _auth(self, conn: Any, extra: dict[str, Any]) -> tuple[Any, list[str]]:
        access = self._require(conn.login, "login")
        secret = self._require(conn.password, "password")
        return HeaderAuth({"x-amz-access-key": access, "x-amz-secret-key": secret}), [secret, access]

    def _configure(self, client: Any, conn: Any, extra: dict[str, Any]) -> None:
        client.options["s3_endpoint_url"] = extra.get("s3_endpoint_url") or None

    def _endpoint(self, job: WasabiJob) -> str | None:
        configured = self.options.get("s3_endpoint_url")
        if configured:
            return str(configured)
        region = job.Destination.Region if job.Destination is not None else None
        return f"https://s3.{region}.wasabisys.com" if region else None

    def _get_job(self, job_id: str) -> Plan[JobStatus]:
        path = f"/jobs/{segment(job_id)}"
        job = yield Call("get_job", "GET", path, WasabiJob, job_id=job_id)
        metadata = None
        if (job.Status or "").lower() == "completed":
            try:
                metadata = yield Call("get_job", "GET", f"{path}/metadata", WasabiMetadata, job_id=job_id)
            except NotFoundError:
                metadata = None  # completed a moment ago; the metadata object is listed on the next read
        return wasabi_job_status(job, metadata, endpoint_url=self._endpoint(job))

    def _get_status(self, job_id: str) -> Plan[JobStatus]:
        """The cheap poll: ``GET /jobs/{Id}/status`` (no outputs)."""
        status = yield Call(
            "get_status", "GET", f"/jobs/{segment(job_id)}/status", WasabiJobStatusResponse, job_id=job_id
        )
        return wasabi_job_status(status)

    def get_status(self, job_id: str) -> JobStatus:
        return self.run(self._get_status(self._check_job_id(job_id)))

    async def aget_status(self, job_id: str) -> JobStatus:
        return await self.arun(self._get_status(self._check_job_id(job_id)))

    def _submit(self, body: dict[str, Any]) -> Plan[str]:
        created = yield Call("submit_job", "POST", "/jobs", WasabiSubmitResponse, json=body)
        return self.usable_id("submit_job", created.Job.Id)

    def submit_job(
        self,
        name: str,
        *,
        services: dict[str, Any],
        source: dict[str, Any],
        destination: dict[str, Any],
        priority: int = 5,
        batch: str | None = None,
    ) -> str:
        """Submit a job; return its ``Id``."""
        return self.run(
            self._submit(wasabi_submit_body(name, services, source, destination, priority, batch))
        )

    async def asubmit_job(
        self,
        name: str,
        *,
        services: dict[str, Any],
        source: dict[str, Any],
        destination: dict[str, Any],
        priority: int = 5,
        batch: str | None = None,
    ) -> str:
        return await self.arun(
            self._submit(wasabi_submit_body(name, services, source, destination, priority, batch))
        )

    def _list_page(
        self,
        cursor: Any,
        *,
        status: str | None = None,
        batch: str | None = None,
        name: str | None = None,
        sort_order: str = "Asc",
        page_size: int = PAGE_SIZE,
    ) -> Plan[tuple[list[JobStatus], Any]]:
        page_number = cursor or 1
        params = {
            "pageNumber": page_number,
            "pageSize": page_size,
            "status": status,
            "batch": batch,
            "name": name,
            "sortBy": "Created",
            "sortOrder": sort_order,
        }
        page = yield Call("list_jobs", "GET", "/jobs", WasabiJobList, params=params)
        jobs = [wasabi_job_status(job, endpoint_url=self._endpoint(job)) for job in page.Records]
        return jobs, (page_number + 1 if len(page.Records) >= page_size else None)

    def _list_states(
        self, cursor: Any, *, page_size: int = PAGE_SIZE
    ) -> Plan[tuple[list[tuple[str, JobState, str | None]], Any]]:
        """One page of ``(job id, state, service status)``, newest first, and the next cursor.

        What a poller needs from the list endpoint: only ``Id`` and ``Status`` of each record are
        read and validated, without building a `JobStatus` per job.
        """
        page_number = cursor or 1
        params = {
            "pageNumber": page_number,
            "pageSize": page_size,
            "sortBy": "Created",
            "sortOrder": "Desc",
        }
        page = yield Call("list_jobs", "GET", "/jobs", _WasabiStatePage, params=params)
        states = [
            (job.Id, normalize_state(job.Status, WASABI_STATUS_MAP), job.Status) for job in page.Records
        ]
        return states, (page_number + 1 if len(page.Records) >= page_size else None)

    def _test_connection(self) -> Plan[str]:
        yield Call("test_connection", "GET", "/jobs", WasabiJobList, params={"pageNumber": 1, "pageSize": 1})
        return "Connected to Wasabi AiR: the access and secret keys were accepted"
