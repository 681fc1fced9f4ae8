"""Regressions the fault matrix found in the HTTP core, each against the emulator on its own.

* Symbl's token exchange took its own rate-limit slot *inside* the auth flow of a request that had
  already taken its slot, so both went out back to back.
* aiohttp resent a request at once when a reused keep-alive connection was dropped, behind the
  connection's rate limit and retry policy.
* The verifying SSL context (tens of ms to load the CA store) was built inside the event loop,
  once per connection.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from airflow_jobstatus.exceptions import ServiceUnreachableError
from airflow_jobstatus.hooks.daily import DailyHook
from airflow_jobstatus.hooks.symbl import SymblHook
from airflow_jobstatus.http import transport
from airflow_jobstatus.http.client import close_async_clients
from tests.helpers.canary import secret

pytestmark = pytest.mark.integration

RATE = 2.0


@pytest.fixture
def connection(monkeypatch: pytest.MonkeyPatch, emulator: object) -> Callable[..., tuple[str, str]]:
    """An Airflow connection to the emulator: (conn id, account identity)."""

    def make(conn_type: str, **extra: object) -> tuple[str, str]:
        conn_id = f"reg_{conn_type}_{uuid.uuid4().hex[:8]}"
        key = secret(f"reg-{conn_type}")
        conn: dict[str, object] = {
            "conn_type": conn_type,
            "host": emulator.service_url("daily" if conn_type == "daily" else "symbl"),  # type: ignore[attr-defined]
            "password": key,
            "extra": {"max_requests_per_second": RATE, "allow_http_links": True, **extra},
        }
        identity = key
        if conn_type == "symbl":
            identity = f"reg-app-{uuid.uuid4().hex[:8]}"
            conn["login"] = identity
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))
        return conn_id, identity

    return make


def arrival_times(emulator: object, service: str, identity: str) -> list[tuple[float, str]]:
    rows = emulator.requests(service=service)  # type: ignore[attr-defined]
    return [(r["at"], r["route"]) for r in rows if r["credential"] == identity]


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_token_exchange_takes_its_own_rate_limit_slot(
    emulator: object, connection: Callable[..., tuple[str, str]], mode: str
) -> None:
    conn_id, app_id = connection("symbl")
    hook = SymblHook(symbl_conn_id=conn_id)
    url = "https://media.example/a.mp3?emu_duration=30"
    if mode == "sync":
        hook.submit_job(audio_url=url)
    else:

        async def submit() -> None:
            try:
                await hook.asubmit_job(audio_url=url)
            finally:
                await close_async_clients()

        asyncio.run(submit())
    (token_at, token_route), (submit_at, submit_route) = arrival_times(emulator, "symbl", app_id)
    assert token_route == "/oauth2/token:generate" and submit_route == "/v1/process/audio/url"
    assert submit_at - token_at >= 1 / RATE - 0.05, submit_at - token_at  # was a few ms


def test_a_dropped_keepalive_request_is_not_resent_behind_the_limiter(
    emulator: object, connection: Callable[..., tuple[str, str]]
) -> None:
    conn_id, key = connection("daily", max_retries=0)  # any resend would be aiohttp's own
    hook = DailyHook(daily_conn_id=conn_id)
    job_id = hook.submit_job("transcript", uri="https://media.example/a.mp4?emu_duration=30")

    errors: list[str] = []

    async def scenario() -> None:
        try:
            await hook.aget_job(job_id)  # opens the keep-alive connection
            emulator.add_fault(service="daily", credential=key, kind="drop", count=1)  # type: ignore[attr-defined]
            with pytest.raises(ServiceUnreachableError) as raised:
                await hook.aget_job(job_id)
            errors.append(str(raised.value))
        finally:
            await close_async_clients()

    def gets() -> list[dict[str, Any]]:
        rows = emulator.requests(service="daily")  # type: ignore[attr-defined]
        mine = [r for r in rows if r["credential"] == key and r["route"] == "/batch-processor/{id}"]
        return sorted(mine, key=lambda r: r["at"])  # by arrival (the log is kept in completion order)

    # On a loaded machine the server may close the idle keep-alive connection first, so the request
    # fails before reaching it and the drop is not exercised: try again.
    for _ in range(3):
        seen = {r["at"] for r in gets()}
        asyncio.run(scenario())
        # the emulator logs a dropped request once the drop has completed: give it a moment
        deadline = time.monotonic() + 3
        while True:
            this_try = [r for r in gets() if r["at"] not in seen]
            if any(r["status"] == 0 for r in this_try) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        if any(r["status"] == 0 for r in this_try):
            time.sleep(0.5)  # a resend (the bug) would arrive within milliseconds of the drop
            this_try = [r for r in gets() if r["at"] not in seen]
            break
        emulator.clear_faults()  # type: ignore[attr-defined]
    else:
        pytest.fail(f"the drop fault never reached the emulator in 3 tries: {errors}; seen {gets()}")
    # the poll, then the dropped request; aiohttp used to resend the dropped one at once
    assert [r["status"] for r in this_try] == [200, 0], this_try


def test_the_ssl_context_is_never_built_in_the_event_loop(
    emulator: object, connection: Callable[..., tuple[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    conn_id, _ = connection("daily", verify_tls=True)
    hook = DailyHook(daily_conn_id=conn_id)
    job_id = hook.submit_job("transcript", uri="https://media.example/a.mp4")
    built_in: list[int] = []
    original = transport.ssl.create_default_context

    def recording(*args: object, **kwargs: object) -> object:
        built_in.append(threading.get_ident())
        return original(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(transport, "_ssl_context", None)
    monkeypatch.setattr(transport.ssl, "create_default_context", recording)

    async def scenario() -> int:
        try:
            await asyncio.gather(*(DailyHook(daily_conn_id=conn_id).aget_job(job_id) for _ in range(3)))
        finally:
            await close_async_clients()
        return threading.get_ident()

    started = time.monotonic()
    loop_thread = asyncio.run(scenario())
    assert built_in and loop_thread not in built_in, (built_in, loop_thread)
    assert len(built_in) == 1  # one context per process, shared
    assert time.monotonic() - started < 30
