"""Push wired into the poll hub: a trigger waiting on the emulator is woken by a published event
and does exactly one status GET beyond its first check; with Redis gone it polls again at once."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import redis.asyncio as aioredis

from airflow_jobstatus.hooks.daily import DailyHook
from airflow_jobstatus.push.models import CHANNEL, PushEvent, event_key
from airflow_jobstatus.triggers.hub import PollHub
from airflow_jobstatus.triggers.job import JobStatusTrigger
from tests.helpers.loop_watch import run_checked
from tests.helpers.push import daily_hmac_secret, until, waiting
from tests.helpers.redis_server import RedisServer

pytestmark = pytest.mark.integration

JOB_ROUTE = "/batch-processor/{id}"


def job_gets(emulator: Any, key: str) -> int:
    rows = emulator.stats(service="daily", credential=key)["requests"]
    return sum(r["count"] for r in rows if r["method"] == "GET" and r["route"] == JOB_ROUTE)


def daily_wait(make_connection: Any, media: str, **extra: Any) -> tuple[str, str, str, JobStatusTrigger]:
    """A running Daily job (600 s) on a new connection, and a 1 s trigger waiting for it."""
    conn_id, key = make_connection("daily", **extra)
    job_id = DailyHook(daily_conn_id=conn_id).submit_job(
        "transcript", uri=f"https://media.example/{media}.mp4?emu_duration=600"
    )
    trigger = JobStatusTrigger(
        service="daily", conn_id=conn_id, job_id=job_id, poll_interval=1, deadline=time.time() + 120
    )
    return conn_id, key, job_id, trigger


async def publish(redis_url: str, conn_id: str, job_id: str, *, stored: bool = False) -> None:
    """Publish a push event for the job (``stored``: also keep it under its key, as the receiver does)."""
    client = aioredis.Redis.from_url(redis_url)
    event = PushEvent("daily", conn_id, job_id, time.time())
    if stored:
        await client.set(event_key("daily", conn_id, job_id), event.to_json(), ex=60)
    await client.publish(CHANNEL, event.to_json())
    await client.aclose()


def _in_flight(conn_id: str, job_id: str) -> bool:
    """Whether the hub has a status request for the job in flight: its watch is busy and the GET has
    started (a watch is busy during the shared-status lookup before it too, when an event only makes
    the GET that follows start after it)."""
    poller = PollHub.current().pollers.get(("daily", conn_id))
    watch = poller.watches.get(job_id) if poller is not None else None
    return watch is not None and watch.busy and poller.counters["gets"] > 0


def _finish_now(emulator: Any, job_id: str) -> None:
    created = emulator.job("daily", job_id)["timeline"][0]["at"]
    emulator.patch_job("daily", job_id, duration=time.time() - created)


def test_a_published_event_completes_the_wait_with_one_get_beyond_the_first(
    make_connection, emulator, push_on: RedisServer
) -> None:
    conn_id, key, job_id, trigger = daily_wait(make_connection, "a", webhook_secret=daily_hmac_secret())

    async def scenario() -> tuple[dict[str, Any], int, int]:
        async with waiting(trigger) as (listener, task):
            await until(lambda: job_gets(emulator, key) == 1, timeout=20)  # the first check: running
            assert listener.healthy
            await asyncio.to_thread(_finish_now, emulator, job_id)
            await asyncio.sleep(3.5)  # normal polling (1 s) would have asked 3 more times by now
            before_event = await asyncio.to_thread(job_gets, emulator, key)
            await publish(push_on.url, conn_id, job_id, stored=True)
            result = await asyncio.wait_for(task, timeout=15)
            return result, before_event, await asyncio.to_thread(job_gets, emulator, key)

    event, before_event, total = run_checked(scenario)
    assert event["event"] == "succeeded" and event["job"]["job_id"] == job_id
    assert before_event == 1  # parked on the safety-net interval while push was healthy
    assert total == 2  # the webhook cost exactly one status GET, which decided


def test_an_event_for_an_unfinished_job_does_not_end_the_wait(
    make_connection, emulator, push_on: RedisServer
) -> None:
    """A forged or early hint costs one GET; the service's answer (still running) keeps the wait."""
    conn_id, key, job_id, trigger = daily_wait(make_connection, "b", webhook_secret=daily_hmac_secret())

    async def scenario() -> tuple[bool, int]:
        async with waiting(trigger) as (listener, task):
            await until(lambda: job_gets(emulator, key) == 1, timeout=20)
            await until(lambda: listener.healthy, timeout=10)  # subscribed: a bare publish reaches it
            await publish(push_on.url, conn_id, job_id)
            await until(lambda: job_gets(emulator, key) == 2, timeout=10)
            await asyncio.sleep(1.5)
            return task.done(), await asyncio.to_thread(job_gets, emulator, key)

    done, gets = run_checked(scenario)
    assert not done and gets == 2


