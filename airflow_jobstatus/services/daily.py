"""Daily batch processor: ``/batch-processor`` under ``https://api.daily.co/v1``, Bearer API key.

Contract: docs/contracts.md D1-D13, H1-H5. Where the outputs are is the connection's ``output_storage``
(Daily's storage, read through access links, or the domain's ``batch_processor_bucket``), not the job's.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Generic, Literal, TypeVar, get_args

from pydantic import Field, model_validator

from airflow_jobstatus.http.auth import CredentialBearer
from airflow_jobstatus.http.call import Call
from airflow_jobstatus.models.common import ApiModel, DownloadLink, JobState, JobStatus, S3Object, Service

from ._reads import ErrorBody, JobRead, Listing, OutputsRead, attach_links, link_for, output
from ._spec import ExtraField, FormField, ServiceSpec
from ._submit import Invalid, SubmitRequest
from ._webhooks import SignedWebhook, WebhookBody, WebhookId, WebhookRegistration, WebhookSpec

JOBS = "/batch-processor"

#: ``submitted`` is accepted but not started; ``error`` is the only failure (terminal).
DAILY_STATUS_MAP: Mapping[str, JobState] = MappingProxyType(
    {"submitted": JobState.QUEUED, "processing": JobState.RUNNING}
    | {"finished": JobState.SUCCEEDED, "error": JobState.FAILED}
)
F = TypeVar("F")


class DailyS3Config(ApiModel):
    """``key`` is verbatim: it may start with the bucket or the domain name."""

    key: str
    bucket: str
    region: str | None = None


class DailyOutputFile(ApiModel):
    format: str
    s3Config: DailyS3Config | None = None


class DailyAccessLink(ApiModel):
    format: str
    link: str = Field(repr=False)  # a bearer URL


class DailyFiles(ApiModel, Generic[F]):
    """Transcripts (one per format), summary, SOAP note, and concepts (documented by the webhook only, D8)."""

    transcription: list[F] = Field(default_factory=list)
    summary: F | None = None
    soap: F | None = None
    concept: F | None = None

    def files(self) -> list[tuple[str, F]]:
        """(output name, file), in this order; a transcript per format."""
        singles = [("summary", self.summary), ("soap", self.soap), ("concept", self.concept)]
        return [("transcript", f) for f in self.transcription] + [(n, f) for n, f in singles if f is not None]


class DailyInput(ApiModel):
    recordingId: str | None = None
    uri: str | None = None


class DailyJobSummary(ApiModel):
    """A job as ``GET /batch-processor`` lists it; a missing ``status`` reads as unknown."""

    id: str
    status: str | None = None


class DailyJob(DailyJobSummary):
    """``GET /batch-processor/:id``."""

    preset: str
    input: DailyInput | None = None
    output: DailyFiles[DailyOutputFile] | None = None
    error: str | None = None


class DailyJobList(ApiModel):
    total_count: int
    data: list[DailyJobSummary] = Field(default_factory=list)


class DailySubmitResponse(ApiModel):
    id: str


class DailyAccessLinks(DailyFiles[DailyAccessLink]):
    """``GET /batch-processor/:id/access-link`` (400 until ``finished``). Documented: transcription and
    summary only (D11). Bearer URLs: fold them into a `JobStatus` (`daily_attach_links`), never XCom."""

    id: str

    def link_for(self, name: str, format: str) -> str | None:
        """The link of output ``name`` in ``format``, if Daily gave one."""
        return link_for([(n, f.format, f.link) for n, f in self.files()], name, format)


def daily_job_status(job: DailyJob, *, storage: Literal["customer", "daily"] = "daily") -> JobStatus:
    """A Daily job as a `JobStatus`; once ``finished``, its outputs as the domain's ``storage`` keeps
    them: ``"daily"`` `DownloadLink`s (resolved through the access links), ``"customer"`` `S3Object`s
    (keys verbatim; a file without ``s3Config`` stays a link). Both keep the ``s3Config`` (D10)."""
    if storage not in ("customer", "daily"):
        raise ValueError(f"storage must be 'customer' or 'daily', not {storage!r}")

    def location(c: DailyS3Config | None) -> S3Object | DownloadLink:
        s3 = S3Object(bucket=c.bucket, key=c.key, region=c.region) if c else None
        return s3 if s3 and storage == "customer" else DownloadLink(s3=s3)

    files = job.output.files() if job.output else []
    return DAILY.status_of(job, lambda: [output(n, f.format, location(f.s3Config)) for n, f in files])


def daily_attach_links(status: JobStatus, links: DailyAccessLinks) -> JobStatus:
    """``status`` with each `DownloadLink` output's URL from ``links`` (by name and format; no link:
    ``url`` stays None). The URLs stay out of any dump."""
    return attach_links(status, Service.DAILY, links.id, links.link_for)


#: Sent when no template is given (the field is required, D3): one name per job, never shared.
DEFAULT_S3_KEY_TEMPLATE = "{job_id}"
KEY_PLACEHOLDERS = ("epoch_time", "domain_name", "job_id")  # what useReplacement replaces (D4)
Preset = Literal["transcript", "summarize", "soap-notes"]
_SOURCES = {"recording_id": "recordingId", "uri": "uri", "transcript_uri": "transcriptUri"}
_PLACEHOLDER, _KEY_CHARS = re.compile(r"\{([^{}]*)\}"), re.compile(r"[A-Za-z0-9./_-]*")
_KEY_HINT = (
    "Daily's key templates are at most 1024 characters of letters, digits and . / - _, "
    "with the placeholders {epoch_time}, {domain_name} and {job_id} when use_replacement is on"
)


def check_key_template(given: str | None, use_replacement: bool | None) -> dict[str, Any]:
    """Check the ``s3KeyTemplate`` ``given`` (None: the default) as Daily's reference says (D4); return
    the ``s3Config`` to send. ``use_replacement`` None is on when the template has placeholders; False
    refuses them, as Daily would keep braces a key may not hold."""
    template = DEFAULT_S3_KEY_TEMPLATE if given is None else given
    names, rest = _PLACEHOLDER.findall(template), _PLACEHOLDER.sub("", template)
    unknown = ", ".join(f"{{{n}}}" for n in sorted(set(names) - set(KEY_PLACEHOLDERS)))
    known = ", ".join(f"{{{n}}}" for n in KEY_PLACEHOLDERS)
    bad, off = "".join(sorted(set(_KEY_CHARS.sub("", rest)))), use_replacement is False
    checks = {
        f"is {len(template)} characters long; the limit is 1024": len(template) > 1024,
        f"uses unknown placeholder(s) {unknown}; Daily replaces only {known}": unknown,
        f"contains characters Daily does not allow: {bad!r}": bad,
        "has placeholders but use_replacement is False; set it True or drop them": names and off and given,
        f"is needed with use_replacement=False (the default one, {template}, is a placeholder); pass one, "
        "or leave use_replacement unset": names and off,
    }
    problem = next((text for text, wrong in checks.items() if wrong), None)
    if problem:
        raise Invalid(f"s3_key_template {problem}", hint=_KEY_HINT)
    on = bool(names) if use_replacement is None else use_replacement
    return {"s3KeyTemplate": template, "useReplacement": on}


class DailyError(ErrorBody):
    """``{"error": "<type>", "info": "<text>"}`` (e.g. ``invalid-request-error``)."""

    message_fields = ("error", "info")
    error: str
    info: str | None = None


class DailySubmitRequest(SubmitRequest):
    """``POST /batch-processor``: exactly one of ``recording_id``, ``uri`` and ``transcript_uri``."""

    positional = "preset"

    preset: Preset = Field(description="``transcript``, ``summarize`` or ``soap-notes``.")
    recording_id: str | None = Field(None, description="a Daily recording to process.")
    uri: str | None = Field(None, description="a media file URL to process.")
    transcript_uri: str | None = Field(None, description="a WebVTT transcript URL; not for ``transcript``.")
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

    @model_validator(mode="after")
    def _rules(self) -> DailySubmitRequest:
        self.exactly_one(*_SOURCES)
        self.only_for(self.preset != "transcript", "a 'summarize' or 'soap-notes' job", "transcript_uri")
        self.only_for(self.preset == "transcript", "a 'transcript' job", "language")
        check_key_template(self.s3_key_template, self.use_replacement)
        return self

    def call(self) -> Call:
        source = self.exactly_one(*_SOURCES)
        in_params = {"sourceType": _SOURCES[source], _SOURCES[source]: getattr(self, source)}
        if self.language:
            in_params["language"] = self.language
        s3 = check_key_template(self.s3_key_template, self.use_replacement)
        body = {"preset": self.preset, "inParams": in_params, "outParams": {"s3Config": s3}}
        return Call("submit_job", "POST", JOBS, DailySubmitResponse, json=body)

    def job_ref(self, response: DailySubmitResponse) -> str:
        return response.id


WebhookEvent = Literal["batch-processor.job-finished", "batch-processor.error"]


class DailyWebhookJob(WebhookBody):
    id: WebhookId


class DailyEnvelope(WebhookBody):
    """The signed envelope Daily posts when a job ends (H1-H5); ``payload`` is the job."""

    id_field, kind_field = "payload.id", "type"
    type: WebhookEvent
    payload: DailyWebhookJob
    event_ts: float | int


DAILY = ServiceSpec(
    name="daily",
    display_name="Daily",
    hook_class="airflow_jobstatus.hooks.daily.DailyHook",
    default_host="https://api.daily.co/v1",
    fields={"password": FormField("API key", "your Daily API key", "Sent as 'Authorization: Bearer <key>'.")},
    docs_url="https://docs.daily.co/reference/rest-api/batch-processor",
    extra_fields=(
        ExtraField(
            "output_storage",
            "Where outputs are kept",
            "'daily' (Daily's storage, the default: outputs are read through access links) or 'customer' "
            "(your domain's batch_processor_bucket: outputs are read from your S3 bucket).",
            default="daily",
            enum=("daily", "customer"),
        ),
    ),
    can_delete_jobs=True,  # DELETE /batch-processor/:id, no cancel (D13)
    status_map=DAILY_STATUS_MAP,
    submit_request=DailySubmitRequest,
    error_body=DailyError,
    error_field="error",
    auth=CredentialBearer("password"),
    job=JobRead(
        f"{JOBS}/{{id}}",
        DailyJob,
        lambda job, opts, *_: daily_job_status(job, storage=opts.get("output_storage", "daily")),
    ),
    outputs_read=OutputsRead(  # presigned links to the outputs in Daily's storage
        f"{JOBS}/{{id}}/access-link",
        DailyAccessLinks,
        lambda job: any(isinstance(o.location, DownloadLink) for o in job.outputs),
        lambda job, links, _: daily_attach_links(job, links).outputs,
        hints={400: "Daily serves access links only once the job is 'finished'; wait for the job first"},
    ),
    listing=Listing(
        JOBS,
        page=DailyJobList,
        records="data",
        size="limit",
        cursor="starting_after",
        filters={"recording_id": "recordingId"},
    ),
    connected="the API key was accepted",
    webhook=WebhookSpec(
        scheme=SignedWebhook(
            signature_header="X-Webhook-Signature",
            timestamp_header="X-Webhook-Timestamp",
            secret_hint="paste the 'hmac' value of the domain's Daily webhook as it is",
            description="The base64 'hmac' secret of your domain's Daily webhook; webhooks it does not sign "
            "are refused.",
        ),
        body=DailyEnvelope,
        max_body=256 * 1024,
        event_types=frozenset(get_args(WebhookEvent)),
        # one webhook per domain, set up by `DailyHook.ensure_webhook` (H1-H4, O-H8-O-H10)
        registration=WebhookRegistration(
            "/webhooks",
            "/webhooks/{id}",
            get_args(WebhookEvent),
            fixed={"retryType": "exponential"},  # retries each message, never FAILED (H4, O-H10)
            account="domain",
            one_per_account=True,
        ),
    ),
)
