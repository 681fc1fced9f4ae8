"""Client-side rate limits shared by everything that uses one connection in a process.

A limiter hands out send times ("slots") spaced 1/rate apart, so a waiter costs one timer and no
polling however many wait, and no window of one second ever holds more than rate+1 requests.
A 429's Retry-After pauses the whole connection: every later slot moves past the pause.

A connection may also have a per-day budget (``max_requests_per_day``): the limiter remembers the
send times of the last 24 hours (``request_budget_window``) and, once the budget is spent, refuses at once with
`BudgetExhausted` (saying when a request frees up) instead of sleeping for hours; waits hold until
then (see `RequestBudgetExhaustedError`). The budget counts the requests of one process: with
``[jobstatus] redis_url`` set, `airflow_jobstatus.shared.budget` counts those of the whole
deployment and uses these limiters only while Redis is unreachable.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import weakref
from collections import deque

log = logging.getLogger(__name__)

DAY = 86400.0


def window_text(window: float) -> str:
    """A budget window as messages name it: ``24 h`` for the usual day."""
    return "24 h" if window == DAY else f"{window:g} s"


class DeadlineExceeded(Exception):
    """The next send slot lies beyond the caller's deadline."""


class BudgetExhausted(DeadlineExceeded):
    """The connection's per-day request budget is spent; a request frees up in ``retry_in`` seconds."""

    def __init__(self, message: str, retry_in: float) -> None:
        super().__init__(message)
        self.retry_in = retry_in


class _Schedule:
    __slots__ = (
        "exhausted_logged",
        "interval",
        "key",
        "next_free",
        "paused_until",
        "per_day",
        "sent",
        "window",
    )

    def __init__(self, rate: float, per_day: int = 0, key: str = "", window: float = DAY) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.window = window
        self.next_free = 0.0
        self.paused_until = 0.0
        self.per_day = per_day
        self.key = key
        self.sent: deque[float] = deque()
        """Send slots of the last ``window`` seconds (only kept when there is a per-day budget)."""
        self.exhausted_logged = False

    def reserve(self, now: float, deadline: float | None = None) -> float:
        """Reserve the next slot; return when it is (monotonic seconds).

        Raises `BudgetExhausted` when the day's budget is spent and `DeadlineExceeded` when the
        slot lies past ``deadline``; neither reserves anything.
        """
        slot = max(now, self.paused_until, self.next_free)
        if self.per_day > 0:
            while self.sent and self.sent[0] <= slot - self.window:
                self.sent.popleft()
            if len(self.sent) >= self.per_day:
                retry_in = self.sent[0] + self.window - now
                if not self.exhausted_logged:  # once per spell, not once per refused request
                    self.exhausted_logged = True
                    log.warning(
                        "connection %s: its request budget of %d per %s ('max_requests_per_day') "
                        "is spent; no request is sent and waits hold until one frees up in %.0f s",
                        self.key,
                        self.per_day,
                        window_text(self.window),
                        retry_in,
                    )
                raise BudgetExhausted(
                    f"the connection's request budget of {self.per_day} per {window_text(self.window)} is spent; "
                    f"the next request frees up in {retry_in:.0f}s",
                    retry_in,
                )
        if deadline is not None and slot > deadline:
            raise DeadlineExceeded(f"the next request slot is {slot - now:.1f}s away, past the deadline")
        self.next_free = slot + self.interval
        if self.per_day > 0:
            self.sent.append(slot)
            self.exhausted_logged = False
        return slot

    def pause(self, until: float) -> None:
        self.paused_until = max(self.paused_until, until)


class AsyncRateLimiter:
    """Rate limit for one connection within one event loop (no lock needed: one thread)."""

    def __init__(self, rate: float, per_day: int = 0, key: str = "", window: float = DAY) -> None:
        self.rate = rate
        self._schedule = _Schedule(rate, per_day, key, window)

    async def acquire(self, deadline: float | None = None) -> None:
        now = time.monotonic()
        slot = self._schedule.reserve(now, deadline)
        if slot > now:
            await asyncio.sleep(slot - now)

    def pause(self, seconds: float) -> None:
        self._schedule.pause(time.monotonic() + seconds)

    @property
    def paused_for(self) -> float:
        return max(0.0, self._schedule.paused_until - time.monotonic())


class SyncRateLimiter:
    """Rate limit for one connection across the threads of a process."""

    def __init__(self, rate: float, per_day: int = 0, key: str = "", window: float = DAY) -> None:
        self.rate = rate
        self._schedule = _Schedule(rate, per_day, key, window)
        self._lock = threading.Lock()

    def acquire(self, deadline: float | None = None) -> None:
        now = time.monotonic()
        with self._lock:
            slot = self._schedule.reserve(now, deadline)
        if slot > now:
            time.sleep(slot - now)

    def pause(self, seconds: float) -> None:
        with self._lock:
            self._schedule.pause(time.monotonic() + seconds)


_LimiterKey = tuple[str, float, int, float]
_async_limiters: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[_LimiterKey, AsyncRateLimiter]]
_async_limiters = weakref.WeakKeyDictionary()
_sync_limiters: dict[_LimiterKey, SyncRateLimiter] = {}
_sync_lock = threading.Lock()


def async_limiter(key: str, rate: float, per_day: int = 0, window: float = DAY) -> AsyncRateLimiter:
    """The limiter every coroutine of the running event loop shares for connection ``key``."""
    per_loop = _async_limiters.setdefault(asyncio.get_running_loop(), {})
    limiter = per_loop.get((key, rate, per_day, window))
    if limiter is None:
        limiter = per_loop[(key, rate, per_day, window)] = AsyncRateLimiter(rate, per_day, key, window)
    return limiter


def sync_limiter(key: str, rate: float, per_day: int = 0, window: float = DAY) -> SyncRateLimiter:
    """The limiter every thread of this process shares for connection ``key``."""
    with _sync_lock:
        limiter = _sync_limiters.get((key, rate, per_day, window))
        if limiter is None:
            limiter = _sync_limiters[(key, rate, per_day, window)] = SyncRateLimiter(
                rate, per_day, key, window
            )
        return limiter
