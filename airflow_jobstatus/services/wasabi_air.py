"""Wasabi AiR: ``/jobs`` under the account's AiR base URL, access and secret keys in headers.

Contract: docs/contracts.md W1-W10; field names keep Wasabi's PascalCase. A job's one output is a JSON
metadata object that only ``/jobs/{Id}/metadata`` reveals, 404 for a moment after completion (W6).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from pydantic import Field, ValidationInfo, field_validator

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
    parse_s3_uri,
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
    output,
)

#: W5; ``preflight`` is AiR checking the source before processing, so it already counts as running.
WASABI_STATUS_MAP: Mapping[str, JobState] = MappingProxyType(
    {"submitted": JobState.QUEUED, "preflight": JobState.RUNNING, "in_progress": JobState.RUNNING}
    | {"completed": JobState.SUCCEEDED, "failed": JobState.FAILED, "cancelled": JobState.CANCELLED}
)
AIR_SERVICES = ("ocr", "s2t", "nld", "audiotag", "face", "logo")


class WasabiSource(ApiModel):
    """``AccessKey``/``SecretKey`` (a source outside Wasabi) stay out of reprs and ``raw``."""

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
    """``GET /jobs/{Id}``, a list record, a submit response's ``Job``: only ``Id`` is always there (W3)."""

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
    """``GET /jobs/{Id}/status``: the cheap poll (W4)."""

    Id: str
    Status: str | None = None
    ErrorCount: int | None = None


class WasabiMetadata(ApiModel):
    """``GET /jobs/{Id}/metadata`` (W6); ``DestinationPath`` is ``s3://bucket/key`` or a key in ``Destination.Bucket``."""

    Id: str
    UserId: str | None = None
    Destination: WasabiDestination | None = None
    DestinationPath: str

    def to_s3_object(self, *, region: str | None = None, endpoint_url: str | None = None) -> S3Object:
        """The metadata object; ``region`` where the metadata names none."""
        path, destination = self.DestinationPath, self.Destination
        if path.lower().startswith("s3://"):
            bucket, key = parse_s3_uri(path)
        elif destination is not None and path.lstrip("/"):
            bucket, key = destination.Bucket, path.lstrip("/")
        else:
            raise ValueError(f"cannot locate the metadata object from {path!r}")
        region = (destination.Region if destination else None) or region
        return S3Object(bucket=bucket, key=key, region=region, endpoint_url=endpoint_url)


class WasabiJobList(ApiModel):
    Records: list[WasabiJob] = Field(default_factory=list)


class WasabiSubmitResponse(ApiModel):
    Job: WasabiJob


class WasabiError(ErrorBody):
    """``{"Error", "ErrorCode"}``; a 404 gives only ``{"ErrorCode": "NOT_FOUND"}`` (W9)."""

    message_fields = ("Error", "ErrorCode")
    Error: str | None = None
    ErrorCode: str | None = None


_NEEDS = {  # W2: the keys a source or destination needs, and the fix
    "source": (("Bucket", "ObjectKey"), "Give source as {Bucket, ObjectKey} (Endpoint and Region optional)"),
    "destination": (("Bucket", "Region"), "Give destination as {Bucket, Region}"),
}


class WasabiSubmitRequest(SubmitRequest):
    """``POST /jobs`` (W2)."""

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
    batch: str | None = Field(
        None, max_length=256, description="a batch name to group jobs, at most 256 characters."
    )

    @field_validator("name", "priority", "source", "destination")
    @classmethod
    def _bounds(cls, value: Any, info: ValidationInfo) -> Any:
        field = info.field_name or ""
        if field == "name" and not (len(value) <= 256 and value.strip()):
            raise Invalid(f"name must be 1 to 256 characters, not only blanks, got {value!r:.80}")
        if field == "priority" and not 1 <= value <= 10:
            raise Invalid(f"priority must be an integer from 1 to 10, got {value!r}")
        keys, hint = _NEEDS.get(field, ((), None))
        if missing := [k for k in keys if not value.get(k)]:
            raise Invalid(f"{field} is missing {', '.join(missing)}", hint=hint)
        return value

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

    def call(self) -> Call:
        body = {"Name": self.name, "Priority": self.priority, "Services": self.services, "Batch": self.batch}
        body |= {"Source": self.source, "Destination": self.destination}
        json = {key: value for key, value in body.items() if value is not None}  # no batch: none sent
        return Call("submit_job", "POST", "/jobs", WasabiSubmitResponse, json=json)

    def job_ref(self, response: WasabiSubmitResponse) -> str:
        return response.Job.Id


def wasabi_job_status(
    job: WasabiJob | WasabiJobStatusResponse,
    metadata: WasabiMetadata | None = None,
    *,
    endpoint_url: str | None = None,
) -> JobStatus:
    """The job as a `JobStatus`; completed, with its ``/metadata``, it lists that one output (W6, W8).

    Wasabi documents no error text on a job: ``error`` comes only from an undocumented ``Error``.
    """
    if metadata is not None and metadata.Id != job.Id:
        raise ValueError(f"metadata is for job {metadata.Id!r}, not {job.Id!r}")
    region = destination.Region if (destination := getattr(job, "Destination", None)) else None
    return WASABI_AIR.status_of(
        job,
        lambda: [_metadata_output(metadata, region, endpoint_url)] if metadata else [],
        created_at=getattr(job, "Created", None),
        completed_at=getattr(job, "Completed", None),
    )


def _metadata_output(metadata: WasabiMetadata, region: str | None, endpoint_url: str | None) -> JobOutput:
    return output("metadata", "json", metadata.to_s3_object(region=region, endpoint_url=endpoint_url))


def _status(job: WasabiJob | WasabiJobStatusResponse, *_: Any) -> JobStatus:
    return wasabi_job_status(job)


def _metadata_needed(job: JobStatus) -> bool:
    """A completed job's `JobStatus` lists no outputs until ``/metadata`` is read (W6)."""
    return job.service is Service.WASABI_AIR and job.succeeded and not job.outputs


def _metadata_outputs(
    job: JobStatus, metadata: WasabiMetadata, options: Mapping[str, Any]
) -> list[JobOutput]:
    """W8: in the metadata's destination region, else the job's, read at the connection's
    ``s3_endpoint_url``, else at that region's ``https://s3.<region>.wasabisys.com``."""
    if metadata.Id != job.job_id:
        raise ValueError(f"metadata is for job {metadata.Id!r}, not {job.job_id!r}")
    known = job.raw.get("Destination")
    region = (metadata.Destination.Region if metadata.Destination else None) or (
        known.get("Region") if isinstance(known, dict) else None
    )
    endpoint = options.get("s3_endpoint_url") or (f"https://s3.{region}.wasabisys.com" if region else None)
    return [_metadata_output(metadata, region, endpoint)]


WASABI_AIR = ServiceSpec(
    name="wasabi_air",
    display_name="Wasabi AiR",
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
    job=JobRead("/jobs/{id}", WasabiJob, _status),
    poll=JobRead("/jobs/{id}/status", WasabiJobStatusResponse, _status),
    outputs_read=OutputsRead("/jobs/{id}/metadata", WasabiMetadata, _metadata_needed, _metadata_outputs),
    listing=Listing(
        "/jobs",
        page=WasabiJobList,
        status=_status,
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
