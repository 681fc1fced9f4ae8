"""The secret canary (issue 8): no secret of the session is readable anywhere a user or operator looks.

Every secret the suite puts into a connection carries the session's canary
(``tests/helpers/canary.py``). This test runs last (``tests/conftest.py`` orders it) and scans what
the session left behind (``tests/helpers/secret_scan.py``): the log files of every Airflow home
and Airflow stack, every row of their metadata databases (trigger kwargs decrypted), every log
record emitted in this process and every ``JobStatusError`` created. One occurrence fails it,
naming the place. The counts go to the terminal summary and to
``tests/artifacts/secret_canary/report.json``.
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


def test_no_secret_leaked_anywhere(request: pytest.FixtureRequest) -> None:
    registry = secret_scan.registry()
    assert live_capture_still_works(registry) == {"log record", "structlog line", "exception"}

    report = registry.scan()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "report.json").write_text(
        json.dumps({"canary_length": len(registry.canary), **report.to_json()}, indent=2) + "\n"
    )

    assert not report.errors, "places the scan could not read:\n" + "\n".join(report.errors)
    assert report.hit_count == 0, f"the canary leaked in {report.hit_count} place(s):\n" + "\n".join(
        str(hit) for hit in report.hits
    )

    others = [item for item in request.session.items if item is not request.node]
    if not others:
        pytest.skip(
            "ran alone: nothing but an empty Airflow home to scan; run it after the integration and "
            f"e2e tests (scanned {report.files} files, {report.total_rows} rows, {report.log_records} records)"
        )
    scanned = report.files + report.total_rows + report.log_records + report.exceptions
    assert scanned > 0, f"{len(others)} tests ran but nothing was scanned: {report.summary()}"
    for home in registry.homes:
        tables = report.rows.get(home.label, {})
        if home.env is not None and tables:  # a stack that was migrated and ran
            files = sum(
                1 for folder in home.log_dirs if folder.is_dir() for p in folder.rglob("*") if p.is_file()
            )
            assert sum(tables.values()) > 0 and files > 0, f"{home.label}: nothing written to scan"
