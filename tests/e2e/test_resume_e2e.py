"""A user's clear reruns a submit operator's job, on real Airflow processes (api-server, scheduler,
dag-processor, triggerer; LocalExecutor on SQLite).

The clear is ``POST /api/v2/dags/{dag_id}/clearTaskInstances``, as the UI sends it; what counts is
how many jobs the emulator's account received. A clear of a task whose job succeeded, and of a task
deferred on a job still running, each submit a new job (the clear is a rerun the user asked for);
the task ends with the new job's result.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.airflow_stack import AirflowStack
from tests.helpers.connections import emulator_connection

pytestmark = pytest.mark.e2e

DAGS = Path(__file__).parent / "dags"
DAG_ID = "jobstatus_e2e_resume"


@pytest.fixture(scope="module")
def account(jobstatus_emulator: Any) -> tuple[dict[str, str], str]:
    conn, credential = emulator_connection(
        jobstatus_emulator, "daily", label="e2e", max_requests_per_second=20
    )
    return {"AIRFLOW_CONN_DAILY_RESUME": json.dumps(conn)}, credential


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, account: tuple[dict[str, str], str]
) -> Iterator[AirflowStack]:
    root = tmp_path_factory.mktemp("airflow-e2e-resume")
    dags = root / "dags"
    dags.mkdir()
    shutil.copy(DAGS / "jobstatus_resume_e2e.py", dags)
    with AirflowStack(root, dags_folder=dags, env=account[0]) as running:
        running.wait_for_dags([DAG_ID])
        yield running


def clear(stack: AirflowStack, run_id: str) -> None:
    stack.api(
        "POST",
        f"/dags/{DAG_ID}/clearTaskInstances",
        json={"dag_run_id": run_id, "task_ids": ["submit"], "dry_run": False, "only_failed": False},
    )


def job_ids(emulator: Any, credential: str) -> list[str]:
    return [job["job_id"] for job in emulator.jobs(service="daily", credential=credential)]


def returned(stack: AirflowStack, run_id: str) -> dict[str, Any]:
    entry = stack.api("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/submit/xcomEntries/return_value")
    value = entry["value"]
    return json.loads(value) if isinstance(value, str) else value


def test_a_clear_after_success_and_a_clear_while_deferred_each_submit_a_new_job(
    stack: AirflowStack, account: tuple[dict[str, str], str], jobstatus_emulator: Any
) -> None:
    _, credential = account
    # the job succeeds; the user clears the task: a rerun, so a second job
    run_id = stack.trigger(DAG_ID, conf={"seconds": 2})
    seen = stack.watch_run(DAG_ID, run_id, timeout=120)
    assert seen["submit"][-1] == "success", (seen, stack.log_tails())
    first = job_ids(jobstatus_emulator, credential)
    assert len(first) == 1 and returned(stack, run_id)["job_id"] == first[0]
    clear(stack, run_id)
    time.sleep(1)
    seen = stack.watch_run(DAG_ID, run_id, timeout=120)
    assert seen["submit"][-1] == "success", (seen, stack.log_tails())
    jobs = job_ids(jobstatus_emulator, credential)
    assert len(jobs) == 2, jobs
    assert returned(stack, run_id)["job_id"] == (set(jobs) - set(first)).pop()

    # the task waits (deferred) on a long job; the user clears it: a new job, which the task returns
    run_id = stack.trigger(DAG_ID, conf={"seconds": 120})
    stack.watch_run(DAG_ID, run_id, timeout=120, until=lambda states: states.get("submit") == "deferred")
    before = job_ids(jobstatus_emulator, credential)
    assert len(before) == 3, before
    clear(stack, run_id)
    time.sleep(1)
    seen = stack.watch_run(DAG_ID, run_id, timeout=120)
    assert seen["submit"][-1] == "success", (seen, stack.log_tails())
    jobs = job_ids(jobstatus_emulator, credential)
    assert len(jobs) == 4, jobs
    assert returned(stack, run_id)["job_id"] == (set(jobs) - set(before)).pop()
