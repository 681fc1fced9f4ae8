"""Canary secrets in a query string, in headers and in a token-exchange body never leak.

The scripted server echoes the request line and headers back in its error bodies (as some APIs
do), so a leak anywhere in the error path would show. Captured: every log record of every logger
at DEBUG, every exception text and its formatted traceback, and reprs.
"""

from __future__ import annotations

import asyncio
import logging
import traceback

import httpx
import pytest

from airflow_jobstatus.exceptions import JobStatusError
from airflow_jobstatus.http import HttpSettings, ServiceClient
from airflow_jobstatus.http.auth import HeaderAuth, QueryParamAuth
from airflow_jobstatus.http.client import close_async_clients
from tests.helpers.scripted_server import Reply, ScriptedServer

pytestmark = pytest.mark.integration

CANARY = "CANARY-9d8e7f6a5b4c"


def client_for(server: ScriptedServer, auth: httpx.Auth | None) -> ServiceClient:
    return ServiceClient(
        service="Canary",
        conn_id=f"canary-{server.port}",
        base_url=server.url,
        settings=HttpSettings(max_requests_per_second=0, max_retries=1),
        auth=auth,
        secrets=[CANARY],
    )


def echoing(server: ScriptedServer, status: int) -> None:
    """Answer with the raw request (URL, headers, body) inside the error body."""

    original = server.script

    class Echo:
        def __bool__(self) -> bool:
            return True

        def popleft(self) -> Reply:
            seen = server.seen[-1]
            return Reply(status, {"error": "echo", "info": f"{seen.target} {seen.headers} {seen.body!r}"})

        def extend(self, items):  # pragma: no cover
            original.extend(items)

    server.script = Echo()  # type: ignore[assignment]


@pytest.mark.parametrize("status", [400, 401, 404, 500])
def test_canary_never_leaks(status, caplog):
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    with ScriptedServer() as server:
        echoing(server, status)
        cases = [
            (QueryParamAuth("apikey", CANARY), "GET", "/status", None),
            (HeaderAuth({"x-amz-access-key": "AK", "x-amz-secret-key": CANARY}), "GET", "/jobs/1", None),
            (
                None,
                "POST",
                "/oauth2/token:generate",
                {"type": "application", "appId": "a", "appSecret": CANARY},
            ),
        ]
        for auth, method, path, body in cases:
            client = client_for(server, auth)
            texts.append(repr(client))
            for mode in ("sync", "async"):
                with pytest.raises(JobStatusError) as info:
                    if mode == "sync":
                        client.request("probe", method, path, json=body, idempotent=True)
                    else:

                        async def run(client=client, method=method, path=path, body=body) -> None:
                            try:
                                await client.arequest("probe", method, path, json=body, idempotent=True)
                            finally:
                                await close_async_clients()

                        asyncio.run(run())
                texts.append(str(info.value))
                texts.append("".join(traceback.format_exception(info.value)))
        # The canary did reach the server, so the test would see a leak.
        assert any(
            CANARY in s.target or CANARY in str(s.headers) or CANARY.encode() in s.body for s in server.seen
        )
    texts.extend(r.getMessage() for r in caplog.records)
    texts.extend(str(r.__dict__) for r in caplog.records)
    assert caplog.records, "expected httpx's request log lines to be captured"
    leaks = [t for t in texts if CANARY in t]
    assert not leaks, leaks[:3]


def test_httpx_request_log_line_is_redacted(caplog):
    caplog.set_level(logging.INFO, logger="httpx")
    with ScriptedServer() as server:
        client_for(server, QueryParamAuth("apikey", CANARY)).request("probe", "GET", "/status")
    lines = [r.getMessage() for r in caplog.records if r.name == "httpx"]
    assert lines and all(CANARY not in line for line in lines)
    assert any("apikey=" in line for line in lines)
