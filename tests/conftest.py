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
from typing import Any

import pytest

# Under pytest-xdist every worker is its own process with its own home (and SQLite database): the
# workers inherit the controller's environment, so a home this file made there is replaced.
_worker = os.environ.get("PYTEST_XDIST_WORKER")
if "AIRFLOW_HOME" not in os.environ or (
    _worker and os.environ.get("AIRFLOW_HOME") == os.environ.get("JOBSTATUS_TEST_AIRFLOW_HOME")
):
    _prefix = f"jobstatus-airflow-home-{_worker}-" if _worker else "jobstatus-airflow-home-"
    os.environ["AIRFLOW_HOME"] = os.environ["JOBSTATUS_TEST_AIRFLOW_HOME"] = tempfile.mkdtemp(prefix=_prefix)
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "True")

from tests.helpers import secret_scan  # noqa: E402 - after AIRFLOW_HOME is set

CANARY_TEST = "tests/test_secret_canary.py::test_no_secret_leaked_anywhere"

pytest_plugins = ["tests.helpers.xdist_schedule"]


def pytest_configure(config: pytest.Config) -> None:
    registry = secret_scan.registry()
    secret_scan.register_airflow_home(Path(os.environ["AIRFLOW_HOME"]), label="pytest process home")
    secret_scan.install_log_capture(registry.check_record)


def pytest_collection_finish(session: pytest.Session) -> None:
    # Not at configure time: importing Airflow that early changes how its logging is set up for tests.
    secret_scan.install_exception_capture(secret_scan.registry().check_exception)


@pytest.hookimpl(trylast=True)  # after -k/-m deselection: only a selected canary test counts
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """The canary scan runs last: it scans what every other test left behind.

    An xdist worker runs no canary item: it scans when its share of the tests is done and the
    controller reports the one canary test for every worker (see the xdist hooks below).
    """
    last = [item for item in items if item.nodeid.endswith(CANARY_TEST)]
    if not last:
        return
    items[:] = [item for item in items if item not in last]
    if _is_xdist_worker(config):
        config.stash[_CANARY_SELECTED] = last[0].nodeid
    else:
        items.extend(last)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    report = secret_scan.registry().last_report
    merged = terminalreporter.config.stash.get(_CANARY_MERGED, None)
    if merged is not None:
        report = merged
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


# ---------------------------------------------------------------------- the canary under pytest-xdist

_CANARY_SELECTED = pytest.StashKey[str]()  # worker: the canary test's node id, when it was selected
_WORKER_RESULTS = pytest.StashKey[list[dict]]()  # controller: each worker's scan
_CANARY_MERGED = pytest.StashKey[secret_scan.ScanReport]()  # controller: the workers' scans merged


def _is_xdist_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def pytest_runtest_logfinish(nodeid: str) -> None:
    _tests_run[0] += 1


_tests_run = [0]  # tests this process ran (an xdist worker runs its share)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """An xdist worker scans what its tests left (fixtures are torn down by now) for the controller."""
    config = session.config
    nodeid = config.stash.get(_CANARY_SELECTED, None)
    if not _is_xdist_worker(config) or nodeid is None:
        return
    from tests.test_secret_canary import verify

    report, problems = verify(secret_scan.registry(), _tests_run[0])
    config.workeroutput["secret_canary"] = {  # type: ignore[attr-defined]
        "nodeid": nodeid,
        "worker": config.workerinput["workerid"],  # type: ignore[attr-defined]
        "tests": _tests_run[0],
        "report": report.to_json(),
        "problems": problems,
    }


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    result = getattr(node, "workeroutput", {}).get("secret_canary")
    if result is not None:
        config: pytest.Config = node.config
        config.stash.setdefault(_WORKER_RESULTS, []).append(result)


@pytest.hookimpl(wrapper=True)
def pytest_runtestloop(session: pytest.Session) -> Any:
    """The xdist controller reports the canary test once, from every worker's scan."""
    try:
        return (yield)
    finally:
        results = session.config.stash.get(_WORKER_RESULTS, [])
        if results and not _is_xdist_worker(session.config):
            _report_canary_for_workers(session, results)


def _report_canary_for_workers(session: pytest.Session, results: list[dict]) -> None:
    from tests.test_secret_canary import write_artifact

    merged = secret_scan.ScanReport()
    problems: list[str] = []
    for result in sorted(results, key=lambda r: r["worker"]):
        merged.merge(secret_scan.ScanReport.from_json(result["report"]))
        problems += [f"[{result['worker']}, {result['tests']} tests] {p}" for p in result["problems"]]
    write_artifact(merged, secret_scan.registry().canary)
    session.config.stash[_CANARY_MERGED] = merged
    nodeid = results[0]["nodeid"]
    path, _, name = nodeid.partition("::")
    report = pytest.TestReport(
        nodeid=nodeid,
        location=(path, 0, name),
        keywords={},
        outcome="failed" if problems else "passed",
        longrepr="\n".join(problems) if problems else None,
        when="call",
    )
    session.config.hook.pytest_runtest_logreport(report=report)
