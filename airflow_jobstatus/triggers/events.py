"""The trigger event vocabulary: closed, versioned, and checked before anything acts on it.

Every `JobStatusTrigger` event payload is exactly::

    {"version": 1, "event": "succeeded" | "failed" | "cancelled" | "timeout" | "error",
     "job": <JobStatus JSON> | None, "message": str}

* ``succeeded``, ``failed``, ``cancelled``: the job reached that terminal state; ``job`` is its final
  `JobStatus` **without** ``raw`` (the service response: for DeepAffects the whole result, megabytes
  for long audio), so no response body travels through the trigger table and the task instance's
  ``next_kwargs``; no presigned links either. The task fetches the full status itself when it
  returns it. ``message`` is the service's own error text (or a sentence saying how the job ended).
* ``timeout``: the absolute deadline passed first; ``job`` is None.
* ``error``: the wait ended without an answer: a permanent error (credentials, unknown job, bad
  parameter) or too many consecutive transient errors; ``job`` is None and ``message`` is the
  typed error's (already redacted) text. After a permanent error the payload also has
  ``"error_type"``, one of `ERROR_TYPES` (optional, so earlier payloads stay valid), and the task
  raises that typed error, as a non-deferred wait would.

`parse_event` is what a task's ``execute_complete`` calls: anything else (another version, an
unknown kind, a missing or mistyped field, a job that does not match the kind) raises
`InvalidTriggerEvent`, so a task fails closed instead of guessing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, cast

import pydantic

from airflow_jobstatus.exceptions import PERMANENT_ERRORS, JobStatusError
from airflow_jobstatus.models import JobState, JobStatus

EVENT_VERSION = 1
EventKind = Literal["succeeded", "failed", "cancelled", "timeout", "error"]
EVENT_KINDS: frozenset[str] = frozenset({"succeeded", "failed", "cancelled", "timeout", "error"})
_JOB_EVENTS: dict[str, JobState] = {
    "succeeded": JobState.SUCCEEDED,
    "failed": JobState.FAILED,
    "cancelled": JobState.CANCELLED,
}
_KEYS = frozenset({"version", "event", "job", "message"})
STATUS_ONLY = {"raw", "raw_omitted"}
"""The `JobStatus` fields an event leaves out: the response body stays at the service."""
ERROR_TYPES: dict[str, type[JobStatusError]] = {cls.__name__: cls for cls in PERMANENT_ERRORS}
"""The typed errors an ``error`` event can name: those that end a wait at once (``permanent``)."""


class InvalidTriggerEvent(JobStatusError):
    """A trigger event that does not follow the versioned vocabulary; the task fails closed."""

    hint = (
        "The event did not come from this provider's JobStatusTrigger, or from an incompatible version "
        "of it; upgrade airflow-jobstatus on the triggerer and the workers together"
    )
    permanent = True


@dataclass(frozen=True)
class JobEvent:
    """A validated trigger event."""

    kind: EventKind
    message: str
    job: JobStatus | None = None
    error_type: str | None = None
    """For ``error``: the name of the typed error (a key of `ERROR_TYPES`) that ended the wait."""

    def to_payload(self) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "version": EVENT_VERSION,
            "event": self.kind,
            "job": self.job.model_dump(mode="json", exclude=STATUS_ONLY) if self.job is not None else None,
            "message": self.message,
        }
        if self.error_type is not None:
            payload["error_type"] = self.error_type
        return payload

    def error(self) -> JobStatusError:
        """The error to raise for an ``error`` event: the typed one it names, with its full message."""
        cls = ERROR_TYPES.get(self.error_type or "", JobStatusError)
        return cls(self.message, hint="")  # the message already ends with the hint


def terminal_message(job: JobStatus) -> str:
    """The service's own error text, or a sentence saying how the job ended."""
    if job.error:
        return job.error
    raw = f" ({job.raw_status!r})" if job.raw_status else ""
    return f"job {job.job_id} {job.state.value}{raw}"


def event_for_job(job: JobStatus) -> JobEvent:
    """The event for a job in a terminal state."""
    if not job.is_terminal:
        raise ValueError(f"job {job.job_id} is not terminal ({job.state.value})")
    kind = cast(EventKind, job.state.value)
    return JobEvent(kind, terminal_message(job) if kind != "succeeded" else "", job)


def parse_event(payload: Any, *, job_id: str | None = None) -> JobEvent:
    """Validate a payload; raise `InvalidTriggerEvent` on anything outside the vocabulary.

    With ``job_id``, a job-carrying event must be about that job (a service job id, or for Symbl the
    ``jobId:conversationId`` reference, which the status keeps).
    """

    def bad(problem: str) -> InvalidTriggerEvent:
        return InvalidTriggerEvent(f"unexpected trigger event: {problem}", job_id=job_id)

    if not isinstance(payload, dict):
        raise bad(f"expected a dict, got {type(payload).__name__}")
    if set(payload) - {"error_type"} != _KEYS:
        raise bad(f"keys {sorted(map(str, payload))}, expected {sorted(_KEYS)}")
    version = payload["version"]
    if isinstance(version, bool) or version != EVENT_VERSION:
        raise bad(f"version {version!r}, this provider understands version {EVENT_VERSION}")
    kind = payload["event"]
    if not isinstance(kind, str) or kind not in EVENT_KINDS:
        raise bad(f"event kind {kind!r} is not one of {sorted(EVENT_KINDS)}")
    message = payload["message"]
    if not isinstance(message, str):
        raise bad("'message' is not a string")
    raw_job = payload["job"]
    job: JobStatus | None = None
    if kind in _JOB_EVENTS:
        if not isinstance(raw_job, dict):
            raise bad(f"a {kind!r} event needs the job's status")
        try:
            job = JobStatus.model_validate(raw_job)
        except pydantic.ValidationError as exc:
            raise bad(f"'job' is not a valid JobStatus ({exc.error_count()} problems)") from None
        if job.state is not _JOB_EVENTS[kind]:
            raise bad(f"a {kind!r} event carries a job in state {job.state.value!r}")
        if job_id is not None and job.job_id != job_id:
            raise bad(f"the event is about job {job.job_id!r}, not {job_id!r}")
    elif raw_job is not None:
        raise bad(f"a {kind!r} event carries no job")
    error_type = payload.get("error_type")
    if error_type is not None and (
        kind != "error" or not isinstance(error_type, str) or error_type not in ERROR_TYPES
    ):
        raise bad(f"error_type {error_type!r} on a {kind!r} event, expected one of {sorted(ERROR_TYPES)}")
    return JobEvent(cast(EventKind, kind), message, job, error_type)
