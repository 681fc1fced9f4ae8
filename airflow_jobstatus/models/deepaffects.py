"""DeepAffects async API: documented responses and their mapping to :class:`JobStatus`.

Contract: ``GET /transaction/generic/api/v1/async/status`` (seed 004), the async submit endpoints'
``202 {"request_id", "api"}`` and the ``{"fault": {...}}`` error body (``providers.md``).

The result is inline: a completed status response carries it under ``response.response``, so the
job's one output is an :class:`InlineDocument` pointing there inside ``JobStatus.raw``.
"""

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from pydantic import Field

from airflow_jobstatus.models.common import (
    ApiModel,
    InlineDocument,
    JobOutput,
    JobState,
    JobStatus,
    Service,
    media_type_for,
    normalize_state,
    redact_secrets,
)

__all__ = [
    "DEEPAFFECTS_RESULT_POINTER",
    "DEEPAFFECTS_STATUS_MAP",
    "DeepAffectsAsrResult",
    "DeepAffectsDiarizeResult",
    "DeepAffectsDiarizeSegment",
    "DeepAffectsEnvelope",
    "DeepAffectsFault",
    "DeepAffectsFaultBody",
    "DeepAffectsFaultDetail",
    "DeepAffectsStatusResponse",
    "DeepAffectsSubmitResponse",
    "DeepAffectsWord",
    "deepaffects_job_status",
]

#: DeepAffects' documented statuses (capitalized; other casings match case-insensitively).
DEEPAFFECTS_STATUS_MAP: Mapping[str, JobState] = MappingProxyType(
    {
        "Running": JobState.RUNNING,
        "Completed": JobState.SUCCEEDED,
        "Failed": JobState.FAILED,
    }
)

#: Where the inline result sits in a status response (and so in ``JobStatus.raw``).
DEEPAFFECTS_RESULT_POINTER = "/response/response"


class DeepAffectsWord(ApiModel):
    """One recognized word. Times are seconds; the service sends ``1`` and ``2.6`` alike."""

    word: str
    start: float
    end: float
    confidence: float | None = None
    speaker_id: str | None = None


class DeepAffectsAsrResult(ApiModel):
    """The ASR result (``/audio/generic/api/v1/async/asr``)."""

    num_speakers: int | None = None
    transcript: str
    confidence: float | None = None
    words: list[DeepAffectsWord] = Field(default_factory=list)


class DeepAffectsDiarizeSegment(ApiModel):
    """One speaker turn. The type of ``speaker_id`` is undocumented here, so both forms are accepted."""

    speaker_id: str | int
    start: float
    end: float


class DeepAffectsDiarizeResult(ApiModel):
    """The diarization result (``/audio/generic/api/v2/async/diarize``)."""

    num_speakers: int | None = None
    segments: list[DeepAffectsDiarizeSegment] = Field(default_factory=list)


class DeepAffectsEnvelope(ApiModel):
    """``response`` of a status response: the request id and the API-specific result.

    ``response`` is kept as a plain object because its shape depends on the API that was called
    (parse it with :class:`DeepAffectsAsrResult` or :class:`DeepAffectsDiarizeResult`). A string is
    accepted too: what a failed job carries there is undocumented, and a bare message must not
    make the poll itself fail.
    """

    request_id: str | None = None
    response: dict[str, Any] | str | None = None


class DeepAffectsStatusResponse(ApiModel):
    """``GET .../async/status``: ``{"status", "response": {"request_id", "response"}}``."""

    status: str | None = None
    response: DeepAffectsEnvelope | None = None

    @property
    def result(self) -> dict[str, Any] | None:
        """The inline result object, when there is one."""
        if self.response is not None and isinstance(self.response.response, dict):
            return self.response.response
        return None

    def asr_result(self) -> DeepAffectsAsrResult:
        """The result parsed as an ASR result; ``ValueError`` when there is none."""
        if self.result is None:
            raise ValueError("the status response carries no result")
        return DeepAffectsAsrResult.model_validate(self.result)

    def diarize_result(self) -> DeepAffectsDiarizeResult:
        """The result parsed as a diarization result; ``ValueError`` when there is none."""
        if self.result is None:
            raise ValueError("the status response carries no result")
        return DeepAffectsDiarizeResult.model_validate(self.result)


class DeepAffectsSubmitResponse(ApiModel):
    """``202`` from an async endpoint: the request id to poll with and the API name."""

    request_id: str
    api: str | None = None


class DeepAffectsFaultDetail(ApiModel):
    """``fault.detail``: the machine-readable code, e.g. ``oauth.v2.InvalidApiKey``."""

    errorcode: str | None = None


class DeepAffectsFaultBody(ApiModel):
    """``fault``: the message and its detail."""

    faultstring: str
    detail: DeepAffectsFaultDetail | None = None


class DeepAffectsFault(ApiModel):
    """Gateway error body ``{"fault": {"faultstring", "detail": {"errorcode"}}}`` (e.g. 401)."""

    fault: DeepAffectsFaultBody

    @property
    def message(self) -> str:
        return self.fault.faultstring

    @property
    def error_code(self) -> str | None:
        return self.fault.detail.errorcode if self.fault.detail is not None else None


_MESSAGE_KEYS = ("error", "message", "errorMessage", "error_message", "detail", "reason", "faultstring")


def _find_message(value: Any) -> str | None:
    """The first non-empty message-like string in a failed job's payload (shape undocumented)."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, Mapping):
        for key in _MESSAGE_KEYS:
            found = value.get(key)
            if isinstance(found, str) and found:
                return found
            if isinstance(found, Mapping):
                nested = _find_message(found)
                if nested:
                    return nested
    return None


def deepaffects_job_status(resp: DeepAffectsStatusResponse, request_id: str) -> JobStatus:
    """Translate a DeepAffects status response into a :class:`JobStatus` for ``request_id``.

    The status response may omit the request id while the job runs, so the caller passes the one it
    submitted; a different id echoed back is a ``ValueError`` (someone else's result). A
    ``Completed`` response with a result object has one output, ``result`` (json), an
    :class:`InlineDocument` at :data:`DEEPAFFECTS_RESULT_POINTER`. On ``Failed`` the error is the
    first message found in the response (its shape is undocumented), else ``None``.
    """
    if not request_id:
        raise ValueError("request_id must not be empty")
    echoed = resp.response.request_id if resp.response is not None else None
    if echoed and echoed != request_id:
        raise ValueError(f"status response is for request {echoed!r}, not {request_id!r}")
    state = normalize_state(resp.status, DEEPAFFECTS_STATUS_MAP)
    outputs: list[JobOutput] = []
    if state is JobState.SUCCEEDED and resp.result is not None:
        outputs.append(
            JobOutput(
                name="result",
                format="json",
                media_type=media_type_for("json"),
                location=InlineDocument(pointer=DEEPAFFECTS_RESULT_POINTER),
            )
        )
    error = None
    if state is JobState.FAILED:
        error = _find_message(resp.response.response if resp.response is not None else None)
        if error is None:
            error = _find_message(resp.model_extra or {})
    dumped = resp.model_dump(mode="json", exclude_unset=True, by_alias=True)
    raw = redact_secrets(dumped)
    if outputs:
        # The result is the job's output: keep it verbatim (redaction is for the envelope only).
        raw["response"]["response"] = dumped["response"]["response"]
    return JobStatus(
        service=Service.DEEPAFFECTS,
        job_id=request_id,
        state=state,
        raw_status=resp.status,
        error=error,
        outputs=outputs,
        raw=raw,
    )
