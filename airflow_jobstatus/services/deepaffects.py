"""DeepAffects async API: submit to ``/audio/generic/api/...``, poll the transaction status (contracts
A1-A11). The API key travels in the query string (``apikey``, A10), redacted from every URL printed. The
result is inline (A9): the job's one output is an `InlineDocument` at ``response.response`` of ``raw``.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, ClassVar

from pydantic import AliasGenerator, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from airflow_jobstatus.http.auth import CredentialQuery
from airflow_jobstatus.http.call import Call
from airflow_jobstatus.models.common import ApiModel, InlineDocument, JobState, JobStatus
from airflow_jobstatus.services._spec import (
    ErrorBody,
    FormField,
    Invalid,
    JobRead,
    ServiceSpec,
    SubmitRequest,
    TokenInUrl,
    WebhookBody,
    WebhookId,
    WebhookSpec,
    output,
)

SUBMIT_PATHS: Mapping[str, str] = MappingProxyType(
    {"asr": "/audio/generic/api/v1/async/asr", "diarize": "/audio/generic/api/v2/async/diarize"}
)
STATUS_PATH = "/transaction/generic/api/v1/async/status"
#: DeepAffects' documented statuses (A6; other casings match case-insensitively).
DEEPAFFECTS_STATUS_MAP: Mapping[str, JobState] = MappingProxyType(
    {"Running": JobState.RUNNING, "Completed": JobState.SUCCEEDED, "Failed": JobState.FAILED}
)
DEEPAFFECTS_RESULT_POINTER = "/response/response"  # the inline result in a status response and `raw`
AUDIO_TYPES = ("callcenter", "meeting", "earningscalls", "interview", "media-broadcast")  # A5
#: "Error types" (A7): the body's ``type`` decides, as this HTTP status would (queued: "try again in a
#: few minutes", so wait and retry; params_invalid is permanent, api_error transient).
ERROR_TYPES: Mapping[str, int] = MappingProxyType(
    {"params_invalid": 400, "unknown_route": 404, "queued": 429, "rate_limit": 429, "api_error": 503}
)
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
    """The request id and the API's result (`DeepAffectsAsrResult`, `DeepAffectsDiarizeResult`); a
    string is accepted too: what a failed job carries is undocumented, and it must not fail the poll."""

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
    api: str | None = None


class DeepAffectsFaultDetail(ApiModel):
    errorcode: str | None = None  # e.g. oauth.v2.InvalidApiKey


class DeepAffectsFaultBody(ApiModel):
    faultstring: str
    detail: DeepAffectsFaultDetail | None = None


class DeepAffectsError(ErrorBody):
    """The gateway's ``{"fault": {"faultstring", "detail": {"errorcode"}}}`` or the API's ``{"type",
    "message"}`` (A7), whose ``type`` decides the handling."""

    handled_as: ClassVar[Mapping[str, int]] = ERROR_TYPES
    fault: DeepAffectsFaultBody | None = None
    type: str | None = None
    text: str | None = Field(None, alias="message")

    def message(self) -> str:
        if (fault := self.fault) is not None:
            code = fault.detail.errorcode if fault.detail is not None else None
            return f"{fault.faultstring} ({code})" if code else fault.faultstring
        return ": ".join(p for p in (self.type, self.text) if p)


_MESSAGE_KEYS = ("error", "message", "errorMessage", "error_message", "detail", "reason", "faultstring")


def _find_message(value: Any) -> str | None:
    """The first non-empty message-like string in a failed job's payload (its shape is undocumented)."""
    if isinstance(value, str):
        return value or None
    for key in _MESSAGE_KEYS if isinstance(value, Mapping) else ():
        if isinstance(found := value.get(key), str | Mapping) and (message := _find_message(found)):
            return message
    return None


def deepaffects_job_status(resp: DeepAffectsStatusResponse, request_id: str) -> JobStatus:
    """The status of ``request_id`` (the response may omit it); another echoed id is a ``ValueError``.

    Completed with a result: one output, ``result`` (json) at `DEEPAFFECTS_RESULT_POINTER`, kept
    verbatim in ``raw`` (redaction is for the envelope). Failed: the first message found is the error.
    """
    if not request_id:
        raise ValueError("request_id must not be empty")
    if resp.request_id and resp.request_id != request_id:
        raise ValueError(f"status response is for request {resp.request_id!r}, not {request_id!r}")
    result = [output("result", "json", InlineDocument(pointer=DEEPAFFECTS_RESULT_POINTER))]
    status = DEEPAFFECTS.status_of(resp, lambda: result if resp.result is not None else [], job_id=request_id)
    if status.state is JobState.FAILED:
        inner = resp.response.response if resp.response is not None else None
        return status.model_copy(update={"error": _find_message(inner) or _find_message(resp.model_extra)})
    if not status.outputs:
        return status
    verbatim = resp.model_dump(mode="json", include={"response": {"response"}})["response"]
    return status.model_copy(update={"raw": status.raw | {"response": status.raw["response"] | verbatim}})


