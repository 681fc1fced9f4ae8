"""`WasabiAirHook`: the Wasabi AiR description (services/wasabi_air.py) plus the ``/metadata`` wait.

A job's state comes from ``GET /jobs/{Id}`` (or ``/status``) alone (docs/contracts.md W3, W4);
``/metadata`` is read only when the outputs are asked for, and its 404 right after completion
(W6) is retried within ``metadata_wait`` seconds.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from airflow_jobstatus.hooks.base import JobServiceHook, ListingHookMixin, Plan, segment
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

PAGE_SIZE = 100
M = TypeVar("M", bound=BaseModel)


class _WasabiJobState(BaseModel):
    """A list record read only for its ``Id`` and ``Status`` (the rest is ignored, not validated)."""

    model_config = ConfigDict(extra="ignore", strict=True)

    Id: str
    Status: str | None = None


class _WasabiStatePage(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    Records: list[_WasabiJobState] = Field(default_factory=list)


class WasabiAirHook(ListingHookMixin, JobServiceHook):
    """Wasabi AiR jobs: submit (a `WasabiSubmitRequest` or its fields), details, status, metadata, list.

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

    def _configure(self, client: Any, conn: Any, extra: dict[str, Any]) -> None:
        client.options["s3_endpoint_url"] = extra.get("s3_endpoint_url") or None

    def _endpoint(self, job: WasabiJob) -> str | None:
        """The S3 endpoint of the job's outputs: the connection's, else the destination region's."""
        region = job.Destination.Region if job.Destination is not None else None
        default = f"https://s3.{region}.wasabisys.com" if region else None
        return self.options.get("s3_endpoint_url") or default

    def _get_job(self, job_id: str) -> Plan[JobStatus]:
        """The job's state from ``GET /jobs/{Id}`` alone (the metadata is never read here)."""
        job = yield Call("get_job", "GET", JOB.format(id=segment(job_id)), WasabiJob, job_id=job_id)
        return wasabi_job_status(job, endpoint_url=self._endpoint(job))

    def _get_status(self, job_id: str) -> Plan[JobStatus]:
        """The cheap poll: ``GET /jobs/{Id}/status`` (no outputs)."""
        path = JOB_STATUS.format(id=segment(job_id))
        return wasabi_job_status(
            (yield Call("get_status", "GET", path, WasabiJobStatusResponse, job_id=job_id))
        )

    def get_status(self, job_id: str) -> JobStatus:
        return self.run(self._get_status(self._check_job_id(job_id)))

    async def aget_status(self, job_id: str) -> JobStatus:
        return await self.arun(self._get_status(self._check_job_id(job_id)))

    def _get_outputs(self, job: JobStatus) -> Plan[list[JobOutput]]:
        """One read of ``/metadata`` (404 while it lags: the base retries within ``metadata_wait``)."""
        if job.service.value != self.spec.name or not job.succeeded or job.outputs:
            return job.outputs
        path = JOB_METADATA.format(id=segment(job.job_id))
        metadata = yield Call("get_outputs", "GET", path, WasabiMetadata, job_id=job.job_id)
        # the destination region (for the S3 endpoint): from the metadata, else from the job as read
        destination = metadata.Destination or job.raw.get("Destination")
        try:
            known = WasabiJob.model_validate(
                {"Id": job.job_id, "Status": job.raw_status, "Destination": destination}
            )
        except ValueError:
            known = WasabiJob(Id=job.job_id, Status=job.raw_status)
        return wasabi_job_status(known, metadata, endpoint_url=self._endpoint(known)).outputs

    def _page(self, cursor: Any, page_size: int, model: type[M], **filters: Any) -> Plan[tuple[M, Any]]:
        """One page of ``GET /jobs`` (pages are numbered from 1) and the next page's number."""
        number = cursor or 1
        params = {"pageNumber": number, "pageSize": page_size, "sortBy": "Created", **filters}
        page = yield Call("list_jobs", "GET", JOBS, model, params=params)
        return page, (number + 1 if len(page.Records) >= page_size else None)

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
        filters = {"status": status, "batch": batch, "name": name, "sortOrder": sort_order}
        page, cursor = yield from self._page(cursor, page_size, WasabiJobList, **filters)
        return [wasabi_job_status(job, endpoint_url=self._endpoint(job)) for job in page.Records], cursor

    def _list_states(
        self, cursor: Any, *, page_size: int = PAGE_SIZE
    ) -> Plan[tuple[list[tuple[str, JobState, str | None]], Any]]:
        """One page of ``(job id, state, service status)``, newest first, for a poller: only ``Id``
        and ``Status`` of each record are read, without building a `JobStatus` per job."""
        page, cursor = yield from self._page(cursor, page_size, _WasabiStatePage, sortOrder="Desc")
        status_map = self.spec.status_map
        return [(job.Id, normalize_state(job.Status, status_map), job.Status) for job in page.Records], cursor

    def _test_connection(self) -> Plan[str]:
        yield Call("test_connection", "GET", JOBS, WasabiJobList, params={"pageNumber": 1, "pageSize": 1})
        return "Connected to Wasabi AiR: the access and secret keys were accepted"
