"""Connections to the emulator for hook tests: a fresh account (credential) per test."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_jobstatus.models import JobStatus
from tests.helpers.connections import emulator_connection
from tests.helpers.redis_server import RedisServer, redis_server  # noqa: F401 - push_on's fixture


@pytest.fixture(scope="session")
def airflow_dags_folder() -> Iterator[Path]:
    """A migrated metadata database (once per session) and the dags folder, for ``dag.test()``.

    The folder is the one Airflow computed when it was first imported in this process (under the
    throwaway ``AIRFLOW_HOME``): Airflow reads ``[core] dags_folder`` once, at import.
    """
    from airflow import settings

    dags = Path(settings.DAGS_FOLDER)
    dags.mkdir(parents=True, exist_ok=True)
    patch = pytest.MonkeyPatch()
    patch.setenv("AIRFLOW__CORE__DAGS_FOLDER", str(dags))
    patch.setenv("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    airflow = Path(sys.executable).with_name("airflow")
    result = subprocess.run(
        [str(airflow), "db", "migrate"], env=dict(os.environ), capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    try:
        yield dags
    finally:
        patch.undo()


@pytest.fixture
def make_connection(monkeypatch, jobstatus_emulator) -> Callable[..., tuple[str, str]]:
    """Define an Airflow connection (env var) to the emulator; returns (conn_id, credential).

    ``credential`` is the emulator account identity (jobs and stats are looked up by it). Every
    secret carries the session's canary (``tests.helpers.canary``), so the canary scan finds leaks.
    """

    def make(conn_type: str, *, credential: str | None = None, **extra: Any) -> tuple[str, str]:
        conn, identity = emulator_connection(
            jobstatus_emulator,
            conn_type,
            label="t",
            identity=credential,
            **{"max_requests_per_second": 0, **extra},
        )
        conn_id = f"t_{conn_type}_{uuid.uuid4().hex[:8]}"
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))
        return conn_id, identity

    return make


@pytest.fixture
def push_on(monkeypatch: pytest.MonkeyPatch, redis_server: RedisServer) -> RedisServer:  # noqa: F811
    """Push completion on (Redis set), with a 600 s safety-net interval so that any poll shows."""
    monkeypatch.setenv("AIRFLOW__JOBSTATUS__REDIS_URL", redis_server.url)
    monkeypatch.setenv("AIRFLOW__JOBSTATUS__PUSH_POLL_INTERVAL", "600")
    return redis_server


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
