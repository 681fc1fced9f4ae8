"""Pytest fixtures for the emulator (registered via this distribution's ``pytest11`` entry point).

* ``jobstatus_emulator`` (session): an :class:`~jobstatus_emulator.server.EmulatorServer` process;
  default job duration 1 s, and DeepAffects' request limits (5/min, 100/day per key) off so that
  tests may poll quickly (a test of the limits turns them on with ``patch_config``, or starts an
  emulator of its own with every default). If the session has a ``jobstatus_s3`` fixture (an S3 server with
  ``endpoint_url``, ``access_key``, ``secret_key`` and ``region``, e.g. the provider's moto
  server), outputs for customers' buckets are written there; without one the emulator runs
  without an S3 endpoint.
* ``emulator`` (function): the session emulator after ``POST /_admin/reset`` (jobs, faults,
  counters, revocations and config back to start-up values); reset again after the test. Tests
  of one session run sequentially (a pytest-xdist worker is a session of its own, with its own
  emulator process), so resetting the shared process is safe.
* ``jobstatus_credential`` (function): a fresh credential string; since every non-empty
  credential is its own account, a test using it sees only its own jobs.

Server logs go to a ``jobstatus-emulator`` directory under pytest's base temp directory. Nothing
heavy (no uvicorn, no boto3) is imported when this module is loaded.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from jobstatus_emulator.server import EmulatorServer

EMULATOR_JOB_DURATION = 1.0


def _s3_settings(request: pytest.FixtureRequest) -> dict[str, Any]:
    try:
        s3 = request.getfixturevalue("jobstatus_s3")
    except pytest.FixtureLookupError:
        return {}
    return {
        "s3_endpoint": s3.endpoint_url,
        "s3_access_key": s3.access_key,
        "s3_secret_key": s3.secret_key,
        "s3_region": s3.region,
    }


@pytest.fixture(scope="session")
def jobstatus_emulator(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EmulatorServer]:
    from jobstatus_emulator.server import EmulatorServer

    s3 = _s3_settings(request)
    logs = tmp_path_factory.mktemp("jobstatus-emulator", numbered=True)
    server = EmulatorServer(
        **s3,
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
