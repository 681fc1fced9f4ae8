"""The poll hub: every wait of one event loop shares the polling of its connection.

A triggerer runs all its triggers as tasks of one asyncio loop. Instead of each trigger polling on
its own, `JobStatusTrigger.run()` registers a *waiter* here and awaits its outcome. The hub keeps
one `ConnectionPoller` per ``(service, connection id)`` that owns every request for that connection:

* **Coalescing:** waiters on the same job share one `JobWatch`; one request per interval answers
  them all (the watch polls at the shortest interval among its waiters).
* **Batching:** for services with a list endpoint (Daily, Wasabi AiR) a *sweep* reads the account's
  jobs newest first, page by page (100 per page, the hooks' light ``_list_states`` plan: id and
  status only), and answers every watched job it sees; only jobs that turned terminal are then
  fetched in full (``_get_job``), to get their outputs and error text.
  A sweep is chosen when the connection watches at least `LIST_MIN_WATCHES` jobs and the pages it is
  expected to need (the last sweep's count) are fewer than the jobs due within half an interval,
  i.e. when listing sends fewer requests than polling each job. Paging stops when every watched
  job was seen, the list ends, the page budget (never more pages than the requests it replaces) is
  spent, or every job still unseen was seen in an earlier sweep and the pages are already older
  than where the oldest of them was last found (they were deleted or moved; a GET tells). Jobs a
  sweep did not see are polled one by one. When listing does not pay, the estimate decays by a
  page per interval so that listing is tried again later; a permanent error from the list endpoint
  turns listing off for the connection.
* **Politeness:** requests go through the connection's `ServiceClient`, whose rate limiter
  (``max_requests_per_second``) is shared by everything of that connection in the loop. A 429 pauses
  the whole connection inside the client; when a call still ends in `RateLimitedError`, the poller
  also holds every poll of the connection for its ``retry_after`` (or one interval). When the
  connection's own per-day budget is spent (`RequestBudgetExhaustedError`, nothing was sent), every
  poll is held until it refills and the failed poll is not counted as an error: waits keep waiting.
* **Jitter:** every interval is drawn from ``interval * [0.9, 1.1]``. The first poll of a new watch
  comes one (jittered) interval after registration, and never less than `MIN_FIRST_EVENT_DELAY`
  seconds; no waiter gets an outcome before that delay either (a trigger firing within about a
  second of deferral can leave the task FAILED in Airflow 3.3.2, apache/airflow #71580).
* **Errors:** transient errors (`RateLimitedError`, `ServiceError`, `ServiceUnreachableError`,
  `MalformedResponseError`, and anything unexpected) only count: a waiter ends with an error after
  its ``max_consecutive_errors`` consecutive failed polls. Permanent errors (`AuthenticationError`,
  `NotFoundError`, `InvalidParameterError`, `BadRequestError`) end every waiter of the job at once.
  ``unknown`` states are never a success: the job keeps being polled (logged once per job).

Nothing here blocks: connections are read by the hooks with Airflow's async API, once per loop and
connection. When the last waiter of a connection leaves (outcome, deadline or cancellation), its
poller stops and its in-flight requests are cancelled.
"""

from __future__ import annotations

import asyncio
import heapq
import importlib
import itertools
import logging
import math
import random
import time
import weakref
from collections import deque
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

from airflow.sdk.exceptions import AirflowNotFoundException

from airflow_jobstatus.exceptions import (
    AuthenticationError,
    BadRequestError,
    InvalidParameterError,
    JobStatusError,
    NotFoundError,
    RateLimitedError,
    RequestBudgetExhaustedError,
    ServiceError,
)
from airflow_jobstatus.hooks.base import being_cancelled
from airflow_jobstatus.http.redaction import scrub
from airflow_jobstatus.models import JobState, JobStatus
from airflow_jobstatus.push.hub_link import PushLink
from airflow_jobstatus.services import SERVICES, ServiceSpec

log = logging.getLogger(__name__)

