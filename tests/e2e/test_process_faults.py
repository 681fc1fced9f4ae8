"""Process faults on real Airflow processes (issue 8, "Process faults"): nothing is lost.

One Airflow deployment (api-server, scheduler, dag-processor, triggerer; LocalExecutor on a
throwaway PostgreSQL database, since SQLite cannot take concurrent task writes) is shared by the
three tests: starting one costs about 40 s, and no test leaves it changed except for the triggerer
the first one replaces, which is the point of that test. DAGs: ``dags/jobstatus_faults_e2e.py``.

1. **Triggerer SIGKILL with 100 waits deferred:** 100 mapped sensors (25 per service) wait on
   emulator jobs that last 15 minutes; once all 100 are deferred and their triggers run in the
   triggerer, it gets SIGKILL and a new one starts. When the new one has adopted the 100 triggers
   (trigger rows in the database), the jobs are shortened through the emulator's admin API: all
   100 tasks succeed with their job's final status as XCom.
2. **Worker killed mid-transfer:** a Daily job whose text transcript is large
   (``emu_output_bytes``) is delivered to a folder, then to an S3 bucket (moto), each task with one
   retry. The task's process (the task instance's ``pid`` from the REST API, checked to be a
   descendant of the scheduler and not the scheduler) gets SIGKILL while bytes are moving. Watcher
   threads list both destinations all along: nothing visible under a final name is ever partial;
   after the retries every file is byte-identical to the source and the manifest came last.
3. **Emulator restarted mid-wait:** a dedicated emulator with a state file; four sensors (one per
   service) deferred; the emulator is SIGKILLed, stays down for several poll intervals (the
   sensors tolerate it through ``max_consecutive_errors``), restarts on the same port with its jobs,
   and every sensor succeeds on its first try.

Figures are printed (visible with ``-rA`` or ``-s``) and written to
``tests/artifacts/process_faults/figures.json``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from jobstatus_emulator.server import EmulatorServer
from tests.e2e.airflow_stack import AirflowStack
from tests.e2e.postgres import fresh_database
from tests.helpers.canary import secret
from tests.helpers.connections import EMULATOR_NAME, emulator_connection, exported

pytestmark = pytest.mark.e2e

DAG_FILE = Path(__file__).parent / "dags" / "jobstatus_faults_e2e.py"
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "process_faults"
SERVICES = ("daily", "wasabi_air", "symbl", "deepaffects")
SUCCESS_WORD = {
    "daily": "finished",
    "wasabi_air": "completed",
    "symbl": "completed",
    "deepaffects": "Completed",
}
WAITS_PER_SERVICE = 25
LONG_JOB = 900
"""Seconds a job lasts until the test shortens it: far longer than getting every task deferred."""
BIG_OUTPUT = 256 * 1024**2
"""Size of the large output (the Daily .txt transcript): several seconds of copying on this machine."""
TEMP_SUFFIX = ".jobstatus-part"
FIGURES: dict[str, Any] = {}


def record(section: str, **values: Any) -> None:
    """Keep figures, print them, and write them all to the artifacts file."""
    FIGURES.setdefault(section, {}).update(values)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "figures.json").write_text(json.dumps(FIGURES, indent=2, sort_keys=True) + "\n")
    print(f"[process_faults] {section}: {json.dumps(values, sort_keys=True)}")


# ------------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def restart_emulator(tmp_path_factory: pytest.TempPathFactory, jobstatus_s3: Any) -> Iterator[EmulatorServer]:
    """An emulator of its own (test 3 kills it), keeping its jobs in a state file."""
    root = tmp_path_factory.mktemp("restart-emulator")
    server = EmulatorServer(
        state_file=root / "state.jsonl",
        s3_endpoint=jobstatus_s3.endpoint_url,
        s3_access_key=jobstatus_s3.access_key,
        s3_secret_key=jobstatus_s3.secret_key,
        s3_region=jobstatus_s3.region,
        # polls every few seconds: without DeepAffects' documented 5/min (not under test here)
        deepaffects_requests_per_minute=0,
        deepaffects_requests_per_day=0,
        log_path=root / "emulator.log",
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def connections(
    jobstatus_emulator: EmulatorServer, restart_emulator: EmulatorServer, jobstatus_s3: Any
) -> Iterator[dict[str, str]]:
    """``faults_*`` (session emulator), ``restart_*`` (restart emulator) and ``faults_s3`` connections."""
    env: dict[str, str] = {}
    for prefix, emu in (("faults", jobstatus_emulator), ("restart", restart_emulator)):
        for service in SERVICES:
            conn, _ = emulator_connection(emu, service, label=prefix, max_requests_per_second=50)
            env[f"AIRFLOW_CONN_{prefix.upper()}_{service.upper()}"] = json.dumps(conn)
    env["AIRFLOW_CONN_FAULTS_S3"] = json.dumps(
        {
            "conn_type": "aws",
            "login": jobstatus_s3.access_key,
            "password": secret("aws"),  # moto does not check signatures; the canary scan may
            "extra": {"endpoint_url": jobstatus_s3.endpoint_url, "region_name": jobstatus_s3.region},
        }
    )
    with exported(env):  # this process submits the jobs through the same connections
        yield env


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    with fresh_database() as url:
        yield url


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, connections: dict[str, str], database: str
) -> Iterator[AirflowStack]:
    root = tmp_path_factory.mktemp("airflow-faults")
    dags = root / "dags"
    dags.mkdir()
    shutil.copy(DAG_FILE, dags / DAG_FILE.name)
    env = {
        **connections,
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": database,
        # four components share PostgreSQL's 100 connections with other tests: small pools
        "AIRFLOW__DATABASE__SQL_ALCHEMY_POOL_SIZE": "2",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_MAX_OVERFLOW": "4",
        "AIRFLOW__CORE__PARALLELISM": "12",
        "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": "256",
    }
    started = time.monotonic()
    with AirflowStack(root, dags_folder=dags, env=env) as running:
        running.wait_for_dags(
            ["jobstatus_faults_triggerer", "jobstatus_faults_transfer", "jobstatus_faults_restart"],
            timeout=180,
        )
        record("stack", start_seconds=round(time.monotonic() - started, 1), database="postgresql")
        yield running


# ------------------------------------------------------------------------------------------ helpers


def submit(service: str, prefix: str, marker: str, bucket: str, s3_endpoint: str) -> str:
    """Submit one job through the service's hook and connection ``<prefix>_<service>``."""
    conn_id = f"{prefix}_{service}"
    if service == "daily":
        from airflow_jobstatus.hooks.daily import DailyHook

        return DailyHook(conn_id).submit_job("transcript", uri=f"https://media.example/f.mp4?{marker}")
    if service == "wasabi_air":
        from airflow_jobstatus.hooks.wasabi import WasabiAirHook

        return WasabiAirHook(conn_id).submit_job(
            f"faults-{uuid.uuid4().hex[:8]}",
            services={"s2t": ""},
            source={
                "Endpoint": s3_endpoint,
                "Bucket": "media",
                "Region": "us-east-1",
                "ObjectKey": f"f.mp4?{marker}",
            },
            destination={"Bucket": bucket, "Region": "us-east-1"},
        )
    if service == "symbl":
        from airflow_jobstatus.hooks.symbl import SymblHook

        return SymblHook(conn_id).submit_job(audio_url=f"https://media.example/f.mp3?{marker}")
    from airflow_jobstatus.hooks.deepaffects import DeepAffectsHook

    return DeepAffectsHook(conn_id).submit_job(
        "asr", url=f"https://media.example/f.wav?{marker}", webhook="https://hooks.example/deepaffects"
    )


