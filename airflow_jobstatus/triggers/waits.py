"""The state of waits in the poll hub: one `Waiter` per trigger, one `JobWatch` per watched job,
and the `Outcome` that ends a wait."""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass

from airflow_jobstatus.exceptions import JobStatusError
from airflow_jobstatus.http.redaction import scrub
from airflow_jobstatus.models import JobStatus


def describe(exc: BaseException) -> str:
    """An error's message for an event: typed errors' text is already redacted and complete."""
    if isinstance(exc, JobStatusError):
        return str(exc)
    return scrub(f"{type(exc).__name__}: {exc}")


@dataclass(frozen=True)
class Outcome:
    """How a wait ended: a terminal ``job``, an ``error`` message, or ``timed_out``."""

    job: JobStatus | None = None
    error: str | None = None
    timed_out: bool = False
    last_status: str | None = None
    """The service's last word on the job before a timeout or error, when known."""
    error_type: str | None = None
    """The typed error (class name) of a permanent error, so the task can raise the same type."""


class Waiter:
    """One trigger waiting on one job."""

    __slots__ = ("future", "interval", "job_id", "max_errors", "not_before", "watch")

    def __init__(
        self,
        job_id: str,
        interval: float,
        max_errors: int,
        not_before: float,
        future: asyncio.Future[Outcome],
    ) -> None:
        self.job_id = job_id
        self.interval = interval
        self.max_errors = max_errors
        self.not_before = not_before
        self.future = future
        self.watch: JobWatch | None = None

    def deliver(self, outcome: Outcome) -> None:
        """Resolve the wait, but never before ``not_before``."""
        if self.future.done():
            return
        loop = self.future.get_loop()
        if loop.time() < self.not_before:
            loop.call_at(self.not_before, _set_result, self.future, outcome)
        else:
            self.future.set_result(outcome)


def _set_result(future: asyncio.Future[Outcome], outcome: Outcome) -> None:
    if not future.done():
        future.set_result(outcome)


class JobWatch:
    """The shared polling state of one job on one connection."""

    __slots__ = (
        "active",
        "busy",
        "due",
        "errors",
        "interval",
        "job_id",
        "last_error",
        "last_status",
        "listed",
        "peer_waits",
        "poked_at",
        "unknown_logged",
        "waiters",
    )

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        self.waiters: set[Waiter] = set()
        self.interval = math.inf
        self.due: float | None = None
        """When the next poll is due (loop time); None while a request for it is in flight."""
        self.busy = False
        self.active = True
        self.errors = 0
        self.last_error = ""
        self.last_status: str | None = None
        self.listed = False
        self.peer_waits = 0
        """Rounds this job came back for a status another triggerer claimed (shared status)."""
        self.poked_at = 0.0
        """Epoch time of a push event not yet answered by a status fetched after it (0: none)."""
        self.unknown_logged = False
