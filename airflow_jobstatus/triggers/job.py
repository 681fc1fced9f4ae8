"""`JobStatusTrigger`: the one trigger for every service, sensor and submit operator.

Its kwargs are primitives only (they are stored, encrypted, in the metadata database and rebuilt
after a triggerer restart): the service name, the connection id, the job id, the poll interval, an
**absolute** wall-clock deadline (epoch seconds, so a rebuilt trigger keeps the same deadline) and
the budget of consecutive failed polls. No secrets, callables or models.

``run()`` does no polling of its own: it registers a waiter with the event loop's poll hub
(`airflow_jobstatus.triggers.hub`), which coalesces, batches and rate-limits the requests of every
trigger of the same connection, and yields exactly one event from the closed vocabulary in
`airflow_jobstatus.triggers.events`.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_jobstatus.exceptions import InvalidParameterError
from airflow_jobstatus.services import SERVICES
from airflow_jobstatus.triggers.events import JobEvent, event_for_job
from airflow_jobstatus.triggers.hub import Outcome, PollHub, describe

DEFAULT_POLL_INTERVAL = 30.0
DEFAULT_MAX_CONSECUTIVE_ERRORS = 10
MIN_POLL_INTERVAL = 0.5


def check_wait_parameters(
    *, service: str, conn_id: str, job_id: str, poll_interval: float, max_consecutive_errors: int
) -> None:
    """Validate what a trigger (or a sensor, before deferring) is given; raise `InvalidParameterError`."""

    def bad(message: str) -> InvalidParameterError:
        return InvalidParameterError(message, operation="wait_for_job")

    if service not in SERVICES:
        raise bad(f"service must be one of {', '.join(SERVICES)}, got {service!r}")
    if not isinstance(conn_id, str) or not conn_id:
        raise bad(f"the connection id must be a non-empty string, got {conn_id!r}")
    if not isinstance(job_id, str) or not job_id.strip():
        raise bad(f"job_id must be a non-empty string, got {job_id!r}")
    if (
        isinstance(poll_interval, bool)
        or not isinstance(poll_interval, int | float)
        or not math.isfinite(poll_interval)
        or poll_interval < MIN_POLL_INTERVAL
    ):
        raise bad(f"poll_interval must be a number of seconds >= {MIN_POLL_INTERVAL}, got {poll_interval!r}")
    if (
        isinstance(max_consecutive_errors, bool)
        or not isinstance(max_consecutive_errors, int)
        or max_consecutive_errors < 1
    ):
        raise bad(f"max_consecutive_errors must be an integer >= 1, got {max_consecutive_errors!r}")


class JobStatusTrigger(BaseTrigger):
    """Wait for a job of any of the four services to end, or for a deadline.

    :param service: ``daily``, ``wasabi_air``, ``symbl`` or ``deepaffects``.
    :param conn_id: the Airflow connection of that service.
    :param job_id: the job id (for Symbl, ``jobId:conversationId`` or a bare ``jobId``).
    :param deadline: absolute deadline, seconds since the epoch; at it the trigger fires ``timeout``.
    :param poll_interval: seconds between polls of this job (jittered by +-10%; the first poll comes
        one interval after the trigger starts, never sooner than 2 s).
    :param max_consecutive_errors: transient failures in a row (after the HTTP core's own retries)
        after which the wait ends with an ``error`` event.
    :param delete_on_kill: Daily only: when a user kills the deferred task, delete the job (Daily has
        no cancel). Otherwise a kill only logs that the job keeps running (no service can cancel).
        Serialized only when true.
    """

    def __init__(
        self,
        *,
        service: str,
        conn_id: str,
        job_id: str,
        deadline: float,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        max_consecutive_errors: int = DEFAULT_MAX_CONSECUTIVE_ERRORS,
        delete_on_kill: bool = False,
    ) -> None:
        super().__init__()
        check_wait_parameters(
            service=service,
            conn_id=conn_id,
            job_id=job_id,
            poll_interval=poll_interval,
            max_consecutive_errors=max_consecutive_errors,
        )
        if isinstance(deadline, bool) or not isinstance(deadline, int | float) or not math.isfinite(deadline):
            raise InvalidParameterError(
                f"deadline must be epoch seconds, got {deadline!r}", operation="wait_for_job"
            )
        self.service = service
        self.conn_id = conn_id
        self.job_id = job_id.strip()
        self.deadline = float(deadline)
        self.poll_interval = float(poll_interval)
        self.max_consecutive_errors = max_consecutive_errors
        if delete_on_kill is not False and (delete_on_kill is not True or service != "daily"):
            raise InvalidParameterError(
                f"delete_on_kill must be a bool and is supported for daily only, got {delete_on_kill!r} "
                f"for {service}",
                operation="wait_for_job",
            )
        self.delete_on_kill = delete_on_kill

    def serialize(self) -> tuple[str, dict[str, Any]]:
        kwargs: dict[str, Any] = {
            "service": self.service,
            "conn_id": self.conn_id,
            "job_id": self.job_id,
            "deadline": self.deadline,
            "poll_interval": self.poll_interval,
            "max_consecutive_errors": self.max_consecutive_errors,
        }
        if self.delete_on_kill:
            kwargs["delete_on_kill"] = True
        return f"{type(self).__module__}.{type(self).__qualname__}", kwargs

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, JobStatusTrigger):
            return NotImplemented
        return self.serialize() == other.serialize()

    def __hash__(self) -> int:
        return hash((self.service, self.conn_id, self.job_id, self.deadline))

    async def run(self) -> AsyncIterator[TriggerEvent]:
        outcome = await PollHub.current().wait(
            service=self.service,
            conn_id=self.conn_id,
            job_id=self.job_id,
            poll_interval=self.poll_interval,
            deadline=self.deadline,
            max_consecutive_errors=self.max_consecutive_errors,
        )
        event = self.event_for(outcome)
        if event.kind in ("timeout", "error"):
            self.log.warning("%s", event.message)
        yield TriggerEvent(event.to_payload())

    async def on_kill(self) -> None:
        """A user killed the deferred task: no service can cancel a job; Daily's can be deleted."""
        display = SERVICES[self.service].display_name
        if not self.delete_on_kill:
            self.log.warning(
                "The task was killed while waiting for %s job %s. %s cannot cancel a running job: "
                "it keeps running at the service.",
                display,
                self.job_id,
                display,
            )
            return
        from airflow_jobstatus.hooks.daily import DailyHook

        try:
            await DailyHook(daily_conn_id=self.conn_id).adelete_job(self.job_id)
        except Exception as exc:
            self.log.error(
                "The task was killed; deleting Daily job %s (delete_on_kill=True) failed: %s",
                self.job_id,
                describe(exc),
            )
        else:
            self.log.warning(
                "The task was killed: deleted Daily job %s (delete_on_kill=True; Daily has no cancel)",
                self.job_id,
            )

    def event_for(self, outcome: Outcome) -> JobEvent:
        display = SERVICES[self.service].display_name
        if outcome.job is not None:
            return event_for_job(outcome.job)
        last = f" (last status {outcome.last_status!r})" if outcome.last_status else ""
        if outcome.timed_out:
            return JobEvent(
                "timeout",
                f"{display} job {self.job_id} had not finished at the deadline{last}",
            )
        return JobEvent(
            "error",
            outcome.error or f"{display} job {self.job_id}: the wait ended without an answer",
            error_type=outcome.error_type,
        )
