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
* **Across triggerers:** with ``[jobstatus] redis_url`` set, a poller first uses a status another
  triggerer fetched within the interval, and claims each fetch (a job, or a listing of the account)
  so that one triggerer asks the service and the others read its answer
  (`airflow_jobstatus.shared.status`). Without Redis, or while it fails, each triggerer polls alone.
* **Jitter:** every interval is drawn from ``interval * [0.9, 1.1]``. The first poll of a new watch
  comes one (jittered) interval after registration, and never less than `MIN_FIRST_EVENT_DELAY`
  seconds; no waiter gets an outcome before that delay either (a trigger firing within about a
  second of deferral can leave the task FAILED in Airflow 3.3.2, apache/airflow #71580).
* **Errors:** each error class says whether it is permanent (``permanent`` in
  `airflow_jobstatus.exceptions`, read by `is_permanent`). Transient errors (e.g. `RateLimitedError`,
  `ServiceError`, `MalformedResponseError`, and anything unexpected) only count: a waiter ends with
  an error after its ``max_consecutive_errors`` consecutive failed polls. Permanent errors (e.g.
  `AuthenticationError`, `NotFoundError`, a missing connection) end every waiter of the job at once.
  ``unknown`` states are never a success: the job keeps being polled (logged once per job).

Nothing here blocks: connections are read by the hooks with Airflow's async API, once per loop and
connection. When the last waiter of a connection leaves (outcome, deadline or cancellation), its
poller stops and its in-flight requests are cancelled.

Where each part lives: this module (`PollHub`, the registry and ``wait``), `waits` (`Waiter`,
`JobWatch`, `Outcome`), `poller` (`ConnectionPoller`: the schedule loop, polls, errors), `batching`
(sweeps of list endpoints), `pacing` (jitter, first-poll delay, the rate-limit pause); push
completion plugs in through `airflow_jobstatus.push.hub_link`, sharing across triggerers through
`airflow_jobstatus.shared.status`.
"""

from __future__ import annotations

import asyncio
import time
import weakref

from airflow_jobstatus.exceptions import PERMANENT_ERRORS, is_permanent, permanent_type
from airflow_jobstatus.triggers.batching import LIST_MIN_WATCHES, LIST_PAGE_SIZE, SWEEP_HORIZON
from airflow_jobstatus.triggers.pacing import (
    CALL_BUDGET,
    JITTER,
    MIN_FIRST_EVENT_DELAY,
    earliest_outcome,
    jittered,
)
from airflow_jobstatus.triggers.poller import ConnectionPoller
from airflow_jobstatus.triggers.waits import JobWatch, Outcome, Waiter, _set_result, describe

__all__ = [
    "CALL_BUDGET",
    "JITTER",
    "LIST_MIN_WATCHES",
    "LIST_PAGE_SIZE",
    "MIN_FIRST_EVENT_DELAY",
    "PERMANENT_ERRORS",
    "SWEEP_HORIZON",
    "ConnectionPoller",
    "JobWatch",
    "Outcome",
    "PollHub",
    "Waiter",
    "describe",
    "is_permanent",
    "jittered",
    "permanent_type",
]


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
            poller = self.pollers[key] = ConnectionPoller(service, conn_id, self._forget)
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
        not_before = earliest_outcome(now)
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
