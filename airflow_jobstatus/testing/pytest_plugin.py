"""Pytest fixtures for the emulator and a local S3 server (registered via the ``pytest11`` entry point).

* ``jobstatus_s3`` (session): an :class:`~airflow_jobstatus.testing.s3.S3Server` (moto) process.
* ``jobstatus_emulator`` (session): an :class:`~airflow_jobstatus.testing.emulator.EmulatorServer`
  process writing outputs to ``jobstatus_s3``; default job duration 1 s, and DeepAffects' request
  limits (5/min, 100/day per key) off so that tests may poll quickly (a test of the limits turns
  them on with ``patch_config``, or starts an emulator of its own with every default).
* ``emulator`` (function): the session emulator after ``POST /_admin/reset`` (jobs, faults,
  counters, revocations and config back to start-up values); reset again after the test. Tests
  run sequentially, so resetting the shared process is safe.
* ``jobstatus_credential`` (function): a fresh credential string; since every non-empty
  credential is its own account, a test using it sees only its own jobs.

Server logs go to a ``jobstatus-servers`` directory under pytest's base temp directory. Nothing
heavy (no Airflow, no boto3) is imported when this module is loaded.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from airflow_jobstatus.testing.emulator.server import EmulatorServer
    from airflow_jobstatus.testing.s3 import S3Server

EMULATOR_JOB_DURATION = 1.0


@pytest.fixture(scope="session")
def jobstatus_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    from airflow_jobstatus.testing.s3 import S3Server

    logs = tmp_path_factory.mktemp("jobstatus-servers", numbered=True)
    server = S3Server(log_path=logs / "moto-s3.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def jobstatus_emulator(
    jobstatus_s3: S3Server, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EmulatorServer]:
    from airflow_jobstatus.testing.emulator.server import EmulatorServer

    logs = tmp_path_factory.mktemp("jobstatus-emulator", numbered=True)
    server = EmulatorServer(
        s3_endpoint=jobstatus_s3.endpoint_url,
        s3_access_key=jobstatus_s3.access_key,
        s3_secret_key=jobstatus_s3.secret_key,
        s3_region=jobstatus_s3.region,
        job_duration=EMULATOR_JOB_DURATION,
        deepaffects_requests_per_minute=0,
        deepaffects_requests_per_day=0,
        log_path=logs / "emulator.log",
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def emulator(jobstatus_emulator: EmulatorServer) -> Iterator[EmulatorServer]:
    jobstatus_emulator.reset()
    yield jobstatus_emulator
    # leave the shared process clean (config, faults) for tests that use jobstatus_emulator directly
    jobstatus_emulator.reset()


@pytest.fixture
def jobstatus_credential() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"
