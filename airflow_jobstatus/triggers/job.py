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

import asyncio
import math
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_jobstatus.exceptions import InvalidParameterError
from airflow_jobstatus.services import SERVICES
from airflow_jobstatus.triggers.events import JobEvent, event_for_job
from airflow_jobstatus.triggers.hub import PollHub
from airflow_jobstatus.triggers.waits import Outcome, describe

DEFAULT_POLL_INTERVAL = 30.0
DEFAULT_MAX_CONSECUTIVE_ERRORS = 10
MIN_POLL_INTERVAL = 0.5
STATE_LOOKUP_TIMEOUT = 10.0
"""Seconds ``on_kill`` waits for the task instance's state (Airflow gives ``on_kill`` 30 s in all)."""
USER_STOPPED_STATES: frozenset[str | None] = frozenset(
    {None, "failed", "upstream_failed", "skipped", "removed"}
)
"""Task instance states after which a cancelled trigger's job may be deleted: cleared (None) or
marked failed/skipped by a user. ``deferred`` (the trigger moved to another triggerer), the states of a
task that resumed (``scheduled``, ``queued``, ``running``, ``up_for_retry``...) and ``success`` (which
a finished wait also reaches, whose outputs must survive) never delete."""
_UNKNOWN = object()


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
    :param delete_on_kill: only for a service that can delete jobs (its description's
        ``can_delete_jobs``: Daily): when a user kills the deferred task (marks it failed or
        clears it), delete the job (Daily has no cancel). The trigger first reads the task instance's
        state and deletes nothing while the task is still deferred (the wait moved to another
        triggerer), has resumed, succeeded, or its state cannot be read. Otherwise a kill only logs
        that the job keeps running (no service can cancel). Serialized only when true.
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
        if delete_on_kill is not False and (
            delete_on_kill is not True or not SERVICES[service].can_delete_jobs
        ):
            deleting = " or ".join(s.name for s in SERVICES.values() if s.can_delete_jobs)
            raise InvalidParameterError(
                f"delete_on_kill must be a bool and is supported for {deleting} only, got {delete_on_kill!r} "
                f"for {service}",
                operation="wait_for_job",
            )
        self.delete_on_kill = delete_on_kill

    def _wait(self) -> dict[str, Any]:
        """What the wait is given: also what the trigger is serialized with (and ``delete_on_kill``)."""
        return {
            "service": self.service,
            "conn_id": self.conn_id,
            "job_id": self.job_id,
            "deadline": self.deadline,
            "poll_interval": self.poll_interval,
            "max_consecutive_errors": self.max_consecutive_errors,
        }

    def serialize(self) -> tuple[str, dict[str, Any]]:
        kwargs = self._wait()
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
        outcome = await PollHub.current().wait(**self._wait())
        event = self.event_for(outcome)
        if event.kind in ("timeout", "error"):
            self.log.warning("%s", event.message)
        yield TriggerEvent(event.to_payload())

    async def on_kill(self) -> None:
        """Airflow cancelled the trigger "by user action": no service can cancel a job; some can delete it.

        Airflow 3.3 also takes this path when the trigger merely moved to another triggerer (a late
        heartbeat), so a job is deleted only when the task instance's own state shows that a user
        stopped it (`USER_STOPPED_STATES`); while it is deferred, running on, or its state cannot be
        read, the job is left alone.
        """
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
        state = await self._task_state()
        if state is _UNKNOWN or state not in USER_STOPPED_STATES:
            why = (
                "its task instance's state could not be read"
                if state is _UNKNOWN
                else f"its task instance is {state!r}, not stopped by a user (the wait moved to another "
                "triggerer, or Airflow is still working on the task)"
            )
            self.log.warning(
                "The wait for %s job %s was cancelled here; the job is not deleted (delete_on_kill=True): "
                "%s. It keeps running at %s.",
                display,
                self.job_id,
                why,
                display,
            )
            return
        try:
            await SERVICES[self.service].make_hook(self.conn_id).adelete_job(self.job_id)
        except Exception as exc:
            self.log.error(
                "The task was killed; deleting %s job %s (delete_on_kill=True) failed: %s",
                display,
                self.job_id,
                describe(exc),
            )
        else:
            self.log.warning(
                "The task was killed (task instance %s): deleted %s job %s (delete_on_kill=True; "
                "%s has no cancel)",
                state or "cleared",
                display,
                self.job_id,
                display,
            )

    async def _task_state(self) -> str | None | object:
        """The deferred task instance's state now (None: cleared), or `_UNKNOWN` if it cannot be read.

        Asked through the task SDK (``RuntimeTaskInstance.get_task_states``, which the triggerer's
        supervisor answers); the SDK call is synchronous, so it runs in a worker thread.
        """
        ti: Any = getattr(self, "task_instance", None)
        if ti is None:  # not run by a triggerer for a task (e.g. an inline test run)
            self.log.warning("No task instance is known for the wait on %s", self.job_id)
            return _UNKNOWN
        try:
            from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

            map_index = getattr(ti, "map_index", -1)
            map_index = -1 if map_index is None else map_index
            lookup = asyncio.to_thread(
                RuntimeTaskInstance.get_task_states,
                dag_id=ti.dag_id,
                task_ids=[ti.task_id],
                run_ids=[ti.run_id],
                map_index=map_index if map_index >= 0 else None,
            )
            states = await asyncio.wait_for(lookup, timeout=STATE_LOOKUP_TIMEOUT)
            key = ti.task_id if map_index < 0 else f"{ti.task_id}_{map_index}"
            state = states[ti.run_id][key]
        except Exception as exc:  # no task instance, no supervisor, no answer: ambiguous
            self.log.warning(
                "Could not read the state of the task waiting for %s: %s", self.job_id, describe(exc)
            )
            return _UNKNOWN
        return None if state is None else str(getattr(state, "value", state))

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
