"""The triggerer-side listener against a real Redis: stored events, one subscription for many waits,
and health that follows the subscription (Redis killed → unhealthy, restarted → healthy again)."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import time

import pytest
import redis.asyncio as aioredis

from airflow_jobstatus.push.config import PushConfig
from airflow_jobstatus.push.listener import PushListener, listener_for_loop
from airflow_jobstatus.push.models import CHANNEL, PushEvent, event_key
from tests.helpers.redis_server import RedisServer, redis_server  # noqa: F401 - fixture

pytestmark = pytest.mark.integration


async def _store_and_publish(url: str, event: PushEvent, *, publish: bool = True) -> None:
    """What the receiver does for a verified webhook."""
    client = aioredis.Redis.from_url(url)
    try:
        await client.set(event_key(event.service, event.conn_id, event.job_id), event.to_json(), ex=60)
        if publish:
            await client.publish(CHANNEL, event.to_json())
    finally:
        await client.aclose()


async def _until(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


def _listener(url: str) -> PushListener:
    config = PushConfig(redis_url=url, push_poll_interval={"daily": 900.0})
    return PushListener(config, ping_interval=0.5, min_backoff=0.1, max_backoff=0.5)


async def test_a_wait_registered_after_the_event_still_sees_it(redis_server: RedisServer):  # noqa: F811
    event = PushEvent("daily", "conn_a", "job-early", time.time())
    await _store_and_publish(redis_server.url, event)  # nobody is listening yet
    listener = _listener(redis_server.url)
    seen: list[PushEvent] = []
    try:
        listener.register("daily", "conn_a", "job-early", seen.append)
        await _until(lambda: seen)
        assert seen == [event]
        other: list[PushEvent] = []
        listener.register("daily", "conn_a", "job-early", other.append)  # a second wait, later
        await _until(lambda: other)
        await asyncio.sleep(0.3)
        assert seen == [event] and other == [event]  # each wait hears it exactly once
    finally:
        await listener.aclose()


async def test_one_subscription_serves_many_waits(redis_server: RedisServer):  # noqa: F811
    listener = _listener(redis_server.url)
    seen: dict[str, list[PushEvent]] = {}
    client = aioredis.Redis.from_url(redis_server.url)
    try:
        for i in range(300):
            job = f"job-{i}"
            seen[job] = []
            listener.register("symbl", "conn_many", job, seen[job].append)
        await _until(lambda: listener.healthy)
        assert listener.waits == 300
        numsub = dict(await client.pubsub_numsub(CHANNEL))
        assert numsub[CHANNEL.encode()] == 1
        assert listener.connects == 1
        for i in range(0, 300, 2):
            await _store_and_publish(
                redis_server.url, PushEvent("symbl", "conn_many", f"job-{i}", time.time())
            )
        await _until(lambda: all(len(seen[f"job-{i}"]) == 1 for i in range(0, 300, 2)))
        # other jobs, connections and services are not woken
        await _store_and_publish(redis_server.url, PushEvent("symbl", "other_conn", "job-1", time.time()))
        await _store_and_publish(redis_server.url, PushEvent("daily", "conn_many", "job-1", time.time()))
        await asyncio.sleep(0.3)
        assert all(seen[f"job-{i}"] == [] for i in range(1, 300, 2))
    finally:
        await client.aclose()
        await listener.aclose()


async def test_closed_registrations_hear_nothing(redis_server: RedisServer):  # noqa: F811
    listener = _listener(redis_server.url)
    seen: list[PushEvent] = []
    try:
        registration = listener.register("deepaffects", "c", "r-1", seen.append)
        await _until(lambda: listener.healthy)
        registration.close()
        assert listener.waits == 0
        await _store_and_publish(redis_server.url, PushEvent("deepaffects", "c", "r-1", time.time()))
        await asyncio.sleep(0.3)
        assert seen == []
    finally:
        await listener.aclose()


async def test_redis_killed_then_restarted(redis_server: RedisServer, caplog: pytest.LogCaptureFixture):  # noqa: F811
    listener = _listener(redis_server.url)
    health: list[bool] = []
    listener.add_health_callback(health.append)
    seen: list[PushEvent] = []
    caplog.set_level(logging.INFO, logger="airflow_jobstatus.push.listener")
    try:
        listener.register("daily", "conn_k", "job-k", seen.append)
        await _until(lambda: listener.healthy)
        assert listener.interval_for("daily", 5.0) == 900.0  # safety net while push is healthy

        await asyncio.to_thread(redis_server.stop)
        await _until(lambda: not listener.healthy, timeout=5)
        assert listener.interval_for("daily", 5.0) == 5.0  # back to normal polling at once
        await asyncio.sleep(1.5)  # several failed reconnects...
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1  # ...logged once

        await asyncio.to_thread(redis_server.start)
        # published while this listener was disconnected: found in the stored key on reconnect
        event = PushEvent("daily", "conn_k", "job-k", time.time())
        await _store_and_publish(redis_server.url, event, publish=False)
        await _until(lambda: listener.healthy, timeout=10)
        await _until(lambda: seen == [event])
        assert health == [True, False, True]
        assert listener.connects == 2
        assert listener.interval_for("daily", 5.0) == 900.0
    finally:
        await listener.aclose()


async def test_unreachable_redis_from_the_start_is_unhealthy(tmp_path):
    from airflow_jobstatus.testing.processes import free_port

    listener = _listener(f"redis://127.0.0.1:{free_port()}/0")
    try:
        listener.register("daily", "c", "j", lambda e: None)
        await asyncio.sleep(0.5)
        assert not listener.healthy
        assert listener.interval_for("daily", 7.0) == 7.0
    finally:
        await listener.aclose()


async def test_listener_for_loop_is_one_per_loop_and_none_when_push_is_off(redis_server: RedisServer):  # noqa: F811
    assert listener_for_loop(PushConfig(redis_url=None)) is None
    config = PushConfig(redis_url=redis_server.url)
    first = listener_for_loop(config)
    assert first is not None and listener_for_loop(config) is first
    await first.aclose()


def test_push_off_does_not_import_redis():
    code = (
        "import asyncio, sys\n"
        "from airflow_jobstatus.push.listener import listener_for_loop\n"
        "async def main():\n"
        "    assert listener_for_loop() is None\n"
        "asyncio.run(main())\n"
        "assert 'redis' not in sys.modules, 'redis was imported'\n"
    )
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("AIRFLOW__JOBSTATUS__")}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=120)
