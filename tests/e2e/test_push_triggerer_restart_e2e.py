"""Push completion survives a triggerer killed after the webhook's event was published (issue 16).

Real processes: `airflow api-server` (the receiver), scheduler, dag-processor, triggerer
(LocalExecutor on SQLite), a Redis started on a free port, and the emulator sending Daily's signed
webhook. The ordering is made deterministic:

1. a deferred Daily wait runs in the triggerer, its listener subscribed to the Redis channel;
2. the triggerer's process group is frozen (SIGSTOP), so it consumes nothing from then on;
3. the job ends; the emulator posts the webhook; the receiver stores the event under its key and
   publishes it (the test sees both in Redis); the frozen listener never reads it;
4. the triggerer is killed (SIGKILL) and a new one started; it adopts the trigger, whose listener
   reads the stored key on start and pokes the wait: one status GET, and the task succeeds.

The task's own ``poll_interval`` is 300 s (a new watch's first poll comes 270-330 s after it
starts) and the push safety net 600 s, and the test allows the new triggerer 150 s: only the stored
event can explain the completion, with exactly one status GET after the job finished.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
import redis

from airflow_jobstatus.hooks.daily import DailyHook
from airflow_jobstatus.push.models import CHANNEL, PushEvent, event_key
from tests.e2e.test_push_completion_e2e import finished_at, push_stack, status_gets
from tests.e2e.test_scale_out import wait_for
from tests.helpers.connections import emulator_connection, exported
from tests.helpers.push import daily_hmac_secret
from tests.helpers.redis_server import RedisServer, redis_server  # noqa: F401 - fixture

pytestmark = pytest.mark.e2e

CONN_ID = "push_restart_daily"
DAG_ID = "jobstatus_push_restart_e2e"
POLL = 300
"""The wait's own interval: a poll by the new triggerer would come 270-330 s after it starts."""
RESTART_BUDGET = 150
"""Seconds the new triggerer has to complete the wait (adoption takes the health threshold, 8 s)."""

DAG = f"""
from airflow.sdk import DAG

from airflow_jobstatus.operators.daily import DailySubmitJobOperator
from airflow_jobstatus.sensors.daily import DailyJobSensor

with DAG("{DAG_ID}", schedule=None, catchup=False):
    DailySubmitJobOperator(
        task_id="submit",
        daily_conn_id="{CONN_ID}",
        preset="transcript",
        uri="https://media.example/restart.wav?emu_duration=3600",
        wait_for_completion=False,
    ) >> DailyJobSensor(
        task_id="wait",
        daily_conn_id="{CONN_ID}",
        job_id="{{{{ ti.xcom_pull(task_ids='submit', key='job_id') }}}}",
        deferrable=True,
        poll_interval={POLL},
        timeout=1800,
        max_xcom_bytes=0,
    )
"""


def test_a_triggerer_killed_after_the_event_was_published_still_completes_the_wait(
    tmp_path: Path,
    emulator: Any,
    redis_server: RedisServer,  # noqa: F811
) -> None:
    emulator.admin("PATCH", "config", json={"webhook_retry_base": 0.2})
    conn, credential = emulator_connection(
        emulator,
        "daily",
        label="e2e-push-restart",
        max_requests_per_second=20,
        webhook_secret=daily_hmac_secret(),
    )
    env = {f"AIRFLOW_CONN_{CONN_ID.upper()}": json.dumps(conn)}
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / f"{DAG_ID}.py").write_text(textwrap.dedent(DAG))
    stack, base = push_stack(tmp_path, dags, redis_server.url, env)
    client = redis.Redis.from_url(redis_server.url)
    watcher = client.pubsub(ignore_subscribe_messages=True)
    frozen: int | None = None

    def state() -> str:
        return stack.log_tails(40)

    try:
        with exported(env), stack:
            assert DailyHook(CONN_ID).ensure_webhook(base)["action"] == "created"
            stack.wait_for_dags([DAG_ID])
            run_id = stack.trigger(DAG_ID)

            # 1. deferred, and the triggerer's listener (the only subscriber so far) is subscribed
            wait_for(
                lambda: stack.task_states(DAG_ID, run_id).get("wait") == "deferred",
                timeout=180,
                what="the wait deferring",
                state=state,
                every=0.3,
            )
            wait_for(
                lambda: dict(client.pubsub_numsub(CHANNEL)).get(CHANNEL.encode(), 0) == 1,
                timeout=90,
                what="the triggerer subscribing to the event channel",
                state=state,
                every=0.3,
            )
            watcher.subscribe(CHANNEL)
            (job,) = emulator.jobs(service="daily", credential=credential)
            job_id = job["job_id"]
            created = emulator.job("daily", job_id)["created"]

            # 2. the triggerer (its supervisor and trigger runner) consumes nothing from now on
            frozen = stack.processes["triggerer"].pid
            assert frozen is not None
            os.killpg(frozen, signal.SIGSTOP)

            # 3. the job ends; the receiver stores and publishes the webhook's event
            emulator.patch_job("daily", job_id, duration=time.time() - created + 1)

            def published() -> bool:
                message = watcher.get_message(timeout=0.5)
                event = PushEvent.from_json(message["data"]) if message else None
                return event is not None and event.job_id == job_id and event.conn_id == CONN_ID

            wait_for(
                published, timeout=60, what="the receiver publishing the job's event", state=state, every=0
            )
            assert client.get(event_key("daily", CONN_ID, job_id)) is not None  # stored before published
            done = finished_at(emulator, "daily", credential)
            assert status_gets(emulator, "daily", credential)[-1] < done  # nobody has read the end yet
            assert stack.task_states(DAG_ID, run_id)["wait"] == "deferred"

            # 4. killed before the wait resumed; a new triggerer reads the stored event on start
            old_pid = stack.kill("triggerer")
            assert old_pid == frozen
            frozen = None
            restarted = time.monotonic()
            stack.start_component("triggerer")
            seen = stack.watch_run(DAG_ID, run_id, timeout=RESTART_BUDGET)
            took = time.monotonic() - restarted

            assert seen["wait"][-1] == "success", (seen, state())
            assert took < POLL * 0.9, took  # before any poll of the new triggerer could be due
            after = [t for t in status_gets(emulator, "daily", credential) if t >= done]
            assert len(after) == 1, after  # the stored event cost exactly one status GET
    finally:
        if frozen is not None:  # stopped with the stack already; a SIGCONT only if it is still there
            with contextlib.suppress(ProcessLookupError):
                os.killpg(frozen, signal.SIGCONT)
        watcher.close()
        client.close()
