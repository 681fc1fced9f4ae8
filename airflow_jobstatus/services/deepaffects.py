"""DeepAffects async API: submit to ``/audio/generic/api/...``, poll the transaction status (contracts
A1-A11). The API key travels in the query string (``apikey``, A10), redacted from every URL printed. The
result is inline (A9): the job's one output is an `InlineDocument` at ``response.response`` of ``raw``.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Literal, get_args

from pydantic import AliasGenerator, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from airflow_jobstatus.http.auth import CredentialQuery
from airflow_jobstatus.http.call import Call
from airflow_jobstatus.models.common import ApiModel, InlineDocument, JobState, JobStatus

from ._reads import ErrorBody, JobRead, find_message, output
from ._spec import FormField, ServiceSpec
from ._submit import Invalid, SubmitRequest
from ._webhooks import TokenInUrl, WebhookBody, WebhookId, WebhookSpec

SUBMIT_PATHS: Mapping[str, str] = MappingProxyType(
    {"asr": "/audio/generic/api/v1/async/asr", "diarize": "/audio/generic/api/v2/async/diarize"}
)
STATUS_PATH = "/transaction/generic/api/v1/async/status"
#: DeepAffects' documented statuses (A6; other casings match case-insensitively).
DEEPAFFECTS_STATUS_MAP: Mapping[str, JobState] = MappingProxyType(
    {"Running": JobState.RUNNING, "Completed": JobState.SUCCEEDED, "Failed": JobState.FAILED}
)
DEEPAFFECTS_RESULT_POINTER = "/response/response"  # the inline result in a status response and `raw`
#: Where a failed job's message may be (its body is undocumented), first found first.
MESSAGE_KEYS = ("error", "message", "errorMessage", "error_message", "detail", "reason", "faultstring")
AudioType = Literal["callcenter", "meeting", "earningscalls", "interview", "media-broadcast"]  # A5
WEBHOOK_HINT = (
    "Pass webhook= with the http(s) URL DeepAffects should POST the result to; "
    "the task still polls for the result, so any URL you control will do"
)


class DeepAffectsWord(ApiModel):
    word: str
    start: float  # seconds; the service sends 1 and 2.6 alike
    end: float
    confidence: float | None = None
    speaker_id: str | None = None


class DeepAffectsAsrResult(ApiModel):
    num_speakers: int | None = None
    transcript: str
    confidence: float | None = None
    words: list[DeepAffectsWord] = []


class DeepAffectsDiarizeSegment(ApiModel):
    speaker_id: str | int  # its type is undocumented
    start: float
    end: float


class DeepAffectsDiarizeResult(ApiModel):
    num_speakers: int | None = None
    segments: list[DeepAffectsDiarizeSegment] = []


class DeepAffectsEnvelope(ApiModel):
    """The request id and the result; text is accepted too (what a failed job carries is undocumented)."""

    request_id: str | None = None
    response: dict[str, Any] | str | None = None


class DeepAffectsStatusResponse(ApiModel):
    """``GET .../async/status``: ``{"status", "response": {"request_id", "response"}}`` (A6)."""

    status: str | None = None
    response: DeepAffectsEnvelope | None = None

    @property
    def request_id(self) -> str | None:
        return self.response.request_id if self.response is not None else None

    @property
    def result(self) -> dict[str, Any] | None:
        return self.response.response if self.response and isinstance(self.response.response, dict) else None


class DeepAffectsSubmitResponse(ApiModel):
    request_id: str


class DeepAffectsFault(ApiModel):
    faultstring: str
    detail: dict[str, Any] | None = None  # {"errorcode": "oauth.v2.InvalidApiKey"}


class DeepAffectsError(ErrorBody):
    """The gateway's ``{"fault": {"faultstring", "detail": {"errorcode"}}}`` or the API's ``{"type",
    "message"}`` (A7), whose ``type`` decides the handling."""

    # "Error types" (A7) handled as this HTTP status would be (queued: "try again in a few minutes")
    handled_as = MappingProxyType(
        {"params_invalid": 400, "unknown_route": 404, "queued": 429, "rate_limit": 429, "api_error": 503}
    )
    message_fields = ("type", "text")
    fault: DeepAffectsFault | None = None
    type: str | None = None
    text: str | None = Field(None, alias="message")

    def message(self) -> str:
        if (fault := self.fault) is None:
            return super().message()
        code = (fault.detail or {}).get("errorcode")
        return f"{fault.faultstring} ({code})" if code else fault.faultstring


def deepaffects_job_status(resp: DeepAffectsStatusResponse, request_id: str) -> JobStatus:
    """The status of ``request_id`` (the response may omit it; another echoed id is a ``ValueError``).
    A result is the one output, kept verbatim in ``raw`` (redaction is for the envelope)."""
    if not request_id:
        raise ValueError("request_id must not be empty")
    if resp.request_id and resp.request_id != request_id:
        raise ValueError(f"status response is for request {resp.request_id!r}, not {request_id!r}")
    result = [output("result", "json", InlineDocument(pointer=DEEPAFFECTS_RESULT_POINTER))]
    status = DEEPAFFECTS.status_of(resp, lambda: result if resp.result is not None else [], job_id=request_id)
    inner = resp.response.response if resp.response is not None else None
    if status.state is JobState.FAILED:
        error = find_message(inner, MESSAGE_KEYS) or find_message(resp.model_extra, MESSAGE_KEYS)
        return status.model_copy(update={"error": error})
    if not status.outputs:
        return status
    raw = status.raw | {"response": status.raw["response"] | {"response": inner}}
    return status.model_copy(update={"raw": raw})


class DeepAffectsSubmitRequest(SubmitRequest):
    """``POST /audio/generic/api/{v1/async/asr,v2/async/diarize}?webhook=&request_id=`` (A1-A5, A11)."""

    model_config = ConfigDict(alias_generator=AliasGenerator(serialization_alias=to_camel))  # camelCase body
    positional = "api"
    # A11 does not say that a resent request_id returns the same job: the operator sends a new one each time
    set_at_send = MappingProxyType({"request_id": lambda: str(uuid.uuid4())})
    required_at_send = MappingProxyType({"webhook": WEBHOOK_HINT})  # A2: push completion may fill it in

    api: Literal["asr", "diarize"] = Field(
        description="``asr`` (speech to text) or ``diarize`` (who spoke when)."
    )
    url: str | None = Field(None, description="an audio file's URL; exactly one of url and content.")
    content: str | None = Field(None, description="the audio, base64-encoded (bytes are encoded for you).")
    encoding: str = Field("wav", description="e.g. ``wav``, ``mp3``, ``FLAC``. Default ``wav``.")
    sample_rate: int = Field(16000, gt=0, description="in Hz. Default 16000.")
    language_code: str = Field("en-US", description="Default ``en-US``.")
    speaker_count: int | None = Field(  # sent by its documented name (A3)
        None,
        serialization_alias="speakers",
        description="how many speakers, -1 for unknown (the default); ``diarize`` only.",
    )
    audio_type: AudioType | None = Field(
        None, description=f"one of {', '.join(f'``{t}``' for t in get_args(AudioType))}."
    )
    enable_punctuation: bool | None = Field(None, description="``asr`` only.")
    enable_speaker_diarization: bool | None = Field(None, description="``asr`` only; default off.")
    webhook: str | None = Field(
        None,
        description="the http(s) URL DeepAffects POSTs the result to; nothing is sent without one. Unset, the "
        "operator passes the push-completion receiver's URL where ``[jobstatus] webhook_base_url`` and the "
        'connection\'s ``webhook_token`` are set (README "Push completion"). The task still polls, so any '
        "URL you control will do.",
    )
    source: str | None = Field(
        None, description="``webex``, ``zoom``, ``gotomeeting`` or ``phone``: picks a model built for it."
    )
    do_vad: bool | None = Field(None, description="``diarize`` only: remove silence and noise segments.")
    speaker_ids: list[str] | None = Field(None, description="``diarize`` only: speakers to identify.")
    request_id: str | None = Field(None, description="sent as given (A11); not said to de-duplicate a job.")

    @field_validator("content", "speaker_ids", mode="before")
    @classmethod
    def _plain(cls, value: Any) -> Any:
        """Audio bytes are base64-encoded, a tuple of speaker ids is a list."""
        if isinstance(value, bytes | bytearray):
            return base64.b64encode(value).decode("ascii")
        return list(value) if isinstance(value, tuple) else value

    @model_validator(mode="after")
    def _rules(self) -> DeepAffectsSubmitRequest:
        if (webhook := self.webhook) is not None and not webhook.startswith(("https://", "http://")):  # A2
            raise Invalid(
                f"webhook is required for DeepAffects async requests, got {webhook!r:.80}", WEBHOOK_HINT
            )
        self.exactly_one("url", "content")
        if not self.encoding:
            raise Invalid("encoding is required (e.g. 'wav', 'mp3', 'FLAC', 'LINEAR16')")
        if self.speaker_count is not None and self.api == "asr":  # A3
            raise Invalid(
                "speaker_count is a diarize parameter; the asr API takes no speaker count",
                "Drop speaker_count=, or pass enable_speaker_diarization=True to tag words by speaker",
            )
        if (speakers := self.speaker_count) is not None and speakers < 1 and speakers != -1:
            raise Invalid(f"speaker_count must be a positive integer or -1 (unknown), got {speakers!r}")
        self.only_for(self.api == "diarize", "api='diarize'", "do_vad", "speaker_ids")
        self.only_for(self.api == "asr", "api='asr'", "enable_punctuation", "enable_speaker_diarization")
        if (ids := self.speaker_ids) is not None and not all(ids):
            raise Invalid(f"speaker_ids must be a list of speaker id strings, got {ids!r:.80}")
        return self

    def call(self) -> Call:
        # a POST that may have been processed is never resent: A11 does not promise de-duplication
        return Call(
            "submit_job",
            "POST",
            SUBMIT_PATHS[self.api],
            DeepAffectsSubmitResponse,
            params={"webhook": self.webhook, "request_id": self.request_id},
            json=self.model_dump(by_alias=True, exclude_none=True, exclude={"api", "webhook", "request_id"}),
            idempotent=False,
        )

    def job_ref(self, response: DeepAffectsSubmitResponse) -> str:
        return response.request_id


class DeepAffectsResult(WebhookBody):
    """Push completion: the whole result is posted, once per request (contracts H7)."""

    id_field = "request_id"
    request_id: WebhookId


DEEPAFFECTS = ServiceSpec(
    name="deepaffects",
    display_name="DeepAffects",
    hook_class="airflow_jobstatus.hooks.deepaffects.DeepAffectsHook",
    default_host="https://proxy.api.deepaffects.com",
    fields={"password": FormField("API key", "DeepAffects apikey", "Sent as the 'apikey' query parameter.")},
    docs_url="https://docs.deepaffects.com/",
    default_max_rpm=5.0,  # Concepts page, "Rate Limiting": 5 per minute to each API, 100 per day (A8)
    default_max_per_day=100,
    default_poll_interval=7200.0,  # a job waited on for 24 h: 12 status requests, 12% of the 100 (README)
    result_path=STATUS_PATH,
    # the status response may omit the id while the job runs: the reference is passed on
    job=JobRead(
        STATUS_PATH,
        DeepAffectsStatusResponse,
        lambda r, _, ref: deepaffects_job_status(r, ref),
        {"request_id": "{id}"},
    ),
    connected="the API key was accepted",
    status_map=DEEPAFFECTS_STATUS_MAP,
    id_field="request_id",
    submit_request=DeepAffectsSubmitRequest,
    auth=CredentialQuery("password", "apikey"),  # A10
    error_body=DeepAffectsError,
    # the body carries the whole result
    webhook=WebhookSpec(TokenInUrl(), DeepAffectsResult, max_body=16 * 1024 * 1024, submit_field="webhook"),
)
