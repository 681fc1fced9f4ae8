"""Daily batch processor: ``/batch-processor`` under ``https://api.daily.co/v1``, Bearer API key.

Contract: docs/contracts.md D1-D13 (seeds 000/001, providers.md). Where the outputs are depends on
a domain setting the job response does not reveal: by default Daily keeps them in its own storage
(read through presigned links from the access-link endpoint); with ``batch_processor_bucket`` set
they land in the customer's S3 bucket. Both report ``output.*.s3Config``, so the connection's
``output_storage`` extra says which applies (``daily_job_status(job, storage=...)``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from airflow_jobstatus.http.auth import CredentialBearer
from airflow_jobstatus.http.call import Call
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
from airflow_jobstatus.services._spec import (
    ErrorBody,
    ExtraField,
    FormField,
    Invalid,
    JobRead,
    Listing,
    OutputsRead,
    ServiceSpec,
    SignedWebhook,
    SubmitRequest,
    WebhookBody,
    WebhookId,
    WebhookSpec,
)

JOBS = "/batch-processor"
JOB = "/batch-processor/{id}"
ACCESS_LINKS = "/batch-processor/{id}/access-link"

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


PRESETS: tuple[str, ...] = ("transcript", "summarize", "soap-notes")
#: ``outParams.s3Config.s3KeyTemplate`` sent when the caller gives none (the field is required,
#: contracts D3): one file name per job, so two jobs never write the same key.
DEFAULT_S3_KEY_TEMPLATE = "{job_id}"
#: The placeholders ``useReplacement`` enables (contracts D4).
KEY_PLACEHOLDERS: tuple[str, ...] = ("epoch_time", "domain_name", "job_id")
MAX_KEY_TEMPLATE = 1024
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_TEMPLATE_CHARS = re.compile(r"[A-Za-z0-9./_-]*")
_KEY_HINT = (
    "Daily's key templates are at most 1024 characters of letters, digits and . / - _, "
    "with the placeholders {epoch_time}, {domain_name} and {job_id} when use_replacement is on"
)


def check_key_template(template: str, use_replacement: bool | None) -> bool:
    """Validate an ``s3KeyTemplate`` as Daily's submit reference says; return ``useReplacement``.

    ``use_replacement=None`` means "on when the template has placeholders". Placeholders with
    ``use_replacement=False`` are refused: Daily would keep the braces, which a key may not hold.
    """
    names = _PLACEHOLDER.findall(template)
    rest = _PLACEHOLDER.sub("", template)
    problem = None
    if not template:
        problem = "must not be empty"
    elif len(template) > MAX_KEY_TEMPLATE:
        problem = f"is {len(template)} characters long; the limit is {MAX_KEY_TEMPLATE}"
    elif unknown := sorted({name for name in names if name not in KEY_PLACEHOLDERS}):
        problem = (
            f"uses unknown placeholder(s) {', '.join('{' + n + '}' for n in unknown)}; "
            f"Daily replaces only {', '.join('{' + n + '}' for n in KEY_PLACEHOLDERS)}"
        )
    elif not _TEMPLATE_CHARS.fullmatch(rest):
        bad = "".join(sorted({ch for ch in rest if not _TEMPLATE_CHARS.fullmatch(ch)}))
        problem = f"contains characters Daily does not allow: {bad!r}"
    elif names and use_replacement is False:
        problem = "has placeholders but use_replacement is False; set it True or drop them"
    if problem:
        raise Invalid(f"s3_key_template {problem}", hint=_KEY_HINT)
    return bool(names) if use_replacement is None else use_replacement


class DailyError(ErrorBody):
    """Error body ``{"error": "<type>", "info": "<text>"}`` (e.g. ``invalid-request-error``)."""

    error: str
    info: str | None = None

    def message(self) -> str:
        return ": ".join(p for p in (self.error, self.info) if p)


class DailySubmitRequest(SubmitRequest):
    """``POST /batch-processor``: exactly one of ``recording_id``, ``uri`` and ``transcript_uri``."""

    positional = "preset"

    preset: str = Field(description="``transcript``, ``summarize`` or ``soap-notes``.")
    recording_id: str | None = Field(None, description="a Daily recording to process.")
    uri: str | None = Field(None, description="a media file URL to process.")
    transcript_uri: str | None = Field(
        None, description="a WebVTT transcript URL, for ``summarize`` and ``soap-notes``."
    )
    language: str | None = Field(
        None, description="the spoken language as a BCP-47 tag, e.g. ``fr``; only for ``transcript``."
    )
    s3_key_template: str | None = Field(
        None,
        description="the output files' name, Daily's ``outParams.s3Config.s3KeyTemplate``: outputs land at "
        "``<domain>/<job id>/transcript/<template>.<ext>``. At most 1024 characters of letters, digits and "
        "``. / - _``, plus placeholders when ``use_replacement`` is on. Default ``{job_id}``.",
    )
    use_replacement: bool | None = Field(
        None,
        description="Daily's ``useReplacement``: replace ``{epoch_time}``, ``{domain_name}`` and ``{job_id}`` "
        "in ``s3_key_template``. Default: on when the template has placeholders.",
    )

    @field_validator("preset")
    @classmethod
    def _preset(cls, preset: str) -> str:
        if preset not in PRESETS:
            raise Invalid(f"preset must be one of {', '.join(PRESETS)}, got {preset!r:.80}")
        return preset

    @field_validator("recording_id", "uri", "transcript_uri", "language", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return None if value == "" else value

    @model_validator(mode="after")
    def _rules(self) -> DailySubmitRequest:
        given = [k for k in ("recording_id", "uri", "transcript_uri") if getattr(self, k) is not None]
        if len(given) != 1:
            raise Invalid(
                f"exactly one source is needed, got {len(given)} ({', '.join(given) or 'none'})",
                hint="Pass exactly one of recording_id, uri or transcript_uri",
            )
        if given == ["transcript_uri"] and self.preset == "transcript":
            raise Invalid(
                "a transcript_uri source needs the 'summarize' or 'soap-notes' preset (it is already a transcript)"
            )
        if self.language and self.preset != "transcript":
            raise Invalid(
                f"language is only supported by the 'transcript' preset, not {self.preset!r}",
                hint="Drop language, or submit a 'transcript' job with it",
            )
        if self.s3_key_template is None and self.use_replacement is False:
            raise Invalid(
                "use_replacement=False needs an s3_key_template: the default one, "
                f"{DEFAULT_S3_KEY_TEMPLATE}, is a placeholder",
                hint="Pass s3_key_template, or leave use_replacement unset",
            )
        if self.s3_key_template is not None:
            check_key_template(self.s3_key_template, self.use_replacement)
        return self

    def call(self) -> Call:
        source_type, source = next(
            (api, value)
            for api, value in (
                ("recordingId", self.recording_id),
                ("uri", self.uri),
                ("transcriptUri", self.transcript_uri),
            )
            if value is not None
        )
        in_params: dict[str, Any] = {"sourceType": source_type, source_type: source}
        if self.language:
            in_params["language"] = self.language
        template = self.s3_key_template or DEFAULT_S3_KEY_TEMPLATE
        replace = True if self.s3_key_template is None else check_key_template(template, self.use_replacement)
        s3 = {"s3KeyTemplate": template, "useReplacement": replace}
        body = {"preset": self.preset, "inParams": in_params, "outParams": {"s3Config": s3}}
        return Call("submit_job", "POST", JOBS, DailySubmitResponse, json=body)

    def job_ref(self, response: DailySubmitResponse) -> str:
        return response.id


def _job_status(job: DailyJob, options: Mapping[str, Any]) -> JobStatus:
    """The output-location rule: the connection's ``output_storage`` says where the outputs are."""
    return daily_job_status(job, storage=options.get("output_storage", "daily"))