def emulator_job_id(service: str, job_id: str) -> str:
    return job_id.split(":", 1)[0] if service == "symbl" else job_id


def finish_soon(emu: EmulatorServer, jobs: dict[str, list[str]], seconds: float) -> None:
    """Shorten every job (admin API) so that it finishes ``seconds`` from now."""
    for service, ids in jobs.items():
        for job_id in ids:
            name, emu_id = EMULATOR_NAME[service], emulator_job_id(service, job_id)
            created = float(emu.job(name, emu_id)["created"])
            emu.patch_job(name, emu_id, duration=time.time() - created + seconds)


def task_instances(stack: AirflowStack, dag_id: str, run_id: str) -> list[dict[str, Any]]:
    """Every task instance of the run, mapped ones included (the API pages by 100)."""
    found: list[dict[str, Any]] = []
    while True:
        page = stack.api(
            "GET",
            f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances",
            params={"limit": 100, "offset": len(found)},
        )["task_instances"]
        found += page
        if len(page) < 100:
            return found


def xcom_value(stack: AirflowStack, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> Any:
    body = stack.api(
        "GET",
        f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value",
        params={"map_index": map_index},
    )
    value = body["value"]
    return json.loads(value) if isinstance(value, str) else value


def wait_for(
    what: str, check: Callable[[], Any], timeout: float, stack: AirflowStack, every: float = 0.5
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
        except httpx.TimeoutException:  # an api-server busy for 30 s; the deadline still bounds the wait
            result = None
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not within {timeout:.0f}s\n{stack.log_tails()}")
        time.sleep(every)


@contextlib.contextmanager
def pg(url: str) -> Iterator[Any]:
    import psycopg2

    parts = urlsplit(url)
    conn = psycopg2.connect(
        host=parts.hostname, port=parts.port, user=parts.username, dbname=parts.path.lstrip("/")
    )
    conn.autocommit = True
    try:
        yield conn
    finally:
        conn.close()


def trigger_assignment(url: str, dag_id: str, run_id: str) -> dict[int | None, int]:
    """triggerer job id -> number of this run's triggers it runs (None: not assigned yet)."""
    with pg(url) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT t.triggerer_id, count(*) FROM trigger t JOIN task_instance ti ON ti.trigger_id = t.id "
            "WHERE ti.dag_id = %s AND ti.run_id = %s GROUP BY t.triggerer_id",
            (dag_id, run_id),
        )
        return {row[0]: int(row[1]) for row in cur.fetchall()}


def ancestry(pid: int) -> list[int]:
    """``pid`` and its ancestors, from /proc."""
    chain = [pid]
    while pid > 1:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            break
        pid = int(stat.rsplit(")", 1)[1].split()[1])
        chain.append(pid)
    return chain


def kill_task_process(stack: AirflowStack, pid: int) -> None:
    """SIGKILL one task process by PID, after checking it is the scheduler's descendant, not the scheduler."""
    scheduler = stack.processes["scheduler"].pid
    assert scheduler is not None and pid != scheduler
    chain = ancestry(pid)
    assert scheduler in chain[1:], f"pid {pid} is not a descendant of the scheduler {scheduler}: {chain}"
    os.kill(pid, signal.SIGKILL)  # that process only: the LocalExecutor worker and scheduler live on


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


class Watcher(threading.Thread):
    """Lists a destination continuously; checks every object seen under a final name, once per version.

    An output must match a source output (size and SHA-256); ``_manifest.json`` must be complete
    JSON. ``seen`` keeps the first time each final name appeared.
    """

    def __init__(self, expected: set[tuple[int, str]]) -> None:
        super().__init__(daemon=True)
        self.expected = expected
        self.stopping = threading.Event()
        self.checked: set[tuple[Any, ...]] = set()
        self.seen: dict[str, float] = {}
        self.violations: list[str] = []
        self.listings = 0

    def entries(self) -> list[tuple[str, tuple[Any, ...]]]:
        raise NotImplementedError

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                self.scan()
            except Exception as exc:
                code = getattr(exc, "response", {}).get("Error", {}).get("Code")
                if not isinstance(exc, FileNotFoundError) and code not in ("NoSuchKey", "404"):
                    self.violations.append(f"watcher error: {exc!r}")  # else: gone between list and read
            time.sleep(0.02)
        self.scan()

    def scan(self) -> None:
        self.listings += 1
        listing = self.entries()
        listed_at = time.monotonic()  # one time per listing: names in one listing appeared together
        for name, _ in listing:
            self.seen.setdefault(name, listed_at)
        for name, version in listing:
            if version in self.checked:
                continue
            self.checked.add(version)
            if name.endswith("_manifest.json"):
                data = self.read_bytes(name)
                try:
                    assert isinstance(json.loads(data)["outputs"], list)
                except Exception:
                    self.violations.append(f"{name}: an incomplete manifest was visible ({len(data)} bytes)")
                continue
            size, digest = self.read_digest(name)
            if (size, digest) not in self.expected:
                self.violations.append(
                    f"{name}: visible with {size} bytes, sha256 {digest[:12]}: not a source output"
                )

    def read_bytes(self, name: str) -> bytes:
        raise NotImplementedError

    def read_digest(self, name: str) -> tuple[int, str]:
        raise NotImplementedError

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=60)


