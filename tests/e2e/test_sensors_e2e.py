"""The deferrable sensors on real Airflow processes: api-server, scheduler, dag-processor, triggerer.

LocalExecutor on SQLite, one DAG run at a time (PostgreSQL would allow concurrent runs but needs
``psycopg2-binary`` and ``asyncpg``, which this project does not install). The emulator stands in
for the four services; the DAGs are ``tests/e2e/dags/jobstatus_sensors_e2e.py``.

* Each service's sensor goes ``deferred`` then ``success`` (observed through the REST API), and its
  XCom ``return_value`` is the final JobStatus.
* The triggerer is killed with SIGKILL while four sensors are deferred and a new triggerer is
  started: it adopts their triggers (same absolute deadline) and every task still succeeds.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.airflow_stack import AirflowStack
from tests.helpers.connections import emulator_connection, exported

pytestmark = pytest.mark.e2e

DAGS = Path(__file__).parent / "dags"
SERVICES = ("daily", "wasabi_air", "symbl", "deepaffects")


@pytest.fixture(scope="module")
def connections(jobstatus_emulator: Any) -> Iterator[dict[str, str]]:
    """``AIRFLOW_CONN_<SERVICE>_DEFAULT`` for each service, a fresh emulator account each."""
    env: dict[str, str] = {}
    for service in SERVICES:
        conn, _ = emulator_connection(jobstatus_emulator, service, label="e2e", max_requests_per_second=20)
        env[f"AIRFLOW_CONN_{service.upper()}_DEFAULT"] = json.dumps(conn)
    with exported(env):  # this process submits the jobs through the same connections
        yield env


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, connections: dict[str, str]) -> Iterator[AirflowStack]:
    root = tmp_path_factory.mktemp("airflow-e2e")
    dags = root / "dags"
    shutil.copytree(DAGS, dags, ignore=shutil.ignore_patterns("__pycache__"))
    with AirflowStack(root, dags_folder=dags, env=connections) as running:
        running.wait_for_dags([f"jobstatus_e2e_{s}" for s in SERVICES] + ["jobstatus_e2e_all"])
        yield running


@pytest.fixture(scope="module")
def bucket(jobstatus_s3: Any) -> str:
    return jobstatus_s3.create_bucket(f"e2e-{uuid.uuid4().hex[:8]}")


def submit(service: str, seconds: float, bucket: str, s3_endpoint: str) -> str:
    marker = f"emu_duration={seconds}"
    if service == "daily":
        from airflow_jobstatus.hooks.daily import DailyHook

        return DailyHook().submit_job("transcript", uri=f"https://media.example/e2e.mp4?{marker}")
    if service == "wasabi_air":
        from airflow_jobstatus.hooks.wasabi import WasabiAirHook

        return WasabiAirHook().submit_job(
            f"e2e-{uuid.uuid4().hex[:6]}",
            services={"s2t": ""},
            source={
                "Endpoint": s3_endpoint,
                "Bucket": "media",
                "Region": "us-east-1",
                "ObjectKey": f"e2e.mp4?{marker}",
            },
            destination={"Bucket": bucket, "Region": "us-east-1"},
        )
    if service == "symbl":
        from airflow_jobstatus.hooks.symbl import SymblHook

        return SymblHook().submit_job(audio_url=f"https://media.example/e2e.mp3?{marker}")
    from airflow_jobstatus.hooks.deepaffects import DeepAffectsHook

    return DeepAffectsHook().submit_job(
        "asr", url=f"https://media.example/e2e.wav?{marker}", webhook="https://hooks.example/deepaffects"
    )


@pytest.mark.parametrize("service", SERVICES)
def test_sensor_defers_then_succeeds(
    stack: AirflowStack, service: str, bucket: str, jobstatus_s3: Any
) -> None:
    dag_id = f"jobstatus_e2e_{service}"
    job_id = submit(service, 12, bucket, jobstatus_s3.endpoint_url)
    run_id = stack.trigger(dag_id, conf={"job_id": job_id})
    seen = stack.watch_run(dag_id, run_id, timeout=120)
    assert "deferred" in seen["wait"] and seen["wait"][-1] == "success", (seen, stack.log_tails())
    xcom = stack.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/wait/xcomEntries/return_value")
    value = xcom["value"]
    status = json.loads(value) if isinstance(value, str) else value
    assert status["state"] == "succeeded" and status["job_id"] == job_id and status["service"] == service


def trigger_logs(stack: AirflowStack, dag_id: str, run_id: str) -> dict[str, dict[str, str]]:
    """task id -> {triggerer job id: that triggerer's log of the task's trigger}."""
    run_dir = stack.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}"
    logs: dict[str, dict[str, str]] = {}
    for path in run_dir.glob("task_id=*/attempt=*.log.trigger.*.log"):
        task_id = path.parent.name.removeprefix("task_id=")
        triggerer = path.name.rsplit(".", 2)[-2]
        logs.setdefault(task_id, {})[triggerer] = path.read_text(errors="replace")
    return logs


def test_triggerer_killed_while_deferred_every_task_still_succeeds(
    stack: AirflowStack, bucket: str, jobstatus_s3: Any
) -> None:
    dag_id = "jobstatus_e2e_all"
    tasks = {f"wait_{service}" for service in SERVICES}
    jobs = {service: submit(service, 30, bucket, jobstatus_s3.endpoint_url) for service in SERVICES}
    run_id = stack.trigger(dag_id, conf=jobs)

    def running_in_triggerer(states: dict[str, str | None]) -> bool:
        if len(states) != 4 or any(state != "deferred" for state in states.values()):
            return False
        started = trigger_logs(stack, dag_id, run_id)
        return set(started) == tasks and all(
            "starting" in text for logs in started.values() for text in logs.values()
        )

    stack.watch_run(dag_id, run_id, timeout=90, until=running_in_triggerer)
    [first_triggerer] = {t for logs in trigger_logs(stack, dag_id, run_id).values() for t in logs}
    old_pid = stack.kill("triggerer")  # SIGKILL while the four triggers run: no shutdown, no cleanup
    assert stack.task_states(dag_id, run_id) == dict.fromkeys(tasks, "deferred")
    stack.start_component("triggerer")
    assert stack.processes["triggerer"].pid != old_pid

    seen = stack.watch_run(dag_id, run_id, timeout=120)
    assert {task: states[-1] for task, states in seen.items()} == dict.fromkeys(tasks, "success"), (
        seen,
        stack.log_tails(),
    )
    for task, logs in trigger_logs(stack, dag_id, run_id).items():
        adopted = {t: text for t, text in logs.items() if t != first_triggerer}
        # the new triggerer adopted the trigger and fired the success event
        assert len(adopted) == 1, (task, list(logs))
        assert "Trigger fired event" in next(iter(adopted.values())), task
        assert "'event': 'succeeded'" in next(iter(adopted.values())), task
