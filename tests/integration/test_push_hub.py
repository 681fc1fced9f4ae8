"""Push wired into the poll hub: a trigger waiting on the emulator is woken by a published event
and does exactly one status GET beyond its first check; with Redis gone it polls again at once."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import redis.asyncio as aioredis

from airflow_jobstatus.hooks.daily import DailyHook
from airflow_jobstatus.http.client import close_async_clients
from airflow_jobstatus.push.listener import listener_for_loop
from airflow_jobstatus.push.models import CHANNEL, PushEvent, event_key
from airflow_jobstatus.triggers.events import parse_event
from airflow_jobstatus.triggers.hub import PollHub
from airflow_jobstatus.triggers.job import JobStatusTrigger
from tests.helpers.loop_watch import run_checked
from tests.helpers.push import daily_hmac_secret
from tests.helpers.redis_server import RedisServer, redis_server  # noqa: F401 - fixture

pytestmark = pytest.mark.integration

JOB_ROUTE = "/batch-processor/{id}"


def job_gets(emulator: Any, key: str) -> int:
    rows = emulator.stats(service="daily", credential=key)["requests"]
    return sum(r["count"] for r in rows if r["method"] == "GET" and r["route"] == JOB_ROUTE)


async def first_event(trigger: JobStatusTrigger) -> dict[str, Any]:
    async for event in trigger.run():
        return parse_event(event.payload, job_id=trigger.job_id).to_payload()
    raise AssertionError("no event")


async def until(predicate, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(predicate):
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.1)


@pytest.fixture
def push_on(monkeypatch: pytest.MonkeyPatch, redis_server: RedisServer) -> RedisServer:  # noqa: F811
    monkeypatch.setenv("AIRFLOW__JOBSTATUS__REDIS_URL", redis_server.url)
    monkeypatch.setenv("AIRFLOW__JOBSTATUS__PUSH_POLL_INTERVAL", "600")
    return redis_server


def _in_flight(conn_id: str, job_id: str) -> bool:
    """Whether the hub has a status request for the job in flight (its watch is busy)."""
    poller = PollHub.current().pollers.get(("daily", conn_id))
    watch = poller.watches.get(job_id) if poller is not None else None
    return watch is not None and watch.busy


def _finish_now(emulator: Any, job_id: str) -> None:
    created = emulator.job("daily", job_id)["timeline"][0]["at"]
    emulator.patch_job("daily", job_id, duration=time.time() - created)


def test_a_published_event_completes_the_wait_with_one_get_beyond_the_first(
    make_connection, emulator, push_on: RedisServer
) -> None:
    conn_id, key = make_connection("daily", webhook_secret=daily_hmac_secret())
    job_id = DailyHook(daily_conn_id=conn_id).submit_job(
        "transcript", uri="https://media.example/a.mp4?emu_duration=600"
    )
    trigger = JobStatusTrigger(
        service="daily", conn_id=conn_id, job_id=job_id, poll_interval=1, deadline=time.time() + 120
    )

    async def scenario() -> tuple[dict[str, Any], int, int]:
        listener = listener_for_loop()
        assert listener is not None
        task = asyncio.ensure_future(first_event(trigger))
        try:
            await until(lambda: job_gets(emulator, key) == 1, timeout=20)  # the first check: running
            assert listener.healthy
            await asyncio.to_thread(_finish_now, emulator, job_id)
            await asyncio.sleep(3.5)  # normal polling (1 s) would have asked 3 more times by now
            before_event = await asyncio.to_thread(job_gets, emulator, key)
            client = aioredis.Redis.from_url(push_on.url)
            event = PushEvent("daily", conn_id, job_id, time.time())
            await client.set(event_key("daily", conn_id, job_id), event.to_json(), ex=60)
            await client.publish(CHANNEL, event.to_json())
            await client.aclose()
            result = await asyncio.wait_for(task, timeout=15)
            return result, before_event, await asyncio.to_thread(job_gets, emulator, key)
        finally:
            task.cancel()
            await listener.aclose()
            await close_async_clients()

    event, before_event, total = run_checked(scenario)
    assert event["event"] == "succeeded" and event["job"]["job_id"] == job_id
    assert before_event == 1  # parked on the safety-net interval while push was healthy
    assert total == 2  # the webhook cost exactly one status GET, which decided


def test_an_event_for_an_unfinished_job_does_not_end_the_wait(
    make_connection, emulator, push_on: RedisServer
) -> None:
    """A forged or early hint costs one GET; the service's answer (still running) keeps the wait."""
    conn_id, key = make_connection("daily", webhook_secret=daily_hmac_secret())
    job_id = DailyHook(daily_conn_id=conn_id).submit_job(
        "transcript", uri="https://media.example/b.mp4?emu_duration=600"
    )
    trigger = JobStatusTrigger(
        service="daily", conn_id=conn_id, job_id=job_id, poll_interval=1, deadline=time.time() + 120
    )

    async def scenario() -> tuple[bool, int]:
        listener = listener_for_loop()
        assert listener is not None
        task = asyncio.ensure_future(first_event(trigger))
        try:
            await until(lambda: job_gets(emulator, key) == 1, timeout=20)
            client = aioredis.Redis.from_url(push_on.url)
            await client.publish(CHANNEL, PushEvent("daily", conn_id, job_id, time.time()).to_json())
            await client.aclose()
            await until(lambda: job_gets(emulator, key) == 2, timeout=10)
            await asyncio.sleep(1.5)
            return task.done(), await asyncio.to_thread(job_gets, emulator, key)
        finally:
            task.cancel()
            await listener.aclose()
            await close_async_clients()

    done, gets = run_checked(scenario)
    assert not done and gets == 2


