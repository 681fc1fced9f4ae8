"""TLS verification is on unless the connection turns it off, sync and async.

A real HTTPS server on 127.0.0.1 serves a self-signed certificate made for this run. A hook whose
connection leaves ``verify_tls`` alone refuses it with a typed error that says the certificate
could not be verified and names the extra that turns verification off; no request reaches the
server. With ``verify_tls: false`` the same hook reads the job.

The settings have no CA-bundle extra, so trusting a private CA (instead of turning verification
off) is not offered; see the report of this test's author.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import pytest

from airflow_jobstatus.exceptions import ServiceUnreachableError
from airflow_jobstatus.hooks.daily import DailyHook
from airflow_jobstatus.http.client import close_async_clients
from airflow_jobstatus.models import JobState
from tests.helpers.canary import secret
from tests.helpers.scripted_server import Reply, ScriptedServer
from tests.helpers.tls import self_signed

pytestmark = pytest.mark.integration

JOB = {"id": "job-1", "preset": "transcript", "status": "processing"}
MODES = ["sync", "async"]


@pytest.fixture
def https_server(tmp_path):
    with ScriptedServer(ssl_context=self_signed(tmp_path / "tls").server_context()) as srv:
        srv.default = Reply(body=JOB)
        yield srv


def daily_hook(monkeypatch: pytest.MonkeyPatch, server: ScriptedServer, **extra: Any) -> DailyHook:
    conn_id = f"tls_{uuid.uuid4().hex[:8]}"
    conn = {
        "conn_type": "daily",
        "host": server.url,
        "password": secret("tls"),
        "extra": {"max_requests_per_second": 0, **extra},
    }
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))
    return DailyHook(conn_id)


def get_job(mode: str, hook: DailyHook) -> Any:
    if mode == "sync":
        return hook.get_job("job-1")

    async def run() -> Any:
        try:
            return await hook.aget_job("job-1")
        finally:
            await close_async_clients()

    return asyncio.run(run())


@pytest.mark.parametrize("mode", MODES)
def test_a_self_signed_certificate_is_refused_by_default(https_server, monkeypatch, mode: str) -> None:
    hook = daily_hook(monkeypatch, https_server)  # max_retries left at its default
    started = time.monotonic()
    with pytest.raises(ServiceUnreachableError) as caught:
        get_job(mode, hook)
    elapsed = time.monotonic() - started
    message = str(caught.value)
    assert "certificate" in message and "could not be verified" in message, message
    assert "'verify_tls'" in message, message
    assert https_server.seen == []  # nothing was sent over the unverified connection
    assert elapsed < 2.0, f"a certificate failure was retried ({elapsed:.1f} s)"  # retrying cannot fix it


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("off", [False, "false", "0"])
def test_verify_tls_false_accepts_it(https_server, monkeypatch, mode: str, off: Any) -> None:
    hook = daily_hook(monkeypatch, https_server, verify_tls=off)
    status = get_job(mode, hook)
    assert status.state is JobState.RUNNING and status.job_id == "job-1"
    assert [seen.target for seen in https_server.seen] == ["/batch-processor/job-1"]
