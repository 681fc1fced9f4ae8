"""Symbl.ai: an appId/appSecret token exchange, then Bearer calls to the Async, Job and Conversation APIs.

Contract: docs/contracts.md S1-S8 (seed 003, providers.md). Symbl's job status answers only
``{id, status}``; the outputs are the conversation's documents under the Conversation API, so a
job's reference is ``"<jobId>:<conversationId>"`` (a bare ``jobId`` is accepted: no outputs then).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any
from urllib.parse import quote

from pydantic import Field, field_validator, model_validator

from airflow_jobstatus.http.auth import TokenExchange
from airflow_jobstatus.http.call import Call
from airflow_jobstatus.models.common import (
    ApiDocument,
    ApiModel,
    IsoDatetime,
    JobOutput,
    JobState,
    JobStatus,
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
    JobConcurrency,
    JobRead,
    ServiceSpec,
    SubmitRequest,
    TokenInUrl,
    WebhookBody,
    WebhookId,
    WebhookSpec,
)

TOKEN = "/oauth2/token:generate"
PROCESS_AUDIO = "/v1/process/audio/url"
PROCESS_VIDEO = "/v1/process/video/url"
PROCESS_TEXT = "/v1/process/text"
JOB = "/v1/job/{id}"
CONVERSATION_DOCUMENT = "/v1/conversations/{id}/{document}"

#: Symbl's documented job statuses (written lower- and UPPER_CASE: matched case-insensitively, S6).
SYMBL_STATUS_MAP: Mapping[str, JobState] = MappingProxyType(
    {
        "scheduled": JobState.QUEUED,
        "in_progress": JobState.RUNNING,
        "completed": JobState.SUCCEEDED,
        "failed": JobState.FAILED,
    }
)
AUDIO_ONLY = (
    "language_code",
    "enable_speaker_diarization",
    "diarization_speaker_count",
    "enable_separate_recognition_per_channel",
    "channel_metadata",
)
"""Options of the audio and video URL submissions that ``/v1/process/text`` does not take (S3, S4)."""
CHANNELS_EXAMPLE = '[{"channel": 1, "speaker": {"name": "Robert", "email": "robert@example.com"}}]'


class SymblToken(ApiModel):
    """``POST /oauth2/token:generate``: ``expiresIn`` is the remaining lifetime in seconds, possibly
    fractional (S2). The token is a bearer secret: kept out of ``repr``."""

    accessToken: str = Field(repr=False)
    expiresIn: float


class SymblJob(ApiModel):
    """``GET /v1/job/{jobId}``; ``status`` is optional so that a missing one reads as unknown."""

    id: str
    status: str | None = None


class SymblSubmitResponse(ApiModel):
    """``201`` from the Async API: the conversation being built and the job building it."""

    conversationId: str
    jobId: str


class SymblError(ErrorBody):
    """Error body ``{"message"}``, with ``statusCode`` on some (the 429 concurrency limit, S8)."""

    message_: str = Field(alias="message")
    statusCode: int | None = None

    def message(self) -> str:
        return self.message_


def _usable(value: str, what: str, forbidden: str = "") -> str:
    """An id later put in a URL path: non-empty, printable, no surrounding blanks or ``forbidden``."""
    if not value.strip() or value != value.strip() or not value.isprintable() or set(forbidden) & set(value):
        raise ValueError(f"the service returned an unusable {what}: {value[:80]!r}")
    return value


class SymblSubmitRequest(SubmitRequest):
    """``POST /v1/process/audio/url``, ``/video/url`` or ``/text``: exactly one of the three sources."""

    audio_url: str | None = Field(None, description="an audio file URL (``POST /v1/process/audio/url``).")
    video_url: str | None = Field(None, description="a video file URL (``POST /v1/process/video/url``).")
    messages: list[dict[str, Any]] | None = Field(
        None,
        description='text messages (``POST /v1/process/text``), each ``{"payload": {"content": "...", '
        '"contentType": "text/plain"}, ...}``. Exactly one of ``audio_url``, ``video_url`` and ``messages``.',
    )
    name: str | None = Field(None, description="the conversation's name.")
    language_code: str | None = Field(None, description="e.g. ``en-US`` (audio and video only).")
    enable_speaker_diarization: bool | None = Field(
        None,
        description="separate the speakers (audio and video only; the ``enableSpeakerDiarization`` query parameter).",
    )
    diarization_speaker_count: int | None = Field(
        None,
        description="how many speakers, with ``enable_speaker_diarization=True`` (the "
        "``diarizationSpeakerCount`` query parameter).",
    )
    webhook_url: str | None = Field(
        None,
        description="a URL Symbl.ai calls on every status change. Unset, with ``[jobstatus] webhook_base_url`` "
        "configured and a ``webhook_token`` in the connection, the submit operator passes the push-completion "
        'receiver\'s URL (README "Push completion"); a value given here wins.',
    )
    detect_entities: bool | None = Field(
        None,
        description="detect entities, read with the Conversation API's ``/entities`` (``detectEntities``; "
        "Symbl's default is false).",
    )
    enable_separate_recognition_per_channel: bool | None = Field(
        None,
        description="one speaker per audio channel (audio and video only; ``enableSeparateRecognitionPerChannel``).",
    )
    channel_metadata: list[dict[str, Any]] | None = Field(
        None,
        description="who speaks on each channel, with ``enable_separate_recognition_per_channel=True``: "
        '``[{"channel": 1, "speaker": {"name": "...", "email": "..."}}, ...]``.',
    )

    @field_validator(
        "audio_url", "video_url", "messages", "name", "language_code", "webhook_url", mode="before"
    )
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return None if value in ("", []) else value

    @field_validator("messages")
    @classmethod
    def _messages(cls, messages: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
        for i, message in enumerate(messages or ()):
            payload = message.get("payload")
            if not isinstance(payload, dict) or not isinstance(payload.get("content"), str):
                raise Invalid(
                    f"messages[{i}] needs payload.content (a string)",
                    hint='Give each message as {"payload": {"content": "...", "contentType": "text/plain"}}',
                )
        return messages

    @field_validator("diarization_speaker_count")
    @classmethod
    def _speaker_count(cls, count: int | None) -> int | None:
        if count is not None and count < 1:
            raise Invalid(f"diarization_speaker_count must be a positive integer, got {count!r}")
        return count

    @field_validator("channel_metadata")
    @classmethod
    def _channels(cls, channels: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
        """S3: ``[{"channel": <int>, "speaker": {"name"?: str, "email"?: str}}, ...]``."""
        hint = f"Give it as {CHANNELS_EXAMPLE}"
        if channels is None:
            return None
        if not channels:
            raise Invalid("channel_metadata must be a non-empty list, got []", hint=hint)
        for i, entry in enumerate(channels):
            channel, speaker = entry.get("channel"), entry.get("speaker")
            if isinstance(channel, bool) or not isinstance(channel, int) or channel < 1:
                raise Invalid(f"channel_metadata[{i}] needs channel (a positive integer)", hint=hint)
            if not isinstance(speaker, dict) or not all(
                isinstance(speaker[k], str) for k in ("name", "email") if k in speaker
            ):
                raise Invalid(
                    f"channel_metadata[{i}] needs speaker, an object with optional name and email strings",
                    hint=hint,
                )
        return channels

    @model_validator(mode="after")
    def _rules(self) -> SymblSubmitRequest:
        given = [k for k in ("audio_url", "video_url", "messages") if getattr(self, k) is not None]
        if len(given) != 1:
            raise Invalid(
                f"exactly one source is needed, got {len(given)} ({', '.join(given) or 'none'})",
                hint="Pass exactly one of audio_url, video_url or messages",
            )
        if self.messages is not None and (audio := [k for k in AUDIO_ONLY if getattr(self, k) is not None]):
            raise Invalid(
                f"{', '.join(audio)} {'applies' if len(audio) == 1 else 'apply'} to audio_url or video_url "
                "only, not to messages",
                hint=f"Remove {', '.join(audio)}, or submit audio or video instead of text",
            )
        if self.diarization_speaker_count is not None and self.enable_speaker_diarization is not True:
            raise Invalid(
                "diarization_speaker_count needs speaker diarization",
                hint="Pass enable_speaker_diarization=True with diarization_speaker_count",
            )
        if self.channel_metadata is not None and self.enable_separate_recognition_per_channel is not True:
            raise Invalid(
                "channel_metadata needs separate recognition per channel (Symbl ignores it otherwise)",
                hint="Pass enable_separate_recognition_per_channel=True with channel_metadata",
            )
        return self

    def call(self) -> Call:
        """Diarization goes in the query string (S4), every other option in the body (S3)."""
        body: dict[str, Any] = {
            "name": self.name,
            "webhookUrl": self.webhook_url,
            "detectEntities": self.detect_entities,
        }
        params: dict[str, str] = {}
        if self.messages is not None:
            path, body["messages"] = PROCESS_TEXT, self.messages
        else:
            path = PROCESS_AUDIO if self.audio_url else PROCESS_VIDEO
            body |= {
                "url": self.audio_url or self.video_url,
                "languageCode": self.language_code,
                "enableSeparateRecognitionPerChannel": self.enable_separate_recognition_per_channel,
                "channelMetadata": self.channel_metadata,
            }
            if self.enable_speaker_diarization is not None:
                params["enableSpeakerDiarization"] = str(self.enable_speaker_diarization).lower()
            if self.diarization_speaker_count is not None:
                params["diarizationSpeakerCount"] = str(self.diarization_speaker_count)
        sent = {key: value for key, value in body.items() if value is not None}
        return Call("submit_job", "POST", path, SymblSubmitResponse, params=params or None, json=sent)

    def job_ref(self, response: SymblSubmitResponse) -> str:
        """``"jobId:conversationId"``: a ``:`` in the job id would split the reference elsewhere."""
        job_id = _usable(response.jobId, "job id", forbidden=":")
        return f"{job_id}:{_usable(response.conversationId, 'conversation id')}"


def split_job_ref(ref: str) -> tuple[str, str | None]:
    """``"jobId:conversationId"`` or ``"jobId"`` -> (jobId, conversationId or None)."""
    job_id, _, conversation_id = ref.partition(":")
    return job_id, (conversation_id or None)


# Conversation API documents (S7): typed loosely (item fields optional, extra fields kept), but each
# document's documented top-level key is required so that a wrong document fails loudly.


class SymblUser(ApiModel):
    """A speaker/user reference (``from``, ``assignee``)."""

    id: str | None = None
    name: str | None = None
    email: str | None = None
    userId: str | None = None


class SymblWord(ApiModel):
    """A word with timings (``/messages?verbose=true``)."""

    word: str | None = None
    startTime: IsoDatetime = None
    endTime: IsoDatetime = None
    score: float | None = None
    timeOffset: float | None = None
    duration: float | None = None


class SymblMessage(ApiModel):
    """One message (a continuous sentence by one speaker)."""

    id: str | None = None
    text: str | None = None
    from_: SymblUser | None = Field(default=None, alias="from")
    startTime: IsoDatetime = None
    endTime: IsoDatetime = None
    timeOffset: float | None = None
    duration: float | None = None
    conversationId: str | None = None
    phrases: list[dict[str, Any]] = Field(default_factory=list)
    sentiment: dict[str, Any] | None = None
    words: list[SymblWord] = Field(default_factory=list)


class SymblInsight(ApiModel):
    """An action item, follow-up or question (they share one shape)."""

    id: str | None = None
    text: str | None = None
    type: str | None = None
    score: float | None = None
    messageIds: list[str] = Field(default_factory=list)
    from_: SymblUser | None = Field(default=None, alias="from")
    entities: list[dict[str, Any]] = Field(default_factory=list)
    phrases: list[dict[str, Any]] = Field(default_factory=list)
    definitive: bool | None = None
    assignee: SymblUser | None = None


class SymblTopic(ApiModel):
    """A topic, with its parents when ``parentRefs=true``."""

    id: str | None = None
    text: str | None = None
    type: str | None = None
    score: float | None = None
    messageIds: list[str] = Field(default_factory=list)
    sentiment: dict[str, Any] | None = None
    parentRefs: list[dict[str, Any]] = Field(default_factory=list)


class SymblEntity(ApiModel):
    """A detected entity; ``value`` is a string for most types, so it is left untyped."""

    type: str | None = None
    subType: str | None = None
    category: str | None = None
    customType: str | None = None
    value: Any = None
    text: str | None = None
    messageRefs: list[dict[str, Any]] = Field(default_factory=list)


class SymblSummaryItem(ApiModel):
    """One summary paragraph and the messages it draws on."""

    id: str | None = None
    text: str | None = None
    messageRefs: list[dict[str, Any]] = Field(default_factory=list)


class SymblMessages(ApiModel):
    messages: list[SymblMessage]


class SymblTopics(ApiModel):
    topics: list[SymblTopic]


class SymblActionItems(ApiModel):
    actionItems: list[SymblInsight]


class SymblFollowUps(ApiModel):
    followUps: list[SymblInsight]


class SymblQuestions(ApiModel):
    questions: list[SymblInsight]


class SymblEntities(ApiModel):
    entities: list[SymblEntity]


class SymblAnalytics(ApiModel):
    """Conversation ``metrics`` and per-speaker ``members``."""

    metrics: list[dict[str, Any]]
    members: list[dict[str, Any]] = Field(default_factory=list)


class SymblSummary(ApiModel):
    """404 until ready."""

    summary: list[SymblSummaryItem]


#: Every Conversation API document this provider knows, by its path segment, with its model.
SYMBL_CONVERSATION_DOCUMENTS: Mapping[str, type[ApiModel]] = MappingProxyType(
    {
        "messages": SymblMessages,
        "topics": SymblTopics,
        "action-items": SymblActionItems,
        "follow-ups": SymblFollowUps,
        "questions": SymblQuestions,
        "entities": SymblEntities,
        "analytics": SymblAnalytics,
        "summary": SymblSummary,
    }
)
#: The documents listed as a completed job's outputs, in this order.
SYMBL_OUTPUT_DOCUMENTS = ("messages", "topics", "action-items", "follow-ups", "questions", "summary")


def symbl_document_path(conversation_id: str, document: str) -> str:
    """``/v1/conversations/{conversation_id}/{document}``, the id percent-encoded as one segment."""
    if document not in SYMBL_CONVERSATION_DOCUMENTS:
        raise ValueError(f"unknown Symbl conversation document {document!r}")
    if not conversation_id:
        raise ValueError("conversation_id must not be empty")
    return CONVERSATION_DOCUMENT.format(id=quote(conversation_id, safe=""), document=document)


def symbl_job_status(job: SymblJob, conversation_id: str | None = None) -> JobStatus:
    """The job as a `JobStatus`; a completed one with its ``conversation_id`` lists the conversation's
    documents (`SYMBL_OUTPUT_DOCUMENTS`) as `ApiDocument` outputs, format ``json``. Symbl documents
    no error text on a job: ``error`` is set only from an undocumented ``message``."""
    state = normalize_state(job.status, SYMBL_STATUS_MAP)
    outputs: list[JobOutput] = []
    if state is JobState.SUCCEEDED and conversation_id:
        outputs = [
            JobOutput(
                name=document,
                format="json",
                media_type=media_type_for("json"),
                location=ApiDocument(path=symbl_document_path(conversation_id, document)),
            )
            for document in SYMBL_OUTPUT_DOCUMENTS
        ]
    message = (job.model_extra or {}).get("message")
    return JobStatus(
        service=Service.SYMBL,
        job_id=job.id,
        state=state,
        raw_status=job.status,
        error=message if isinstance(message, str) and message else None,
        outputs=outputs,
        raw=redact_secrets(job.model_dump(mode="json", exclude_unset=True, by_alias=True)),
    )


def _read_status(job: SymblJob, options: Mapping[str, Any], ref: str) -> JobStatus:
    """Read by ``"jobId:conversationId"``, the status keeps that reference as its id."""
    conversation_id = split_job_ref(ref)[1]
    status = symbl_job_status(job, conversation_id)
    if conversation_id:
        status = status.model_copy(
            update={"job_id": ref, "raw": {**status.raw, "conversationId": conversation_id}}
        )
    return status


# Push completion (README "Push completion"): Symbl posts every status change (contracts H6, O-H5).
SYMBL_IN_FLIGHT = frozenset({"scheduled", "in_progress"})
"""Documented in-flight statuses: they cannot end a wait, so they wake none."""


class SymblStatus(WebhookBody):
    jobId: WebhookId
    status: str = Field(min_length=1, max_length=64)

    def job_id(self) -> str:
        return self.jobId

    def kind(self) -> str:
        return self.status.lower()

    def in_flight(self) -> bool:
        # any other status (terminal, or one the docs do not list) costs one status GET
        return self.kind() in SYMBL_IN_FLIGHT


SYMBL_WEBHOOK = WebhookSpec(
    scheme=TokenInUrl(), body=SymblStatus, max_body=16 * 1024, submit_field="webhook_url"
)


SYMBL = ServiceSpec(
    name="symbl",
    display_name="Symbl.ai",
    conn_type="symbl",
    default_conn_id="symbl_default",
    hook_class="airflow_jobstatus.hooks.symbl.SymblHook",
    default_host="https://api.symbl.ai",
    fields={
        "host": FormField("API base URL", "https://api.symbl.ai", "Leave empty for Symbl's public API."),
        "login": FormField("App ID", "Symbl appId", "Exchanged with the secret for a short-lived token."),
        "password": FormField("App secret", "Symbl appSecret", "Only ever sent to the token endpoint."),
    },
    default_max_rps=10.0,
    docs_url="https://docs.symbl.ai/",
    extra_fields=(
        # contracts S8: a 429 on submit at the account's concurrent-job limit (50 assumed: paid plans).
        ExtraField(
            "max_concurrent_jobs",
            "Maximum concurrent jobs",
            "Symbl.ai refuses a new job (429) while the account runs its maximum of concurrent jobs. "
            "With [jobstatus] redis_url set, submissions from every worker wait for a free slot instead. "
            "0 leaves it to the service's 429. Default 50.",
            "integer",
            50,
            "50",
            minimum=0,
        ),
    ),
    job_concurrency=JobConcurrency("max_concurrent_jobs", 50),
    webhook_job_id=lambda ref: split_job_ref(ref)[0],  # the webhook carries the jobId (contracts H6)
    no_outputs_hint="Symbl job references need the 'jobId:conversationId' form that SymblHook.submit_job "
    "returns; check the job at the service",
    status_map=SYMBL_STATUS_MAP,
    job=JobRead(JOB, SymblJob, _read_status, job_id=lambda ref: split_job_ref(ref)[0]),
    auth=TokenExchange(  # S1
        TOKEN, SymblToken, {"login": "appId", "password": "appSecret"}, constants={"type": "application"}
    ),
    submit_request=SymblSubmitRequest,
    error_body=SymblError,
    webhook=SYMBL_WEBHOOK,
)
