"""Daily batch processor: documented responses and their mapping to :class:`JobStatus`.

Contract: ``GET /batch-processor/:id`` (seeds 000/001), ``GET /batch-processor/:id/access-link``,
``GET /batch-processor`` (list), ``POST /batch-processor`` (submit) and the ``{"error", "info"}``
error body (``providers.md``).

Where the outputs are depends on a domain setting the job response does not reveal: by default
Daily keeps them in its own storage (readable only through presigned links from the access-link
endpoint); with ``batch_processor_bucket`` set they land in the customer's S3 bucket. Both cases
report ``output.*.s3Config``, so the caller says which one applies through
``daily_job_status(job, storage=...)``.
"""

from collections.abc import Mapping
from types import MappingProxyType
from typing import Literal

from pydantic import Field

from airflow_jobstatus.models.common import (
    ApiModel,
    DownloadLink,
    JobOutput,
    JobState,
    JobStatus,
    S3Object,
    Service,
    media_type_for,
    normalize_state,
    redact_secrets,
)

__all__ = [
    "DAILY_STATUS_MAP",
    "DailyAccessLink",
    "DailyAccessLinks",
    "DailyInput",
    "DailyJob",
    "DailyJobList",
    "DailyJobSummary",
    "DailyOutput",
    "DailyOutputFile",
    "DailyS3Config",
    "DailyStorage",
    "DailySubmitResponse",
    "daily_attach_links",
    "daily_job_status",
]

#: Daily's documented job statuses. ``submitted`` is accepted but not started, ``processing`` is
#: running; ``finished`` is the only success and ``error`` the only (terminal) failure.
DAILY_STATUS_MAP: Mapping[str, JobState] = MappingProxyType(
    {
        "submitted": JobState.QUEUED,
        "processing": JobState.RUNNING,
        "finished": JobState.SUCCEEDED,
        "error": JobState.FAILED,
    }
)

#: Where a Daily domain keeps batch-processor outputs: ``"daily"`` (Daily's own storage, the
#: default for a domain) or ``"customer"`` (the domain's ``batch_processor_bucket``).
DailyStorage = Literal["customer", "daily"]


class DailyS3Config(ApiModel):
    """``s3Config`` of an output file. ``key`` is verbatim: it may start with the bucket or domain name."""

    key: str
    bucket: str
    region: str | None = None


class DailyOutputFile(ApiModel):
    """One output file: its format (``txt``, ``srt``, ``vtt``, ``json``) and S3 location."""

    format: str
    s3Config: DailyS3Config | None = None


class DailyOutput(ApiModel):
    """``output``: transcripts (one per format), and the summary / SOAP note / concepts when made.

    ``concept`` is documented by the job-finished webhook event only (contracts D8).
    """

    transcription: list[DailyOutputFile] = Field(default_factory=list)
    summary: DailyOutputFile | None = None
    soap: DailyOutputFile | None = None
    concept: DailyOutputFile | None = None


class DailyInput(ApiModel):
    """``input``: the submission's source, echoed back."""

    sourceType: str
    recordingId: str | None = None
    uri: str | None = None
    transcriptUri: str | None = None
    language: str | None = None


class DailyJob(ApiModel):
    """``GET /batch-processor/:id``; ``status`` is optional so that a missing one reads as unknown."""

    id: str
    preset: str
    status: str | None = None
    input: DailyInput | None = None
    output: DailyOutput | None = None
    error: str | None = None


class DailyJobSummary(ApiModel):
    """One entry of the job list."""

    id: str
    preset: str | None = None
    status: str | None = None


class DailyJobList(ApiModel):
    """``GET /batch-processor``: a page of jobs and the total count."""

    total_count: int
    data: list[DailyJobSummary] = Field(default_factory=list)


class DailyAccessLink(ApiModel):
    """One presigned download link. ``link`` is a bearer URL, so it is kept out of ``repr``."""

    format: str
    link: str = Field(repr=False)