class FolderWatcher(Watcher):
    def __init__(self, root: Path, expected: set[tuple[int, str]]) -> None:
        super().__init__(expected)
        self.root = root

    def entries(self) -> list[tuple[str, tuple[Any, ...]]]:
        found = []
        for folder, _, files in os.walk(self.root):
            for file in files:
                if file.startswith(".") and file.endswith(TEMP_SUFFIX):
                    continue  # a temporary name, never a final one
                path = Path(folder) / file
                with contextlib.suppress(FileNotFoundError):
                    st = path.stat()
                    found.append((str(path), (str(path), st.st_ino, st.st_size, st.st_mtime_ns)))
        return found

    def read_bytes(self, name: str) -> bytes:
        return Path(name).read_bytes()

    def read_digest(self, name: str) -> tuple[int, str]:
        digest = hashlib.sha256()
        size = 0
        with open(name, "rb") as fh:
            while chunk := fh.read(1024 * 1024):
                digest.update(chunk)
                size += len(chunk)
        return size, digest.hexdigest()

    def temporaries(self) -> list[Path]:
        return [p for p in self.root.rglob(f".*{TEMP_SUFFIX}")]


class BucketWatcher(Watcher):
    def __init__(self, client: Any, bucket: str, prefix: str, expected: set[tuple[int, str]]) -> None:
        super().__init__(expected)
        self.client, self.bucket, self.prefix = client, bucket, prefix

    def entries(self) -> list[tuple[str, tuple[Any, ...]]]:
        found = []
        for page in self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix
        ):
            for item in page.get("Contents", []):
                name = item["Key"].rsplit("/", 1)[-1]
                if name.startswith(".") and name.endswith(TEMP_SUFFIX):
                    continue  # the record of an upload in progress, never a final name
                found.append(
                    (item["Key"], (item["Key"], item["ETag"], item["Size"], str(item["LastModified"])))
                )
        return found

    def upload_records(self) -> list[str]:
        keys = [
            k
            for page in self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.prefix
            )
            for k in (item["Key"] for item in page.get("Contents", []))
        ]
        return [k for k in keys if k.rsplit("/", 1)[-1].startswith(".") and k.endswith(TEMP_SUFFIX)]

    def read_bytes(self, name: str) -> bytes:
        return bytes(self.client.get_object(Bucket=self.bucket, Key=name)["Body"].read())

    def read_digest(self, name: str) -> tuple[int, str]:
        body = self.client.get_object(Bucket=self.bucket, Key=name)["Body"]
        digest = hashlib.sha256()
        size = 0
        for chunk in body.iter_chunks(1024 * 1024):
            digest.update(chunk)
            size += len(chunk)
        return size, digest.hexdigest()


