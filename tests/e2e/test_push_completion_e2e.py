"""Push completion end to end: real `airflow api-server` (the receiver), scheduler, dag-processor,
triggerer (LocalExecutor), Redis and the emulator, which sends each service's webhooks.

One stack for every case:

* Daily (its domain webhook made by `DailyHook.ensure_webhook`), Symbl.ai and DeepAffects (the
  submit operators pass the receiver's URL): each deferred wait ends after its job's webhook with
  exactly one status GET after the job finished. The safety-net poll is 10 minutes and the task's
  own ``poll_interval`` 3 s, so neither polling (far too slow) nor the normal interval (more GETs
  before the job ended) can explain it.
* Redis stopped mid-wait: the wait goes back to its 3 s interval and completes by polling.
"""

from __future__ import annotations

import json
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_jobstatus.hooks.daily import DailyHook
from tests.e2e.airflow_stack import AirflowStack
from tests.e2e.test_push_receiver_e2e import _plugin_env
from tests.helpers.connections import emulator_connection, exported
from tests.helpers.push import daily_hmac_secret, webhook_token
from tests.helpers.redis_server import RedisServer, redis_server  # noqa: F401 - fixture

pytestmark = pytest.mark.e2e

JOB_SECONDS = 20
POLL = 3
STATUS_ROUTES = {
    "daily": "/batch-processor/{id}",
    "symbl": "/v1/job/{jobId}",
    "deepaffects": "/transaction/generic/api/v1/async/status",
}
CONN_IDS = {"daily": "push_daily", "symbl": "push_symbl", "deepaffects": "push_deepaffects"}

DAG = """
from airflow.sdk import DAG

from airflow_jobstatus.operators.daily import DailySubmitJobOperator
from airflow_jobstatus.operators.deepaffects import DeepAffectsSubmitJobOperator
from airflow_jobstatus.operators.symbl import SymblSubmitJobOperator
from airflow_jobstatus.sensors.daily import DailyJobSensor
from airflow_jobstatus.sensors.deepaffects import DeepAffectsJobSensor
from airflow_jobstatus.sensors.symbl import SymblJobSensor

# The submit operators only submit; a deferrable sensor waits (max_xcom_bytes=0: its resume asks the
# service nothing, so every status GET after the job ended is the wait's own).
WAIT = dict(deferrable=True, poll_interval={poll}, timeout=600, max_xcom_bytes=0)
MEDIA = "https://media.example/push.wav?emu_duration={seconds}"


def job(task_id):
    return "{{{{ ti.xcom_pull(task_ids='" + task_id + "', key='job_id') }}}}"


with DAG("jobstatus_push_e2e", schedule=None, catchup=False):
    DailySubmitJobOperator(
        task_id="submit_daily", daily_conn_id="push_daily", preset="transcript", uri=MEDIA, wait_for_completion=False
    ) >> DailyJobSensor(task_id="daily", daily_conn_id="push_daily", job_id=job("submit_daily"), **WAIT)
    SymblSubmitJobOperator(
        task_id="submit_symbl", symbl_conn_id="push_symbl", audio_url=MEDIA, wait_for_completion=False
    ) >> SymblJobSensor(task_id="symbl", symbl_conn_id="push_symbl", job_id=job("submit_symbl"), **WAIT)
    DeepAffectsSubmitJobOperator(
        task_id="submit_deepaffects",
        deepaffects_conn_id="push_deepaffects",
        api="asr",
        url=MEDIA,
        wait_for_completion=False,
    ) >> DeepAffectsJobSensor(
        task_id="deepaffects", deepaffects_conn_id="push_deepaffects", job_id=job("submit_deepaffects"), **WAIT
    )

with DAG("jobstatus_push_fallback_e2e", schedule=None, catchup=False):
    DailySubmitJobOperator(
        task_id="submit_daily", daily_conn_id="push_daily", preset="transcript", uri=MEDIA, wait_for_completion=False
    ) >> DailyJobSensor(task_id="daily", daily_conn_id="push_daily", job_id=job("submit_daily"), **WAIT)
"""


@pytest.fixture
def accounts(emulator: Any) -> Iterator[tuple[dict[str, str], dict[str, str]]]:
    """Connections (``AIRFLOW_CONN_*``) with their webhook credentials, and each one's account."""
    emulator.admin("PATCH", "config", json={"webhook_retry_base": 0.2})
    env: dict[str, str] = {}
    identity: dict[str, str] = {}
    extras = {
        "daily": {"webhook_secret": daily_hmac_secret()},
        "symbl": {"webhook_token": webhook_token("e2e-push-symbl")},
        "deepaffects": {"webhook_token": webhook_token("e2e-push-deepaffects")},
    }
    for service, conn_id in CONN_IDS.items():
        conn, identity[service] = emulator_connection(
            emulator, service, label="e2e-push", max_requests_per_second=20, **extras[service]
        )
        env[f"AIRFLOW_CONN_{conn_id.upper()}"] = json.dumps(conn)
    with exported(env):
        yield env, identity