LIST_MIN_WATCHES = 5
"""A connection lists jobs (Daily, Wasabi AiR) only when it watches at least this many jobs."""
LIST_PAGE_SIZE = 100
SWEEP_HORIZON = 0.5
"""Jobs due within this fraction of their interval count towards (and are answered by) a sweep."""
JITTER = 0.1
MIN_FIRST_EVENT_DELAY = 2.0
"""No waiter gets an outcome (nor sends its first poll) sooner than this after it registered."""
MAX_INFLIGHT = 32
"""Individual job requests in flight per connection (the rate limiter spaces them further)."""
GATHER = 0.05
"""Jobs due within this many seconds are polled in the same round."""
CALL_BUDGET = 120.0
"""Seconds one poll may take, retries and Retry-After waits included."""
ERROR_LOG_EVERY = 30.0
"""Failed polls are logged as warnings at most this often per connection (each one at debug level)."""

PERMANENT_ERRORS: tuple[type[JobStatusError], ...] = (
    AuthenticationError,
    NotFoundError,
    InvalidParameterError,
    BadRequestError,
)

_rng = random.Random()


def is_permanent(exc: BaseException) -> bool:
    """Errors no retry can fix: they end a wait at once (a missing connection is one of them)."""
    return isinstance(exc, (*PERMANENT_ERRORS, AirflowNotFoundException))


def permanent_type(exc: BaseException) -> str | None:
    """The name of the typed permanent error ``exc`` is (None for anything else)."""
    return next((cls.__name__ for cls in PERMANENT_ERRORS if isinstance(exc, cls)), None)


def describe(exc: BaseException) -> str:
    """An error's message for an event: typed errors' text is already redacted and complete."""
    if isinstance(exc, JobStatusError):
        return str(exc)
    return scrub(f"{type(exc).__name__}: {exc}")


def jittered(interval: float) -> float:
    return interval * (1.0 + JITTER * (2.0 * _rng.random() - 1.0))


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
        self.unknown_logged = False


def _hook_for(spec: ServiceSpec, conn_id: str) -> Any:
    module, _, name = spec.hook_class.rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    return cls(**{spec.conn_id_kwarg: conn_id})


