"""One check for every event-loop test: no callback may hold the loop too long.

A trigger runs inside the triggerer's event loop next to thousands of others, so a callback that
computes for long, or blocks on ``time.sleep`` or synchronous I/O, stalls all of them. Asyncio's own
debug-mode check (``slow_callback_duration``) measures *wall* time. On a machine shared by several
test runs, wall time also counts the time other processes had the CPU: a 20 ms callback was seen to
take 250 ms, and tests failed on code that did nothing wrong. This module measures what the callback
itself did instead:

* **CPU time** (limit 50 ms by default): the loop thread's time on a CPU during the callback. Being
  preempted does not add to it; computing too long does.
* **Blocked time** (limit 100 ms, half the triggerer's 0.2 s blocked-loop warning): wall time minus
  CPU time minus the time the thread was runnable but waiting for a CPU (Linux's per-thread
  ``/proc/thread-self/schedstat``). Sleeping and synchronous I/O show here; preemption does not.

Where schedstat is unavailable (not Linux, or a kernel without schedstats) only CPU time
(``time.thread_time``) is checked: blocked time cannot be told apart from preemption there, and
checking wall time would bring the flaky failures back. `LoopReport.blocked_measured` says which.

One thing schedstat cannot tell apart: a callback that needs the GIL while another Python thread of
the test process holds it sleeps, and if that thread is itself preempted, the wait shows as blocked
time. Subtracting the other threads' run-queue wait was tried and rejected: a CPU-busy thread then
hid a real ``time.sleep`` in the loop. Tests that run helper threads keep them mostly waiting on I/O.

Garbage collection belongs to the interpreter, not to the callback it happens to land in: a full
collection of a test's thousands of live triggers took 53-146 ms of CPU and was blamed on whichever
hub step triggered it. Collection time (``gc.callbacks``, loop thread only) is therefore taken out
of the callback's CPU time and reported on its own (`LoopReport.max_gc`).

Asyncio's debug mode stays on (it also catches never-awaited coroutines and calls from the wrong
thread); its wall-time "Executing ... took" reports are counted in the report, not failed on.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")

CPU_LIMIT = 0.05
"""CPU seconds one callback may use."""
BLOCKED_LIMIT = 0.1
"""Seconds one callback may spend blocked: half the triggerer's 0.2 s blocked-loop warning."""
WALL_REPORT = 0.2
"""asyncio's own debug-mode report threshold (wall time): counted, never failed on."""
SCHEDSTAT = "/proc/thread-self/schedstat"


def is_wall_report(logger: str, message: str) -> bool:
    """Whether a log record is asyncio's debug-mode "Executing <handle> took N seconds" report."""
    return logger == "asyncio" and message.startswith("Executing") and " took " in message


@dataclass(frozen=True)
class SlowCallback:
    """One callback over a limit: what it was, and what it used (seconds)."""

    what: str
    cpu: float
    blocked: float | None
    wall: float

    def describe(self) -> str:
        blocked = "not measured" if self.blocked is None else f"{self.blocked * 1000:.0f} ms"
        return (
            f"{self.cpu * 1000:.0f} ms CPU, blocked {blocked} ({self.wall * 1000:.0f} ms wall): {self.what}"
        )


@dataclass
class LoopReport:
    """What one watched loop did: callback count, the largest figures, the callbacks over a limit."""

    cpu_limit: float
    blocked_limit: float
    blocked_measured: bool
    callbacks: int = 0
    max_cpu: float = 0.0
    max_blocked: float = 0.0
    max_wall: float = 0.0
    max_gc: float = 0.0
    """The longest garbage collection in the loop thread (CPU seconds; not counted against callbacks)."""
    slow: list[SlowCallback] = field(default_factory=list)
    wall_reports: int = 0
    """asyncio's wall-time reports (preemption included): a figure, not a failure."""

    def slowest(self) -> SlowCallback | None:
        """The callback furthest over its limit (relative to the limit), or None."""

        def excess(item: SlowCallback) -> float:
            return max(item.cpu / self.cpu_limit, (item.blocked or 0.0) / self.blocked_limit)

        return max(self.slow, key=excess, default=None)

    def summary(self) -> str:
        blocked = (
            f"most blocked {self.max_blocked * 1000:.1f} ms (limit {self.blocked_limit * 1000:.0f})"
            if self.blocked_measured
            else f"blocked time not measured (no {SCHEDSTAT})"
        )
        return (
            f"{self.callbacks} callbacks, most CPU {self.max_cpu * 1000:.1f} ms "
            f"(limit {self.cpu_limit * 1000:.0f}), {blocked}, longest wall {self.max_wall * 1000:.0f} ms, "
            f"longest garbage collection {self.max_gc * 1000:.0f} ms "
            f"({self.wall_reports} asyncio wall-time reports)"
        )

    def check(self) -> None:
        """Raise AssertionError naming the slowest callback if any callback exceeded a limit."""
        worst = self.slowest()
        if worst is not None:
            raise AssertionError(
                f"{len(self.slow)} callback(s) held the event loop too long; the slowest used "
                f"{worst.describe()} [{self.summary()}]"
            )


