"""Test-session setup: a throwaway Airflow home before anything imports Airflow; the secret-canary scan.

The scan (``tests/helpers/secret_scan.py``) watches the whole session: every log record and every
``JobStatusError`` is checked for the canary as it is created, every Airflow home is registered
when it is created, and ``tests/test_secret_canary.py`` runs last to scan the homes' logs and
databases and report.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

_home = tempfile.mkdtemp(prefix="jobstatus-airflow-home-")
os.environ.setdefault("AIRFLOW_HOME", _home)
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "True")

from tests.helpers import secret_scan  # noqa: E402 - after AIRFLOW_HOME is set

CANARY_TEST = "tests/test_secret_canary.py::test_no_secret_leaked_anywhere"


def pytest_configure(config: pytest.Config) -> None:
    registry = secret_scan.registry()
    secret_scan.register_airflow_home(Path(os.environ["AIRFLOW_HOME"]), label="pytest process home")
    secret_scan.install_log_capture(registry.check_record)


def pytest_collection_finish(session: pytest.Session) -> None:
    # Not at configure time: importing Airflow that early changes how its logging is set up for tests.
    secret_scan.install_exception_capture(secret_scan.registry().check_exception)


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """The canary scan runs last: it scans what every other test left behind."""
    last = [item for item in items if item.nodeid.endswith(CANARY_TEST)]
    if last:
        items[:] = [item for item in items if item not in last] + last


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    report = secret_scan.registry().last_report
    if report is not None:
        terminalreporter.section("secret canary scan")
        terminalreporter.write_line(report.summary())


@pytest.fixture(autouse=True)
def _forget_redis_url() -> object:
    """``[jobstatus] redis_url`` is read once per process; tests set it (monkeypatch), so forget it around each."""
    from airflow_jobstatus.shared import redis as shared_redis

    shared_redis.reset()
    yield
    shared_redis.reset()
