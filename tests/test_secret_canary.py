"""The secret canary (issue 8): no secret of the session is readable anywhere a user or operator looks.

Every secret the suite puts into a connection carries the session's canary
(``tests/helpers/canary.py``). This test runs last (``tests/conftest.py`` orders it) and scans what
the session left behind (``tests/helpers/secret_scan.py``): the log files of every Airflow home
and Airflow stack, every row of their metadata databases (trigger kwargs decrypted), every log
record emitted in this process and every ``JobStatusError`` created. One occurrence fails it,
naming the place. The counts go to the terminal summary and to
``tests/artifacts/secret_canary/report.json``.

Under pytest-xdist each worker is a process of its own: every worker runs :func:`verify` when its
tests are done, and the controller reports this test once for them all (``tests/conftest.py``).
"""

from __future__ import annotations

import json
import logging
import uuid
from pathlib import Path

import pytest
import structlog

from airflow_jobstatus.exceptions import JobStatusError
from tests.helpers import secret_scan

ARTIFACTS = Path(__file__).parent / "artifacts" / "secret_canary"


def live_capture_still_works(registry: secret_scan.SessionRegistry) -> set[str]:
    """Emit a probe through each live path, as the code under test would; return the paths that saw it."""
    token = f"canary-probe-{uuid.uuid4().hex}"
    with registry.probe(token) as seen:
        logging.getLogger("airflow_jobstatus.canary_probe").warning("probe %s", token)
        structlog.get_logger("airflow_jobstatus.canary_probe").warning(f"probe {token}")
        JobStatusError(f"probe {token}")
    return seen


def verify(registry: secret_scan.SessionRegistry, tests_ran: int) -> tuple[secret_scan.ScanReport, list[str]]:
    """Scan what this process's session left behind; return the report and what is wrong (if anything).

    ``tests_ran`` counts the other tests of the session: with none, nothing is expected to be scanned.
    """
    seen = live_capture_still_works(registry)
    report = registry.scan()
    problems: list[str] = []
    if seen != {"log record", "structlog line", "exception"}:
        problems.append(f"the live capture no longer sees every path: it saw only {sorted(seen)}")
    if report.errors:
        problems.append("places the scan could not read:\n" + "\n".join(report.errors))
    if report.hit_count:
        problems.append(
            f"the canary leaked in {report.hit_count} place(s):\n"
            + "\n".join(str(hit) for hit in report.hits)
        )
    if not tests_ran:
        return report, problems
    scanned = report.files + report.total_rows + report.log_records + report.exceptions
    if not scanned:
        problems.append(f"{tests_ran} tests ran but nothing was scanned: {report.summary()}")
    for home in registry.homes:
        tables = report.rows.get(home.label, {})
        if home.env is not None and tables:  # a stack that was migrated and ran
            files = sum(
                1 for folder in home.log_dirs if folder.is_dir() for p in folder.rglob("*") if p.is_file()
            )
            if not (sum(tables.values()) > 0 and files > 0):
                problems.append(f"{home.label}: nothing written to scan")
    return report, problems


def write_artifact(report: secret_scan.ScanReport, canary: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "report.json").write_text(
        json.dumps({"canary_length": len(canary), **report.to_json()}, indent=2) + "\n"
    )


def test_no_secret_leaked_anywhere(request: pytest.FixtureRequest) -> None:
    registry = secret_scan.registry()
    others = [item for item in request.session.items if item is not request.node]
    report, problems = verify(registry, len(others))
    write_artifact(report, registry.canary)
    assert not problems, "\n".join(problems)
    if not others:
        pytest.skip(
            "ran alone: nothing but an empty Airflow home to scan; run it after the integration and "
            f"e2e tests (scanned {report.files} files, {report.total_rows} rows, {report.log_records} records)"
        )
