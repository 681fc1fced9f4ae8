"""Wasabi AiR: ``/jobs`` under the account's AiR base URL, access and secret keys in headers.

Contract: docs/contracts.md W1-W8 (seed 002, providers.md). Field names keep Wasabi's PascalCase.
A job's one output is a JSON metadata object in the destination bucket that only ``/metadata``
reveals, 404 for a moment after the job completed (W6): `WasabiAirHook.get_outputs` waits for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from pydantic import Field, field_validator

from airflow_jobstatus.http.auth import CredentialHeaders
from airflow_jobstatus.http.call import Call
from airflow_jobstatus.models.common import (
    ApiModel,
    IsoDatetime,
    JobOutput,
    JobState,
    JobStatus,
    S3Object,
    Service,
    media_type_for,
    normalize_state,
    parse_s3_uri,
    redact_secrets,
)
from airflow_jobstatus.services._spec import (
    ErrorBody,
    ExtraField,
    FormField,
    Invalid,
    JobRead,
    Listing,
    OutputsLag,
    OutputsRead,
    ServiceSpec,
    SubmitRequest,
)

JOBS = "/jobs"
JOB = "/jobs/{id}"
JOB_STATUS = "/jobs/{id}/status"
JOB_METADATA = "/jobs/{id}/metadata"

#: ``preflight`` is AiR checking the source before processing, so it already counts as running.
WASABI_STATUS_MAP: Mapping[str, JobState] = MappingProxyType(
    {
        "submitted": JobState.QUEUED,
        "preflight": JobState.RUNNING,
        "in_progress": JobState.RUNNING,
        "completed": JobState.SUCCEEDED,
        "failed": JobState.FAILED,
        "cancelled": JobState.CANCELLED,
    }
)
AIR_SERVICES = ("ocr", "s2t", "nld", "audiotag", "face", "logo")


class WasabiSource(ApiModel):
    """The source object; ``AccessKey``/``SecretKey`` (a non-Wasabi source) stay out of reprs and ``raw``."""

    Endpoint: str | None = None
    Bucket: str
    Region: str | None = None
    ObjectKey: str
    Provider: str | None = None
    AccessKey: str | None = Field(default=None, repr=False)
    SecretKey: str | None = Field(default=None, repr=False)


class WasabiDestination(ApiModel):
    Bucket: str
    Region: str | None = None


class WasabiJob(ApiModel):
    """``GET /jobs/{Id}``, a list item and a submit response's ``Job``: only ``Id`` is documented as always there."""

    Id: str
    Name: str | None = None
    Source: WasabiSource | None = None
    Services: dict[str, Any] | None = None
    UserId: str | None = None
    Created: IsoDatetime = None
    Completed: IsoDatetime = None
    Priority: int | None = None
    Batch: str | None = None
    Status: str | None = None
    Destination: WasabiDestination | None = None


class WasabiJobStatusResponse(ApiModel):
    """``GET /jobs/{Id}/status``: the cheap poll."""

    Id: str
    Status: str | None = None
    ErrorCount: int | None = None


class WasabiMetadata(ApiModel):
    """``GET /jobs/{Id}/metadata``; ``DestinationPath`` is ``s3://bucket/key`` or a key in ``Destination.Bucket``."""

    Id: str
    UserId: str | None = None
    Destination: WasabiDestination | None = None
    DestinationPath: str

    def to_s3_object(self, *, region: str | None = None, endpoint_url: str | None = None) -> S3Object:
        if self.DestinationPath.lower().startswith("s3://"):
            bucket, key = parse_s3_uri(self.DestinationPath)
        elif self.Destination is not None and self.DestinationPath.lstrip("/"):
            bucket, key = self.Destination.Bucket, self.DestinationPath.lstrip("/")
        else:
            raise ValueError(f"cannot locate the metadata object from {self.DestinationPath!r}")
        if region is None and self.Destination is not None:
            region = self.Destination.Region
        return S3Object(bucket=bucket, key=key, region=region, endpoint_url=endpoint_url)


class WasabiJobList(ApiModel):
    Records: list[WasabiJob] = Field(default_factory=list)


class WasabiSubmitResponse(ApiModel):
    Job: WasabiJob


class WasabiError(ErrorBody):
    """``{"Error", "ErrorCode"}``; a 404 gives only ``{"ErrorCode": "NOT_FOUND"}``."""

    Error: str | None = None
    ErrorCode: str | None = None

    def message(self) -> str:
        return ": ".join(p for p in (self.Error, self.ErrorCode) if p)