# ------------------------------------------------------------------------------------------ 1


def test_triggerer_sigkill_with_100_waits_deferred(
    stack: AirflowStack, database: str, jobstatus_emulator: EmulatorServer, jobstatus_s3: Any
) -> None:
    dag_id = "jobstatus_faults_triggerer"
    started = time.monotonic()
    bucket = jobstatus_s3.create_bucket(f"faults-{uuid.uuid4().hex[:8]}")
    jobs = {
        service: [
            submit(service, "faults", f"emu_duration={LONG_JOB}", bucket, jobstatus_s3.endpoint_url)
            for _ in range(WAITS_PER_SERVICE)
        ]
        for service in SERVICES
    }
    total = WAITS_PER_SERVICE * len(SERVICES)
    run_id = stack.trigger(dag_id, conf=jobs)

    def waits() -> list[dict[str, Any]]:
        return [ti for ti in task_instances(stack, dag_id, run_id) if ti["task_id"].startswith("wait_")]

    def all_running_in_one_triggerer() -> bool:
        tis = waits()
        assert not [ti for ti in tis if ti["state"] in ("failed", "upstream_failed", "success")], tis
        if len(tis) != total or any(ti["state"] != "deferred" for ti in tis):
            return False
        assignment = trigger_assignment(database, dag_id, run_id)
        return None not in assignment and sum(assignment.values()) == total

    wait_for("100 sensors deferred and running in the triggerer", all_running_in_one_triggerer, 900, stack, 2)
    deferred_at = time.monotonic()
    [first_triggerer] = trigger_assignment(database, dag_id, run_id)

    old_pid = stack.kill("triggerer")  # SIGKILL: no shutdown, no cleanup of its trigger rows
    killed_at = time.monotonic()
    assert {ti["state"] for ti in waits()} == {"deferred"}
    stack.start_component("triggerer")
    assert stack.processes["triggerer"].pid != old_pid
    restarted_at = time.monotonic()

    def adopted() -> bool:
        assignment = trigger_assignment(database, dag_id, run_id)
        return (
            first_triggerer not in assignment and None not in assignment and sum(assignment.values()) == total
        )

    wait_for("the new triggerer adopting 100 triggers", adopted, 300, stack, 0.5)
    adopted_at = time.monotonic()
    assert {ti["state"] for ti in waits()} == {"deferred"}  # nothing finished or failed meanwhile

    finish_soon(jobstatus_emulator, jobs, seconds=5)
    shortened_at = time.monotonic()

    def finished() -> list[dict[str, Any]] | None:
        tis = waits()
        return tis if all(ti["state"] in ("success", "failed", "upstream_failed") for ti in tis) else None

    tis = wait_for("100 sensors finishing", finished, 900, stack, 2)
    done_at = time.monotonic()
    succeeded = [ti for ti in tis if ti["state"] == "success"]
    assert len(succeeded) == total, [(ti["task_id"], ti["map_index"], ti["state"]) for ti in tis]
    for ti in tis:
        service = ti["task_id"].removeprefix("wait_")
        job_id = jobs[service][ti["map_index"]]
        status = xcom_value(stack, dag_id, run_id, ti["task_id"], ti["map_index"])
        assert status["job_id"] == job_id and status["service"] == service, status
        assert status["state"] == "succeeded" and status["raw_status"] == SUCCESS_WORD[service], status
        assert ti["try_number"] == 1, ti  # resumed by the adopted trigger, not retried

    record(
        "triggerer_sigkill",
        waits=total,
        succeeded=len(succeeded),
        all_deferred_seconds=round(deferred_at - started, 1),
        adoption_seconds_after_kill=round(adopted_at - killed_at, 1),
        adoption_seconds_after_new_triggerer=round(adopted_at - restarted_at, 1),
        completion_seconds_after_jobs_finished=round(done_at - shortened_at, 1),
        wall_seconds=round(done_at - started, 1),
        triggerer_health_threshold_seconds=float(
            stack.env["AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD"]
        ),
    )