def test_redis_stopped_mid_wait_the_wait_completes_by_polling(
    make_connection, emulator, push_on: RedisServer
) -> None:
    conn_id, key = make_connection("daily", webhook_secret=daily_hmac_secret())
    job_id = DailyHook(daily_conn_id=conn_id).submit_job(
        "transcript", uri="https://media.example/c.mp4?emu_duration=600"
    )
    trigger = JobStatusTrigger(
        service="daily", conn_id=conn_id, job_id=job_id, poll_interval=1, deadline=time.time() + 120
    )

    async def scenario() -> dict[str, Any]:
        listener = listener_for_loop()
        assert listener is not None
        task = asyncio.ensure_future(first_event(trigger))
        try:
            await until(lambda: job_gets(emulator, key) == 1, timeout=20)
            await asyncio.to_thread(push_on.stop)
            await asyncio.to_thread(_finish_now, emulator, job_id)
            # no webhook can arrive: the wait is back on its 1 s interval and finds the job done
            return await asyncio.wait_for(task, timeout=20)
        finally:
            task.cancel()
            await listener.aclose()
            await close_async_clients()

    event = run_checked(scenario)
    assert event["event"] == "succeeded"


def test_signed_daily_webhook_through_the_receiver_wakes_the_wait(
    make_connection, emulator, push_on: RedisServer
) -> None:
    """The whole path: Daily's signed webhook → receiver → Redis → listener → hub → one GET."""
    import httpx

    from airflow_jobstatus.push.config import load_config
    from airflow_jobstatus.push.receiver import Receiver, create_app
    from tests.helpers.push import daily_envelope, daily_headers, daily_hmac_secret, serve

    secret = daily_hmac_secret()
    conn_id, key = make_connection("daily", webhook_secret=secret)
    job_id = DailyHook(daily_conn_id=conn_id).submit_job(
        "transcript", uri="https://media.example/d.mp4?emu_duration=600"
    )
    trigger = JobStatusTrigger(
        service="daily", conn_id=conn_id, job_id=job_id, poll_interval=1, deadline=time.time() + 120
    )

    with serve(create_app(Receiver(load_config()))) as base:

        async def scenario() -> tuple[dict[str, Any], int]:
            listener = listener_for_loop()
            assert listener is not None
            task = asyncio.ensure_future(first_event(trigger))
            try:
                await until(lambda: job_gets(emulator, key) == 1, timeout=20)
                await asyncio.to_thread(_finish_now, emulator, job_id)
                body = daily_envelope(job_id)
                async with httpx.AsyncClient() as client:
                    response = await client.post(
                        f"{base}/webhooks/daily/{conn_id}", content=body, headers=daily_headers(secret, body)
                    )
                assert response.status_code == 200
                result = await asyncio.wait_for(task, timeout=15)
                return result, await asyncio.to_thread(job_gets, emulator, key)
            finally:
                task.cancel()
                await listener.aclose()
                await close_async_clients()

        event, total = run_checked(scenario)
    assert event["event"] == "succeeded"
    assert total == 2


