"""`JobEventTrigger` over real Redis and the emulator: it fires once per published event of an
ended job that matches service/connection/preset, after asking the service; a running job, another
connection, another preset or a forged job id fire nothing."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis

from airflow_jobstatus.exceptions import InvalidParameterError
from airflow_jobstatus.hooks.daily import DailyHook
from airflow_jobstatus.http.client import close_async_clients
from airflow_jobstatus.push.event_trigger import JobEventTrigger
from airflow_jobstatus.push.models import CHANNEL, PushEvent
from tests.helpers.loop_watch import run_checked
from tests.helpers.push import until
from tests.helpers.redis_server import RedisServer, redis_server  # noqa: F401 - fixture

pytestmark = pytest.mark.integration


def _subscribers(url: str) -> int:
    with redis.Redis.from_url(url) as client:
        return int(client.pubsub_numsub(CHANNEL)[0][1])


def test_fires_for_matching_ended_jobs_only(
    make_connection: Any,
    emulator: Any,
    redis_server: RedisServer,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AIRFLOW__JOBSTATUS__REDIS_URL", redis_server.url)
    conn_id, _ = make_connection("daily")
    other, _ = make_connection("daily")
    hook = DailyHook(conn_id)
    media = "https://media.example/a.mp4?emu_duration="
    done = hook.submit_job("transcript", uri=media + "0.1")
    summary = hook.submit_job("summarize", uri=media + "0.1")
    running = hook.submit_job("transcript", uri=media + "600")
    time.sleep(1.5)
    for job in (done, summary):  # let the emulator finish them
        assert hook.get_job(job).is_terminal
    trigger = JobEventTrigger(service="daily", conn_id=conn_id, preset="transcript")
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_jobstatus.push.event_trigger.JobEventTrigger"
    assert JobEventTrigger(**kwargs).serialize() == (classpath, kwargs)

    async def scenario() -> list[dict[str, Any]]:
        fired: list[dict[str, Any]] = []

        async def consume() -> None:
            async for event in trigger.run():
                fired.append(event.payload)

        task = asyncio.ensure_future(consume())
        client = aioredis.Redis.from_url(redis_server.url)
        try:
            await until(lambda: _subscribers(redis_server.url) >= 1, timeout=20)
            for service, conn, job in (
                ("daily", conn_id, running),
                ("daily", other, done),
                ("symbl", conn_id, done),
                ("daily", conn_id, "forged-job-id"),
                ("daily", conn_id, summary),
                ("daily", conn_id, done),
                ("daily", conn_id, done),  # a new message: fires again (a second webhook)
            ):
                await client.publish(CHANNEL, PushEvent(service, conn, job, time.time()).to_json())
            await until(lambda: len(fired) >= 2, timeout=20)
            await asyncio.sleep(0.5)  # nothing else fires
            return fired
        finally:
            task.cancel()
            await client.aclose()
            await close_async_clients()

    fired = run_checked(scenario)
    assert [f["job_id"] for f in fired] == [done, done]
    assert fired[0] == {
        "service": "daily",
        "conn_id": conn_id,
        "job_id": done,
        "state": "succeeded",
        "raw_status": "finished",
        "preset": "transcript",
    }


def test_refuses_a_service_without_webhooks() -> None:
    with pytest.raises(InvalidParameterError, match="Wasabi"):
        JobEventTrigger(service="wasabi_air")
