"""The slow-callback check can fail: CPU burnt and time blocked inside a callback are caught, waiting
in the loop is not, and under machine load the verdict does not change (it never reads wall time).
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from tests.helpers.loop_watch import SCHEDSTAT, CallbackTimer, run_checked, run_watched

pytestmark = pytest.mark.unit

needs_schedstat = pytest.mark.skipif(
    not os.path.exists(SCHEDSTAT), reason=f"no {SCHEDSTAT}: blocked time is not measured here"
)


def burn_cpu(seconds: float) -> None:
    """Busy loop until this thread has used ``seconds`` of CPU (not wall: the machine may be loaded)."""
    start = time.thread_time()
    while time.thread_time() - start < seconds:
        pass


async def cpu_hog() -> str:
    await asyncio.sleep(0)
    burn_cpu(0.08)
    return "done"


async def sleeper() -> str:
    await asyncio.sleep(0)
    time.sleep(0.15)  # noqa: ASYNC251 - the blocking call this check exists to catch
    return "done"


async def polite() -> str:
    await asyncio.sleep(0.2)
    return "done"


def test_a_callback_burning_80_ms_of_cpu_fails_naming_it() -> None:
    with pytest.raises(AssertionError) as failure:
        run_watched(cpu_hog)
    message = str(failure.value)
    assert "cpu_hog()" in message  # the task step's repr names the coroutine
    assert "held the event loop too long" in message
    cpu_ms = float(message.split("slowest used ", 1)[1].split(" ms CPU", 1)[0])
    assert cpu_ms >= 80


def test_a_plain_callback_is_named_too() -> None:
    async def schedule() -> None:
        asyncio.get_running_loop().call_soon(burn_cpu, 0.08)
        await asyncio.sleep(0.01)

    with pytest.raises(AssertionError, match=r"burn_cpu\(0\.08\)"):
        run_checked(schedule)


@needs_schedstat
def test_a_callback_blocking_150_ms_in_time_sleep_fails_as_blocked() -> None:
    result, report = run_watched(sleeper, check=False)
    assert result == "done"
    worst = report.slowest()
    assert worst is not None and "sleeper()" in worst.what
    assert worst.blocked is not None and worst.blocked >= 0.14
    assert worst.cpu < report.cpu_limit  # it failed as blocked, not as computing
    with pytest.raises(AssertionError, match=r"blocked 1\d\d ms .*sleeper\(\)"):
        report.check()


def test_awaiting_asyncio_sleep_passes() -> None:
    started = time.perf_counter()
    result, report = run_watched(polite())
    assert result == "done" and time.perf_counter() - started >= 0.2
    assert not report.slow and report.callbacks >= 2
    assert report.max_cpu < report.cpu_limit


def test_without_schedstat_cpu_is_still_checked(tmp_path: Path) -> None:
    """The fallback (no schedstat): CPU from ``time.thread_time``, blocked time not measured."""
    timer = CallbackTimer(schedstat=str(tmp_path / "missing"))

    async def both() -> None:
        await asyncio.gather(cpu_hog(), sleeper())

    with timer.installed() as report:
        asyncio.run(both(), debug=True)
    assert not report.blocked_measured and report.max_blocked == 0.0
    assert [s.blocked for s in report.slow] == [None]  # only the CPU hog; the sleep is not seen
    with pytest.raises(AssertionError, match=r"blocked not measured.*cpu_hog\(\)"):
        report.check()


def test_garbage_collection_is_reported_not_blamed_on_the_callback() -> None:
    """A full collection landing in a callback is the interpreter's time, reported on its own."""
    import gc

    live: list[list[int]] = []  # freed after the loop: freeing a million objects takes time too

    async def collects() -> None:
        for _ in range(50):  # a big heap, built in small steps
            live.extend([i] for i in range(20_000))
            await asyncio.sleep(0)
        gc.collect()  # one step: the full collection of 1,000,000 objects is all it does
        await asyncio.sleep(0)

    _, report = run_watched(collects, cpu_limit=0.01, blocked_limit=1.0, check=False)
    assert len(live) == 1_000_000
    assert report.max_gc > 0.01, report.summary()  # the collection took longer than the CPU limit...
    assert report.slow == [], report.summary()  # ...and was not counted against the callback
