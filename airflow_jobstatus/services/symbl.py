"""Symbl.ai (docs/contracts.md S1-S8): an appId/appSecret token exchange, then Bearer calls to the Async,
Job and Conversation APIs. A job answers only its status and the outputs are its conversation's documents,
so a job's reference is ``"<jobId>:<conversationId>"`` (a bare ``jobId`` is accepted: no outputs then)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Annotated, Any
from urllib.parse import quote

from pydantic import AfterValidator, ConfigDict, Field, model_validator, with_config
from typing_extensions import TypedDict

from airflow_jobstatus.http.auth import TokenExchange
from airflow_jobstatus.http.call import Call
from airflow_jobstatus.models.common import ApiDocument, ApiModel, JobState, JobStatus

from ._reads import ErrorBody, JobRead, output
from ._spec import FormField, JobConcurrency, ServiceSpec
from ._submit import Invalid, SubmitRequest
from ._webhooks import TokenInUrl, WebhookBody, WebhookId, WebhookSpec

#: Symbl's documented job statuses (written lower- and UPPER_CASE: matched case-insensitively, S6).
SYMBL_STATUS_MAP: Mapping[str, JobState] = MappingProxyType(
    {"scheduled": JobState.QUEUED, "in_progress": JobState.RUNNING}
    | {"completed": JobState.SUCCEEDED, "failed": JobState.FAILED}
)
#: Conversation API documents (S7) -> the top-level key holding each one's list (a wrong one fails
#: loudly); None where the reference shows no wrapper (entities): that document is not checked.
SYMBL_CONVERSATION_DOCUMENTS: Mapping[str, str | None] = MappingProxyType(
    {
        "messages": "messages",
        "topics": "topics",
        "action-items": "actionItems",
        "follow-ups": "followUps",
        "questions": "questions",
        "entities": None,
        "analytics": "metrics",
        "summary": "summary",  # 404 until ready
    }
)
#: The documents listed as a completed job's outputs, in this order.
SYMBL_OUTPUT_DOCUMENTS = ("messages", "topics", "action-items", "follow-ups", "questions", "summary")
#: The source fields, each with its ``/v1/process/...`` submission (S3).
SOURCES = {"audio_url": "audio/url", "video_url": "video/url", "messages": "text"}
#: The options ``/v1/process/text`` takes too (S3); the others are for audio and video only.
TEXT_OPTIONS = ("name", "webhook_url", "detect_entities")
QUERY = {"enable_speaker_diarization", "diarization_speaker_count"}  # S4
#: An option -> the switch it needs, and what that switch turns on (S3: Symbl ignores channelMetadata without).
NEEDS = {
    "diarization_speaker_count": ("enable_speaker_diarization", "speaker diarization"),
    "channel_metadata": ("enable_separate_recognition_per_channel", "separate recognition per channel"),
}
#: Nested values (S3): typed where Symbl documents a type; their other keys go to Symbl as given.
SHAPE = ConfigDict(strict=True, extra="allow")


@with_config(SHAPE)
class SymblSpeaker(TypedDict, total=False):
    name: str
    email: str


@with_config(SHAPE)
class SymblChannel(TypedDict):
    channel: Annotated[int, Field(ge=1)]
    speaker: SymblSpeaker


@with_config(SHAPE)
class SymblPayload(TypedDict):
    content: str


@with_config(SHAPE)
class SymblMessage(TypedDict):
    payload: SymblPayload


class SymblToken(ApiModel):
    """``POST /oauth2/token:generate`` (S2): ``expiresIn`` may be fractional; the token stays out of ``repr``."""

    accessToken: str = Field(repr=False)
    expiresIn: float


class SymblJob(ApiModel):
    """``GET /v1/job/{jobId}``; a missing ``status`` reads as unknown."""

    id: str
    status: str | None = None


class SymblSubmitResponse(ApiModel):
    conversationId: str
    jobId: str


class SymblError(ErrorBody):
    """Error body ``{"message"}`` (with ``statusCode`` on the 429 concurrency limit, S8)."""

    message_fields = ("message_",)
    message_: str = Field(alias="message")


def _option(wire: str, description: str, **constraints: Any) -> Any:
    """An optional submit field: its key in the request (S3, S4) and its description (the operator's docs)."""
    return Field(None, serialization_alias=wire, description=description, **constraints)


class SymblSubmitRequest(SubmitRequest):
    """``POST /v1/process/audio/url``, ``/video/url`` or ``/text``: exactly one of the three sources."""

    shape_hints = {
        "messages": 'Give each message as {"payload": {"content": "...", "contentType": "text/plain"}}',
        "channel_metadata": 'Give it as [{"channel": 1, "speaker": {"name": "Ann", "email": "ann@example.com"}}]',
    }

    audio_url: str | None = _option("url", "an audio file URL (``POST /v1/process/audio/url``).")
    video_url: str | None = _option("url", "a video file URL (``POST /v1/process/video/url``).")
    messages: Annotated[list[SymblMessage], AfterValidator(lambda given: given or None)] | None = _option(
        "messages",
        'text messages (``POST /v1/process/text``), each ``{"payload": {"content": "...", '
        '"contentType": "text/plain"}, ...}`` (``[]`` is none). Exactly one of ``audio_url``, ``video_url`` '
        "and ``messages``.",
    )
    name: str | None = _option("name", "the conversation's name.")
    language_code: str | None = _option("languageCode", "e.g. ``en-US`` (audio and video only).")
    enable_speaker_diarization: bool | None = _option(
        "enableSpeakerDiarization",
        "separate the speakers (audio and video only; the ``enableSpeakerDiarization`` query parameter).",
    )
    diarization_speaker_count: int | None = _option(
        "diarizationSpeakerCount",
        "how many speakers, with ``enable_speaker_diarization=True`` (the ``diarizationSpeakerCount`` query "
        "parameter).",
        ge=1,
    )
    webhook_url: str | None = _option(
        "webhookUrl",
        "a URL Symbl.ai calls on every status change. Unset, with ``[jobstatus] webhook_base_url`` "
        "configured and a ``webhook_token`` in the connection, the submit operator passes the push-completion "
        'receiver\'s URL (README "Push completion"); a value given here wins.',
    )
    detect_entities: bool | None = _option(
        "detectEntities",
        "detect entities, read with the Conversation API's ``/entities`` (``detectEntities``; Symbl's default "
        "is false).",
    )
    enable_separate_recognition_per_channel: bool | None = _option(
        "enableSeparateRecognitionPerChannel",
        "one speaker per audio channel (audio and video only; ``enableSeparateRecognitionPerChannel``).",
    )
    channel_metadata: list[SymblChannel] | None = _option(
        "channelMetadata",
        "who speaks on each channel, with ``enable_separate_recognition_per_channel=True``: "
        '``[{"channel": 1, "speaker": {"name": "...", "email": "..."}}, ...]``.',
        min_length=1,
    )

    @model_validator(mode="after")
    def _rules(self) -> SymblSubmitRequest:
        self.exactly_one(*SOURCES)
        audio_only = [name for name in type(self).model_fields if name not in (*SOURCES, *TEXT_OPTIONS)]
        self.only_for(self.messages is None, "audio or video", *audio_only)
        for option, (switch, what) in NEEDS.items():
            if getattr(self, option) is not None and getattr(self, switch) is not True:
                raise Invalid(f"{option} needs {what}", hint=f"Pass {switch}=True with {option}")
        return self

    def call(self) -> Call:
        """Diarization goes in the query string (S4), every other option in the body (S3)."""
        path = f"/v1/process/{SOURCES[self.exactly_one(*SOURCES)]}"
        query = self.model_dump(by_alias=True, exclude_none=True, include=QUERY)
        body = self.model_dump(by_alias=True, exclude_none=True, exclude=QUERY)
        params = {key: str(value).lower() for key, value in query.items()} or None
        return Call("submit_job", "POST", path, SymblSubmitResponse, params=params, json=body)

    def job_ref(self, response: SymblSubmitResponse) -> str:
        """``"jobId:conversationId"``: a ``:`` in the job id would split it elsewhere (the hook checks the rest)."""
        ids = response.jobId, response.conversationId
        if ":" in ids[0] or not all(value.strip() == value != "" for value in ids):
            raise ValueError(f"the service returned an unusable job id: {':'.join(ids)[:80]!r}")
        return ":".join(ids)


def split_job_ref(ref: str) -> tuple[str, str | None]:
    """``"jobId:conversationId"`` or ``"jobId"`` -> (jobId, conversationId or None)."""
    job_id, _, conversation_id = ref.partition(":")
    return job_id, (conversation_id or None)


def symbl_document_path(conversation_id: str, document: str) -> str:
    """``/v1/conversations/{conversation_id}/{document}``, the id percent-encoded as one segment."""
    if document not in SYMBL_CONVERSATION_DOCUMENTS:
        raise ValueError(f"unknown Symbl conversation document {document!r}")
    if not conversation_id:
        raise ValueError("conversation_id must not be empty")
    return f"/v1/conversations/{quote(conversation_id, safe='')}/{document}"


def symbl_job_status(job: SymblJob, conversation_id: str | None = None) -> JobStatus:
    """The job as a `JobStatus`; completed, with its ``conversation_id``, it lists `SYMBL_OUTPUT_DOCUMENTS`.
    Symbl documents no error text on a job: ``error`` comes only from an undocumented ``message``."""
    docs = [
        (doc, symbl_document_path(conversation_id, doc)) for doc in SYMBL_OUTPUT_DOCUMENTS if conversation_id
    ]
    return SYMBL.status_of(job, lambda: [output(doc, "json", ApiDocument(path=path)) for doc, path in docs])


def _read_status(job: SymblJob, options: Mapping[str, Any], ref: str) -> JobStatus:
    """Read by ``"jobId:conversationId"``, the status keeps that reference as its id."""
    status = symbl_job_status(job, conversation_id := split_job_ref(ref)[1])
    kept = {"job_id": ref, "raw": {**status.raw, "conversationId": conversation_id}}
    return status.model_copy(update=kept if conversation_id else {})


class SymblStatus(WebhookBody):
    """Push completion (README "Push completion"): Symbl posts every status change (contracts H6, O-H5)."""

    id_field, kind_field = "jobId", "status"
    jobId: WebhookId
    status: str = Field(min_length=1, max_length=64)

    def in_flight(self) -> bool:
        # any other status (terminal, or one the docs do not list) costs one status GET
        return SYMBL_STATUS_MAP.get(self.kind()) in (JobState.QUEUED, JobState.RUNNING)


SYMBL = ServiceSpec(
    name="symbl",
    display_name="Symbl.ai",
    hook_class="airflow_jobstatus.hooks.symbl.SymblHook",
    default_host="https://api.symbl.ai",
    fields={
        "login": FormField("App ID", "Symbl appId", "Exchanged with the secret for a short-lived token."),
        "password": FormField("App secret", "Symbl appSecret", "Only ever sent to the token endpoint."),
    },
    docs_url="https://docs.symbl.ai/",
    # contracts S8: a 429 on submit at the account's concurrent-job limit (50 assumed: paid plans)
    job_concurrency=JobConcurrency("max_concurrent_jobs", 50),
    webhook_job_id=lambda ref: split_job_ref(ref)[0],  # the webhook carries the jobId (contracts H6)
    no_outputs_hint="Symbl job references need the 'jobId:conversationId' form that SymblHook.submit_job "
    "returns; check the job at the service",
    status_map=SYMBL_STATUS_MAP,
    error_field="message",
    job=JobRead("/v1/job/{id}", SymblJob, _read_status, job_id=lambda ref: split_job_ref(ref)[0]),
    auth=TokenExchange(  # S1
        "/oauth2/token:generate",
        SymblToken,
        {"login": "appId", "password": "appSecret"},
        constants={"type": "application"},
    ),
    connected="the App ID and secret were exchanged for a token",
    documents=SYMBL_CONVERSATION_DOCUMENTS,
    submit_request=SymblSubmitRequest,
    error_body=SymblError,
    webhook=WebhookSpec(
        scheme=TokenInUrl(), body=SymblStatus, max_body=16 * 1024, submit_field="webhook_url"
    ),
)