class ConnectionPoller:
    """Every poll of one (service, connection) in one event loop."""

    def __init__(self, hub: PollHub, service: str, conn_id: str) -> None:
        self.hub = hub
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
        self.paused_until = 0.0
        self.closed = False
        # listing (Daily, Wasabi AiR)
        self.can_list = self.spec.has_list_endpoint
        self.sweep_pages: float | None = None
        """Pages the last sweep needed (None: never swept)."""
        self._oldest_page = 0
        """Page on which the last sweep found its last watched job."""
        self._list_retry_at = 0.0
        self._next_error_log = 0.0
        self.counters = {"sweeps": 0, "pages": 0, "gets": 0, "errors": 0}
        self.push = PushLink.for_poller(self)  # None unless [jobstatus] redis_url is set
        self.task = self.loop.create_task(self._run(), name=f"jobstatus-poller-{service}-{conn_id}")

    def __repr__(self) -> str:
        return f"ConnectionPoller({self.service}, {self.conn_id!r}, watches={len(self.watches)})"

    # ------------------------------------------------------------------ waiters

    def add(self, waiter: Waiter) -> None:
        watch = self.watches.get(waiter.job_id)
        now = self.loop.time()
        first_due = now + max(MIN_FIRST_EVENT_DELAY, jittered(waiter.interval))
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
        self.hub._forget(self)
        if self.push is not None:
            self.push.close()
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
                target = max(due, self.paused_until)
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

    def _listing_considered(self, now: float) -> bool:
        return self.can_list and len(self.watches) >= LIST_MIN_WATCHES and now >= self._list_retry_at

    async def _round(self, now: float) -> None:
        first = self._heap[0][2]
        listing = self._listing_considered(now)
        horizon = now + (SWEEP_HORIZON * first.interval if listing else GATHER)
        popped = self._pop_due(horizon)
        if not popped:
            return
        if listing:
            estimate = self.sweep_pages
            if estimate is None:
                estimate = math.ceil(len(self.watches) / LIST_PAGE_SIZE)
            if estimate < len(popped):
                await self._sweep(popped)
                return
            # Listing does not pay now; look again after an interval, with a lower estimate.
            self._list_retry_at = now + first.interval
            if self.sweep_pages is not None:
                self.sweep_pages = max(1.0, self.sweep_pages - 1)
        ready = now + GATHER
        for due, watch in popped:
            if due <= ready:
                self._start_get(watch)
            else:
                self._schedule(watch, due)

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
            pause = self.paused_until - self.loop.time()
            if pause > 0:
                await asyncio.sleep(pause)
            if not watch.active:
                watch.busy = False
                return
            self.counters["gets"] += 1
            deadline = time.monotonic() + max(CALL_BUDGET, 2 * watch.interval)
            plan = self.hook._get_job(self.hook._check_job_id(watch.job_id))
            status = await self.hook.arun(plan, deadline=deadline)
        except asyncio.CancelledError:
            watch.busy = False
            if self.closed or being_cancelled():
                raise
            self._on_error(watch, self._interrupted("get_job"))  # a stray one: a failed poll
        except Exception as exc:
            watch.busy = False
            if not isinstance(exc, JobStatusError | AirflowNotFoundException):
                log.warning("unexpected error polling job %s", watch.job_id, exc_info=True)
            self._on_error(watch, exc)
        else:
            watch.busy = False
            self._on_status(watch, status)

    def _on_status(self, watch: JobWatch, status: JobStatus) -> None:
        if not watch.active:
            return
        watch.errors = 0
        watch.last_status = status.raw_status
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
            self._pause(exc.retry_after if exc.retry_after is not None else watch.interval)
        if isinstance(exc, RequestBudgetExhaustedError):
            # Nothing was sent and nothing failed: poll again once the budget has refilled
            # (the limiter logs the spell once).
            self._schedule(watch, max(self.paused_until, self.loop.time() + jittered(watch.interval)))
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

    def _pause(self, seconds: float) -> None:
        until = self.loop.time() + max(0.0, seconds)
        if until > self.paused_until:
            self.paused_until = until
            log.info(
                "%s connection %r rate limited: holding every poll for %.1fs",
                self.spec.display_name,
                self.conn_id,
                seconds,
            )

    # ------------------------------------------------------------------ sweeps (list endpoints)

    def _list_plan(
        self, cursor: Any
    ) -> Generator[Any, Any, tuple[list[tuple[str, JobState, str | None]], Any]]:
        """One page of ``(job id, state, service status)``, newest first (the hook's light listing)."""
        plan: Generator[Any, Any, tuple[list[tuple[str, JobState, str | None]], Any]]
        plan = self.hook._list_states(cursor, page_size=LIST_PAGE_SIZE)
        return plan

    async def _sweep(self, popped: list[tuple[float, JobWatch]]) -> None:
        """List the account newest first and answer every watched job seen."""
        self.counters["sweeps"] += 1
        unseen = set(self.watches)
        unlisted = sum(1 for job_id in unseen if not self.watches[job_id].listed)
        budget = max(1, len(popped) - 1)
        pages = 0
        last_found = 0
        cursor: Any = None
        terminal: list[JobWatch] = []
        try:
            while True:
                pause = self.paused_until - self.loop.time()
                if pause > 0:
                    await asyncio.sleep(pause)
                deadline = time.monotonic() + CALL_BUDGET
                jobs, cursor = await self.hook.arun(self._list_plan(cursor), deadline=deadline)
                pages += 1
                self.counters["pages"] += 1
                now = self.loop.time()
                for job_id, state, raw_status in jobs:
                    if job_id not in unseen:
                        continue
                    unseen.discard(job_id)
                    last_found = pages
                    watch = self.watches.get(job_id)
                    if watch is None or not watch.active:
                        continue
                    if not watch.listed:
                        watch.listed = True
                        unlisted -= 1
                    if watch.busy:
                        continue
                    watch.errors = 0
                    watch.last_status = raw_status
                    if state.is_terminal:
                        watch.due = None  # fetched in full below
                        terminal.append(watch)
                    else:
                        self._note_unknown(watch, state, raw_status)
                        self._schedule(watch, now + jittered(self._next_interval(watch)))
                if not unseen or cursor is None or pages >= budget:
                    break
                if unlisted <= 0 and self._oldest_page and pages > self._oldest_page:
                    break  # older than where the oldest watched job was: the rest vanished or moved
        except BaseException as exc:
            failure: Exception
            if isinstance(exc, asyncio.CancelledError):
                if self.closed or being_cancelled():
                    raise
                failure = self._interrupted("list_jobs")  # a stray one: a failed listing
            elif isinstance(exc, Exception):
                failure = exc
                if not isinstance(exc, JobStatusError | AirflowNotFoundException):
                    log.warning("unexpected error listing %s jobs", self.spec.display_name, exc_info=True)
            else:
                raise
            for watch in terminal:  # seen finished before the failure: fetch them in full all the same
                if watch.active and not watch.busy and watch.due is None:
                    self._start_get(watch)
            self._sweep_failed(popped, failure)
            return
        self.sweep_pages = float(pages if (not unseen or cursor is None) else pages + 1)
        self._oldest_page = last_found
        for watch in terminal:
            if watch.active:
                self._start_get(watch)
        ready = self.loop.time() + GATHER
        for due, watch in popped:
            if not watch.active or watch.busy or watch.due is not None or watch.job_id not in unseen:
                continue
            if due <= ready:
                self._start_get(watch)
            else:
                self._schedule(watch, due)

    def _sweep_failed(self, popped: list[tuple[float, JobWatch]], exc: Exception) -> None:
        if is_permanent(exc):
            # The list endpoint refuses us (e.g. a key allowed to read jobs but not list them):
            # stop listing on this connection and poll each job, whose own answer decides.
            self.can_list = False
            log.warning(
                "%s connection %r: listing jobs failed (%s); polling each job instead",
                self.spec.display_name,
                self.conn_id,
                exc,
            )
            for _, watch in popped:
                if watch.active and not watch.busy and watch.due is None:
                    self._start_get(watch)
            return
        for _, watch in popped:
            if watch.active and not watch.busy and watch.due is None:
                self._on_error(watch, exc)


