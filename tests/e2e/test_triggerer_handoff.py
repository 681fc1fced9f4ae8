"""A trigger handed to another triggerer never deletes the job it waits for (issue 18, item 1).

Airflow 3.3 cancels a trigger that is no longer assigned to its triggerer with the same "user
action" message as a real kill, and then calls its ``on_kill()``; triggers move whenever a
triggerer's heartbeat is late. Real processes (api-server, scheduler, dag-processor and two
triggerers; LocalExecutor on a throwaway PostgreSQL database): a deferred Daily submission with
``delete_on_kill=True`` waits on an emulator job; the triggerer running its trigger is stopped
with SIGSTOP until the other one has adopted the trigger, then resumed, so that it cancels the
trigger it lost and runs ``on_kill()``. The job must survive (no DELETE reaches the emulator) and
the task succeed once the job ends, its wait completed by the other triggerer. Then a second run
is marked failed through the REST API while deferred (a real user kill): its job is deleted, which
shows the task-state lookup answering inside a real triggerer.

Skips with the reason when PostgreSQL is not reachable on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jobstatus_emulator.server import EmulatorError
from tests.e2e.airflow_stack import AirflowStack
from tests.e2e.postgres import fresh_database
from tests.e2e.test_scale_out import MetadataDB, wait_for
from tests.helpers.connections import emulator_connection

pytestmark = pytest.mark.e2e

DAG_FILE = Path(__file__).parent / "dags" / "jobstatus_handoff_e2e.py"
DAG_ID = "jobstatus_handoff"
HELD_JOB_SECONDS = 3600
"""The job lasts this long until the test shortens it."""
JOB_ROUTE = "/batch-processor/{id}"


@pytest.fixture
def database() -> Iterator[str]:
    with fresh_database() as url:  # skips when PostgreSQL is absent; drops the database afterwards
        yield url


def requests_by_route(emulator: Any, credential: str) -> dict[tuple[str, str], int]:
    counts: dict[tuple[str, str], int] = {}
    for row in emulator.stats(service="daily", credential=credential)["requests"]:
        key = (row["method"], row["route"])
        counts[key] = counts.get(key, 0) + row["count"]
    return counts


def test_a_trigger_moved_to_another_triggerer_does_not_delete_its_job(
    tmp_path: Path, database: str, jobstatus_emulator: Any
) -> None:
    dags = tmp_path / "dags"
    dags.mkdir()
    shutil.copy(DAG_FILE, dags / DAG_FILE.name)
    conn, credential = emulator_connection(jobstatus_emulator, "daily", label="handoff")
    env = {"AIRFLOW_CONN_HANDOFF_DAILY": json.dumps(conn)}
    db = MetadataDB(database)
    stack = AirflowStack(tmp_path, dags_folder=dags, env=env, database_url=database, triggerers=2)
    stopped: int | None = None
    try:
        # the n-th TriggererJob row is the n-th triggerer (see test_scale_out)
        stack.start(ready={name: db.triggerers_alive(n) for n, name in enumerate(stack.triggerers, 1)})
        job_of = dict(zip(stack.triggerers, db.alive_triggerer_jobs(), strict=True))
        name_of = {job: name for name, job in job_of.items()}
        stack.wait_for_dags([DAG_ID], timeout=120)
        run_id = stack.trigger(
            DAG_ID, conf={"uri": f"https://media.example/h.mp4?emu_duration={HELD_JOB_SECONDS}"}
        )

        def state() -> str:
            return f"tasks {dict(db.task_states())}, owners {db.trigger_owners()}\n{stack.log_tails()}"

        # ------------------------------------------------------------ deferred, and polled by its triggerer
        def polled_owner() -> int | None:
            owner = db.trigger_owners().get(run_id)
            polled = requests_by_route(jobstatus_emulator, credential).get(("GET", JOB_ROUTE), 0)
            return owner if owner is not None and polled else None

        owner = wait_for(polled_owner, timeout=180, what="the submission deferred and polled", state=state)
        [job] = jobstatus_emulator.jobs(service="daily", credential=credential)
        victim = name_of[owner]
        [survivor] = [name for name in stack.triggerers if name != victim]

        # ------------------------------------------------------------ stall its triggerer past the health threshold
        stopped = stack.processes[victim].pid
        assert stopped is not None
        os.killpg(stopped, signal.SIGSTOP)
        wait_for(
            lambda: db.trigger_owners().get(run_id) == job_of[survivor],
            timeout=90,
            what=f"{survivor} adopting the trigger of the stalled {victim}",
            state=state,
            every=0.5,
        )
        time.sleep(4)  # the survivor starts the trigger and polls
        os.killpg(stopped, signal.SIGCONT)
        stopped = None

        # ------------------------------------------------------------ the resumed one cancels what it lost: on_kill
        def victim_text() -> str:
            text = stack.processes[victim].log_path.read_text(errors="replace")
            return text + "".join(
                p.read_text(errors="replace")
                for p in (stack.home / "logs").glob(f"dag_id={DAG_ID}/**/*.log.trigger.{owner}.log")
            )

        wait_for(
            lambda: "invoking on_kill" in victim_text(),
            timeout=60,
            what=f"{victim} cancelling the trigger it lost",
            state=state,
        )
        # on_kill read the task's state and said why it kept the job
        wait_for(
            lambda: "not stopped by a user" in victim_text(),
            timeout=20,
            what="on_kill's decision",
            state=state,
        )
        assert "deferred" in victim_text().split("not stopped by a user")[0][-300:], victim_text()[-3000:]
        time.sleep(3)  # whatever on_kill sends has reached the emulator, and the survivor polled again
        requests = requests_by_route(jobstatus_emulator, credential)
        assert requests.get(("DELETE", JOB_ROUTE), 0) == 0, (requests, state())
        assert jobstatus_emulator.job("daily", job["job_id"])["status"] != "deleted"
        assert db.task_states() == {"deferred": 1}, state()

        # ------------------------------------------------------------ the job ends: the survivor completes the wait
        created = jobstatus_emulator.job("daily", job["job_id"])["created"]
        jobstatus_emulator.patch_job("daily", job["job_id"], duration=time.time() - created + 2)
        wait_for(
            lambda: db.run_states().keys() <= {"success", "failed"} and sum(db.run_states().values()) == 1,
            timeout=120,
            what="the run finishing",
            state=state,
        )
        assert db.task_states() == {"success": 1}, state()
        assert (
            sum(
                r["count"]
                for r in jobstatus_emulator.stats(service="daily", credential=credential)["requests"]
                if r["method"] == "POST"
            )
            == 1
        )  # one job paid for
        survivor_text = stack.processes[survivor].log_path.read_text(errors="replace") + "".join(
            p.read_text(errors="replace")
            for p in (stack.home / "logs").glob(f"dag_id={DAG_ID}/**/*.log.trigger.{job_of[survivor]}.log")
        )
        assert "Trigger fired event" in survivor_text, survivor_text[-3000:]

        # ------------------------------------------------------------ a real kill still deletes the job
        killed_run = stack.trigger(
            DAG_ID, conf={"uri": f"https://media.example/k.mp4?emu_duration={HELD_JOB_SECONDS}"}
        )
        wait_for(
            lambda: (
                db.trigger_owners().get(killed_run) is not None
                and requests_by_route(jobstatus_emulator, credential).get(("GET", JOB_ROUTE), 0)
                > requests[("GET", JOB_ROUTE)] + 1
            ),
            timeout=120,
            what="the second submission deferred and polled",
            state=state,
        )
        [killed_job] = [
            j
            for j in jobstatus_emulator.jobs(service="daily", credential=credential)
            if j["job_id"] != job["job_id"]
        ]
        stack.api(
            "PATCH", f"/dags/{DAG_ID}/dagRuns/{killed_run}/taskInstances/submit", json={"new_state": "failed"}
        )
        wait_for(
            lambda: requests_by_route(jobstatus_emulator, credential).get(("DELETE", JOB_ROUTE), 0) == 1,
            timeout=60,
            what="the job of the task a user marked failed deleted",
            state=state,
        )
        with pytest.raises(EmulatorError, match="404"):
            jobstatus_emulator.job("daily", killed_job["job_id"])
    finally:
        if stopped is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(stopped, signal.SIGCONT)
        with contextlib.suppress(Exception):
            db.close()
        stack.stop()