# Push completion (README "Push completion"): the webhook Daily posts when a job ends (contracts H1-H5).
DAILY_WEBHOOK_EVENTS = frozenset({"batch-processor.job-finished", "batch-processor.error"})


class DailyWebhookJob(WebhookBody):
    id: WebhookId


class DailyEnvelope(WebhookBody):
    """``{version, type, id, payload, event_ts}``; ``payload`` is the batch-processor job."""

    version: str
    type: Literal["batch-processor.job-finished", "batch-processor.error"]
    id: WebhookId
    payload: DailyWebhookJob
    event_ts: float | int

    def job_id(self) -> str:
        return self.payload.id

    def kind(self) -> str:
        return self.type


DAILY_WEBHOOK = WebhookSpec(
    scheme=SignedWebhook(
        signature_header="X-Webhook-Signature",
        timestamp_header="X-Webhook-Timestamp",
        secret_hint="paste the 'hmac' value of the domain's Daily webhook as it is",
        description="The base64 'hmac' secret of your domain's Daily webhook; webhooks it does not sign "
        "are refused.",
    ),
    body=DailyEnvelope,
    max_body=256 * 1024,
    event_types=DAILY_WEBHOOK_EVENTS,
)


def _links_needed(job: JobStatus) -> bool:
    return any(isinstance(output.location, DownloadLink) for output in job.outputs)


def _linked_outputs(job: JobStatus, links: DailyAccessLinks, options: Mapping[str, Any]) -> list[JobOutput]:
    return daily_attach_links(job, links).outputs


DAILY = ServiceSpec(
    name="daily",
    display_name="Daily",
    conn_type="daily",
    default_conn_id="daily_default",
    hook_class="airflow_jobstatus.hooks.daily.DailyHook",
    default_host="https://api.daily.co/v1",
    fields={
        "host": FormField(
            "API base URL",
            "https://api.daily.co/v1",
            "Leave empty for Daily's public API; set it to reach a proxy or the local emulator.",
        ),
        "password": FormField("API key", "your Daily API key", "Sent as 'Authorization: Bearer <key>'."),
    },
    # Daily documents about 20 requests/s; stay well under it by default.
    default_max_rps=10.0,
    docs_url="https://docs.daily.co/reference/rest-api/batch-processor",
    extra_fields=(
        ExtraField(
            "output_storage",
            "Where outputs are kept",
            "'daily' (Daily's storage, the default: outputs are read through access links) or 'customer' "
            "(your domain's batch_processor_bucket: outputs are read from your S3 bucket).",
            "string",
            "daily",
            "daily",
            enum=("daily", "customer"),
        ),
    ),
    can_delete_jobs=True,  # DELETE /batch-processor/:id, no cancel (docs/contracts.md D13)
    status_map=DAILY_STATUS_MAP,
    submit_request=DailySubmitRequest,
    error_body=DailyError,
    auth=CredentialBearer("password"),
    job=JobRead(JOB, DailyJob, lambda job, options, _: _job_status(job, options)),
    outputs_read=OutputsRead(  # presigned links to the outputs in Daily's storage
        ACCESS_LINKS,
        DailyAccessLinks,
        _links_needed,
        _linked_outputs,
        hints={400: "Daily serves access links only once the job is 'finished'; wait for the job first"},
    ),
    listing=Listing(
        JOBS,
        page=DailyJobList,
        states=DailyJobList,
        records="data",
        size="limit",
        cursor="starting_after",
        filters={"recording_id": "recordingId"},
    ),
    connected="the API key was accepted",
    webhook=DAILY_WEBHOOK,
)
