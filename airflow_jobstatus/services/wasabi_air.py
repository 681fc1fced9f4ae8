"""Wasabi AiR (docs/contracts.md W1-W10): ``/jobs`` under the account's AiR base URL, the access and
secret keys in headers. Field names keep Wasabi's PascalCase."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from pydantic import AliasGenerator, ConfigDict, Field, ValidationInfo, field_validator

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

from ._reads import ErrorBody, JobRead, Listing, OutputsLag, OutputsRead, output
from ._spec import ExtraField, FormField, ServiceSpec
from ._submit import Invalid, SubmitRequest

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
    Destination: WasabiDestination | None = None
    DestinationPath: str

    def to_s3_object(self, *, region: str | None = None, endpoint_url: str | None = None) -> S3Object:
        """W8: the metadata object, in its destination's region, else ``region`` (the job's), read at
        ``endpoint_url``, else at that region's ``https://s3.<region>.wasabisys.com``."""
        path, destination = self.DestinationPath, self.Destination
        if path.lower().startswith("s3://"):
            bucket, key = parse_s3_uri(path)
        elif destination is not None and path.lstrip("/"):
            bucket, key = destination.Bucket, path.lstrip("/")
        else:
            raise ValueError(f"cannot locate the metadata object from {path!r}")
        region = (destination.Region if destination else None) or region
        endpoint_url = endpoint_url or (f"https://s3.{region}.wasabisys.com" if region else None)
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
    """``POST /jobs`` (W2): the body is the fields, named ``Name``, ``Services``, ..."""

    model_config = ConfigDict(alias_generator=AliasGenerator(serialization_alias=str.capitalize))
    positional = "name"

    name: str = Field(min_length=1, max_length=256, description="the job name, 1 to 256 characters.")
    services: dict[str, Any] | list[str] = Field(
        description='the AiR services to run, as ``{"s2t": "", "ocr": {"config": {...}}}``: each of '
        f'{", ".join(AIR_SERVICES)} with ``""`` or its config; a list of names runs each with its defaults.'
    )
    source: dict[str, Any] = Field(
        description='the object to process: ``{"Bucket", "ObjectKey"}`` and optionally ``"Endpoint"``, '
        '``"Region"`` (and ``"AccessKey"``/``"SecretKey"`` for a source outside Wasabi).'
    )
    destination: dict[str, Any] = Field(description='where AiR writes its outputs: ``{"Bucket", "Region"}``.')
    priority: int = Field(5, ge=1, le=10, description="1 to 10. Default 5.")
    batch: str | None = Field(
        None, max_length=256, description="a batch name to group jobs, at most 256 characters."
    )

    @field_validator("name", "source", "destination")
    @classmethod
    def _given(cls, value: Any, info: ValidationInfo) -> Any:
        """A name not only blanks; the keys a source or destination needs."""
        if isinstance(value, str) and not value.strip():
            raise Invalid(f"name must be 1 to 256 characters, not only blanks, got {value!r:.80}")
        keys, hint = _NEEDS.get(info.field_name or "", ((), None))
        if missing := [k for k in keys if not value.get(k)]:
            raise Invalid(f"{info.field_name} is missing {', '.join(missing)}", hint=hint)
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
        json = self.model_dump(by_alias=True, exclude_none=True)  # no batch: none sent
        return Call("submit_job", "POST", "/jobs", WasabiSubmitResponse, json=json)

    def job_ref(self, response: WasabiSubmitResponse) -> str:
        return response.Job.Id


def wasabi_job_status(
    job: WasabiJob | WasabiJobStatusResponse,
    metadata: WasabiMetadata | None = None,
    *,
    endpoint_url: str | None = None,
) -> JobStatus:
    """The job as a `JobStatus`; completed, with its ``/metadata``, it lists that one output (W6, W8)."""
    created, completed = getattr(job, "Created", None), getattr(job, "Completed", None)
    status = WASABI_AIR.status_of(job, created_at=created, completed_at=completed)
    outputs = _outputs(status, metadata, {"s3_endpoint_url": endpoint_url}) if metadata else []
    return status.model_copy(update={"outputs": outputs if status.succeeded else []})


def _status(job: WasabiJob | WasabiJobStatusResponse, *_: Any) -> JobStatus:
    return wasabi_job_status(job)


def _outputs(job: JobStatus, metadata: WasabiMetadata, options: Mapping[str, Any]) -> list[JobOutput]:
    """The metadata object, in the job's destination region unless the metadata names one (W8)."""
    if metadata.Id != job.job_id:
        raise ValueError(f"metadata is for job {metadata.Id!r}, not {job.job_id!r}")
    known = job.raw.get("Destination")
    region = known.get("Region") if isinstance(known, dict) else None
    location = metadata.to_s3_object(region=region, endpoint_url=options.get("s3_endpoint_url"))
    return [output("metadata", "json", location)]


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
            placeholder="https://s3.us-west-1.wasabisys.com",
        ),
    ),
    job=JobRead("/jobs/{id}", WasabiJob, _status),
    poll=JobRead("/jobs/{id}/status", WasabiJobStatusResponse, _status),
    outputs_read=OutputsRead(  # W6: a completed job lists its one output once /metadata is read
        "/jobs/{id}/metadata",
        WasabiMetadata,
        lambda job: job.service is Service.WASABI_AIR and job.succeeded and not job.outputs,
        _outputs,
    ),
    outputs_lag=OutputsLag("metadata", parameter="metadata_wait"),  # W6: /metadata lags the status
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
    error_field="Error",  # undocumented: Wasabi documents no error text on a job
    connected="the access and secret keys were accepted",
    status_map=WASABI_STATUS_MAP,
    auth=CredentialHeaders({"login": "x-amz-access-key", "password": "x-amz-secret-key"}),
    submit_request=WasabiSubmitRequest,
    error_body=WasabiError,
)
