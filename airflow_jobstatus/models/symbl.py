"""Symbl.ai Async/Job/Conversation APIs: documented responses and their mapping to :class:`JobStatus`.

Contract: ``POST /oauth2/token:generate``, ``POST /v1/process/{audio,video}/url`` and
``/v1/process/text`` (submit), ``GET /v1/job/{jobId}`` (seed 003), the Conversation API documents
under ``/v1/conversations/{conversationId}/...`` and the ``{"message"}`` error body
(``providers.md``).

A Symbl job has no outputs of its own: once it completes, the conversation it processed is read
through the Conversation API. The job response does not repeat the conversation id, so the caller
passes the one it got at submission.
"""

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, NamedTuple
from urllib.parse import quote

from pydantic import Field

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

__all__ = [
    "SYMBL_CONVERSATION_DOCUMENTS",
    "SYMBL_OUTPUT_DOCUMENTS",
    "SYMBL_STATUS_MAP",
    "SymblActionItems",
    "SymblAnalytics",
    "SymblEntities",
    "SymblEntity",
    "SymblError",
    "SymblFollowUps",
    "SymblInsight",
    "SymblJob",
    "SymblMessage",
    "SymblMessages",
    "SymblQuestions",
    "SymblSubmitRequest",
    "SymblSubmitResponse",
    "SymblSummary",
    "SymblSummaryItem",
    "SymblToken",
    "SymblTopic",
    "SymblTopics",
    "SymblUser",
    "SymblWord",
    "symbl_document_path",
    "symbl_job_status",
]

#: Symbl's documented job statuses. The page lists them lower-case in one place and UPPER_CASE in
#: another; :func:`normalize_state` falls back to a case-insensitive match, so both map.
SYMBL_STATUS_MAP: Mapping[str, JobState] = MappingProxyType(
    {
        "scheduled": JobState.QUEUED,
        "in_progress": JobState.RUNNING,
        "completed": JobState.SUCCEEDED,
        "failed": JobState.FAILED,
    }
)


class SymblToken(ApiModel):
    """``POST /oauth2/token:generate``. ``expiresIn`` is the remaining lifetime in seconds (a cached
    token comes back with less than 86400); a number, possibly fractional (the official client types
    it ``float``: contracts S2). The token is a bearer secret: kept out of ``repr``."""

    accessToken: str = Field(repr=False)
    expiresIn: float


class SymblSubmitRequest(NamedTuple):
    """One Async API submission as it is sent: path, query parameters and JSON body.

    ``enableSpeakerDiarization`` and ``diarizationSpeakerCount`` are query parameters of the audio
    and video URL endpoints (contracts S4); every other option is a body field (S3).
    """

    path: str
    params: dict[str, str]
    body: dict[str, Any]


class SymblJob(ApiModel):
    """``GET /v1/job/{jobId}``; ``status`` is optional so that a missing one reads as unknown."""

    id: str
    status: str | None = None


class SymblSubmitResponse(ApiModel):
    """``201`` from the Async API: the conversation being built and the job building it."""

    conversationId: str
    jobId: str


class SymblError(ApiModel):
    """Error body: ``{"message"}``, with ``statusCode`` on some (e.g. 429 concurrency limit)."""

    message: str
    statusCode: int | None = None


# --------------------------------------------------------------------------------------------------
# Conversation API documents: typed loosely (every item field optional, extra fields kept), but each
# document's documented top-level key is required so that a wrong document fails loudly.
# --------------------------------------------------------------------------------------------------


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


class SymblMessages(ApiModel):
    """``GET /v1/conversations/{id}/messages``."""

    messages: list[SymblMessage]


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


class SymblTopics(ApiModel):
    """``GET /v1/conversations/{id}/topics``."""

    topics: list[SymblTopic]


class SymblActionItems(ApiModel):
    """``GET /v1/conversations/{id}/action-items``."""

    actionItems: list[SymblInsight]


class SymblFollowUps(ApiModel):
    """``GET /v1/conversations/{id}/follow-ups``."""

    followUps: list[SymblInsight]


class SymblQuestions(ApiModel):
    """``GET /v1/conversations/{id}/questions``."""

    questions: list[SymblInsight]


class SymblEntity(ApiModel):
    """A detected entity; ``value`` is a string for most types, so it is left untyped."""

    type: str | None = None
    subType: str | None = None
    category: str | None = None
    customType: str | None = None
    value: Any = None
    text: str | None = None
    messageRefs: list[dict[str, Any]] = Field(default_factory=list)


class SymblEntities(ApiModel):
    """``GET /v1/conversations/{id}/entities``."""

    entities: list[SymblEntity]


class SymblAnalytics(ApiModel):
    """``GET /v1/conversations/{id}/analytics``: conversation ``metrics`` and per-speaker ``members``."""

    metrics: list[dict[str, Any]]
    members: list[dict[str, Any]] = Field(default_factory=list)


class SymblSummaryItem(ApiModel):
    """One summary paragraph and the messages it draws on."""

    id: str | None = None
    text: str | None = None
    messageRefs: list[dict[str, Any]] = Field(default_factory=list)


class SymblSummary(ApiModel):
    """``GET /v1/conversations/{id}/summary`` (404 until ready)."""

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
SYMBL_OUTPUT_DOCUMENTS: tuple[str, ...] = (
    "messages",
    "topics",
    "action-items",
    "follow-ups",
    "questions",
    "summary",
)


def symbl_document_path(conversation_id: str, document: str) -> str:
    """``/v1/conversations/{conversation_id}/{document}``, the id percent-encoded as one segment."""
    if document not in SYMBL_CONVERSATION_DOCUMENTS:
        raise ValueError(f"unknown Symbl conversation document {document!r}")
    if not conversation_id:
        raise ValueError("conversation_id must not be empty")
    return f"/v1/conversations/{quote(conversation_id, safe='')}/{document}"


def symbl_job_status(job: SymblJob, conversation_id: str | None = None) -> JobStatus:
    """Translate a Symbl job into a :class:`JobStatus`.

    When the job completed and ``conversation_id`` (from the submit response) is known, the outputs
    are :class:`ApiDocument` locations for :data:`SYMBL_OUTPUT_DOCUMENTS`, named after their path
    segment, format ``json``. Symbl's job response has no error text, so ``error`` is ``None``
    unless it carries an undocumented ``message``.
    """
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
    extra = job.model_extra or {}
    message = extra.get("message")
    return JobStatus(
        service=Service.SYMBL,
        job_id=job.id,
        state=state,
        raw_status=job.status,
        error=message if isinstance(message, str) and message else None,
        outputs=outputs,
        raw=redact_secrets(job.model_dump(mode="json", exclude_unset=True, by_alias=True)),
    )
