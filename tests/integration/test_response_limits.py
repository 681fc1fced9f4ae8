"""Response bodies beyond the client's size limit are refused without being read whole.

Against a real loopback server that streams a body far larger than the limit, announced by its
Content-Length or chunked without one, sync and async: the request fails with
`MalformedResponseError` naming the limit and the extra that raises it, quickly, and the server
could hand over only a small part of the body (the client closed the connection instead of reading
on). The hook tests show the limit is read from the connection's extra, and the default holds.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import pytest

from airflow_jobstatus.exceptions import MalformedResponseError
from airflow_jobstatus.hooks.daily import DailyHook
from airflow_jobstatus.http import HttpSettings, ServiceClient
from airflow_jobstatus.http.client import close_async_clients
from tests.helpers.canary import secret
from tests.helpers.scripted_server import Reply, ScriptedServer

pytestmark = pytest.mark.integration

MiB = 1024 * 1024
LIMIT = 1 * MiB
HUGE = 512 * MiB
"""What the server would send if the client read on; far more than loopback socket buffers hold."""
TAKEN_BOUND = 48 * MiB
"""Most the server may hand over before the client hangs up: the limit plus kernel socket buffers."""
TIME_BOUND = 15.0
"""Seconds; reading 512 MiB through the client is far slower than this on the machines we use."""
MODES = ["sync", "async"]


@pytest.fixture
def server():
    with ScriptedServer() as srv:
        yield srv


def make_client(server: ScriptedServer, limit: int = LIMIT) -> ServiceClient:
    return ServiceClient(
        service="Test",
        conn_id=f"limits-{uuid.uuid4().hex[:8]}",
        base_url=server.url,
        settings=HttpSettings(max_response_bytes=limit, max_retries=0, max_requests_per_second=0),
    )


def call(mode: str, client: ServiceClient) -> object:
    if mode == "sync":
        try:
            return client.request("get_job", "GET", "/jobs/1")
        finally:
            client.close()

    async def run() -> object:
        try:
            return await client.arequest("get_job", "GET", "/jobs/1")
        finally:
            await close_async_clients()

    return asyncio.run(run())


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
@pytest.mark.parametrize("mode", MODES)
def test_a_body_beyond_the_limit_is_refused_without_reading_it(server, mode: str, framing: str) -> None:
    server.add(Reply(stream=HUGE, chunked=framing == "chunked"))
    started = time.monotonic()
    with pytest.raises(MalformedResponseError) as caught:
        call(mode, make_client(server))
    elapsed = time.monotonic() - started
    assert server.stream_ended.wait(TIME_BOUND), "the client neither read on nor hung up"
    message = str(caught.value)
    assert f"larger than {LIMIT} bytes" in message and "max_response_bytes" in message
    assert elapsed < TIME_BOUND
    assert server.streamed < TAKEN_BOUND, f"the client took {server.streamed / MiB:.1f} MiB"
    print(
        f"\n[{mode}, {framing}] refused after {elapsed * 1000:.0f} ms; "
        f"server handed over {server.streamed / MiB:.1f} MiB of {HUGE / MiB:.0f} MiB"
    )


@pytest.mark.parametrize("mode", MODES)
def test_a_declared_length_beyond_the_limit_is_refused_before_the_body(server, mode: str) -> None:
    # The header alone decides: the server announces 8 GiB and then sends only a few bytes.
    server.add(Reply(stream=1024, declared_length=8 * 1024 * MiB))
    started = time.monotonic()
    with pytest.raises(MalformedResponseError, match="larger than"):
        call(mode, make_client(server))
    assert time.monotonic() - started < 5.0  # no waiting for the 8 GiB that never come


@pytest.mark.parametrize("mode", MODES)
def test_a_body_just_under_the_limit_is_read(server, mode: str) -> None:
    body = json.dumps({"id": "job-1", "pad": "x" * (LIMIT - 100)}).encode()
    assert len(body) <= LIMIT
    server.add(Reply(body=body))
    response = call(mode, make_client(server))
    assert response.json()["id"] == "job-1"  # type: ignore[attr-defined]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("extra", "size"), [({"max_response_bytes": 65536}, MiB), ({}, 40 * MiB)])
def test_hooks_apply_the_connection_limit_and_its_default(server, monkeypatch, mode, extra, size) -> None:
    """A 64 KiB limit set in the extra refuses 1 MiB; without it the 32 MiB default refuses 40 MiB."""
    conn_id = f"limits_{uuid.uuid4().hex[:8]}"
    conn = {
        "conn_type": "daily",
        "host": server.url,
        "password": secret("limits"),
        "extra": {"max_retries": 0, "max_requests_per_second": 0, **extra},
    }
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))
    server.add(Reply(stream=size, chunked=True))
    hook = DailyHook(conn_id)

    async def aget() -> object:
        try:
            return await hook.aget_job("job-1")
        finally:
            await close_async_clients()

    limit = extra.get("max_response_bytes", HttpSettings().max_response_bytes)
    with pytest.raises(MalformedResponseError, match=f"larger than {limit} bytes"):
        hook.get_job("job-1") if mode == "sync" else asyncio.run(aget())
    assert server.stream_ended.wait(TIME_BOUND)
    assert server.streamed < limit + TAKEN_BOUND
