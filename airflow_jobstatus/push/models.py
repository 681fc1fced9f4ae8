"""The webhook bodies the receiver accepts, as typed models, and the event it publishes.

Only ids are kept: a webhook is a hint and the service's own status answer decides the outcome.
Unknown extra fields are ignored (services add fields), but the fields used must have their types.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from airflow_jobstatus.services import SERVICES

DAILY_EVENT_TYPES = frozenset({"batch-processor.job-finished", "batch-processor.error"})
SYMBL_IN_FLIGHT = frozenset({"scheduled", "in_progress"})
"""Symbl posts every status change; these documented in-flight ones cannot end a wait."""

_ID = Field(min_length=1, max_length=256)


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


class DailyJob(_Strict):
    id: str = _ID


class DailyEnvelope(_Strict):
    """``{version, type, id, payload, event_ts}``; ``payload`` is the batch-processor job."""

    version: str
    type: Literal["batch-processor.job-finished", "batch-processor.error"]
    id: str = _ID
    payload: DailyJob
    event_ts: float | int


class SymblStatus(_Strict):
    jobId: str = _ID
    status: str = Field(min_length=1, max_length=64)


class DeepAffectsResult(_Strict):
    request_id: str = _ID


@dataclass(frozen=True)
class PushEvent:
    """What the receiver publishes: which job of which connection may have changed, and when."""

    service: str
    conn_id: str
    job_id: str
    received_at: float

    def to_json(self) -> str:
        return json.dumps(
            {
                "service": self.service,
                "conn_id": self.conn_id,
                "job_id": self.job_id,
                "received_at": self.received_at,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, raw: str | bytes) -> PushEvent | None:
        """The event, or None for anything that is not one (the channel is not trusted blindly)."""
        try:
            data = json.loads(raw)
            event = cls(
                service=data["service"],
                conn_id=data["conn_id"],
                job_id=data["job_id"],
                received_at=float(data["received_at"]),
            )
        except (ValueError, TypeError, KeyError):
            return None
        if not all(isinstance(v, str) and v for v in (event.service, event.conn_id, event.job_id)):
            return None
        return event


CHANNEL = "jobstatus:events"
"""The Redis channel every receiver publishes on and every listener subscribes to."""
KEY_PREFIX = "jobstatus:event:"


def webhook_job_id(service: str, job_id: str) -> str:
    """The id a service's webhook names a job by, from the id a wait tracks it by (its description says)."""
    return SERVICES[service].webhook_job_id(job_id)


def event_key(service: str, conn_id: str, job_id: str) -> str:
    """The Redis key that keeps a job's latest event for ``event_ttl`` seconds."""
    return f"{KEY_PREFIX}{service}:{len(conn_id)}:{conn_id}:{job_id}"


def seen_key(service: str, conn_id: str, job_id: str, kind: str) -> str:
    """The Redis key that marks one kind of webhook for a job as received (duplicates are not re-sent)."""
    return f"jobstatus:seen:{service}:{len(conn_id)}:{conn_id}:{len(job_id)}:{job_id}:{kind}"
