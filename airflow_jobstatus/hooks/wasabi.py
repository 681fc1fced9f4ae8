"""`WasabiAirHook`: the Wasabi AiR description (services/wasabi_air.py) plus the ``/metadata`` wait.

A job's state comes from ``GET /jobs/{Id}`` (or ``/status``) alone (docs/contracts.md W3, W4);
``/metadata`` is read only when the outputs are asked for, and its 404 right after completion
(W6) is retried within ``metadata_wait`` seconds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from airflow_jobstatus.exceptions import InvalidParameterError, NotFoundError
from airflow_jobstatus.hooks.base import JobServiceHook, ListingHookMixin, Plan, segment
from airflow_jobstatus.http.auth import HeaderAuth
from airflow_jobstatus.http.client import Call
from airflow_jobstatus.models import JobOutput, JobState, JobStatus
from airflow_jobstatus.models.common import normalize_state
from airflow_jobstatus.services.wasabi_air import (
    JOB,
    JOB_METADATA,
    JOB_STATUS,
    JOBS,
    WASABI_AIR,
    WasabiJob,
    WasabiJobList,
    WasabiJobStatusResponse,
    WasabiMetadata,
    wasabi_job_status,
)

METADATA_WAIT = 30.0
"""Seconds `WasabiAirHook.get_outputs` keeps retrying a 404 from ``/metadata`` of a completed job."""
METADATA_RETRY_DELAYS: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0, 8.0)
"""Waits between those retries; the last one repeats until ``metadata_wait`` is spent."""
PAGE_SIZE = 100

log = logging.getLogger(__name__)


class _WasabiJobState(BaseModel):
    """A list record read only for its ``Id`` and ``Status`` (the rest is ignored, not validated)."""

    model_config = ConfigDict(extra="ignore", strict=True)

    Id: str
    Status: str | None = None


class _WasabiStatePage(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    Records: list[_WasabiJobState] = Field(default_factory=list)


class WasabiAirHook(ListingHookMixin, JobServiceHook):
    """Wasabi AiR jobs: submit (`submit_job` takes `WasabiSubmitRequest` or its fields), details,
    status, metadata, list.

    :param wasabi_air_conn_id: a ``wasabi_air`` connection (host = AiR base URL, login = access key,
        password = secret key).
    :param metadata_wait: seconds `get_outputs` retries ``/jobs/{Id}/metadata`` while it still
        answers 404 for a job that completed (the metadata can lag the status). Default 30.

    `get_job`, `get_status` and the sensors decide the state from the job alone: a completed job's
    `JobStatus` lists no outputs; `get_outputs` reads the metadata and returns the one output.
    """

    spec = WASABI_AIR
    conn_name_attr = "wasabi_air_conn_id"
    default_conn_name = WASABI_AIR.default_conn_id
    conn_type = WASABI_AIR.conn_type
    hook_name = WASABI_AIR.display_name

    def __init__(
        self,
        wasabi_air_conn_id: str = WASABI_AIR.default_conn_id,
        *,
        metadata_wait: float = METADATA_WAIT,
        **kwargs: Any,
    ) -> None:
        super().__init__(wasabi_air_conn_id, **kwargs)
        if isinstance(metadata_wait, bool) or not isinstance(metadata_wait, int | float) or metadata_wait < 0:
            raise InvalidParameterError(
                f"metadata_wait must be a non-negative number of seconds, got {metadata_wait!r}",
                service=WASABI_AIR.display_name,
            )
        self.metadata_wait = float(metadata_wait)

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
        """The job's state from ``GET /jobs/{Id}`` alone (the metadata is never read here)."""
        job = yield Call("get_job", "GET", JOB.format(id=segment(job_id)), WasabiJob, job_id=job_id)
        return wasabi_job_status(job, endpoint_url=self._endpoint(job))

    # --- outputs

    @staticmethod
    def _needs_metadata(job: JobStatus) -> bool:
        return job.service.value == WASABI_AIR.name and job.succeeded and not job.outputs

    def _get_outputs(self, job: JobStatus) -> Plan[list[JobOutput]]:
        """One read of ``/metadata``: the completed job's metadata object (404 while it lags)."""
        if not self._needs_metadata(job):
            return job.outputs
        metadata = yield Call(
            "get_outputs",
            "GET",
            JOB_METADATA.format(id=segment(job.job_id)),
            WasabiMetadata,
            job_id=job.job_id,
        )
        # the destination region (for the S3 endpoint): from the metadata, else from the job as read
        destination: Any = job.raw.get("Destination")
        if metadata.Destination is not None:
            destination = metadata.Destination.model_dump(mode="json")
        try:
            known = WasabiJob(Id=job.job_id, Status=job.raw_status, Destination=destination)
        except ValueError:
            known = WasabiJob(Id=job.job_id, Status=job.raw_status)
        return wasabi_job_status(known, metadata, endpoint_url=self._endpoint(known)).outputs

    def _metadata_retry(self, job: JobStatus, attempt: int, started: float, exc: NotFoundError) -> float:
        """Seconds to wait before reading the metadata again, or the error that ends the wait."""
        delay = METADATA_RETRY_DELAYS[min(attempt, len(METADATA_RETRY_DELAYS) - 1)]
        if time.monotonic() + delay > started + self.metadata_wait:
            raise NotFoundError(
                f"the job completed but its metadata was still not found after {self.metadata_wait:g} s "
                f"({attempt + 1} reads of /metadata)",
                service=WASABI_AIR.display_name,
                operation="get_outputs",
                status_code=exc.http_status,
                job_id=job.job_id,
                hint="Wasabi AiR lists a job's metadata shortly after the job completes; retry the task, "
                "or raise the hook's metadata_wait",
            ) from None
        log.info(
            "Wasabi AiR job %s completed but /metadata answers 404 (not listed yet); reading it again in %.1f s",
            job.job_id,
            delay,
        )
        return delay

    def get_outputs(self, job: JobStatus | str) -> list[JobOutput]:
        """The completed job's metadata object; a 404 right after completion is retried (bounded)."""
        status = job if isinstance(job, JobStatus) else self.get_job(job)
        started = time.monotonic()
        attempt = 0
        while True:
            try:
                return self.run(self._get_outputs(status))
            except NotFoundError as exc:
                time.sleep(self._metadata_retry(status, attempt, started, exc))
                attempt += 1

    async def aget_outputs(self, job: JobStatus | str) -> list[JobOutput]:
        status = job if isinstance(job, JobStatus) else await self.aget_job(job)
        started = time.monotonic()
        attempt = 0
        while True:
            try:
                return await self.arun(self._get_outputs(status))
            except NotFoundError as exc:
                await asyncio.sleep(self._metadata_retry(status, attempt, started, exc))
                attempt += 1

    def _get_status(self, job_id: str) -> Plan[JobStatus]:
        """The cheap poll: ``GET /jobs/{Id}/status`` (no outputs)."""
        status = yield Call(
            "get_status", "GET", JOB_STATUS.format(id=segment(job_id)), WasabiJobStatusResponse, job_id=job_id
        )
        return wasabi_job_status(status)

    def get_status(self, job_id: str) -> JobStatus:
        return self.run(self._get_status(self._check_job_id(job_id)))

    async def aget_status(self, job_id: str) -> JobStatus:
        return await self.arun(self._get_status(self._check_job_id(job_id)))

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
        page = yield Call("list_jobs", "GET", JOBS, WasabiJobList, params=params)
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
        page = yield Call("list_jobs", "GET", JOBS, _WasabiStatePage, params=params)
        states = [
            (job.Id, normalize_state(job.Status, self.spec.status_map), job.Status) for job in page.Records
        ]
        return states, (page_number + 1 if len(page.Records) >= page_size else None)

    def _test_connection(self) -> Plan[str]:
        yield Call("test_connection", "GET", JOBS, WasabiJobList, params={"pageNumber": 1, "pageSize": 1})
        return "Connected to Wasabi AiR: the access and secret keys were accepted"
