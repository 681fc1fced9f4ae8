"""Connections to the emulator for hook tests: a fresh account (credential) per test."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from airflow_jobstatus.models import JobStatus

EMULATOR_PREFIX = {"daily": "daily", "wasabi_air": "wasabi", "symbl": "symbl", "deepaffects": "deepaffects"}


@pytest.fixture
def make_connection(monkeypatch, jobstatus_emulator) -> Callable[..., tuple[str, str]]:
    """Define an Airflow connection (env var) to the emulator; returns (conn_id, credential)."""

    def make(conn_type: str, *, credential: str | None = None, **extra: Any) -> tuple[str, str]:
        credential = credential or f"{conn_type}-{uuid.uuid4().hex[:12]}"
        conn_id = f"t_{conn_type}_{uuid.uuid4().hex[:8]}"
        conn: dict[str, Any] = {
            "conn_type": conn_type,
            "host": jobstatus_emulator.service_url(EMULATOR_PREFIX[conn_type]),
            "extra": {"max_requests_per_second": 0, "allow_http_links": True, **extra},
        }
        if conn_type == "wasabi_air":
            conn.update(login=credential, password=f"secret-{credential}")
        elif conn_type == "symbl":
            conn.update(login=credential, password=f"secret-{credential}")
        else:
            conn["password"] = credential
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))
        return conn_id, credential

    return make


def wait_until_terminal(get: Callable[[str], JobStatus], job_id: str, timeout: float = 20) -> JobStatus:
    deadline = time.monotonic() + timeout
    while True:
        status = get(job_id)
        if status.is_terminal or time.monotonic() > deadline:
            return status
        time.sleep(0.25)


async def await_terminal(aget: Callable[[str], Any], job_id: str, timeout: float = 20) -> JobStatus:
    import asyncio

    deadline = time.monotonic() + timeout
    while True:
        status = await aget(job_id)
        if status.is_terminal or time.monotonic() > deadline:
            return status
        await asyncio.sleep(0.25)
