"""Airflow's own CLI discovers the provider, its four connection types and their forms."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

AIRFLOW = str(Path(sys.executable).parent / "airflow")
CONN_TYPES = ("daily", "wasabi_air", "symbl", "deepaffects")


def airflow(*args: str, tmp_path: Path) -> str:
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    done = subprocess.run([AIRFLOW, *args], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_providers_list_shows_the_distribution(tmp_path):
    out = airflow("providers", "list", "--output", "plain", tmp_path=tmp_path)
    assert "airflow-jobstatus" in out


def test_providers_hooks_show_the_four_connection_types(tmp_path):
    out = airflow("providers", "hooks", "--output", "plain", tmp_path=tmp_path)
    rows = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    for conn_type in CONN_TYPES:
        assert conn_type in rows, out
        assert "airflow_jobstatus.hooks." in rows[conn_type]
        assert "airflow-jobstatus" in rows[conn_type]


def test_providers_behaviours_show_the_field_behaviour(tmp_path):
    out = airflow("providers", "behaviours", "--output", "plain", tmp_path=tmp_path)
    for conn_type in CONN_TYPES:
        assert conn_type in out.split(), out
    # The CLI lists only the types; their content comes from the same ProvidersManager.
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path)}
    code = (
        "import json; from airflow.providers_manager import ProvidersManager as P; "
        f"print(json.dumps({{t: P().field_behaviours[t] for t in {list(CONN_TYPES)!r}}}))"
    )
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    behaviours = json.loads(done.stdout.strip().splitlines()[-1])
    assert "login" in behaviours["daily"]["hidden_fields"]
    assert behaviours["daily"]["relabeling"]["password"] == "API key"
    assert behaviours["wasabi_air"]["relabeling"]["login"] == "Access key"
    assert behaviours["symbl"]["relabeling"]["login"] == "App ID"
    assert behaviours["deepaffects"]["placeholders"]["extra__deepaffects__max_retries"] == "5"


def test_providers_widgets_show_the_shared_extras(tmp_path):
    out = airflow("providers", "widgets", "--output", "plain", tmp_path=tmp_path)
    for conn_type in CONN_TYPES:
        for field in ("request_timeout", "max_retries", "max_requests_per_second", "verify_tls"):
            assert f"extra__{conn_type}__{field}" in out, (conn_type, field)


def test_providers_triggers_list_the_job_trigger(tmp_path):
    out = airflow("providers", "triggers", "--output", "plain", tmp_path=tmp_path)
    assert "airflow_jobstatus.triggers.job" in out
