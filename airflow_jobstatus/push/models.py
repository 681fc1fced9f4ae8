"""The event the receiver publishes when a verified webhook names a job, and its Redis keys.

The webhook bodies themselves are typed in each service's description (`WebhookSpec.body`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from airflow_jobstatus.services import SERVICES


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