def push_stack(
    root: Path, dags: Path, redis_url: str, env: dict[str, str], **stack_options: Any
) -> tuple[AirflowStack, str]:
    """A stack (under ``root / "stack"``) with push on: the api-server mounts the receiver, Redis at
    ``redis_url``, a 10-minute safety net. Returns it and the receiver's base URL."""
    stack = AirflowStack(
        root / "stack",
        dags_folder=dags,
        env={
            **env,
            **_plugin_env(root),
            "AIRFLOW__JOBSTATUS__REDIS_URL": redis_url,
            "AIRFLOW__JOBSTATUS__PUSH_POLL_INTERVAL": "600",
        },
        **stack_options,
    )
    base = f"{stack.url}/jobstatus"
    stack.env["AIRFLOW__JOBSTATUS__WEBHOOK_BASE_URL"] = base
    return stack, base


def status_gets(emulator: Any, service: str, credential: str) -> list[float]:
    rows = emulator.admin("GET", "requests", params={"service": service, "credential": credential})
    return [
        r["at"]
        for r in rows["requests"]
        if r["method"] == "GET" and r["route"] == STATUS_ROUTES[service] and r["status"] == 200
    ]


def finished_at(emulator: Any, service: str, credential: str) -> float:
    (job,) = emulator.admin("GET", "jobs", params={"service": service, "credential": credential})["jobs"]
    assert job["status"] in ("finished", "completed", "Completed"), job["status"]
    return float(job["timeline"][-1]["at"])


def test_webhooks_wake_the_waits_and_redis_loss_falls_back_to_polling(
    tmp_path: Path,
    emulator: Any,
    accounts: tuple[dict[str, str], dict[str, str]],
    redis_server: RedisServer,  # noqa: F811
) -> None:
    env, identity = accounts
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "jobstatus_push_e2e.py").write_text(textwrap.dedent(DAG.format(poll=POLL, seconds=JOB_SECONDS)))
    stack, base = push_stack(tmp_path, dags, redis_server.url, env)
    with stack:
        # Daily: the domain's webhook, once (its test POST reaches the api-server's receiver)
        assert DailyHook(CONN_IDS["daily"]).ensure_webhook(base)["action"] == "created"
        stack.wait_for_dags(["jobstatus_push_e2e", "jobstatus_push_fallback_e2e"])

        run_id = stack.trigger("jobstatus_push_e2e")
        seen = stack.watch_run("jobstatus_push_e2e", run_id, timeout=240)
        assert {task: states[-1] for task, states in seen.items()} == dict.fromkeys(
            [*CONN_IDS, *(f"submit_{s}" for s in CONN_IDS)], "success"
        ), seen
        assert all("deferred" in seen[service] for service in CONN_IDS), seen
        for service in CONN_IDS:
            done = finished_at(emulator, service, identity[service])
            gets = status_gets(emulator, service, identity[service])
            before, after = [t for t in gets if t < done], [t for t in gets if t >= done]
            # the first checks while running (the sensor's, the trigger's); a 3 s interval: ~7
            assert 1 <= len(before) <= 3, (service, before, done)
            assert len(after) == 1, (service, after, done)  # the webhook cost exactly one GET
        webhooks = emulator.admin("GET", "webhooks")["deliveries"]
        delivered = {d["service"] for d in webhooks if d["kind"] == "event" and d["state"] == "delivered"}
        assert delivered == set(CONN_IDS), webhooks

        # Redis stops mid-wait: the wait polls again at its own interval and completes
        first_run = len(status_gets(emulator, "daily", identity["daily"]))
        fallback = stack.trigger("jobstatus_push_fallback_e2e")
        deadline = time.monotonic() + 90
        while len(status_gets(emulator, "daily", identity["daily"])) == first_run:
            assert time.monotonic() < deadline, stack.log_tails()
            time.sleep(0.5)  # the new wait's first check: the job is running, the wait parked
        redis_server.stop()
        stopped = time.monotonic()
        seen = stack.watch_run("jobstatus_push_fallback_e2e", fallback, timeout=150)
        assert seen["daily"][-1] == "success", seen
        # the safety net is 10 minutes and no webhook could be delivered: only polling explains it
        assert time.monotonic() - stopped < 120
        polled = status_gets(emulator, "daily", identity["daily"])[first_run + 1 :]
        assert len(polled) >= 1, polled