def _wake_sleeper(sleeper: asyncio.Future[None]) -> None:
    if not sleeper.done():
        sleeper.set_result(None)


class PollHub:
    """The registry of connection pollers of one event loop (`PollHub.current()`)."""

    def __init__(self) -> None:
        self.pollers: dict[tuple[str, str], ConnectionPoller] = {}

    @classmethod
    def current(cls) -> PollHub:
        loop = asyncio.get_running_loop()
        hub = _hubs.get(loop)
        if hub is None:
            hub = _hubs[loop] = cls()
        return hub

    def poller(self, service: str, conn_id: str) -> ConnectionPoller:
        key = (service, conn_id)
        poller = self.pollers.get(key)
        if poller is None or poller.closed:
            poller = self.pollers[key] = ConnectionPoller(self, service, conn_id)
        return poller

    def _forget(self, poller: ConnectionPoller) -> None:
        key = (poller.service, poller.conn_id)
        if self.pollers.get(key) is poller:
            del self.pollers[key]

    async def wait(
        self,
        *,
        service: str,
        conn_id: str,
        job_id: str,
        poll_interval: float,
        deadline: float,
        max_consecutive_errors: int,
    ) -> Outcome:
        """Wait for the job's terminal status, an error, or the wall-clock ``deadline`` (epoch s)."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        not_before = now + MIN_FIRST_EVENT_DELAY
        future: asyncio.Future[Outcome] = loop.create_future()
        waiter = Waiter(job_id, poll_interval, max_consecutive_errors, not_before, future)
        poller = self.poller(service, conn_id)
        poller.add(waiter)
        at = max(now + (deadline - time.time()), not_before)
        timer = loop.call_at(at, _time_out, waiter)
        try:
            return await future
        finally:
            timer.cancel()
            poller.remove(waiter)


def _time_out(waiter: Waiter) -> None:
    watch = waiter.watch
    _set_result(waiter.future, Outcome(timed_out=True, last_status=watch.last_status if watch else None))


_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, PollHub] = weakref.WeakKeyDictionary()
