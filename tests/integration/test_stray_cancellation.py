"""One cancelled caller never fails or stalls another (issue 18, item 2).

Work shared by several callers of one event loop (the connection read behind ``aget_client``, the
Symbl token exchange) runs as a task of its own: cancelling the caller that happened to start it
ends only that caller's wait. And a `CancelledError` that reaches the poll hub without the hub
being cancelled (Airflow's own comms, for one, cancel pending requests when their reader stops)
counts as one failed poll: the watch still gets its next poll, or a final event.

Everything talks real HTTP to the emulator. Two things are slowed or interrupted from outside the
code under test: Airflow's connection read (``BaseHook.aget_connection``, to hold a read in
flight) and, for the hub's own guard, the hook's ``arun`` (one call raises `CancelledError`, as a
cancelled dependency would).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest
from airflow.sdk import BaseHook

from airflow_jobstatus.hooks.daily import DailyHook
from airflow_jobstatus.hooks.symbl import SymblHook
from airflow_jobstatus.http import tokens
from airflow_jobstatus.triggers.hub import LIST_MIN_WATCHES
from airflow_jobstatus.triggers.job import JobStatusTrigger
from tests.helpers.triggers import first_event, run_debug

pytestmark = pytest.mark.integration

T = TypeVar("T")
READ_DELAY = 1.0
"""Seconds a slowed connection read stays in flight."""


@pytest.fixture
def slow_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every async connection read takes `READ_DELAY` s longer; returns the conn ids read, in order."""
    reads: list[str] = []
    original = BaseHook.aget_connection.__func__  # type: ignore[attr-defined]

    async def slow(cls: type[BaseHook], conn_id: str) -> Any:
        reads.append(conn_id)
        await asyncio.sleep(READ_DELAY)
        return await original(cls, conn_id)

    monkeypatch.setattr(BaseHook, "aget_connection", classmethod(slow))
    return reads


async def cancel_first_of_three(call: Callable[[], Awaitable[T]]) -> tuple[list[T], asyncio.Task[T]]:
    """Start ``call`` three times; cancel the first (which started the shared work) while in flight."""
    first = asyncio.ensure_future(call())
    await asyncio.sleep(0.2)
    others = [asyncio.ensure_future(call()) for _ in range(2)]
    await asyncio.sleep(0.2)
    first.cancel()
    results = await asyncio.wait_for(asyncio.gather(*others), timeout=30)
    return list(results), first


def test_cancelling_the_caller_that_started_a_connection_read_fails_no_other(
    make_connection, slow_reads: list[str]
) -> None:
    conn_id, _ = make_connection("daily")

    async def scenario() -> tuple[list[Any], asyncio.Task[Any]]:
        return await cancel_first_of_three(DailyHook(daily_conn_id=conn_id).aget_client)

    clients, first = run_debug(scenario)
    assert first.cancelled()
    assert clients[0] is clients[1]  # both got the one client of the read the first caller started
    assert slow_reads == [conn_id]  # read once: the cancellation did not throw it away


def test_cancelling_the_caller_that_started_a_symbl_token_exchange_fails_no_other(
    make_connection, emulator
) -> None:
    conn_id, app_id = make_connection("symbl")
    hook = SymblHook(symbl_conn_id=conn_id)
    job_ref = hook.submit_job(audio_url="https://media.example/a.mp3?emu_duration=600")
    for source in tokens._sources.values():  # the submission's token: exchange again
        if source._body["appId"] == app_id and source._token:
            source.invalidate(source._token)
    emulator.add_fault(service="symbl", route="/oauth2/token", kind="slow", delay=READ_DELAY, count=1)
    before = exchanges(emulator, app_id)

    async def scenario() -> tuple[list[Any], asyncio.Task[Any]]:
        async_hook = SymblHook(symbl_conn_id=conn_id)
        await async_hook.aget_client()  # the connection read is not what this test is about
        return await cancel_first_of_three(lambda: async_hook.aget_job(job_ref))

    statuses, first = run_debug(scenario)
    assert first.cancelled()
    assert [s.job_id for s in statuses] == [job_ref, job_ref]
    assert exchanges(emulator, app_id) - before == 1  # one exchange, shared by all three


def exchanges(emulator: Any, app_id: str) -> int:
    rows = emulator.stats(service="symbl", credential=app_id)["requests"]
    return sum(r["count"] for r in rows if r["route"] == "/oauth2/token:generate")


def daily_trigger(conn_id: str, job_id: str, timeout: float) -> JobStatusTrigger:
    return JobStatusTrigger(
        service="daily", conn_id=conn_id, job_id=job_id, poll_interval=0.5, deadline=time.time() + timeout
    )


def test_a_wait_outlives_a_cancelled_caller_it_shares_a_connection_read_with(
    make_connection, slow_reads: list[str]
) -> None:
    """The hub's first poll (2 s after registration) joins a read another coroutine started and then
    loses to a cancellation (e.g. an ``on_kill`` cut short): the wait still ends with the job."""
    conn_id, _ = make_connection("daily")
    job_id = DailyHook(daily_conn_id=conn_id).submit_job(
        "transcript", uri="https://media.example/a.mp4?emu_duration=4"
    )

    async def scenario() -> dict[str, Any]:
        waiting = asyncio.ensure_future(first_event(daily_trigger(conn_id, job_id, timeout=20)))
        await asyncio.sleep(1.7)
        other = asyncio.ensure_future(DailyHook(daily_conn_id=conn_id).aget_job(job_id))
        await asyncio.sleep(0.6)  # the hub's first poll now awaits the same read
        other.cancel()
        return await waiting

    event = run_debug(scenario)
    assert event["event"] == "succeeded" and event["job"]["job_id"] == job_id, event
    assert slow_reads == [conn_id]


@pytest.mark.parametrize("jobs", [1, LIST_MIN_WATCHES], ids=["job-poll", "list-sweep"])
def test_a_stray_cancellation_in_the_hub_costs_one_failed_poll(
    make_connection, monkeypatch: pytest.MonkeyPatch, jobs: int
) -> None:
    """The first request of the poller (a job poll, or with enough watches a list sweep) raises
    `CancelledError` without the poller being cancelled: every wait still ends with its job."""
    conn_id, _ = make_connection("daily")
    hook = DailyHook(daily_conn_id=conn_id)
    ids = [
        hook.submit_job("transcript", uri=f"https://media.example/{i}.mp4?emu_duration=4")
        for i in range(jobs)
    ]
    original = DailyHook.arun
    stray: list[int] = []

    async def arun(self: DailyHook, plan: Any, **kwargs: Any) -> Any:
        if not stray:
            stray.append(1)
            plan.close()
            raise asyncio.CancelledError("a cancellation that is not the poller's")
        return await original(self, plan, **kwargs)

    monkeypatch.setattr(DailyHook, "arun", arun)

    async def scenario() -> list[dict[str, Any]]:
        triggers = [daily_trigger(conn_id, job_id, timeout=20) for job_id in ids]
        return list(await asyncio.gather(*(first_event(t) for t in triggers)))

    events = run_debug(scenario)
    assert stray == [1]
    ended = [(e["event"], (e["job"] or {}).get("job_id")) for e in events]
    assert ended == [("succeeded", job_id) for job_id in ids], events
