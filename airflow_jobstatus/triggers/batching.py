"""Sweeps: answering many watched jobs of one connection from the service's list endpoint."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowNotFoundException

from airflow_jobstatus.exceptions import JobStatusError, is_permanent
from airflow_jobstatus.http.inflight import being_cancelled
from airflow_jobstatus.models import JobState
from airflow_jobstatus.triggers.pacing import CALL_BUDGET, GATHER, Pause, jittered
from airflow_jobstatus.triggers.waits import JobWatch

if TYPE_CHECKING:
    from airflow_jobstatus.exceptions import ServiceError
    from airflow_jobstatus.services import ServiceSpec
    from airflow_jobstatus.shared.status import SharedStatus

log = logging.getLogger("airflow_jobstatus.triggers.hub")  # one logger for the whole poll hub

LIST_MIN_WATCHES = 5
"""A connection lists jobs (Daily, Wasabi AiR) only when it watches at least this many jobs."""
LIST_PAGE_SIZE = 100
SWEEP_HORIZON = 0.5
"""Jobs due within this fraction of their interval count towards (and are answered by) a sweep."""


class Sweeping:
    """The list-endpoint part of `ConnectionPoller` (mixed in)."""

    if TYPE_CHECKING:
        loop: asyncio.AbstractEventLoop
        spec: ServiceSpec
        conn_id: str
        hook: Any
        watches: dict[str, JobWatch]
        pause: Pause
        closed: bool
        can_list: bool
        sweep_pages: float | None
        _oldest_page: int
        _list_retry_at: float
        counters: dict[str, int]
        shared: SharedStatus | None

        def _schedule(self, watch: JobWatch, due: float) -> None: ...
        def _start_get(self, watch: JobWatch) -> None: ...
        def _on_error(self, watch: JobWatch, exc: Exception) -> None: ...
        def _note_unknown(self, watch: JobWatch, state: JobState, raw_status: str | None) -> None: ...
        def _next_interval(self, watch: JobWatch) -> float: ...
        def _interrupted(self, operation: str) -> ServiceError: ...

    def _init_sweeps(self) -> None:
        self.can_list = self.spec.has_list_endpoint
        self.sweep_pages = None
        """Pages the last sweep needed (None: never swept)."""
        self._oldest_page = 0
        """Page on which the last sweep found its last watched job."""
        self._list_retry_at = 0.0

    def _listing_considered(self, now: float) -> bool:
        return self.can_list and len(self.watches) >= LIST_MIN_WATCHES and now >= self._list_retry_at

    def _sweep_pays(self, popped: list[tuple[float, JobWatch]], now: float, interval: float) -> bool:
        """A sweep is expected to need fewer pages than the jobs due (each an individual request)."""
        estimate = self.sweep_pages
        if estimate is None:
            estimate = math.ceil(len(self.watches) / LIST_PAGE_SIZE)
        if estimate < len(popped):
            return True
        # Listing does not pay now; look again after an interval, with a lower estimate.
        self._list_retry_at = now + interval
        if self.sweep_pages is not None:
            self.sweep_pages = max(1.0, self.sweep_pages - 1)
        return False

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
                await self.pause.hold()
                deadline = time.monotonic() + CALL_BUDGET
                listed_at = time.time()
                jobs, cursor = await self.hook.arun(self._list_plan(cursor), deadline=deadline)
                pages += 1
                self.counters["pages"] += 1
                if self.shared is not None:
                    await self._share_listing(jobs, listed_at, popped)
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

    async def _share_listing(
        self,
        jobs: list[tuple[str, JobState, str | None]],
        listed_at: float,
        popped: list[tuple[float, JobWatch]],
    ) -> None:
        """Share every running job of the page with the other triggerers (an ended job's full
        status comes from its own request, which is shared in turn)."""
        from airflow_jobstatus.shared.status import Record

        assert self.shared is not None
        interval = min((w.interval for _, w in popped), default=1.0)
        records = [
            (job_id, Record(listed_at, state, raw_status))
            for job_id, state, raw_status in jobs
            if not state.is_terminal
        ]
        await self.shared.publish(records, interval)

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