class DeepAffectsSubmitRequest(SubmitRequest):
    """``POST /audio/generic/api/{v1/async/asr,v2/async/diarize}?webhook=&request_id=`` (A1-A5, A11)."""

    # the body's names are camelCase
    model_config = ConfigDict(alias_generator=AliasGenerator(serialization_alias=to_camel))
    positional = "api"
    # A11 does not say that a resent request_id returns the same job: the operator sends a new one each time
    set_at_send = MappingProxyType({"request_id": lambda: str(uuid.uuid4())})
    required_at_send = MappingProxyType({"webhook": WEBHOOK_HINT})  # A2: push completion may fill it in

    api: str = Field(description="``asr`` (speech to text) or ``diarize`` (who spoke when).")
    url: str | None = Field(None, description="an audio file URL the service downloads.")
    content: str | None = Field(
        None,
        description="the audio, base64-encoded (bytes are encoded for you). Exactly one of url and content.",
    )
    encoding: str = Field("wav", description="e.g. ``wav``, ``mp3``, ``FLAC``. Default ``wav``.")
    sample_rate: int = Field(16000, description="in Hz. Default 16000.")
    language_code: str = Field("en-US", description="Default ``en-US``.")
    speaker_count: int | None = Field(  # sent by its documented name (A3)
        None,
        serialization_alias="speakers",
        description="how many speakers, -1 for unknown (the default); ``diarize`` only.",
    )
    audio_type: str | None = Field(None, description=f"one of {', '.join(f'``{t}``' for t in AUDIO_TYPES)}.")
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
        None,
        description="where the audio comes from (``webex``, ``zoom``, ``gotomeeting``, ``phone``), for a "
        "model built for it.",
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
        diarize, ids, webhook = self.api == "diarize", self.speaker_ids, self.webhook
        speakers = self.speaker_count
        if self.api not in SUBMIT_PATHS:
            raise Invalid(f"api must be one of {', '.join(SUBMIT_PATHS)}, got {self.api!r:.80}")
        if webhook is not None and not webhook.startswith(("https://", "http://")):  # A2
            raise Invalid(
                f"webhook is required for DeepAffects async requests, got {webhook!r:.80}", WEBHOOK_HINT
            )
        if (self.url is None) == (self.content is None):
            raise Invalid(
                "exactly one of url or content (base64 audio) is needed",
                "Pass url= for audio the service can download, or content= with base64-encoded audio",
            )
        if self.sample_rate <= 0:
            raise Invalid(f"sample_rate must be a positive integer (Hz), got {self.sample_rate!r}")
        if not self.encoding:
            raise Invalid("encoding is required (e.g. 'wav', 'mp3', 'FLAC', 'LINEAR16')")
        if self.audio_type is not None and self.audio_type not in AUDIO_TYPES:
            raise Invalid(
                f"audio_type for {self.api} must be one of {', '.join(AUDIO_TYPES)}, got {self.audio_type!r:.80}"
            )
        if speakers is not None and not diarize:
            raise Invalid(
                "speaker_count is a diarize parameter; the asr API takes no speaker count",
                "Drop speaker_count=, or pass enable_speaker_diarization=True to tag words by speaker",
            )
        if speakers is not None and speakers < 1 and speakers != -1:
            raise Invalid(f"speaker_count must be a positive integer or -1 (unknown), got {speakers!r}")
        if diarize and (self.enable_punctuation is not None or self.enable_speaker_diarization is not None):
            raise Invalid(
                "enable_punctuation and enable_speaker_diarization are asr parameters, not diarize ones"
            )
        if not diarize and (self.do_vad is not None or ids is not None):
            raise Invalid("do_vad and speaker_ids are diarize parameters, not asr ones")
        if ids is not None and not all(ids):
            raise Invalid(f"speaker_ids must be a list of speaker id strings, got {ids!r:.80}")
        return self

    def call(self) -> Call:
        # A11 does not promise that a resent request_id returns the same job: a POST that may have been
        # processed is never resent, request_id or not
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
    # Concepts page, "Rate Limiting": 5 requests per minute to each API, 100 per day (contracts A8)
    default_max_rpm=5.0,
    default_max_per_day=100,
    # One job waited on for 24 h: at most 12 status requests, 12% of the default 100/day (README).
    default_poll_interval=7200.0,
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
