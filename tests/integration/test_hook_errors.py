"""Each hook's documented error paths, sync and async: 404, 401, 429 then success, 5xx then
success, malformed JSON -> the package's typed errors with messages that say what to check."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from airflow_jobstatus.exceptions import AuthenticationError, MalformedResponseError, NotFoundError
from airflow_jobstatus.hooks.daily import DailyHook
from airflow_jobstatus.hooks.deepaffects import DeepAffectsHook
from airflow_jobstatus.hooks.symbl import SymblHook
from airflow_jobstatus.hooks.wasabi import WasabiAirHook
from airflow_jobstatus.http.client import close_async_clients
from tests.helpers.jobs import wasabi_job

pytestmark = pytest.mark.integration

SLOW = "https://media.example/a.mp4?emu_duration=60"


def submit(conn_type: str, hook, s3) -> tuple[str, str]:
    """Submit a long job; return (job id, an id the service does not know)."""
    if conn_type == "daily":
        return hook.submit_job("transcript", uri=SLOW), str(uuid.uuid4())
    if conn_type == "wasabi_air":
        job = wasabi_job(
            hook, s3.endpoint_url, "errors", "a.mp4?emu_duration=60", bucket="nowhere", media="m"
        )
        return job, "f" * 32
    if conn_type == "symbl":
        return hook.submit_job(audio_url=SLOW), str(uuid.uuid4())
    return hook.submit_job("asr", url=SLOW, webhook="https://hooks.example/deepaffects"), str(uuid.uuid4())


HOOKS = {"daily": DailyHook, "wasabi_air": WasabiAirHook, "symbl": SymblHook, "deepaffects": DeepAffectsHook}
EMU = {"daily": "daily", "wasabi_air": "wasabi", "symbl": "symbl", "deepaffects": "deepaffects"}


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("conn_type", list(HOOKS))
def test_error_paths(conn_type, mode, make_connection, jobstatus_emulator, jobstatus_s3):
    conn_id, credential = make_connection(conn_type, max_retries=3)
    hook = HOOKS[conn_type](conn_id)
    job_id, unknown = submit(conn_type, hook, jobstatus_s3)

    def get(job: str):
        if mode == "sync":
            return hook.get_job(job)

        async def run():
            try:
                return await hook.aget_job(job)
            finally:
                await close_async_clients()

        return asyncio.run(run())

    service = EMU[conn_type]
    with pytest.raises(NotFoundError) as info:
        get(unknown)
    assert "HTTP 404" in str(info.value) and "Check the job id" in str(info.value)

    jobstatus_emulator.add_fault(
        service=service, credential=credential, kind="rate_limit", retry_after=1, count=1
    )
    started = time.monotonic()
    assert get(job_id).job_id == job_id
    assert time.monotonic() - started >= 1.0

    jobstatus_emulator.add_fault(service=service, credential=credential, kind="status", status=503, count=2)
    assert get(job_id).job_id == job_id

    fault = jobstatus_emulator.add_fault(service=service, credential=credential, kind="malformed")
    with pytest.raises(MalformedResponseError) as info:
        get(job_id)
    assert "not valid JSON" in str(info.value)
    jobstatus_emulator.delete_fault(fault)

    jobstatus_emulator.add_fault(service=service, credential=credential, kind="revoke")
    with pytest.raises(AuthenticationError) as info:
        get(job_id)
    assert "HTTP 401" in str(info.value) and "credentials" in str(info.value)