def test_a_connection_without_webhook_credential_keeps_polling_normally(
    make_connection, emulator, push_on: RedisServer
) -> None:
    """No webhook can be verified for it, so push being healthy must not slow its waits down."""
    conn_id, key = make_connection("daily")
    job_id = DailyHook(daily_conn_id=conn_id).submit_job(
        "transcript", uri="https://media.example/e.mp4?emu_duration=600"
    )
    trigger = JobStatusTrigger(
        service="daily", conn_id=conn_id, job_id=job_id, poll_interval=1, deadline=time.time() + 120
    )

    async def scenario() -> dict[str, Any]:
        listener = listener_for_loop()
        assert listener is not None
        task = asyncio.ensure_future(first_event(trigger))
        try:
            await until(lambda: job_gets(emulator, key) == 1, timeout=20)
            assert listener.healthy
            await asyncio.to_thread(_finish_now, emulator, job_id)
            return await asyncio.wait_for(task, timeout=10)  # found by the normal 1 s poll
        finally:
            task.cancel()
            await listener.aclose()
            await close_async_clients()

    assert run_checked(scenario)["event"] == "succeeded"


def test_an_event_during_a_request_in_flight_gets_one_more_request_right_after(
    make_connection, emulator, push_on: RedisServer
) -> None:
    """The answer in flight may predate the event, so the event is not lost: one more GET follows
    at once (instead of after the safety-net interval), and then the wait is parked again."""
    conn_id, key = make_connection("daily", webhook_secret=daily_hmac_secret())
    job_id = DailyHook(daily_conn_id=conn_id).submit_job(
        "transcript", uri="https://media.example/f.mp4?emu_duration=600"
    )
    emulator.add_fault(service="daily", kind="slow", delay=3, job_id=job_id, method="GET", count=1)
    trigger = JobStatusTrigger(
        service="daily", conn_id=conn_id, job_id=job_id, poll_interval=1, deadline=time.time() + 120
    )

    async def scenario() -> tuple[int, int]:
        listener = listener_for_loop()
        assert listener is not None
        task = asyncio.ensure_future(first_event(trigger))
        try:
            # publish while the (slow) first check is in flight
            deadline = time.monotonic() + 20
            while not _in_flight(conn_id, job_id):
                assert time.monotonic() < deadline, "the first check never started"
                await asyncio.sleep(0.02)
            client = aioredis.Redis.from_url(push_on.url)
            await client.publish(CHANNEL, PushEvent("daily", conn_id, job_id, time.time()).to_json())
            await client.aclose()
            await until(lambda: job_gets(emulator, key) == 2, timeout=10)  # right after the slow one
            await asyncio.sleep(3)
            return await asyncio.to_thread(job_gets, emulator, key), int(task.done())
        finally:
            task.cancel()
            await listener.aclose()
            await close_async_clients()

    gets, done = run_checked(scenario)
    assert (gets, done) == (2, 0)  # parked again: still running, no more requests
