"""The HTTP core against a real loopback server with scripted faults, sync and async."""

from __future__ import annotations

import asyncio
import time
from email.utils import formatdate

import pytest

from airflow_jobstatus.exceptions import (
    AuthenticationError,
    BadRequestError,
    NotFoundError,
    ServiceError,
    ServiceUnreachableError,
)
from airflow_jobstatus.http import HttpSettings, ServiceClient
from airflow_jobstatus.http.client import close_async_clients
from tests.helpers.scripted_server import Reply, ScriptedServer

pytestmark = pytest.mark.integration


@pytest.fixture
def server():
    with ScriptedServer() as srv:
        yield srv


def make_client(server: ScriptedServer, **settings) -> ServiceClient:
    settings.setdefault("max_requests_per_second", 0)
    return ServiceClient(
        service="Test",
        conn_id=f"test-{id(server)}-{time.monotonic_ns()}",
        base_url=server.url,
        settings=HttpSettings(**settings),
    )


async def acall(client: ServiceClient, *args, **kwargs):
    try:
        return await client.arequest(*args, **kwargs)
    finally:
        await close_async_clients()


def call(mode: str, client: ServiceClient, *args, **kwargs):
    if mode == "sync":
        return client.request(*args, **kwargs)
    return asyncio.run(acall(client, *args, **kwargs))


MODES = ["sync", "async"]


@pytest.mark.parametrize("mode", MODES)
def test_429_retry_after_seconds_is_honoured(server, mode):
    server.add(Reply(429, {"error": "rate-limit-error"}, {"Retry-After": "2"}))
    client = make_client(server)
    response = call(mode, client, "get_job", "GET", "/jobs/1")
    assert response.status_code == 200
    assert len(server.seen) == 2
    assert server.seen[1].at - server.seen[0].at >= 2.0


@pytest.mark.parametrize("mode", MODES)
def test_429_retry_after_http_date_is_honoured(server, mode):
    # HTTP-dates have one-second resolution: ask for 3 s so that at least 2 s remain.
    server.add(Reply(429, b"{}", {"Retry-After": formatdate(time.time() + 3, usegmt=True)}))
    client = make_client(server)
    call(mode, client, "get_job", "GET", "/jobs/1")
    assert len(server.seen) == 2
    assert server.seen[1].at - server.seen[0].at >= 2.0


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("replies", "body"),
    [
        ([Reply(503, b"{}"), Reply(503, b"{}"), Reply(200, {"id": "x"})], {"id": "x"}),
        ([Reply(reset=True), Reply(200, {"id": "y"})], {"id": "y"}),
    ],
    ids=["503_twice_then_200_succeeds", "connection_reset_is_retried"],
)
def test_transient_failures_are_retried(server, mode, replies, body):
    server.add(*replies)
    client = make_client(server)
    response = call(mode, client, "get_job", "GET", "/jobs/1")
    assert response.json() == body
    assert len(server.seen) == len(replies)


@pytest.mark.parametrize("mode", MODES)
def test_reset_after_sending_a_post_is_not_retried(server, mode):
    """A non-idempotent submit that may have been processed is never sent twice."""
    server.add(Reply(reset=True), Reply(200, {"id": "dup"}))
    client = make_client(server)
    with pytest.raises(ServiceUnreachableError):
        call(mode, client, "submit_job", "POST", "/jobs", json={"a": 1})
    assert len(server.seen) == 1


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("status", "error"), [(400, BadRequestError), (401, AuthenticationError), (404, NotFoundError)]
)
def test_client_errors_are_not_retried(server, mode, status, error):
    server.default = Reply(status, {"error": "nope", "info": "details here"})
    client = make_client(server)
    with pytest.raises(error) as info:
        call(mode, client, "get_job", "GET", "/jobs/1", job_id="job-1")
    assert len(server.seen) == 1
    text = str(info.value)
    assert "Test" in text and "get_job" in text and f"HTTP {status}" in text
    assert "details here" in text and "job-1" in text
    assert f"GET {server.url}/jobs/1" in text


@pytest.mark.parametrize("mode", MODES)
def test_deadline_stops_retrying_in_time(server, mode):
    server.default = Reply(503, b"{}", {"Retry-After": "5"})
    client = make_client(server, max_retries=10)
    started = time.monotonic()
    with pytest.raises(ServiceError) as info:
        call(mode, client, "get_job", "GET", "/jobs/1", deadline=time.monotonic() + 1.0)
    elapsed = time.monotonic() - started
    assert elapsed < 1.5, elapsed
    assert "deadline" in str(info.value)


@pytest.mark.parametrize("mode", MODES)
def test_backoff_deadline_without_retry_after(server, mode):
    server.default = Reply(502, b"{}")
    client = make_client(server, max_retries=50)
    started = time.monotonic()
    with pytest.raises(ServiceError):
        call(mode, client, "get_job", "GET", "/jobs/1", deadline=time.monotonic() + 1.0)
    assert time.monotonic() - started < 1.5
    assert len(server.seen) >= 2


def test_sync_client_reuses_one_connection(server):
    client = make_client(server)
    for _ in range(20):
        client.request("get_job", "GET", "/jobs/1")
    assert len(server.seen) == 20
    assert server.connections_used() == 1


def test_async_client_reuses_one_connection_across_calls_and_clients(server):
    client_a = make_client(server)
    # A second ServiceClient of the same connection shares the loop's httpx client.
    client_b = ServiceClient(
        service="Test", conn_id=client_a.conn_id, base_url=server.url, settings=client_a.settings
    )

    async def run() -> None:
        for _ in range(10):
            await client_a.arequest("get_job", "GET", "/jobs/1")
            await client_b.arequest("get_job", "GET", "/jobs/1")
        await close_async_clients()

    asyncio.run(run())
    assert len(server.seen) == 20
    assert server.connections_used() == 1


def test_clients_are_closed_when_the_loop_shuts_down(server):
    client = make_client(server)
    holder = {}

    async def run() -> None:
        await client.arequest("get_job", "GET", "/jobs/1")
        holder["client"] = await client._aclient()

    asyncio.run(run())
    assert holder["client"].is_closed


@pytest.mark.parametrize("mode", MODES)
def test_rate_limit_spaces_requests(server, mode):
    client = make_client(server, max_requests_per_second=10)

    async def many() -> None:
        await asyncio.gather(*(client.arequest("get_job", "GET", "/jobs/1") for _ in range(11)))
        await close_async_clients()

    if mode == "sync":
        for _ in range(11):
            client.request("get_job", "GET", "/jobs/1")
    else:
        asyncio.run(many())
    times = sorted(s.at for s in server.seen)
    assert len(times) == 11
    assert times[-1] - times[0] >= 0.95  # 11 requests at 10/s span at least one second


def test_429_pauses_every_caller_of_the_connection(server):
    server.add(Reply(429, b"{}", {"Retry-After": "1"}))
    client = make_client(server)

    async def run() -> None:
        first = asyncio.create_task(client.arequest("get_job", "GET", "/jobs/1"))
        await asyncio.sleep(0.3)  # the 429 has arrived and paused the connection
        await client.arequest("get_job", "GET", "/jobs/2")
        await first
        await close_async_clients()

    asyncio.run(run())
    assert len(server.seen) == 3
    # The second caller's request waited for the pause too, though it never saw a 429.
    assert server.seen[1].at - server.seen[0].at >= 1.0
