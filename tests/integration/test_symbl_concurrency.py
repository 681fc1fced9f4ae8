"""Symbl.ai's concurrent-job limit (contracts S8), through ``dag.test()`` against the emulator.

The emulator answers the documented 429 while the account runs ``symbl_max_concurrent_jobs`` jobs.
`SymblSubmitJobOperator` then waits (each wait logged with the reason) and submits again, until the
limit frees up or ``concurrency_wait_timeout`` is spent.
"""

from __future__ import annotations

import threading
import uuid
from pathlib import Path
from typing import Any

import pytest

from airflow_jobstatus.exceptions import ConcurrencyLimitError
from airflow_jobstatus.hooks.symbl import SymblHook
from jobstatus_emulator.server import EmulatorServer
from tests.helpers.dags import load_dag

pytestmark = pytest.mark.integration

DAG = """
from datetime import timedelta

from airflow.sdk import DAG

from airflow_jobstatus.operators.symbl import SymblSubmitJobOperator

with DAG({dag_id!r}, schedule=None, catchup=False) as dag:
    waits = SymblSubmitJobOperator(
        task_id="waits_for_a_free_slot",
        symbl_conn_id={waits_conn!r},
        audio_url="https://media.example/queued.mp3?emu_duration=0.5",
        enable_speaker_diarization=True,
        diarization_speaker_count=2,
        detect_entities=True,
        deferrable=False,
        poll_interval=0.5,
        retries=0,
    )
    gives_up = SymblSubmitJobOperator(
        task_id="gives_up",
        symbl_conn_id={gives_up_conn!r},
        audio_url="https://media.example/never.mp3",
        concurrency_wait_timeout=1.5,
        deferrable=False,
        retries=0,
        retry_delay=timedelta(0),
    )
    for task in (waits, gives_up):
        task.concurrency_backoff_initial = 0.5
        task.concurrency_backoff_max = 1.0
"""


def _load(folder: Path, dag_id: str, **values: Any) -> Any:
    return load_dag(folder, dag_id, DAG.format(dag_id=dag_id, **values))


def _state(ti: Any) -> str:
    return str(getattr(ti.state, "value", ti.state))


def _submits(emulator: EmulatorServer, app_id: str) -> list[int]:
    return [
        r["status"]
        for r in emulator.requests(service="symbl", credential=app_id)
        if r["method"] == "POST" and "token" not in r["route"]
    ]


def test_the_operator_waits_at_the_concurrency_limit_and_gives_up_past_its_bound(
    airflow_dags_folder: Path,
    make_connection,
    emulator: EmulatorServer,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    emulator.configure(symbl_max_concurrent_jobs=1)
    waits_conn, waits_app = make_connection("symbl", max_retries=0)
    gives_up_conn, gives_up_app = make_connection("symbl", max_retries=0)
    # each account's one slot is taken by a long job; the first one ends once our operator was refused
    blocker = SymblHook(waits_conn).submit_job(audio_url="https://media.example/busy.mp3?emu_duration=60")
    SymblHook(gives_up_conn).submit_job(audio_url="https://media.example/busy.mp3?emu_duration=60")
    stop = threading.Event()

    def end_the_blocker_after_a_refusal() -> None:
        while not stop.wait(0.1):
            if 429 in _submits(emulator, waits_app):
                emulator.patch_job("symbl", blocker.split(":")[0], duration=0)
                return

    watcher = threading.Thread(target=end_the_blocker_after_a_refusal, daemon=True)
    watcher.start()

    dag = _load(
        airflow_dags_folder,
        f"symbl_limit_{uuid.uuid4().hex[:6]}",
        waits_conn=waits_conn,
        gives_up_conn=gives_up_conn,
    )
    try:
        dag_run = dag.test()
    finally:
        stop.set()
        watcher.join(5)
    tis = {ti.task_id: ti for ti in dag_run.get_task_instances()}
    captured = capfd.readouterr()
    text = "\n".join([captured.out, captured.err, *(r.getMessage() for r in caplog.records)])

    assert _state(tis["waits_for_a_free_slot"]) == "success"
    answers = _submits(emulator, waits_app)
    assert answers[-1] == 201 and answers.count(201) == 2 and 429 in answers  # the blocker, then ours
    assert "concurrent-job limit is reached" in text and "Submitting again in" in text
    assert "maximum of 1 number of concurrent jobs" in text  # the reason: the service's own message
    [request] = [
        record["request"]
        for record in (emulator.job("symbl", j["job_id"]) for j in emulator.jobs("symbl", waits_app))
        if "queued" in record["request"]["body"]["url"]
    ]
    assert request["query"] == {"enableSpeakerDiarization": "true", "diarizationSpeakerCount": "2"}
    assert request["body"]["detectEntities"] is True

    assert _state(tis["gives_up"]) == "failed"
    assert set(_submits(emulator, gives_up_app)[1:]) == {429}  # never submitted
    assert "still at its limit of concurrent jobs" in text
    assert ConcurrencyLimitError.__name__ in text or "concurrency_wait_timeout" in text


def test_the_hook_types_the_limit_429(make_connection, emulator: EmulatorServer) -> None:
    """S8: the documented 429 on submit is a `ConcurrencyLimitError` (a `RateLimitedError`)."""
    from airflow_jobstatus.exceptions import RateLimitedError

    emulator.configure(symbl_max_concurrent_jobs=1)
    conn_id, _ = make_connection("symbl", max_retries=0)
    hook = SymblHook(conn_id)
    hook.submit_job(audio_url="https://media.example/busy.mp3?emu_duration=30")
    with pytest.raises(ConcurrencyLimitError) as err:
        hook.submit_job(audio_url="https://media.example/next.mp3")
    assert isinstance(err.value, RateLimitedError) and err.value.http_status == 429
    text = str(err.value)
    assert "maximum of 1 number of concurrent jobs" in text and "concurrency_wait_timeout" in text
    with pytest.raises(ConcurrencyLimitError):  # the text variant too
        hook.submit_job(messages=[{"payload": {"content": "hello"}}])


def test_a_spent_request_budget_is_not_the_concurrency_limit(
    make_connection, emulator: EmulatorServer
) -> None:
    """Only the service's 429 is the concurrent-job limit: the connection's own budget stays itself."""
    from airflow_jobstatus.exceptions import RequestBudgetExhaustedError

    conn_id, app_id = make_connection("symbl", max_retries=0, max_requests_per_day=1)
    with pytest.raises(RequestBudgetExhaustedError) as err:  # the token exchange spent the one request
        SymblHook(conn_id).submit_job(audio_url="https://media.example/a.mp3")
    assert not isinstance(err.value, ConcurrencyLimitError)
    assert _submits(emulator, app_id) == []  # nothing was submitted