class WasabiSubmitRequest(SubmitRequest):
    """``POST /jobs``."""

    positional = "name"

    name: str = Field(description="the job name, 1 to 256 characters.")
    services: dict[str, Any] | list[str] = Field(
        description='the AiR services to run, as ``{"s2t": "", "ocr": {"config": {...}}}``: each of '
        f'{", ".join(AIR_SERVICES)} with ``""`` or its config; a list of names runs each with its defaults.'
    )
    source: dict[str, Any] = Field(
        description='the object to process: ``{"Bucket", "ObjectKey"}`` and optionally ``"Endpoint"``, '
        '``"Region"`` (and ``"AccessKey"``/``"SecretKey"`` for a source outside Wasabi).'
    )
    destination: dict[str, Any] = Field(description='where AiR writes its outputs: ``{"Bucket", "Region"}``.')
    priority: int = Field(5, description="1 to 10. Default 5.")
    batch: str | None = Field(None, description="a batch name to group jobs.")

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        if not 1 <= len(name) <= 256 or not name.strip():
            raise Invalid(f"name must be 1 to 256 characters, not only blanks, got {name!r:.80}")
        return name

    @field_validator("batch")
    @classmethod
    def _batch(cls, batch: str | None) -> str | None:
        if batch is not None and len(batch) > 256:
            raise Invalid(f"batch must be text of at most 256 characters, got {batch!r:.80}")
        return batch or None

    @field_validator("priority")
    @classmethod
    def _priority(cls, priority: int) -> int:
        if not 1 <= priority <= 10:
            raise Invalid(f"priority must be an integer from 1 to 10, got {priority!r}")
        return priority

    @field_validator("services")
    @classmethod
    def _services(cls, services: dict[str, Any] | list[str]) -> dict[str, Any]:
        chosen = dict.fromkeys(services, "") if isinstance(services, list) else services
        unknown = sorted(set(chosen) - set(AIR_SERVICES))
        if not chosen or unknown:
            what = f"unknown services {unknown}" if unknown else "services must name at least one service"
            raise Invalid(what, hint=f"Use some of: {', '.join(AIR_SERVICES)}")
        for key, config in chosen.items():
            if config != "" and not (isinstance(config, dict) and isinstance(config.get("config", {}), dict)):
                raise Invalid(f'service {key!r} takes "" or {{"config": {{...}}}}, got {config!r:.80}')
        return chosen

    @field_validator("source")
    @classmethod
    def _source(cls, source: dict[str, Any]) -> dict[str, Any]:
        if missing := [k for k in ("Bucket", "ObjectKey") if not source.get(k)]:
            hint = "Give source as {Bucket, ObjectKey} (Endpoint and Region optional)"
            raise Invalid(f"source is missing {', '.join(missing)}", hint=hint)
        return source

    @field_validator("destination")
    @classmethod
    def _destination(cls, destination: dict[str, Any]) -> dict[str, Any]:
        if missing := [k for k in ("Bucket", "Region") if not destination.get(k)]:
            raise Invalid(
                f"destination is missing {', '.join(missing)}", hint="Give destination as {Bucket, Region}"
            )
        return destination

    def call(self) -> Call:
        body = {
            "Name": self.name,
            "Priority": self.priority,
            "Services": self.services,
            "Source": self.source,
            "Destination": self.destination,
        }
        return Call(
            "submit_job",
            "POST",
            JOBS,
            WasabiSubmitResponse,
            json={**body, "Batch": self.batch} if self.batch else body,
        )

    def job_ref(self, response: WasabiSubmitResponse) -> str:
        return response.Job.Id


def wasabi_job_status(
    job: WasabiJob | WasabiJobStatusResponse,
    metadata: WasabiMetadata | None = None,
    *,
    endpoint_url: str | None = None,
) -> JobStatus:
    """The job as a `JobStatus`; a completed job with its ``/metadata`` lists the one output, ``metadata``.

    Its region is the metadata's destination region, else the job's. Wasabi documents no error text
    on a job: ``error`` is set only from an undocumented ``Error`` string. ``Source`` keys are redacted.
    """
    if metadata is not None and metadata.Id != job.Id:
        raise ValueError(f"metadata is for job {metadata.Id!r}, not {job.Id!r}")
    full = job if isinstance(job, WasabiJob) else None
    state = normalize_state(job.Status, WASABI_STATUS_MAP)
    outputs = []
    if state is JobState.SUCCEEDED and metadata is not None:
        regions = [
            d.Region for d in (metadata.Destination, full.Destination if full else None) if d is not None
        ]
        location = metadata.to_s3_object(
            region=next((r for r in regions if r), None), endpoint_url=endpoint_url
        )
        outputs.append(
            JobOutput(name="metadata", format="json", media_type=media_type_for("json"), location=location)
        )
    error = (job.model_extra or {}).get("Error")
    return JobStatus(
        service=Service.WASABI_AIR,
        job_id=job.Id,
        state=state,
        raw_status=job.Status,
        error=error if isinstance(error, str) and error else None,
        outputs=outputs,
        created_at=full.Created if full else None,
        completed_at=full.Completed if full else None,
        raw=redact_secrets(job.model_dump(mode="json", exclude_unset=True)),
    )


