"""`WasabiAirHook`: the Wasabi AiR description (services/wasabi_air.py) plus ``/status`` and ``/metadata``.

A job's state comes from ``GET /jobs/{Id}`` (or ``/status``) alone (docs/contracts.md W3, W4);
``/metadata`` is read only when the outputs are asked for, and its 404 right after completion
(W6) is retried within ``metadata_wait`` seconds (the description's `OutputsLag`).
"""

from __future__ import annotations

from airflow_jobstatus.hooks.base import ListingHookMixin, Plan, segment
from airflow_jobstatus.http.client import Call
from airflow_jobstatus.models import JobOutput, JobStatus
from airflow_jobstatus.services.wasabi_air import (
    JOB_METADATA,
    JOB_STATUS,
    WASABI_AIR,
    WasabiJob,
    WasabiJobStatusResponse,
    WasabiMetadata,
    outputs_endpoint,
    wasabi_job_status,
)


class WasabiAirHook(ListingHookMixin):
    """Wasabi AiR jobs: submit (a `WasabiSubmitRequest` or its fields), details, status, metadata, list.

    :param wasabi_air_conn_id: a ``wasabi_air`` connection (host = AiR base URL, login = access key,
        password = secret key).
    :param metadata_wait: seconds `get_outputs` retries ``/jobs/{Id}/metadata`` while it still
        answers 404 for a job that completed (the metadata can lag the status). Default 30.

    `get_job`, `get_status` and the sensors decide the state from the job alone: a completed job's
    `JobStatus` lists no outputs; `get_outputs` reads the metadata and returns the one output.
    ``list_jobs`` takes the filters ``status``, ``batch``, ``name``, ``sort_order`` (``Asc``) and ``page_size``.
    """

    spec = WASABI_AIR
    conn_name_attr = "wasabi_air_conn_id"
    default_conn_name = WASABI_AIR.default_conn_id
    conn_type = WASABI_AIR.conn_type
    hook_name = WASABI_AIR.display_name

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
        return wasabi_job_status(known, metadata, endpoint_url=outputs_endpoint(known, self.options)).outputs