def test_redis_stopped_mid_wait_the_wait_completes_by_polling(
    make_connection, emulator, push_on: RedisServer
) -> None:
    _, key, job_id, trigger = daily_wait(make_connection, "c", webhook_secret=daily_hmac_secret())

    async def scenario() -> dict[str, Any]:
        async with waiting(trigger) as (_, task):
            await until(lambda: job_gets(emulator, key) == 1, timeout=20)
            await asyncio.to_thread(push_on.stop)
            await asyncio.to_thread(_finish_now, emulator, job_id)
            # no webhook can arrive: the wait is back on its 1 s interval and finds the job done
            return await asyncio.wait_for(task, timeout=20)

    event = run_checked(scenario)
    assert event["event"] == "succeeded"


def test_signed_daily_webhook_through_the_receiver_wakes_the_wait(
    make_connection, emulator, push_on: RedisServer
) -> None:
    """The whole path: Daily's signed webhook → receiver → Redis → listener → hub → one GET."""
    import httpx

    from airflow_jobstatus.push.config import load_config
    from airflow_jobstatus.push.receiver import Receiver, create_app
    from tests.helpers.push import daily_envelope, daily_headers, serve

    secret = daily_hmac_secret()
    conn_id, key, job_id, trigger = daily_wait(make_connection, "d", webhook_secret=secret)

    with serve(create_app(Receiver(load_config()))) as base:

        async def scenario() -> tuple[dict[str, Any], int]:
            async with waiting(trigger) as (_, task):
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

        event, total = run_checked(scenario)
    assert event["event"] == "succeeded"
    assert total == 2


def test_a_connection_without_webhook_credential_keeps_polling_normally(
    make_connection, emulator, push_on: RedisServer
) -> None:
    """No webhook can be verified for it, so push being healthy must not slow its waits down."""
    _, key, job_id, trigger = daily_wait(make_connection, "e")

    async def scenario() -> dict[str, Any]:
        async with waiting(trigger) as (listener, task):
            await until(lambda: job_gets(emulator, key) == 1, timeout=20)
            assert listener.healthy
            await asyncio.to_thread(_finish_now, emulator, job_id)
            return await asyncio.wait_for(task, timeout=10)  # found by the normal 1 s poll

    assert run_checked(scenario)["event"] == "succeeded"


def test_an_event_during_a_request_in_flight_gets_one_more_request_right_after(
    make_connection, emulator, push_on: RedisServer
) -> None:
    """The answer in flight may predate the event, so the event is not lost: one more GET follows
    at once (instead of after the safety-net interval), and then the wait is parked again."""
    conn_id, key, job_id, trigger = daily_wait(make_connection, "f", webhook_secret=daily_hmac_secret())
    emulator.add_fault(service="daily", kind="slow", delay=3, job_id=job_id, method="GET", count=1)

    async def scenario() -> tuple[int, int]:
        async with waiting(trigger) as (listener, task):
            # publish while the (slow) first check is in flight, once the listener is subscribed: a
            # bare publish before that reaches no one (the receiver also stores the event for that case)
            deadline = time.monotonic() + 20
            while not (_in_flight(conn_id, job_id) and listener.healthy):
                assert time.monotonic() < deadline, "the first check never started, or push never subscribed"
                await asyncio.sleep(0.02)
            await publish(push_on.url, conn_id, job_id)
            await until(lambda: job_gets(emulator, key) == 2, timeout=10)  # right after the slow one
            await asyncio.sleep(3)
            return await asyncio.to_thread(job_gets, emulator, key), int(task.done())

    gets, done = run_checked(scenario)
    assert (gets, done) == (2, 0)  # parked again: still running, no more requests