def _describe(handle: asyncio.Handle) -> str:
    """The handle's repr; for a task step, also the task (its repr names the coroutine)."""
    text = repr(handle)
    owner = getattr(getattr(handle, "_callback", None), "__self__", None)
    if isinstance(owner, asyncio.Future):
        text = f"step of {owner!r}: {text}"
    return text[:600]


class CallbackTimer:
    """Times every callback of the event loop run by the installing thread: CPU and blocked time.

    Installed by patching ``asyncio.Handle._run`` (every ``call_soon``/``call_later`` callback and
    every task step goes through it). Callbacks of loops in other threads are not timed.
    """

    def __init__(
        self,
        cpu_limit: float = CPU_LIMIT,
        blocked_limit: float = BLOCKED_LIMIT,
        *,
        schedstat: str = SCHEDSTAT,
    ) -> None:
        self.schedstat = schedstat
        self.report = LoopReport(cpu_limit, blocked_limit, blocked_measured=os.path.exists(schedstat))

    @contextmanager
    def installed(self) -> Iterator[LoopReport]:
        report = self.report
        original = asyncio.events.Handle._run
        loop_thread = threading.get_ident()
        fd = os.open(self.schedstat, os.O_RDONLY) if report.blocked_measured else None

        def sample() -> tuple[float, float, float]:
            """(wall, CPU, run-queue wait) in seconds, for this thread."""
            wall = time.perf_counter()
            if fd is None:
                return wall, time.thread_time(), 0.0
            on_cpu, waiting = os.pread(fd, 128, 0).split()[:2]
            return wall, int(on_cpu) / 1e9, int(waiting) / 1e9

        gc_cpu = [0.0, 0.0]  # total collection CPU in the loop thread; start of the current one

        def on_gc(phase: str, info: dict[str, Any]) -> None:
            if threading.get_ident() != loop_thread:
                return
            if phase == "start":
                gc_cpu[1] = time.thread_time()
            else:
                took = time.thread_time() - gc_cpu[1]
                gc_cpu[0] += took
                report.max_gc = max(report.max_gc, took)

        def timed(handle: asyncio.Handle) -> None:
            if threading.get_ident() != loop_thread:
                return original(handle)
            before = sample()
            collected = gc_cpu[0]
            try:
                return original(handle)
            finally:
                wall, on_cpu, queued = (b - a for a, b in zip(before, sample(), strict=True))
                cpu = max(0.0, on_cpu - (gc_cpu[0] - collected))
                blocked: float | None = None
                if fd is not None:
                    blocked = max(0.0, wall - on_cpu - queued)
                    report.max_blocked = max(report.max_blocked, blocked)
                report.callbacks += 1
                report.max_cpu = max(report.max_cpu, cpu)
                report.max_wall = max(report.max_wall, wall)
                if cpu > report.cpu_limit or (blocked or 0.0) > report.blocked_limit:
                    report.slow.append(SlowCallback(_describe(handle), cpu, blocked, wall))

        asyncio.events.Handle._run = timed  # type: ignore[method-assign,assignment]
        gc.callbacks.append(on_gc)
        try:
            yield report
        finally:
            gc.callbacks.remove(on_gc)
            asyncio.events.Handle._run = original  # type: ignore[method-assign]
            if fd is not None:
                os.close(fd)


class _WallReports(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if is_wall_report(record.name, record.getMessage()):
            self.count += 1


def run_watched(
    work: Awaitable[T] | Callable[[], Awaitable[T]],
    *,
    cpu_limit: float = CPU_LIMIT,
    blocked_limit: float = BLOCKED_LIMIT,
    wall_report: float = WALL_REPORT,
    check: bool = True,
) -> tuple[T, LoopReport]:
    """Run ``work`` (an awaitable, or a factory called inside the loop) in a watched debug-mode loop.

    Returns its result and the `LoopReport`. With ``check`` (the default) raises AssertionError
    naming the slowest callback when one exceeded a limit; ``check=False`` leaves that to the caller
    (the fault matrix prints it in its table). The heap that exists before the run (Airflow's
    modules, pytest) is frozen first: a full garbage collection of it (about 50 ms of CPU in a test
    process) lands in whichever callback happens to allocate and would be blamed on it.
    """
    timer = CallbackTimer(cpu_limit, blocked_limit)
    handler = _WallReports()
    logger = logging.getLogger("asyncio")
    level = logger.level
    logger.addHandler(handler)
    if not logger.isEnabledFor(logging.WARNING):
        logger.setLevel(logging.WARNING)

    async def main() -> T:
        asyncio.get_running_loop().slow_callback_duration = wall_report
        # its own task, so that a slow step's report names the test's coroutine, not `main`
        return await asyncio.ensure_future(work() if callable(work) else work)

    gc.collect()
    gc.freeze()
    try:
        with timer.installed() as report:
            result = asyncio.run(main(), debug=True)
    finally:
        gc.unfreeze()
        logger.removeHandler(handler)
        logger.setLevel(level)
    report.wall_reports = handler.count
    if check:
        report.check()
    return result, report


def run_checked(work: Awaitable[T] | Callable[[], Awaitable[T]], **limits: Any) -> T:
    """`run_watched` for tests that only want the result: fails on a slow callback."""
    return run_watched(work, **limits, check=True)[0]
