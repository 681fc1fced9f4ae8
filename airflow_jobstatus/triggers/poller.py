"""`ConnectionPoller`: every poll of one (service, connection) in one event loop, read top to bottom:
waiters come and go, the schedule loop wakes at the next due poll, and each job's answer (or error)
decides its next poll. Sweeps are in `batching`, rate-limit pauses and jitter in `pacing`."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import math
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from airflow.sdk.exceptions import AirflowNotFoundException

from airflow_jobstatus.exceptions import (
    JobStatusError,
    RateLimitedError,
    RequestBudgetExhaustedError,
    ServiceError,
    is_permanent,
    permanent_type,
)
from airflow_jobstatus.http.inflight import being_cancelled
from airflow_jobstatus.models import JobState, JobStatus
from airflow_jobstatus.push.hub_link import PushLink
from airflow_jobstatus.services import SERVICES, ServiceSpec
from airflow_jobstatus.shared.status import MAX_PEER_WAITS, Record, SharedStatus, fresh_for, peer_retry
from airflow_jobstatus.triggers.batching import SWEEP_HORIZON, Sweeping
from airflow_jobstatus.triggers.pacing import CALL_BUDGET, GATHER, Pause, first_poll_in, jittered
from airflow_jobstatus.triggers.waits import JobWatch, Outcome, Waiter, describe

log = logging.getLogger("airflow_jobstatus.triggers.hub")  # one logger for the whole poll hub

MAX_INFLIGHT = 32
"""Individual job requests in flight per connection (the rate limiter spaces them further)."""
ERROR_LOG_EVERY = 30.0
"""Failed polls are logged as warnings at most this often per connection (each one at debug level)."""


def _hook_for(spec: ServiceSpec, conn_id: str) -> Any:
    """The connection's hook, of the class the service's description names."""
    return spec.make_hook(conn_id)


class ConnectionPoller(Sweeping):
    """Every poll of one (service, connection) in one event loop."""

    def __init__(self, service: str, conn_id: str, on_close: Callable[[ConnectionPoller], None]) -> None:
        self._on_close = on_close
        """Called once when the poller stops (`PollHub` forgets it)."""
        self.spec = SERVICES[service]
        self.service = service
        self.conn_id = conn_id
        self.hook = _hook_for(self.spec, conn_id)
        self.loop = asyncio.get_running_loop()
        self.watches: dict[str, JobWatch] = {}
        self._heap: list[tuple[float, int, JobWatch]] = []
        self._seq = itertools.count()
        self._sleeper: asyncio.Future[None] | None = None
        self._sleep_until = math.inf
        self._queue: deque[JobWatch] = deque()
        self._workers: set[asyncio.Task[None]] = set()
        self.pause = Pause(self.loop, self.spec.display_name, conn_id)
        self.closed = False
        self._init_sweeps()  # listing state (Daily, Wasabi AiR): batching.py
        self._next_error_log = 0.0
        self.counters = {"sweeps": 0, "pages": 0, "gets": 0, "errors": 0}
        self.push = PushLink.for_poller(self)  # None unless [jobstatus] redis_url is set
        self.shared = SharedStatus.for_poller(self.spec, conn_id)  # likewise: shared/status.py
        self.task = self.loop.create_task(self._run(), name=f"jobstatus-poller-{service}-{conn_id}")

    def __repr__(self) -> str:
        return f"ConnectionPoller({self.service}, {self.conn_id!r}, watches={len(self.watches)})"

    # ------------------------------------------------------------------ waiters

    def add(self, waiter: Waiter) -> None:
        watch = self.watches.get(waiter.job_id)
        now = self.loop.time()
        first_due = now + first_poll_in(waiter.interval)
        if watch is None:
            watch = self.watches[waiter.job_id] = JobWatch(waiter.job_id)
            watch.waiters.add(waiter)
            watch.interval = waiter.interval
            self._schedule(watch, first_due)
            if self.push is not None:
                self.push.watch(waiter.job_id)
        else:
            watch.waiters.add(waiter)
            if waiter.interval < watch.interval:
                watch.interval = waiter.interval
                if watch.due is not None and watch.due > first_due:
                    self._schedule(watch, first_due)
        waiter.watch = watch

    def remove(self, waiter: Waiter) -> None:
        watch = waiter.watch
        waiter.watch = None
        if watch is None or waiter not in watch.waiters:
            return
        watch.waiters.discard(waiter)
        if not watch.waiters:
            self._drop(watch)
        elif waiter.interval <= watch.interval:
            watch.interval = min(w.interval for w in watch.waiters)
        if not self.watches:
            self._close()

    def _drop(self, watch: JobWatch) -> None:
        watch.active = False
        watch.due = None
        if self.watches.get(watch.job_id) is watch:
            del self.watches[watch.job_id]
            if self.push is not None:
                self.push.unwatch(watch.job_id)

    def _close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._on_close(self)
        if self.push is not None:
            self.push.close()
        if self.shared is not None:
            self.shared.close()
        self._queue.clear()
        current = asyncio.current_task()
        for task in [*self._workers, self.task]:
            if task is not current:
                task.cancel()  # requests nobody waits for any more (a sweep, individual polls)
        self._wake()

    def _resolve(self, watch: JobWatch, outcome: Outcome) -> None:
        for waiter in list(watch.waiters):
            waiter.deliver(outcome)
        # The waiters deregister themselves when their futures resolve; until then the watch stays
        # out of the schedule.
        self._drop(watch)

    def _fail_all(self, message: str) -> None:
        for watch in list(self.watches.values()):
            self._resolve(watch, Outcome(error=message, last_status=watch.last_status))

    # ------------------------------------------------------------------ schedule

    def _schedule(self, watch: JobWatch, due: float) -> None:
        watch.due = due
        heapq.heappush(self._heap, (due, next(self._seq), watch))
        if due < self._sleep_until:
            self._wake()

    def _wake(self) -> None:
        sleeper = self._sleeper
        if sleeper is not None and not sleeper.done():
            sleeper.set_result(None)

    def _peek(self) -> float | None:
        heap = self._heap
        while heap:
            due, _, watch = heap[0]
            if watch.active and watch.due == due and not watch.busy:
                return due
            heapq.heappop(heap)
        return None

    def _pop_due(self, horizon: float) -> list[tuple[float, JobWatch]]:
        popped = []
        heap = self._heap
        while heap and heap[0][0] <= horizon:
            due, _, watch = heapq.heappop(heap)
            if watch.active and watch.due == due and not watch.busy:
                watch.due = None
                popped.append((due, watch))
        return popped

    async def _sleep(self, until: float) -> None:
        sleeper: asyncio.Future[None] = self.loop.create_future()
        self._sleeper, self._sleep_until = sleeper, until
        handle = None if until == math.inf else self.loop.call_at(until, _wake_sleeper, sleeper)
        try:
            await sleeper
        finally:
            if handle is not None:
                handle.cancel()
            self._sleeper, self._sleep_until = None, math.inf

    # ------------------------------------------------------------------ the loop

    async def _run(self) -> None:
        while not self.closed:
            try:
                due = self._peek()
                now = self.loop.time()
                if due is None:
                    await self._sleep(math.inf)
                    continue
                target = max(due, self.pause.until)
                if target > now:
                    await self._sleep(target)
                    continue
                await self._round(now)
            except asyncio.CancelledError:
                if self.closed or being_cancelled():
                    raise
                # Someone else's cancellation (e.g. from shared work): not ours to stop on.
                log.warning(
                    "%s connection %r: a stray cancellation reached the poll loop; polling on",
                    self.spec.display_name,
                    self.conn_id,
                )
                self._reschedule_orphans()
            except Exception as exc:  # a bug must not leave triggers waiting forever: fail closed
                log.exception("poll hub for %s connection %r stopped", self.spec.display_name, self.conn_id)
                self._fail_all(f"internal error in the job status poll hub: {type(exc).__name__}: {exc}")
                self._close()

    def _reschedule_orphans(self) -> None:
        """Give every watch that has neither a request in flight nor a due time its next poll."""
        now = self.loop.time()
        for watch in self.watches.values():
            if watch.active and not watch.busy and watch.due is None:
                self._schedule(watch, now + jittered(watch.interval))

    async def _round(self, now: float) -> None:
        first = self._heap[0][2]
        listing = self._listing_considered(now)
        horizon = now + (SWEEP_HORIZON * first.interval if listing else GATHER)
        popped = self._pop_due(horizon)
        if not popped:
            return
        shared = self.shared if self.shared is not None and self.shared.ready else None
        if shared is not None:
            popped = await self._answer_shared(shared, popped)
            if not popped:
                return
        if listing and self._sweep_pays(popped, now, first.interval):
            if (
                shared is None
                or any(w.peer_waits >= MAX_PEER_WAITS for _, w in popped)
                or await shared.claim_sweep(first.interval)
            ):
                await self._sweep(popped)
            else:
                self._wait_for_peer(popped)  # another triggerer lists the account right now
            return
        ready = self.loop.time() + GATHER
        now_due = []
        for due, watch in popped:
            if due <= ready:
                now_due.append(watch)
            else:
                self._schedule(watch, due)
        if shared is not None and now_due:
            # a job poked by push, or that waited enough for a peer, is fetched here at once
            own = [w for w in now_due if w.peer_waits >= MAX_PEER_WAITS or w.poked_at]
            asking = [w for w in now_due if w.peer_waits < MAX_PEER_WAITS and not w.poked_at]
            interval = min((w.interval for w in asking), default=0.0)
            claimed = await shared.claim_jobs([w.job_id for w in asking], interval)
            self._wait_for_peer([(0.0, w) for w in asking if w.job_id not in claimed])
            now_due = own + [w for w in asking if w.job_id in claimed]
        for watch in now_due:
            if watch.active and not watch.busy and watch.due is None:
                self._start_get(watch)

    # ------------------------------------------------------------------ shared status (Redis)

    async def _answer_shared(
        self, shared: SharedStatus, popped: list[tuple[float, JobWatch]]
    ) -> list[tuple[float, JobWatch]]:
        """Answer the due jobs another triggerer fetched recently; return the others."""
        for _, watch in popped:
            watch.busy = True  # a push poke meanwhile makes the next poll immediate (hub_link)
        try:
            records = await shared.lookup([w.job_id for _, w in popped])
        finally:
            for _, watch in popped:
                watch.busy = False
        rest = []
        wall = time.time()
        for due, watch in popped:
            record = records.get(watch.job_id)
            if not watch.active or watch.due is not None:
                continue  # ended, or rescheduled (poked) while Redis answered
            if (
                record is None
                or record.at < watch.poked_at
                or (record.job is None and record.state.is_terminal)
            ):
                rest.append((due, watch))  # a listing saw it end: its full status is still to fetch
                continue
            age = wall - record.at
            if record.job is None and age >= fresh_for(watch.interval):
                rest.append((due, watch))
                continue
            shared.counters["hits"] += 1
            self._on_shared(watch, record, age)
        return rest

    def _on_shared(self, watch: JobWatch, record: Record, age: float) -> None:
        watch.peer_waits = 0
        watch.errors = 0
        watch.last_status = record.raw_status
        if record.job is not None:
            self._job_seen(watch.job_id, ended=True)
            self._resolve(watch, Outcome(job=record.job))
            return
        self._note_unknown(watch, record.state, record.raw_status)
        # next poll when the shared answer gets stale, so the triggerers keep one fetch per interval
        interval = self._next_interval(watch)
        self._schedule(watch, self.loop.time() + max(jittered(interval) - max(0.0, age), 0.25 * interval))

    def _wait_for_peer(self, popped: list[tuple[float, JobWatch]]) -> None:
        """Come back shortly for the status another triggerer is fetching."""
        now = self.loop.time()
        for _, watch in popped:
            if watch.active and not watch.busy:
                watch.peer_waits += 1
                if self.shared is not None:
                    self.shared.counters["peer_waits"] += 1
                self._schedule(watch, now + peer_retry(watch.interval))

    def _job_seen(self, job_id: str, *, ended: bool) -> None:
        if self.shared is not None:
            self.shared.job_seen(job_id, ended=ended)

    # ------------------------------------------------------------------ one job at a time

    def _start_get(self, watch: JobWatch) -> None:
        """Queue one job for an individual request; up to `MAX_INFLIGHT` workers drain the queue."""
        watch.busy = True
        self._queue.append(watch)
        if len(self._workers) < MAX_INFLIGHT:
            task = self.loop.create_task(self._worker())
            self._workers.add(task)
            task.add_done_callback(self._workers.discard)

    async def _worker(self) -> None:
        queue = self._queue
        while queue:
            await self._get(queue.popleft())

    async def _get(self, watch: JobWatch) -> None:
        try:
            await self.pause.hold()
            if not watch.active:
                watch.busy = False
                return
            self.counters["gets"] += 1
            deadline = time.monotonic() + max(CALL_BUDGET, 2 * watch.interval)
            plan = self.hook._get_job(self.hook._check_job_id(watch.job_id))
            fetched_at = time.time()
            status = await self.hook.arun(plan, deadline=deadline)
            if self.shared is not None:
                await self.shared.publish_status(watch.job_id, status, fetched_at, watch.interval)
        except asyncio.CancelledError:
            watch.busy = False
            if self.closed or being_cancelled():
                raise
            self._on_error(watch, self._interrupted("get_job"))  # a stray one: a failed poll
        except Exception as exc:
            watch.busy = False
            if not isinstance(exc, JobStatusError | AirflowNotFoundException):
                log.warning("unexpected error polling job %s", watch.job_id, exc_info=True)
            if self.shared is not None:
                await self.shared.release_claim(watch.job_id)
            self._on_error(watch, exc)
        else:
            watch.busy = False
            if watch.poked_at <= fetched_at:
                watch.poked_at = 0.0
            self._on_status(watch, status)

    def _on_status(self, watch: JobWatch, status: JobStatus) -> None:
        if not watch.active:
            return
        watch.errors = 0
        watch.peer_waits = 0
        watch.last_status = status.raw_status
        self._job_seen(watch.job_id, ended=status.is_terminal)
        if status.is_terminal:
            self._resolve(watch, Outcome(job=status))
            return
        self._note_unknown(watch, status.state, status.raw_status)
        self._schedule(watch, self.loop.time() + jittered(self._next_interval(watch)))

    def _next_interval(self, watch: JobWatch) -> float:
        """After a non-terminal answer: the push safety net while push is healthy (push/hub_link.py)."""
        return self.push.interval(watch) if self.push is not None else watch.interval

    def _note_unknown(self, watch: JobWatch, state: JobState, raw_status: str | None) -> None:
        if state is JobState.UNKNOWN and not watch.unknown_logged:
            watch.unknown_logged = True
            log.warning(
                "%s job %s reports the undocumented status %r; it is not treated as success, "
                "waiting on (logged once per job)",
                self.spec.display_name,
                watch.job_id,
                raw_status,
            )

    def _on_error(self, watch: JobWatch, exc: Exception) -> None:
        if not watch.active:
            return
        self.counters["errors"] += 1
        message = describe(exc)
        if is_permanent(exc):
            self._resolve(
                watch, Outcome(error=message, last_status=watch.last_status, error_type=permanent_type(exc))
            )
            return
        if isinstance(exc, RateLimitedError):
            self.pause.extend(exc.retry_after if exc.retry_after is not None else watch.interval)
        if isinstance(exc, RequestBudgetExhaustedError):
            # Nothing was sent and nothing failed: poll again once the budget has refilled
            # (the limiter logs the spell once).
            self._schedule(watch, max(self.pause.until, self.loop.time() + jittered(watch.interval)))
            return
        watch.errors += 1
        watch.last_error = message
        for waiter in [w for w in watch.waiters if watch.errors >= w.max_errors]:
            waiter.deliver(
                Outcome(
                    error=(
                        f"gave up on {self.spec.display_name} job {watch.job_id} after {watch.errors} "
                        f"consecutive failed polls (max_consecutive_errors={waiter.max_errors}); "
                        f"last error: {message}"
                    ),
                    last_status=watch.last_status,
                )
            )
            watch.waiters.discard(waiter)
            waiter.watch = None
        if not watch.waiters:
            self._drop(watch)
            if not self.watches:
                self._close()
            return
        log.debug(
            "%s job %s: poll failed (%d in a row): %s",
            self.spec.display_name,
            watch.job_id,
            watch.errors,
            message,
        )
        now = self.loop.time()
        if now >= self._next_error_log:
            self._next_error_log = now + ERROR_LOG_EVERY
            log.warning(
                "%s connection %r: a poll failed (job %s, %d in a row; %d failed polls so far), "
                "polling again in about %.0fs: %s",
                self.spec.display_name,
                self.conn_id,
                watch.job_id,
                watch.errors,
                self.counters["errors"],
                watch.interval,
                message,
            )
        self._schedule(watch, now + jittered(watch.interval))

    def _interrupted(self, operation: str) -> ServiceError:
        """What a stray `CancelledError` (not this poller's own) counts as: a transient failure."""
        return ServiceError(
            "the request was interrupted by a cancellation that was not this wait's",
            service=self.spec.display_name,
            operation=operation,
        )


def _wake_sleeper(sleeper: asyncio.Future[None]) -> None:
    if not sleeper.done():
        sleeper.set_result(None)
