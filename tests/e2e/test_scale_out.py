"""Scale-out: CeleryExecutor + PostgreSQL + two triggerers, 50 deferred waits, one triggerer SIGKILLed.

Real processes: api-server, scheduler, dag-processor, one Celery worker (Redis broker, Celery
results in the same PostgreSQL database) and ``triggerer-1``/``triggerer-2``. The test submits 50
emulator jobs through the hooks (the four services in turn), starts one DAG run per job
(``tests/e2e/dags/jobstatus_scale_out.py``) and checks, reading the metadata database:

* all 50 sensors are deferred at once and their triggers are spread over both triggerers (the
  ``trigger`` table's ``triggerer_id``) and running there (each has its triggerer log file);
* after the triggerer holding more triggers is SIGKILLed (not restarted), the other one adopts
  every one of its triggers while the tasks stay deferred;
* once the jobs finish, all 50 runs succeed, each sensor's XCom is its own job's final status,
  and an adopted trigger's success event came from the surviving triggerer.

The jobs are submitted with a long ``emu_duration`` (so that nothing can finish before every
sensor is deferred, however slow the machine) and are finished through the emulator's admin API
once the adoption is seen. Figures (wall time, each triggerer's CPU seconds, requests per second
the emulator saw, peak PostgreSQL connections) are printed and written to
``tests/artifacts/scale_out/figures.json``.

Skips with the reason when PostgreSQL or Redis is not reachable on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.e2e.airflow_stack import AirflowStack, CeleryConfig
from tests.e2e.postgres import fresh_database, redis_url
from tests.helpers.connections import EMULATOR_NAME, emulator_connection

pytestmark = pytest.mark.e2e

RUNS = 50
SERVICES = ("daily", "wasabi_air", "symbl", "deepaffects")
DAG_FILE = Path(__file__).parent / "dags" / "jobstatus_scale_out.py"
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "scale_out"
# Far longer than any machine needs to defer 50 sensors; the test finishes the jobs itself.
HELD_JOB_SECONDS = 3600
# After the adoption, jobs finish this many seconds later (staggered by 0.2 s per job)
FINISH_AFTER = 8.0
# A Redis database of its own, plus a key prefix: only this test's keys are ever deleted
REDIS_DB = int(os.environ.get("JOBSTATUS_TEST_REDIS_DB", "11"))
WORKER_CONCURRENCY = 4

T = TypeVar("T")


def wait_for(
    probe: Callable[[], T | None], *, timeout: float, what: str, state: Callable[[], str], every: float = 1.0
) -> T:
    """Call ``probe`` until it returns something truthy; else raise ``TimeoutError`` with ``state()``."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout:.0f}s\n{state()}")
        time.sleep(every)


