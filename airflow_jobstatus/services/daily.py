"""Daily batch processor: its description (the response models still live in models/daily.py)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_validator, model_validator

from airflow_jobstatus.http.call import Call
from airflow_jobstatus.models.daily import DAILY_STATUS_MAP, DailySubmitResponse
from airflow_jobstatus.services._spec import (
    ErrorBody,
    ExtraField,
    FormField,
    Invalid,
    ServiceSpec,
    SignedWebhook,
    SubmitRequest,
    WebhookBody,
    WebhookId,
    WebhookSpec,
)

if TYPE_CHECKING:
    from airflow_jobstatus.hooks.base import JobServiceHook


JOBS = "/batch-processor"
JOB = "/batch-processor/{id}"

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


def _daily_hook() -> type[JobServiceHook]:
    from airflow_jobstatus.hooks.daily import DailyHook

    return DailyHook


DAILY = ServiceSpec(
    name="daily",
    display_name="Daily",
    conn_type="daily",
    default_conn_id="daily_default",
    hook_class="airflow_jobstatus.hooks.daily.DailyHook",
    load_hook=_daily_hook,
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
    has_list_endpoint=True,
    can_delete_jobs=True,
    status_map=DAILY_STATUS_MAP,
    submit_request=DailySubmitRequest,
    error_body=DailyError,  # DELETE /batch-processor/:id, no cancel (docs/contracts.md D13)
    webhook=DAILY_WEBHOOK,
)