# ------------------------------------------------------------------------------------------ 2


def test_worker_killed_mid_transfer_retry_delivers_identical_files(
    stack: AirflowStack, jobstatus_s3: Any, tmp_path: Path
) -> None:
    from airflow_jobstatus.hooks.daily import DailyHook
    from airflow_jobstatus.models import DownloadLink

    dag_id = "jobstatus_faults_transfer"
    started = time.monotonic()
    hook = DailyHook("faults_daily")
    job_id = hook.submit_job(
        "transcript", uri=f"https://media.example/big.mp4?emu_duration=1&emu_output_bytes={BIG_OUTPUT}"
    )
    deadline = time.monotonic() + 120
    while not (status := hook.get_job(job_id)).succeeded:
        assert time.monotonic() < deadline and not status.is_terminal, status
        time.sleep(0.5)
    # the source: every output's bytes, read through fresh links
    expected: set[tuple[int, str]] = set()
    with httpx.Client(timeout=120, trust_env=False) as http:
        for output in hook.get_outputs(status):
            assert isinstance(output.location, DownloadLink)
            digest, size = hashlib.sha256(), 0
            with http.stream("GET", output.location.url) as response:
                assert response.status_code == 200
                for chunk in response.iter_raw(1024 * 1024):
                    digest.update(chunk)
                    size += len(chunk)
            expected.add((size, digest.hexdigest()))
    assert max(size for size, _ in expected) == BIG_OUTPUT

    folder = tmp_path / "deliveries"
    folder.mkdir()
    bucket = jobstatus_s3.create_bucket(f"faults-out-{uuid.uuid4().hex[:8]}")
    client = jobstatus_s3.client()
    watchers = [FolderWatcher(folder, expected), BucketWatcher(client, bucket, "deliveries/", expected)]
    for watcher in watchers:
        watcher.start()
    try:
        run_id = stack.trigger(
            dag_id, conf={"job_id": job_id, "folder": str(folder), "bucket_uri": f"s3://{bucket}/deliveries"}
        )

        def ti(task_id: str) -> dict[str, Any]:
            return dict(stack.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}"))

        def copying_locally() -> tuple[int, int] | None:
            state = ti("deliver_folder")
            assert state["state"] not in ("success", "failed", "up_for_retry"), state
            temps = [p for p in folder.rglob(f".*{TEMP_SUFFIX}")]
            if state["state"] == "running" and state["pid"] and temps:
                with contextlib.suppress(FileNotFoundError):
                    size = temps[0].stat().st_size
                    if size > 0:
                        return int(state["pid"]), size
            return None

        pid, _ = wait_for("the copy to the folder in progress", copying_locally, 300, stack, 0.02)
        kill_task_process(stack, pid)
        killed_folder = time.monotonic()
        moved_folder = max(p.stat().st_size for p in folder.rglob(f".*{TEMP_SUFFIX}"))
        assert moved_folder < BIG_OUTPUT, "the copy had finished before the kill"

        def retried(task_id: str) -> dict[str, Any] | None:
            state = ti(task_id)
            assert state["state"] != "failed", (state, stack.log_tails())
            return state if state["state"] == "success" else None

        folder_ti = wait_for("deliver_folder retried", lambda: retried("deliver_folder"), 300, stack, 0.2)
        retried_folder = time.monotonic()

        def uploading() -> tuple[int, int] | None:
            state = ti("deliver_bucket")
            assert state["state"] not in ("success", "failed", "up_for_retry"), state
            if state["state"] != "running" or not state["pid"]:
                return None
            uploads = client.list_multipart_uploads(Bucket=bucket, Prefix="deliveries/").get("Uploads", [])
            for upload in uploads:
                parts = client.list_parts(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
                moved = sum(p["Size"] for p in parts.get("Parts", []))
                if moved:
                    return int(state["pid"]), moved
            return None

        pid, moved_bucket = wait_for(
            "the multipart upload to the bucket in progress", uploading, 300, stack, 0.02
        )
        kill_task_process(stack, pid)
        killed_bucket = time.monotonic()
        bucket_ti = wait_for("deliver_bucket retried", lambda: retried("deliver_bucket"), 300, stack, 0.2)
        retried_bucket = time.monotonic()
    finally:
        for watcher in watchers:
            watcher.stop()

    assert folder_ti["try_number"] == 2 and bucket_ti["try_number"] == 2, (folder_ti, bucket_ti)
    for watcher in watchers:
        assert watcher.violations == [], watcher.violations
        assert watcher.listings > 10

    # every final file is byte-identical to a source output, each source output is there once
    local = FolderWatcher(folder, expected)
    files = [Path(name) for name, _ in local.entries()]
    manifest_path = next(p for p in files if p.name == "_manifest.json")
    outputs = [p for p in files if p != manifest_path]
    assert sorted(local.read_digest(str(p)) for p in outputs) == sorted(expected)
    remote = BucketWatcher(client, bucket, "deliveries/", expected)
    keys = [name for name, _ in remote.entries()]
    manifest_key = next(k for k in keys if k.endswith("/_manifest.json"))
    assert sorted(remote.read_digest(k) for k in keys if k != manifest_key) == sorted(expected)

    # the manifest came last, and lists what is there
    for watcher, manifest_name in ((watchers[0], str(manifest_path)), (watchers[1], manifest_key)):
        first_seen = watcher.seen[manifest_name]
        assert all(t <= first_seen for name, t in watcher.seen.items() if name != manifest_name), watcher.seen
    assert max(p.stat().st_mtime_ns for p in outputs) <= manifest_path.stat().st_mtime_ns
    modified = {k: client.head_object(Bucket=bucket, Key=k)["LastModified"] for k in keys}
    assert max(t for k, t in modified.items() if k != manifest_key) <= modified[manifest_key], modified
    for manifest in (
        json.loads(manifest_path.read_text()),
        json.loads(client.get_object(Bucket=bucket, Key=manifest_key)["Body"].read()),
    ):
        entries = manifest["outputs"]
        assert sorted(e["bytes"] for e in entries) == sorted(size for size, _ in expected), manifest
        assert {e["file_name"] for e in entries} == {p.name for p in outputs}, manifest
        digests = {digest for _, digest in expected}
        for entry in entries:
            algorithm, _, value = str(entry["checksum"]).partition(":")
            assert algorithm != "sha256" or value in digests, entry

    left_temps = local.temporaries()
    left_uploads = client.list_multipart_uploads(Bucket=bucket, Prefix="deliveries/").get("Uploads", [])
    # the retry aborted the upload its killed try left, and removed the record of it
    assert left_uploads == [] and remote.upload_records() == [], (left_uploads, remote.upload_records())
    record(
        "worker_killed_mid_transfer",
        output_bytes=BIG_OUTPUT,
        outputs=len(expected),
        folder_bytes_moved_before_kill=moved_folder,
        bucket_bytes_moved_before_kill=moved_bucket,
        folder_retry_seconds=round(retried_folder - killed_folder, 1),
        bucket_retry_seconds=round(retried_bucket - killed_bucket, 1),
        folder_listings=watchers[0].listings,
        bucket_listings=watchers[1].listings,
        leftover_hidden_temporaries=len(left_temps),
        leftover_incomplete_multipart_uploads=len(left_uploads),
        wall_seconds=round(time.monotonic() - started, 1),
    )


# ------------------------------------------------------------------------------------------ 3


def test_emulator_restarted_mid_wait_sensors_carry_on(
    stack: AirflowStack, restart_emulator: EmulatorServer, jobstatus_s3: Any
) -> None:
    from tests.e2e.dags.jobstatus_faults_e2e import RESTART_MAX_ERRORS, RESTART_POLL_INTERVAL

    dag_id = "jobstatus_faults_restart"
    emu = restart_emulator
    started = time.monotonic()
    bucket = jobstatus_s3.create_bucket(f"restart-{uuid.uuid4().hex[:8]}")
    jobs = {
        service: submit(service, "restart", f"emu_duration={LONG_JOB}", bucket, jobstatus_s3.endpoint_url)
        for service in SERVICES
    }
    run_id = stack.trigger(dag_id, conf=jobs)

    def all_deferred() -> bool:
        states = stack.task_states(dag_id, run_id)
        assert not {"failed", "success", "up_for_retry"} & set(states.values()), states
        return len(states) == len(SERVICES) and set(states.values()) == {"deferred"}

    wait_for("four sensors deferred", all_deferred, 300, stack, 0.5)
    # let every trigger poll the live emulator once before the outage
    time.sleep(RESTART_POLL_INTERVAL * 1.5)
    port, old_pid = emu.port, emu.kill()
    down_at = time.monotonic()
    outage = RESTART_POLL_INTERVAL * 4  # several polls meet a closed port
    time.sleep(outage)
    assert set(stack.task_states(dag_id, run_id).values()) == {"deferred"}
    emu.start()
    up_at = time.monotonic()
    assert emu.port == port and emu.pid != old_pid

    # the restarted emulator knows the jobs, and the waits poll it again
    for service, job_id in jobs.items():
        view = emu.job(EMULATOR_NAME[service], emulator_job_id(service, job_id))
        assert view["status"] not in (SUCCESS_WORD[service],), view

    def polled_again() -> bool:
        rows = emu.stats()["requests"]
        polled = {row["service"] for row in rows if row["method"] == "GET" and row["status"] == 200}
        return polled >= set(EMULATOR_NAME.values())

    wait_for("every sensor polling the restarted emulator", polled_again, 60, stack, 0.5)
    repolled_at = time.monotonic()
    finish_soon(emu, {s: [j] for s, j in jobs.items()}, seconds=4)

    seen = stack.watch_run(dag_id, run_id, timeout=180)
    done_at = time.monotonic()
    assert {task: states[-1] for task, states in seen.items()} == {
        f"wait_{s}": "success" for s in SERVICES
    }, (
        seen,
        stack.log_tails(),
    )
    for service, job_id in jobs.items():
        status = xcom_value(stack, dag_id, run_id, f"wait_{service}")
        assert status["job_id"] == job_id and status["state"] == "succeeded", status
        ti = stack.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/wait_{service}")
        assert ti["try_number"] == 1, ti
    assert outage / RESTART_POLL_INTERVAL < RESTART_MAX_ERRORS

    record(
        "emulator_restart",
        waits=len(SERVICES),
        outage_seconds=round(up_at - down_at, 1),
        poll_interval_seconds=RESTART_POLL_INTERVAL,
        max_consecutive_errors=RESTART_MAX_ERRORS,
        seconds_until_every_wait_polled_again=round(repolled_at - up_at, 1),
        wall_seconds=round(done_at - started, 1),
    )