class MetadataDB:
    """Read-only queries on the deployment's PostgreSQL metadata database (autocommit: always fresh)."""

    def __init__(self, sqlalchemy_url: str) -> None:
        import psycopg2

        self.conn = psycopg2.connect(sqlalchemy_url.replace("postgresql+psycopg2://", "postgresql://", 1))
        self.conn.autocommit = True
        self.peak_connections = 0

    def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with self.conn.cursor() as cur:
            cur.execute(sql, params)
            return list(cur.fetchall())

    def alive_triggerer_jobs(self) -> list[int]:
        """Ids of the running TriggererJobs, oldest first."""
        rows = self.rows(
            "SELECT id FROM job WHERE job_type = 'TriggererJob' AND state = 'running' AND end_date IS NULL "
            "ORDER BY id"
        )
        return [row[0] for row in rows]

    def triggerers_alive(self, count: int) -> Callable[[], bool]:
        """A readiness probe: at least ``count`` triggerers are running."""
        return lambda: len(self.alive_triggerer_jobs()) >= count

    def task_states(self) -> Counter[str]:
        return Counter(
            {state: n for state, n in self.rows("SELECT state, count(*) FROM task_instance GROUP BY 1")}
        )

    def run_states(self) -> Counter[str]:
        return Counter({state: n for state, n in self.rows("SELECT state, count(*) FROM dag_run GROUP BY 1")})

    def trigger_owners(self) -> dict[str, int | None]:
        """run id -> the triggerer job id its deferred sensor's trigger is assigned to (None: unassigned)."""
        rows = self.rows(
            "SELECT ti.run_id, t.triggerer_id FROM task_instance ti JOIN trigger t ON t.id = ti.trigger_id "
            "WHERE ti.state = 'deferred'"
        )
        return dict(rows)

    def sample_connections(self) -> int:
        [(count,)] = self.rows("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
        self.peak_connections = max(self.peak_connections, count)
        return count

    def sensor_results(self) -> dict[str, Any]:
        """run id -> the sensor's XCom ``return_value`` (decoded)."""
        rows = self.rows("SELECT run_id, value FROM xcom WHERE task_id = 'wait' AND key = 'return_value'")
        return {run_id: json.loads(value) if isinstance(value, str) else value for run_id, value in rows}

    def close(self) -> None:
        self.conn.close()


# ---------------------------------------------------------------------------------------- fixtures


@pytest.fixture
def database() -> Iterator[str]:
    with fresh_database() as url:  # skips when PostgreSQL is absent; drops the database afterwards
        yield url


@pytest.fixture
def broker() -> Iterator[tuple[str, str]]:
    """(broker URL, key prefix) on a dedicated Redis database; deletes exactly the prefixed keys after."""
    import redis

    url = redis_url().rsplit("/", 1)[0] + f"/{REDIS_DB}"  # skips when Redis is absent
    prefix = f"jobstatus-scale-out-{uuid.uuid4().hex[:10]}:"
    client = redis.Redis.from_url(url)
    try:
        yield url, prefix
    finally:
        keys = list(client.scan_iter(match=f"{prefix}*", count=500))
        if keys:
            client.delete(*keys)
        assert not list(client.scan_iter(match=f"{prefix}*")), "broker keys left behind"
        client.close()


@pytest.fixture
def connections(jobstatus_emulator: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, dict[str, Any]]:
    """One fresh emulator account per service as ``AIRFLOW_CONN_JOBSTATUS_SCALE_<SERVICE>``.

    Returned as service -> {"conn_id", "env", "identity"} (identity: the emulator's account name,
    used only to pick this test's rows out of the emulator's counters).
    """
    made: dict[str, dict[str, Any]] = {}
    for service in SERVICES:
        conn_id = f"jobstatus_scale_{service}"
        conn, identity = emulator_connection(
            jobstatus_emulator, service, label="scale", max_requests_per_second=20
        )
        value = json.dumps(conn)
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", value)  # this process submits the jobs
        made[service] = {"conn_id": conn_id, "env": value, "identity": identity}
    return made


def submit(service: str, conn_id: str, index: int, bucket: str, s3_endpoint: str) -> str:
    """Submit one job through the service's hook; it stays in flight for ``HELD_JOB_SECONDS``."""
    marker = f"emu_duration={HELD_JOB_SECONDS}"
    if service == "daily":
        from airflow_jobstatus.hooks.daily import DailyHook

        return DailyHook(daily_conn_id=conn_id).submit_job(
            "transcript", uri=f"https://media.example/scale-{index}.mp4?{marker}"
        )
    if service == "wasabi_air":
        from airflow_jobstatus.hooks.wasabi import WasabiAirHook

        return WasabiAirHook(wasabi_air_conn_id=conn_id).submit_job(
            f"scale-{index}",
            services={"s2t": ""},
            source={
                "Endpoint": s3_endpoint,
                "Bucket": "media",
                "Region": "us-east-1",
                "ObjectKey": f"scale-{index}.mp4?{marker}",
            },
            destination={"Bucket": bucket, "Region": "us-east-1"},
        )
    if service == "symbl":
        from airflow_jobstatus.hooks.symbl import SymblHook

        return SymblHook(symbl_conn_id=conn_id).submit_job(
            audio_url=f"https://media.example/scale-{index}.mp3?{marker}"
        )
    from airflow_jobstatus.hooks.deepaffects import DeepAffectsHook

    return DeepAffectsHook(deepaffects_conn_id=conn_id).submit_job(
        "asr",
        url=f"https://media.example/scale-{index}.wav?{marker}",
        webhook="https://hooks.example/deepaffects",
    )


def emulator_job_id(service: str, job_id: str) -> str:
    return job_id.split(":", 1)[0] if service == "symbl" else job_id  # Symbl: "<jobId>:<conversationId>"


def request_count(stats: dict[str, Any], identities: set[str]) -> Counter[str]:
    """Requests per emulator service made by this test's accounts."""
    counts: Counter[str] = Counter()
    for row in stats["requests"]:
        if row["credential"] in identities:
            counts[row["service"]] += row["count"]
    return counts


def trigger_log_files(stack: AirflowStack) -> dict[str, dict[int, str]]:
    """run id -> {triggerer job id: that triggerer's log of the run's trigger}."""
    logs: dict[str, dict[int, str]] = {}
    for path in (stack.home / "logs").glob(
        "dag_id=jobstatus_scale_out_*/run_id=*/task_id=wait/*.log.trigger.*.log"
    ):
        run_id = path.parent.parent.name.removeprefix("run_id=")
        job_id = int(path.name.rsplit(".", 2)[-2])
        logs.setdefault(run_id, {})[job_id] = path.read_text(errors="replace")
    return logs


# ---------------------------------------------------------------------------------------- the test


def test_fifty_waits_over_two_triggerers_survive_one_killed(
    tmp_path: Path,
    database: str,
    broker: tuple[str, str],
    connections: dict[str, dict[str, Any]],
    jobstatus_emulator: Any,
    jobstatus_s3: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    broker_url, key_prefix = broker
    dags = tmp_path / "dags"
    dags.mkdir()
    shutil.copy(DAG_FILE, dags / DAG_FILE.name)
    dag_ids = [f"jobstatus_scale_out_{service}" for service in SERVICES]
    bucket = jobstatus_s3.create_bucket(f"scale-{uuid.uuid4().hex[:8]}")
    env = {
        **{f"AIRFLOW_CONN_{c['conn_id'].upper()}": c["env"] for c in connections.values()},
        # Capacity for all 50 triggers in one triggerer (the survivor takes the killed one's), and a
        # small per-loop claim so that the two triggerers share the triggers as they arrive.
        "AIRFLOW__TRIGGERER__CAPACITY": "100",
        "AIRFLOW__TRIGGERER__MAX_TRIGGER_TO_SELECT_PER_LOOP": "5",
    }
    db = MetadataDB(database)
    stack = AirflowStack(
        tmp_path,
        dags_folder=dags,
        env=env,
        database_url=database,
        celery=CeleryConfig(
            broker_url=broker_url,
            result_backend=f"db+{database}",  # the same database, through psycopg2
            worker_concurrency=WORKER_CONCURRENCY,
            broker_key_prefix=key_prefix,
        ),
        triggerers=2,
    )
    started = time.monotonic()
    try:
        # Each triggerer is started once the previous one's TriggererJob row exists: the n-th row
        # is the n-th triggerer, which maps the trigger table's triggerer_id to a process.
        stack.start(ready={name: db.triggerers_alive(n) for n, name in enumerate(stack.triggerers, 1)})
        job_of = dict(zip(stack.triggerers, db.alive_triggerer_jobs(), strict=True))
        name_of = {job: name for name, job in job_of.items()}
        stack.wait_for_dags(dag_ids, timeout=180)
        startup_seconds = time.monotonic() - started

        # ------------------------------------------------------------ submit 50 jobs, start 50 runs
        jobs: dict[str, tuple[str, str]] = {}  # run id -> (service, job id)
        submitted = [
            (service, submit(service, connections[service]["conn_id"], i, bucket, jobstatus_s3.endpoint_url))
            for i, service in ((i, SERVICES[i % len(SERVICES)]) for i in range(RUNS))
        ]
        identities = {c["identity"] for c in connections.values()}
        requests_before = request_count(jobstatus_emulator.stats(), identities)
        cpu_before = {name: stack.cpu_seconds(name) for name in stack.triggerers}
        t0 = time.monotonic()
        for service, job_id in submitted:
            run_id = stack.trigger(f"jobstatus_scale_out_{service}", conf={"job_id": job_id})
            jobs[run_id] = (service, job_id)

        def describe() -> str:
            """What the deployment looks like now, for a timeout's message."""
            owners = Counter(db.trigger_owners().values())
            logs = Counter(job for files in trigger_log_files(stack).values() for job in files)
            return (
                f"runs {dict(db.run_states())}, tasks {dict(db.task_states())}, triggers per triggerer "
                f"job {dict(owners)} (log files {dict(logs)}; jobs {job_of})\n{stack.log_tails()}"
            )

        # ------------------------------------------------------------ all 50 deferred, spread, running
        def all_deferred_and_running() -> dict[str, int] | None:
            db.sample_connections()
            states = db.task_states()
            assert not states.keys() & {"failed", "upstream_failed", "up_for_retry"}, (
                states,
                stack.log_tails(),
            )
            assigned = {run_id: job for run_id, job in db.trigger_owners().items() if job is not None}
            if states.get("deferred") != RUNS or len(assigned) != RUNS:
                return None
            logs = trigger_log_files(stack)
            if any("starting" not in logs.get(run_id, {}).get(job, "") for run_id, job in assigned.items()):
                return None  # assigned, but not yet running in its triggerer
            return assigned

        owners = wait_for(
            all_deferred_and_running, timeout=300, what="50 sensors deferred and running", state=describe
        )
        deferred_seconds = time.monotonic() - t0
        spread = Counter(name_of[job] for job in owners.values())
        assert set(spread) == set(stack.triggerers), f"triggers not spread over both triggerers: {spread}"

        # ------------------------------------------------------------ SIGKILL the busier triggerer
        victim, survivor = sorted(stack.triggerers, key=lambda name: -spread[name])
        victim_cpu = stack.cpu_seconds(victim)  # sampled just before the kill
        victim_runs = {run_id for run_id, job in owners.items() if job == job_of[victim]}
        stack.kill(victim)
        killed_at = time.monotonic()
        assert db.task_states().get("deferred") == RUNS

        def adopted() -> bool:
            db.sample_connections()
            assert db.task_states().get("deferred") == RUNS, (db.task_states(), stack.log_tails())
            current = db.trigger_owners()
            return len(current) == RUNS and set(current.values()) == {job_of[survivor]}

        wait_for(
            adopted,
            timeout=120,
            what=f"{survivor} adopting the triggers of the killed {victim}",
            state=describe,
        )
        adoption_seconds = time.monotonic() - killed_at

        # ------------------------------------------------------------ finish the jobs, every run succeeds
        now = time.time()
        for i, (service, job_id) in enumerate(jobs.values()):
            emu_service, emu_id = EMULATOR_NAME[service], emulator_job_id(service, job_id)
            created = jobstatus_emulator.job(emu_service, emu_id)["created"]
            jobstatus_emulator.patch_job(emu_service, emu_id, duration=now - created + FINISH_AFTER + 0.2 * i)
        released = time.monotonic()

        def all_finished() -> bool:
            db.sample_connections()
            states = db.run_states()
            return sum(states.values()) == RUNS and not states.keys() - {"success", "failed"}

        wait_for(all_finished, timeout=300, what="50 runs finished", state=describe)
        wall_seconds = time.monotonic() - t0
        finish_seconds = time.monotonic() - released
        survivor_cpu = stack.cpu_seconds(survivor)
        requests = request_count(jobstatus_emulator.stats(), identities) - requests_before

        assert db.run_states() == Counter({"success": RUNS}), (db.task_states(), stack.log_tails())
        results = db.sensor_results()
        for run_id, (service, job_id) in jobs.items():
            assert results[run_id]["state"] == "succeeded", (run_id, results[run_id])
            assert (results[run_id]["service"], results[run_id]["job_id"]) == (service, job_id)
        # The survivor ran every adopted trigger up to its success event. Airflow writes that line to
        # the trigger's log file, but now and then only to the triggerer's own log: read both.
        logs = trigger_log_files(stack)
        survivor_lines = stack.processes[survivor].log_path.read_text(errors="replace").splitlines()
        for run_id in victim_runs:
            lines = logs[run_id].get(job_of[survivor], "").splitlines() + survivor_lines
            assert any(
                "Trigger fired event" in line
                and run_id in line
                and "'event': 'succeeded'" in line.replace("\\'", "'")  # the event's repr may be escaped
                for line in lines
            ), (run_id, list(logs[run_id]))
    finally:
        with contextlib.suppress(Exception):
            db.close()
        stack.stop()

    figures = {
        "runs": RUNS,
        "services": dict(Counter(service for service, _ in jobs.values())),
        "executor": "CeleryExecutor",
        "celery_worker_concurrency": WORKER_CONCURRENCY,
        "triggerers": len(stack.triggerers),
        "startup_seconds": round(startup_seconds, 1),
        "wall_seconds": round(wall_seconds, 1),
        "all_deferred_after_seconds": round(deferred_seconds, 1),
        "adoption_after_kill_seconds": round(adoption_seconds, 1),
        "all_finished_after_release_seconds": round(finish_seconds, 1),
        "triggers_per_triggerer_before_kill": {name: spread[name] for name in stack.triggerers},
        "killed": victim,
        "triggerer_cpu_seconds": {
            victim: {"total": round(victim_cpu, 2), "during_wait": round(victim_cpu - cpu_before[victim], 2)},
            survivor: {
                "total": round(survivor_cpu, 2),
                "during_wait": round(survivor_cpu - cpu_before[survivor], 2),
            },
        },
        "emulator_requests": sum(requests.values()),
        "emulator_requests_by_service": dict(requests),
        "emulator_requests_per_second": round(sum(requests.values()) / wall_seconds, 2),
        "postgres_peak_connections": db.peak_connections,
        "stop_seconds": {name: round(s, 1) for name, s in stack.stop_seconds.items()},
    }
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "figures.json").write_text(json.dumps(figures, indent=2) + "\n")
    with capsys.disabled():
        print(
            "\nscale-out figures (tests/artifacts/scale_out/figures.json):\n" + json.dumps(figures, indent=2)
        )