class DailyAccessLinks(ApiModel):
    """``GET /batch-processor/:id/access-link`` (400 until the job is ``finished``).

    The docs list ``transcription`` and ``summary`` only (contracts D11); ``soap`` and ``concept``
    links are used when present, and otherwise the output is read from its ``s3Config``.

    Do not push this model to XCom: its ``link`` values are bearer URLs. Fold them into a
    :class:`JobStatus` with :func:`daily_attach_links` when reading outputs instead.
    """

    id: str
    preset: str | None = None
    status: str | None = None
    transcription: list[DailyAccessLink] = Field(default_factory=list)
    summary: DailyAccessLink | None = None
    soap: DailyAccessLink | None = None
    concept: DailyAccessLink | None = None

    def link_for(self, name: str, format: str) -> str | None:
        """The link for the output ``name`` (``transcript``/``summary``/``soap``/``concept``) in ``format``."""
        candidates: list[DailyAccessLink]
        if name == "transcript":
            candidates = self.transcription
        elif name in SINGLE_OUTPUTS:
            single = getattr(self, name)
            candidates = [single] if single else []
        else:
            return None
        wanted = format.strip().lstrip(".").lower()
        for candidate in candidates:
            if candidate.format.strip().lstrip(".").lower() == wanted:
                return candidate.link
        return None


class DailySubmitResponse(ApiModel):
    """``POST /batch-processor`` -> ``{"id"}``."""

    id: str


#: Outputs that are one file each, in the order they are listed (after the transcripts).
SINGLE_OUTPUTS: tuple[str, ...] = ("summary", "soap", "concept")


def _daily_location(file: DailyOutputFile, storage: DailyStorage) -> S3Object | DownloadLink:
    config = file.s3Config
    s3 = None if config is None else S3Object(bucket=config.bucket, key=config.key, region=config.region)
    if storage == "customer" and s3 is not None:
        return s3
    # Daily's own storage: read through a fresh access link; the object it names is kept too
    # (D10), so an output the access-link endpoint does not serve can still be read from S3.
    return DownloadLink(s3=s3)


def daily_job_status(job: DailyJob, *, storage: DailyStorage = "daily") -> JobStatus:
    """Translate a Daily job into a :class:`JobStatus`.

    ``storage`` says where this domain keeps outputs, which the response cannot tell:

    - ``"daily"`` (default, Daily's default): outputs are :class:`DownloadLink` locations without a
      URL, each keeping its ``s3Config`` as ``DownloadLink.s3``; the hook resolves the URLs through
      ``GET /batch-processor/:id/access-link`` (see :func:`daily_attach_links`).
    - ``"customer"``: the domain has ``batch_processor_bucket`` set; outputs are :class:`S3Object`
      locations built from ``s3Config`` with the key kept verbatim. A file without ``s3Config``
      still falls back to a :class:`DownloadLink`.

    Outputs (only once ``finished``) are named ``transcript`` (one per transcription format),
    ``summary``, ``soap`` and ``concept``; their ``format`` is the one Daily reports, whatever the key's suffix.
    """
    if storage not in ("customer", "daily"):
        raise ValueError(f"storage must be 'customer' or 'daily', not {storage!r}")
    state = normalize_state(job.status, DAILY_STATUS_MAP)
    outputs: list[JobOutput] = []
    if state is JobState.SUCCEEDED and job.output is not None:
        files: list[tuple[str, DailyOutputFile]] = [("transcript", f) for f in job.output.transcription]
        for name in SINGLE_OUTPUTS:
            single = getattr(job.output, name)
            if single is not None:
                files.append((name, single))
        outputs = [
            JobOutput(
                name=name,
                format=file.format,
                media_type=media_type_for(file.format),
                location=_daily_location(file, storage),
            )
            for name, file in files
        ]
    return JobStatus(
        service=Service.DAILY,
        job_id=job.id,
        state=state,
        raw_status=job.status,
        error=job.error or None,
        outputs=outputs,
        raw=redact_secrets(job.model_dump(mode="json", exclude_unset=True)),
    )


def daily_attach_links(status: JobStatus, links: DailyAccessLinks) -> JobStatus:
    """Return ``status`` with each Daily :class:`DownloadLink` output's URL filled from ``links``.

    Matching is by output name and format. Outputs with no matching link keep ``url=None``; other
    location kinds are left alone. The URLs stay out of any dump of the result.
    """
    if status.service is not Service.DAILY:
        raise ValueError(f"not a Daily job status: {status.service}")
    if links.id != status.job_id:
        raise ValueError(f"access links are for job {links.id!r}, not {status.job_id!r}")
    outputs = []
    for output in status.outputs:
        location = output.location
        if isinstance(location, DownloadLink):
            url = links.link_for(output.name, output.format)
            if url is not None:
                output = output.model_copy(update={"location": location.model_copy(update={"url": url})})
        outputs.append(output)
    return status.model_copy(update={"outputs": outputs})
