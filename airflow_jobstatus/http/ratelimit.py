"""Client-side rate limits shared by everything that uses one connection in a process.

A limiter hands out send times ("slots") spaced 1/rate apart, so a waiter costs one timer and no
polling however many wait, and no window of one second ever holds more than rate+1 requests.
A 429's Retry-After pauses the whole connection: every later slot moves past the pause.
"""

from __future__ import annotations

import asyncio
import threading
import time
import weakref


class DeadlineExceeded(Exception):
    """The next send slot lies beyond the caller's deadline."""


class _Schedule:
    __slots__ = ("interval", "next_free", "paused_until")

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.next_free = 0.0
        self.paused_until = 0.0

    def reserve(self, now: float) -> float:
        """Reserve the next slot; return when it is (monotonic seconds)."""
        slot = max(now, self.paused_until, self.next_free)
        self.next_free = slot + self.interval
        return slot

    def pause(self, until: float) -> None:
        self.paused_until = max(self.paused_until, until)


class AsyncRateLimiter:
    """Rate limit for one connection within one event loop (no lock needed: one thread)."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self._schedule = _Schedule(rate)

    async def acquire(self, deadline: float | None = None) -> None:
        now = time.monotonic()
        slot = self._schedule.reserve(now)
        if deadline is not None and slot > deadline:
            raise DeadlineExceeded(f"the next request slot is {slot - now:.1f}s away, past the deadline")
        if slot > now:
            await asyncio.sleep(slot - now)

    def pause(self, seconds: float) -> None:
        self._schedule.pause(time.monotonic() + seconds)

    @property
    def paused_for(self) -> float:
        return max(0.0, self._schedule.paused_until - time.monotonic())


class SyncRateLimiter:
    """Rate limit for one connection across the threads of a process."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self._schedule = _Schedule(rate)
        self._lock = threading.Lock()

    def acquire(self, deadline: float | None = None) -> None:
        now = time.monotonic()
        with self._lock:
            slot = self._schedule.reserve(now)
        if deadline is not None and slot > deadline:
            raise DeadlineExceeded(f"the next request slot is {slot - now:.1f}s away, past the deadline")
        if slot > now:
            time.sleep(slot - now)

    def pause(self, seconds: float) -> None:
        with self._lock:
            self._schedule.pause(time.monotonic() + seconds)


_async_limiters: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[tuple[str, float], AsyncRateLimiter]
]
_async_limiters = weakref.WeakKeyDictionary()
_sync_limiters: dict[tuple[str, float], SyncRateLimiter] = {}
_sync_lock = threading.Lock()


def async_limiter(key: str, rate: float) -> AsyncRateLimiter:
    """The limiter every coroutine of the running event loop shares for connection ``key``."""
    per_loop = _async_limiters.setdefault(asyncio.get_running_loop(), {})
    limiter = per_loop.get((key, rate))
    if limiter is None:
        limiter = per_loop[(key, rate)] = AsyncRateLimiter(rate)
    return limiter


def sync_limiter(key: str, rate: float) -> SyncRateLimiter:
    """The limiter every thread of this process shares for connection ``key``."""
    with _sync_lock:
        limiter = _sync_limiters.get((key, rate))
        if limiter is None:
            limiter = _sync_limiters[(key, rate)] = SyncRateLimiter(rate)
        return limiter
