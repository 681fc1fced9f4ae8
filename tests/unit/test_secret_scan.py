"""The secret-canary scanner can fail: a canary planted in each kind of place is reported where it is.

These tests plant their own canary (not the session's), so nothing here leaks into the session's
scan. A masked value (``***``) is never a hit.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import uuid
from pathlib import Path

import pytest
import structlog

from airflow_jobstatus.exceptions import AuthenticationError, JobStatusError
from tests.helpers import secret_scan
from tests.helpers.secret_scan import AirflowHome, CanaryLogHandler, Scanner, SessionRegistry

pytestmark = pytest.mark.unit

PLANTED = f"plantedcanary{uuid.uuid4().hex[:12]}"


def planted_secret() -> str:
    return f"key-{PLANTED}-x"


def make_home(root: Path, fernet_key: str) -> tuple[Path, Path, dict[str, str]]:
    """A throwaway home: a task log, a component log and a SQLite database with Airflow's column names.

    Returns (home, component logs folder, the environment its "processes" ran with).
    """
    from airflow.sdk.serde import serialize
    from cryptography.fernet import Fernet

    home = root / "airflow-home"
    task_log = home / "logs" / "dag_id=d" / "run_id=r" / "task_id=wait" / "attempt=1.log"
    task_log.parent.mkdir(parents=True)
    task_log.write_text(
        "starting\n"
        "GET https://proxy.example/status?apikey=***&request_id=r1 -> 200\n"
        f"GET https://proxy.example/status?apikey={planted_secret()}&request_id=r1 -> 200\n"
    )
    components = root / "logs"
    components.mkdir()
    (components / "triggerer-1.log").write_text("trigger fired\n" * 3)

    database = home / "airflow.db"
    db = sqlite3.connect(database)
    db.executescript(
        """
        CREATE TABLE xcom (dag_run_id INTEGER, task_id TEXT, map_index INTEGER, key TEXT, value JSON,
                           PRIMARY KEY (dag_run_id, task_id, map_index, key));
        CREATE TABLE trigger (id INTEGER PRIMARY KEY, classpath TEXT, kwargs TEXT);
        CREATE TABLE connection (id INTEGER PRIMARY KEY, conn_id TEXT, password TEXT);
        CREATE TABLE task_instance_note (ti_id TEXT PRIMARY KEY, content TEXT);
        """
    )
    db.execute(
        "INSERT INTO xcom VALUES (7, 'wait', -1, 'return_value', ?)",
        (json.dumps({"job_id": "j1", "url": f"https://x/?apikey={planted_secret()}"}),),
    )
    db.execute("INSERT INTO xcom VALUES (7, 'masked', -1, 'return_value', ?)", (json.dumps({"key": "***"}),))
    kwargs = {"conn_id": "c", "job_id": "j1", "api_key": planted_secret()}
    # what the Trigger model stores: the serde-encoded kwargs as JSON, encrypted with the home's key
    encrypted = Fernet(fernet_key.encode()).encrypt(json.dumps(serialize(kwargs)).encode()).decode()
    assert PLANTED not in encrypted
    db.execute(
        "INSERT INTO trigger VALUES (3, 'airflow_jobstatus.triggers.job.JobStatusTrigger', ?)", (encrypted,)
    )
    db.execute("INSERT INTO connection VALUES (1, 'daily_default', ?)", (planted_secret(),))  # a secret store
    db.execute("INSERT INTO task_instance_note VALUES ('ti-1', 'apikey ***, all good')")
    db.commit()
    db.close()

    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{database}",
        AIRFLOW__CORE__FERNET_KEY=fernet_key,
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
    )
    return home, components, env


def test_each_planted_canary_is_reported_where_it_is(tmp_path: Path) -> None:
    from cryptography.fernet import Fernet

    fernet_key = Fernet.generate_key().decode()  # not this process's key: the scan must use the home's
    home, components, env = make_home(tmp_path, fernet_key)
    registry = SessionRegistry(PLANTED)
    registry.add_home(AirflowHome("planted", home, [home / "logs", components], env=env))

    handler = CanaryLogHandler(registry.check_record)
    logger = logging.getLogger("airflow_jobstatus.hooks.planted")
    logger.addHandler(handler)
    try:
        logger.warning("request to %s", "https://proxy.example/?apikey=***")
        try:
            raise RuntimeError(f"boom {planted_secret()}")
        except RuntimeError:
            logger.exception("request failed")  # the canary is only in the exception text
        logging.getLogger("tests.helpers.planted").addHandler(handler)
        logging.getLogger("tests.helpers.planted").warning("harness %s", planted_secret())
    finally:
        logger.removeHandler(handler)
        logging.getLogger("tests.helpers.planted").removeHandler(handler)
    registry.check_exception(AuthenticationError("rejected", url=f"https://x/?apikey={planted_secret()}"))
    registry.check_exception(AuthenticationError("rejected", url="https://x/?apikey=***"))

    report = registry.scan()

    assert not report.errors
    where = {(hit.kind, hit.where) for hit in report.hits}
    task_log = home / "logs" / "dag_id=d" / "run_id=r" / "task_id=wait" / "attempt=1.log"
    assert where == {
        ("file", f"{task_log}:3"),
        (
            "database",
            "planted table xcom row [dag_run_id=7,task_id=wait,map_index=-1,key=return_value] column value",
        ),
        ("database", "planted table trigger row [id=3] column kwargs (decrypted)"),
        ("log record", "logger airflow_jobstatus.hooks.planted"),
        ("exception", "AuthenticationError str"),
    }, report.summary()
    assert report.hit_count == 5
    for hit in report.hits:  # the excerpt shows the place, never the canary itself
        assert PLANTED not in hit.excerpt and secret_scan.PLACEHOLDER in hit.excerpt
    assert report.files == 2 and report.bytes > 0
    assert report.rows["planted"] == {"connection": 1, "task_instance_note": 1, "trigger": 1, "xcom": 2}
    assert report.log_records == 2 and report.exceptions == 2


def test_masked_values_are_not_hits(tmp_path: Path) -> None:
    scanner = Scanner(PLANTED)
    log = tmp_path / "task.log"
    log.write_text("apikey=***\nAuthorization: ***\n")
    scanner.file(log)
    scanner.record("GET https://proxy.example/?apikey=*** 200", "httpx")
    scanner.exception(JobStatusError("401", url="https://proxy.example/?apikey=***"))
    assert scanner.report.hit_count == 0 and scanner.report.files == 1


def test_the_session_capture_sees_every_logger_structlog_and_exceptions() -> None:
    """Installed by tests/conftest.py: records of non-propagating loggers and structlog lines too."""
    token = f"probe-{uuid.uuid4().hex}"
    quiet = logging.getLogger(f"airflow_jobstatus.unit_probe_{uuid.uuid4().hex[:6]}")
    quiet.propagate = False  # no handler sees it through the root logger
    with secret_scan.registry().probe(token) as seen:
        quiet.warning("value %s", token)
        structlog.get_logger("airflow_jobstatus.unit_probe").warning(f"value {token}")
        JobStatusError(f"value {token}")
    assert seen == {"log record", "structlog line", "exception"}


def test_a_canary_too_short_to_be_unique_is_refused() -> None:
    with pytest.raises(ValueError, match="shorter than 8"):
        Scanner("abc")