def outputs_endpoint(job: WasabiJob, options: Mapping[str, Any]) -> str | None:
    """The S3 endpoint of the job's outputs: the connection's ``s3_endpoint_url``, else the
    destination region's ``https://s3.<region>.wasabisys.com``."""
    region = job.Destination.Region if job.Destination is not None else None
    default = f"https://s3.{region}.wasabisys.com" if region else None
    return options.get("s3_endpoint_url") or default


def _job_status(job: WasabiJob, options: Mapping[str, Any]) -> JobStatus:
    return wasabi_job_status(job, endpoint_url=outputs_endpoint(job, options))


def _metadata_needed(job: JobStatus) -> bool:
    """A completed job's `JobStatus` lists no outputs until ``/metadata`` is read (W6)."""
    return job.service is Service.WASABI_AIR and job.succeeded and not job.outputs


def _metadata_outputs(
    job: JobStatus, metadata: WasabiMetadata, options: Mapping[str, Any]
) -> list[JobOutput]:
    """The one output; its S3 endpoint from the destination region of the metadata, else of the job."""
    destination = metadata.Destination or job.raw.get("Destination")
    try:
        known = WasabiJob.model_validate(
            {"Id": job.job_id, "Status": job.raw_status, "Destination": destination}
        )
    except ValueError:
        known = WasabiJob(Id=job.job_id, Status=job.raw_status)
    return wasabi_job_status(known, metadata, endpoint_url=outputs_endpoint(known, options)).outputs


WASABI_AIR = ServiceSpec(
    name="wasabi_air",
    display_name="Wasabi AiR",
    conn_type="wasabi_air",
    default_conn_id="wasabi_air_default",
    hook_class="airflow_jobstatus.hooks.wasabi.WasabiAirHook",
    default_host=None,
    fields={
        "host": FormField(
            "AiR API base URL",
            "https://<your AiR host>",
            "Required: Wasabi publishes no global AiR endpoint; use the base URL of your AiR instance.",
        ),
        "login": FormField("Access key", "Wasabi access key", "Sent in the 'x-amz-access-key' header."),
        "password": FormField("Secret key", "Wasabi secret key", "Sent in the 'x-amz-secret-key' header."),
    },
    default_max_rps=10.0,
    docs_url="https://docs.wasabi.com/",
    extra_fields=(
        ExtraField(
            "s3_endpoint_url",
            "Wasabi S3 endpoint URL",
            "S3 endpoint where the destination bucket lives, recorded on each output so the transfer "
            "reads it there. Default: https://s3.<destination region>.wasabisys.com.",
            "string",
            "",
            "https://s3.us-west-1.wasabisys.com",
        ),
    ),
    job=JobRead(JOB, WasabiJob, lambda job, options, _: _job_status(job, options)),
    poll=JobRead(JOB_STATUS, WasabiJobStatusResponse, lambda job, *_: wasabi_job_status(job)),  # no outputs
    outputs_read=OutputsRead(JOB_METADATA, WasabiMetadata, _metadata_needed, _metadata_outputs),
    listing=Listing(
        JOBS,
        page=WasabiJobList,
        status=_job_status,
        records="Records",
        size="pageSize",
        cursor="pageNumber",
        numbered=True,
        filters={"status": "status", "batch": "batch", "name": "name", "sort_order": "sortOrder"},
        params={"sortBy": "Created", "sortOrder": "Asc"},
        newest_first={"sortBy": "Created", "sortOrder": "Desc"},
    ),
    id_field="Id",
    status_field="Status",
    error_field="Error",
    connected="the access and secret keys were accepted",
    status_map=WASABI_STATUS_MAP,
    auth=CredentialHeaders({"login": "x-amz-access-key", "password": "x-amz-secret-key"}),
    outputs_lag=OutputsLag("metadata", parameter="metadata_wait"),  # W6: /metadata lags the status
    submit_request=WasabiSubmitRequest,
    error_body=WasabiError,
)
