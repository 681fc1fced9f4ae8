"""Wasabi AiR job API: documented responses and their mapping to :class:`JobStatus`.

Contract: ``GET /jobs/{Id}`` (seed 002), ``GET /jobs/{Id}/status``, ``GET /jobs/{Id}/metadata``,
``GET /jobs`` (list), ``POST /jobs`` (submit) and the ``{"Error", "ErrorCode"}`` error body
(``providers.md``). Field names keep Wasabi's PascalCase.

A job's single output is one JSON metadata object in the customer's destination bucket, whose
location only ``/metadata`` reveals (404 until the job completes).
"""

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from pydantic import Field

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

__all__ = [
    "WASABI_STATUS_MAP",
    "WasabiDestination",
    "WasabiError",
    "WasabiJob",
    "WasabiJobList",
    "WasabiJobStatusResponse",
    "WasabiMetadata",
    "WasabiSource",
    "WasabiSubmitResponse",
    "wasabi_job_status",
]

#: Wasabi AiR's documented statuses. ``preflight`` is the service checking the source before
#: processing, so it already counts as running. ``failed`` and ``cancelled`` are both terminal.
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


class WasabiSource(ApiModel):
    """The job's source object. ``AccessKey``/``SecretKey`` appear only for non-Wasabi sources
    (a second credential set) and are kept out of ``repr``; :func:`wasabi_job_status` redacts them
    from ``JobStatus.raw``."""

    Endpoint: str | None = None
    Bucket: str
    Region: str | None = None
    ObjectKey: str
    Provider: str | None = None
    AccessKey: str | None = Field(default=None, repr=False)
    SecretKey: str | None = Field(default=None, repr=False)


class WasabiDestination(ApiModel):
    """Bucket (and region) that receives the job's metadata object."""

    Bucket: str
    Region: str | None = None


class WasabiJob(ApiModel):
    """``GET /jobs/{Id}``; also the items of the job list and the ``Job`` of a submit response.

    Only ``Id`` is required: the documentation marks nothing else as always present, and a missing
    ``Status`` reads as unknown rather than failing the poll.
    """

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
    """``GET /jobs/{Id}/metadata``: where the job's metadata object was written.

    ``DestinationPath`` is normally ``s3://bucket/jobs/<date>/<uuid>/<name>_metadata.json``.
    """

    Id: str
    UserId: str | None = None
    Destination: WasabiDestination | None = None
    DestinationPath: str

    def destination_object(self) -> tuple[str, str]:
        """``(bucket, key)`` of the metadata object.

        An ``s3://`` path is split verbatim. A path without a scheme is taken as a key in
        ``Destination.Bucket`` (a leading ``/`` dropped); without a bucket that is a ``ValueError``.
        """
        if self.DestinationPath.lower().startswith("s3://"):
            return parse_s3_uri(self.DestinationPath)
        key = self.DestinationPath.lstrip("/")
        if self.Destination is None or not key:
            raise ValueError(f"cannot locate the metadata object from {self.DestinationPath!r}")
        return self.Destination.Bucket, key

    def to_s3_object(self, *, region: str | None = None, endpoint_url: str | None = None) -> S3Object:
        """The metadata object as an :class:`S3Object` (region defaults to ``Destination.Region``)."""
        bucket, key = self.destination_object()
        if region is None and self.Destination is not None:
            region = self.Destination.Region
        return S3Object(bucket=bucket, key=key, region=region, endpoint_url=endpoint_url)


class WasabiJobList(ApiModel):
    """``GET /jobs``: one page of jobs."""

    Records: list[WasabiJob] = Field(default_factory=list)


class WasabiSubmitResponse(ApiModel):
    """``POST /jobs`` -> ``{"Job": {...}}``."""

    Job: WasabiJob


class WasabiError(ApiModel):
    """Error body; ``Error`` is sometimes absent (404 gives only ``{"ErrorCode": "NOT_FOUND"}``)."""

    Error: str | None = None
    ErrorCode: str | None = None


def wasabi_job_status(
    job: WasabiJob | WasabiJobStatusResponse,
    metadata: WasabiMetadata | None = None,
    *,
    endpoint_url: str | None = None,
) -> JobStatus:
    """Translate a Wasabi AiR job (full or ``/status`` response) into a :class:`JobStatus`.

    The one output, ``metadata`` (json), is listed when the job ``completed`` and ``metadata`` (the
    ``/metadata`` response) is given; its region comes from the metadata or the job destination and
    ``endpoint_url`` is whatever Wasabi S3 endpoint the caller uses. Wasabi documents no error text on a
    job, so ``error`` is ``None`` unless the response carries an undocumented ``Error`` string
    (``ErrorCount`` is in ``raw``). ``Source`` credentials are redacted
    from ``raw``.
    """
    if metadata is not None and metadata.Id != job.Id:
        raise ValueError(f"metadata is for job {metadata.Id!r}, not {job.Id!r}")
    state = normalize_state(job.Status, WASABI_STATUS_MAP)
    outputs: list[JobOutput] = []
    if state is JobState.SUCCEEDED and metadata is not None:
        region = None
        if isinstance(job, WasabiJob) and job.Destination is not None:
            region = job.Destination.Region
        if metadata.Destination is not None and metadata.Destination.Region:
            region = metadata.Destination.Region
        outputs.append(
            JobOutput(
                name="metadata",
                format="json",
                media_type=media_type_for("json"),
                location=metadata.to_s3_object(region=region, endpoint_url=endpoint_url),
            )
        )
    extra = job.model_extra or {}
    error = extra.get("Error") if isinstance(extra.get("Error"), str) else None
    created_at = job.Created if isinstance(job, WasabiJob) else None
    completed_at = job.Completed if isinstance(job, WasabiJob) else None
    return JobStatus(
        service=Service.WASABI_AIR,
        job_id=job.Id,
        state=state,
        raw_status=job.Status,
        error=error or None,
        outputs=outputs,
        created_at=created_at,
        completed_at=completed_at,
        raw=redact_secrets(job.model_dump(mode="json", exclude_unset=True)),
    )
