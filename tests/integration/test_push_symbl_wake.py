"""A Symbl.ai wait is woken by Symbl's own webhook: the emulator posts ``{jobId, status}`` to the
receiver (the URL the operator would pass), the receiver publishes ``jobId``, and the wait, which
tracks the job as ``"jobId:conversationId"``, does exactly one status GET beyond its first check."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from airflow_jobstatus.hooks.symbl import SymblHook
from airflow_jobstatus.push.config import PushConfig
from airflow_jobstatus.push.receiver import Receiver, create_app
from airflow_jobstatus.push.submit import receiver_url
from airflow_jobstatus.triggers.job import JobStatusTrigger
from tests.helpers.loop_watch import run_checked
from tests.helpers.push import serve, until, waiting, webhook_token
from tests.helpers.redis_server import RedisServer

pytestmark = pytest.mark.integration

JOB_ROUTE = "/v1/job/{jobId}"


def job_gets(emulator: Any, app_id: str) -> int:
    rows = emulator.stats(service="symbl", credential=app_id)["requests"]
    return sum(r["count"] for r in rows if r["method"] == "GET" and r["route"] == JOB_ROUTE)


def test_symbl_webhook_wakes_the_wait_with_one_get_beyond_the_first(
    make_connection: Any, emulator: Any, push_on: RedisServer
) -> None:
    token = webhook_token("symbl-wake")
    conn_id, app_id = make_connection("symbl", webhook_token=token)
    config = PushConfig(redis_url=push_on.url, event_ttl=120)
    with serve(create_app(Receiver(config))) as base:
        job_ref = SymblHook(symbl_conn_id=conn_id).submit_job(
            audio_url="https://media.example/a.mp3?emu_duration=5",
            webhook_url=receiver_url(base, "symbl", conn_id, token),
        )
        assert ":" in job_ref  # "jobId:conversationId"; the webhook names the jobId only
        trigger = JobStatusTrigger(
            service="symbl", conn_id=conn_id, job_id=job_ref, poll_interval=1, deadline=time.time() + 60
        )

        async def scenario() -> tuple[dict[str, Any], int]:
            async with waiting(trigger) as (_, task):
                await until(lambda: job_gets(emulator, app_id) >= 1, timeout=20)
                result = await asyncio.wait_for(task, timeout=30)
                return result, await asyncio.to_thread(job_gets, emulator, app_id)

        event, gets = run_checked(scenario)
    assert event["event"] == "succeeded"
    # parked for 5 s on the 600 s safety net (a 1 s interval would have asked ~5 times):
    # the first check, then the one the completed webhook asked for
    assert gets == 2
