"""``make demo``: the provider end to end on embedded defaults, with nothing but python3 and pip.

It starts the emulator of the four job APIs and a local S3 server (moto) on free loopback ports,
prepares a throwaway Airflow home (SQLite), and runs each service's example DAG from
``example_dags/``: submit a job, wait for it deferred, move its outputs into ``./demo-output/``
(or ``--output DIR``). It prints one line per state change, then a summary per service, stops
every process it started (also on Ctrl-C or a failure) and exits 1 if anything failed (130 when
interrupted).

How it runs the DAGs: one child process per DAG calls ``dag.test()``, each on its own copy of the
migrated SQLite database, so the four run at the same time without SQLite's "database is locked".
Airflow's console output goes to a log file per DAG under the throwaway home, never to the
terminal. The child reports progress as JSON lines in an events file, which this process tails,
and this process also asks the emulator's admin API for each job's service-side status.

Every run uses a fresh Airflow home and a fresh emulator, so a new run submits new jobs: their
files land next to the earlier runs' files (``<output>/<service>/<job id>/``), never over them.
The home is deleted after a successful run and kept (its path printed) after a failure.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_DAGS = REPO / "example_dags"
CHILD = "_run-dag"
"""The first argument that makes this script the child that runs one DAG."""
AIR_BUCKET = "demo-air-metadata"
"""The bucket Wasabi AiR writes its metadata into (created on the S3 server)."""


# ------------------------------------------------------------------------------------------ services


@dataclass(frozen=True)
class Service:
    """One service's example DAG and how the demo drives it."""

    name: str
    """`JobStatus.service` and the folder the outputs land in."""
    label: str
    emulator: str
    """The emulator's name for the service (admin API)."""
    dag_file: str
    dag_id: str
    deliver_task: str
    media_param: str
    """The DAG param that names the media; the failure marker goes into it."""
    media: str
    connection: dict[str, Any]


def services(emulator_url: str, s3_endpoint: str) -> list[Service]:
    """The four services, with demo credentials (the emulator accepts any non-empty credential)."""
    common = {"allow_http_links": True, "max_requests_per_second": 20}
    return [
        Service(
            "daily",
            "Daily",
            "daily",
            "example_daily.py",
            "example_jobstatus_daily",
            "deliver",
            "media_url",
            "https://media.example.com/meetings/weekly-sync.mp4",
            {
                "conn_type": "daily",
                "host": f"{emulator_url}/daily/v1",
                "password": "demo-daily-key",
                "extra": common,
            },
        ),
        Service(
            "wasabi_air",
            "Wasabi AiR",
            "wasabi",
            "example_wasabi_air.py",
            "example_jobstatus_wasabi_air",
            "deliver",
            "object_key",
            "videos/keynote.mp4",
            {
                "conn_type": "wasabi_air",
                "host": f"{emulator_url}/wasabi",
                "login": "demo-access-key",
                "password": "demo-secret-key",
                "extra": {**common, "s3_endpoint_url": s3_endpoint},
            },
        ),
        Service(
            "symbl",
            "Symbl.ai",
            "symbl",
            "example_symbl.py",
            "example_jobstatus_symbl",
            "deliver",
            "audio_url",
            "https://media.example.com/calls/support-call.mp3",
            {
                "conn_type": "symbl",
                "host": f"{emulator_url}/symbl",
                "login": "demo-app-id",
                "password": "demo-app-secret",
                "extra": common,
            },
        ),
        Service(
            "deepaffects",
            "DeepAffects",
            "deepaffects",
            "example_deepaffects.py",
            "example_jobstatus_deepaffects",
            "deliver",
            "audio_url",
            "https://media.example.com/calls/support-call.wav",
            {
                "conn_type": "deepaffects",
                "host": f"{emulator_url}/deepaffects",
                "password": "demo-deepaffects-key",
                "extra": common,
            },
        ),
    ]


SERVICE_NAMES = ("daily", "wasabi_air", "symbl", "deepaffects")


# ------------------------------------------------------------------------------------------ output


class Console:
    """Progress lines with the time since start, flushed at once (the output may be a pipe)."""

    def __init__(self) -> None:
        self.start = time.monotonic()

    def line(self, who: str, text: str) -> None:
        print(f"[{time.monotonic() - self.start:6.1f}s] {who:<12} {text}", flush=True)

    def plain(self, text: str = "") -> None:
        print(text, flush=True)


def size(n: int) -> str:
    return f"{n:,} bytes"


# ------------------------------------------------------------------------------------------ progress


@dataclass
class Progress:
    """What is known about one service's run, from its events and the emulator."""

    service: Service
    job_id: str | None = None
    service_status: str | None = None
    state: str | None = None
    """The job's final state as Airflow saw it."""
    deferred_at: float | None = None
    waited: float | None = None
    manifest: dict[str, Any] | None = None
    dag_state: str | None = None
    errors: list[str] = field(default_factory=list)

    @property
    def succeeded(self) -> bool:
        return self.dag_state == "success" and self.manifest is not None


class EventReader:
    """Reads the complete JSON lines a child appended to its events file since the last call."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.partial = ""

    def read(self) -> Iterator[dict[str, Any]]:
        try:
            with open(self.path, encoding="utf-8") as fh:
                fh.seek(self.offset)
                data = fh.read()
                self.offset = fh.tell()
        except FileNotFoundError:
            return
        data, self.partial = (self.partial + data).rpartition("\n")[::2]
        for line in data.splitlines():
            if line.strip():
                yield json.loads(line)


def apply(event: dict[str, Any], p: Progress, say: Callable[[str], None]) -> None:
    """Turn one child event into state and (at most) one progress line."""
    kind = event["event"]
    task = event.get("task_id", "")
    if kind == "job_known" and event.get("job_id") and p.job_id is None:
        p.job_id = event["job_id"]
        say(f"submitted job {p.job_id}")
    elif kind == "deferred":
        if p.job_id is None:
            p.job_id = event["job_id"]
            say(f"submitted job {p.job_id}")
        p.deferred_at = event["at"]
        say(f"deferred: task {task!r} waits in the trigger, polling every {event['poll_interval']:g}s")
    elif kind == "resumed":
        payload = event.get("payload") or {}
        job = payload.get("job") or {}
        p.state = job.get("state") or payload.get("event")
        if p.deferred_at is not None:
            p.waited = event["at"] - p.deferred_at
        raw = f" (service status {job.get('raw_status')!r})" if job.get("raw_status") else ""
        waited = f" after waiting {p.waited:.1f}s" if p.waited is not None else ""
        say(f"job {p.state}{raw}{waited}: task {task!r} resumes")
    elif kind == "task_started" and task == p.service.deliver_task:
        say("delivering outputs")
    elif kind == "task_ended":
        if event["state"] == "success" and task == p.service.deliver_task:
            p.manifest = event.get("return_value")
            outputs = (p.manifest or {}).get("outputs", [])
            total = sum(int(o.get("bytes", 0)) for o in outputs)
            say(f"done: {len(outputs)} file{'s' if len(outputs) != 1 else ''}, {size(total)}")
        elif event["state"] != "success":
            reason = event.get("error") or f"ended {event['state']}"
            p.errors.append(f"task {task!r} {event['state']}: {reason}")
            say(f"task {task!r} {event['state']}: {reason}")
    elif kind == "dag_ended":
        p.dag_state = event["state"]
    elif kind == "crashed":
        p.errors.append(event["error"])
        say(f"the DAG run crashed: {event['error']}")


# ------------------------------------------------------------------------------------------ parent


class Interrupted(BaseException):
    """SIGTERM or SIGINT: stop everything and exit non-zero.

    A BaseException, like KeyboardInterrupt: the handler raises it wherever the main thread is, and
    an ``except Exception`` there (a skipped progress poll) must not swallow it.
    """


def on_signal(signum: int, _frame: Any) -> None:
    raise Interrupted(signal.Signals(signum).name)


class Demo:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.out = Console()
        self.output = Path(args.output).resolve() if args.output else REPO / "demo-output"
        self.home = Path(tempfile.mkdtemp(prefix="airflow-jobstatus-demo-"))
        self.logs = self.home / "logs"
        self.logs.mkdir()
        self.pid_file = Path(args.pid_file).resolve() if args.pid_file else None
        self.processes: dict[str, Any] = {}

    # -- processes ------------------------------------------------------------------------------

    def started(self, name: str, process: Any) -> None:
        """Remember a process (a `ManagedProcess` or a server owning one) and update the PID file.

        Called before ``start()`` (so that an interruption during start-up still stops it) and
        again after it, when its PID is known.
        """
        self.processes[name] = process
        if self.pid_file is not None:
            pids = {n: p.pid for n, p in self.processes.items() if p.pid is not None}
            self.pid_file.write_text(json.dumps(pids))

    def stop_all(self) -> None:
        """Stop every process started, newest first, by PID (its process group)."""
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the clean-up short
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for name, process in reversed(list(self.processes.items())):
            managed = getattr(process, "process", process)
            if managed is not None and managed.is_running:
                self.out.line("demo", f"stopping {name} (pid {managed.pid})")
            process.stop()

    # -- steps ----------------------------------------------------------------------------------

    def start_servers(self) -> tuple[Any, Any]:
        from airflow_jobstatus.testing.s3 import S3Server
        from jobstatus_emulator.server import EmulatorServer

        s3 = S3Server(log_path=self.logs / "s3-server.log")
        self.started("S3 server", s3)
        s3.start()
        self.started("S3 server", s3)
        self.out.line("demo", f"S3 server (moto) on {s3.endpoint_url}, pid {s3.pid}")
        emulator = EmulatorServer(
            s3_endpoint=s3.endpoint_url,
            s3_access_key=s3.access_key,
            s3_secret_key=s3.secret_key,
            s3_region=s3.region,
            job_duration=self.args.job_seconds,
            log_path=self.logs / "emulator.log",
        )
        self.started("emulator", emulator)
        emulator.start()
        self.started("emulator", emulator)
        self.out.line("demo", f"emulator of the four APIs on {emulator.url}, pid {emulator.pid}")
        s3.create_bucket(AIR_BUCKET)
        return s3, emulator

    def airflow_env(self, s3: Any, catalog: list[Service]) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_", "AIRFLOW__"))}
        env.update(
            AIRFLOW_HOME=str(self.home / "airflow"),
            AIRFLOW__CORE__DAGS_FOLDER=str(EXAMPLE_DAGS),
            AIRFLOW__CORE__LOAD_EXAMPLES="False",
            AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{self.home / 'airflow.db'}",
            AIRFLOW__LOGGING__BASE_LOG_FOLDER=str(self.logs / "airflow"),
            JOBSTATUS_EXAMPLE_POLL_SECONDS=str(self.args.poll_seconds),
            JOBSTATUS_EXAMPLE_DESTINATION=self.output.as_uri(),
            PYTHONUNBUFFERED="1",
        )
        for service in catalog:
            env[f"AIRFLOW_CONN_{service.name.upper()}_DEFAULT"] = json.dumps(service.connection)
        env["AIRFLOW_CONN_AWS_DEFAULT"] = s3.airflow_conn_uri()
        env["AIRFLOW_CONN_WASABI_S3"] = s3.airflow_conn_uri()  # AiR's metadata bucket lives on it too
        return env

    def migrate(self, env: dict[str, str]) -> None:
        from airflow_jobstatus.testing.processes import ManagedProcess

        began = time.monotonic()
        airflow = Path(sys.executable).with_name("airflow")
        log = self.logs / "airflow-db-migrate.log"
        process = ManagedProcess(
            [str(airflow), "db", "migrate"], name="airflow db migrate", log_path=log, env=env
        )
        self.started("airflow db migrate", process)
        process.start()
        self.started("airflow db migrate", process)
        wait_for_exit(process, timeout=self.args.timeout)
        if process.returncode != 0:
            raise DemoError(f"'airflow db migrate' exited with {process.returncode}", log)
        self.out.line("airflow", f"metadata database ready (SQLite, {time.monotonic() - began:.1f}s)")

    def run_dags(self, env: dict[str, str], catalog: list[Service], emulator: Any) -> dict[str, Progress]:
        from airflow_jobstatus.testing.processes import ManagedProcess

        progress: dict[str, Progress] = {}
        readers: dict[str, EventReader] = {}
        children: dict[str, Any] = {}
        for service in catalog:
            database = self.home / f"airflow-{service.name}.db"
            shutil.copyfile(self.home / "airflow.db", database)
            events = self.home / "events" / f"{service.name}.jsonl"
            events.parent.mkdir(exist_ok=True)
            media = service.media
            if service.name in self.args.fail_service:
                media += "?emu_outcome=fail"  # the emulator's marker: this job ends in failure
            conf = {service.media_param: media, "destination": self.output.as_uri()}
            if service.name == "wasabi_air":
                conf["air_bucket"] = AIR_BUCKET
            child_env = dict(env, AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{database}")
            cmd = [sys.executable, str(Path(__file__).resolve()), CHILD]
            cmd += ["--dag-file", str(EXAMPLE_DAGS / service.dag_file), "--dag-id", service.dag_id]
            cmd += ["--conf", json.dumps(conf), "--events", str(events)]
            child = ManagedProcess(cmd, name=service.dag_id, log_path=self.log_of(service), env=child_env)
            self.started(service.dag_id, child)
            child.start()
            self.started(service.dag_id, child)
            children[service.name] = child
            readers[service.name] = EventReader(events)
            progress[service.name] = Progress(service)
            self.out.line(service.label, f"running DAG {service.dag_id} (pid {child.pid})")

        deadline = time.monotonic() + self.args.timeout
        last_poll = 0.0
        while True:
            running = [name for name, child in children.items() if child.is_running]
            for name, reader in readers.items():
                p = progress[name]
                for event in reader.read():
                    apply(event, p, functools.partial(self.out.line, p.service.label))
            if time.monotonic() - last_poll >= 0.5:
                last_poll = time.monotonic()
                self.poll_emulator(emulator, progress)
            if not running:
                break
            if time.monotonic() > deadline:
                for name in running:
                    progress[name].errors.append(f"no result within {self.args.timeout:.0f}s")
                break
            time.sleep(0.2)
        for name, child in children.items():
            child.stop()
            p = progress[name]
            if p.dag_state is None and not p.errors:
                p.errors.append(f"the DAG process exited with code {child.returncode} without a result")
        return progress

    def poll_emulator(self, emulator: Any, progress: dict[str, Progress]) -> None:
        """One line per service-side status change of each announced job (the emulator's view)."""
        try:
            jobs = emulator.jobs()
        except Exception:  # the emulator is a helper here: a failed poll only skips a progress line
            return
        by_id = {(job["service"], job["job_id"]): job for job in jobs}
        for p in progress.values():
            if p.job_id is None:
                continue
            job = by_id.get((p.service.emulator, p.job_id.split(":", 1)[0]))
            if job is not None and job["status"] != p.service_status:
                p.service_status = job["status"]
                self.out.line(p.service.label, f"service status: {job['status']}")

    def log_of(self, service: Service) -> Path:
        return self.logs / f"{service.dag_id}.log"

    # -- summary --------------------------------------------------------------------------------

    def summary(self, progress: dict[str, Progress]) -> bool:
        self.out.plain()
        self.out.plain(f"Summary (outputs under {self.output})")
        ok = True
        for p in progress.values():
            status = "succeeded" if p.succeeded else "FAILED"
            ok = ok and p.succeeded
            waited = f"{p.waited:.1f}s" if p.waited is not None else "-"
            self.out.plain(
                f"  {p.service.label:<12} {status:<9} job {p.job_id or '-'}  final state {p.state or '-'}  "
                f"waited {waited} (deferred)"
            )
            if p.manifest:
                entries = [(o["destination"], int(o["bytes"])) for o in p.manifest["outputs"]]
                for uri, n in entries:
                    self.out.plain(f"      {size(n):>16}  {display_path(uri)}")
                manifest = display_path(p.manifest["manifest"])
                self.out.plain(f"      {'manifest':>16}  {manifest}")
            for error in p.errors:
                self.out.plain(f"      reason: {error}")
            if not p.succeeded:
                self.out.plain(f"      Airflow log: {self.log_of(p.service)}")
        return ok

    # -- main -----------------------------------------------------------------------------------

    def run(self) -> int:
        self.output.mkdir(parents=True, exist_ok=True)
        self.out.line("demo", f"throwaway Airflow home {self.home}")
        ok = interrupted = False
        progress: dict[str, Progress] = {}
        try:
            s3, emulator = self.start_servers()
            catalog = services(emulator.url, s3.endpoint_url)
            env = self.airflow_env(s3, catalog)
            self.migrate(env)
            chosen = [s for s in catalog if not self.args.service or s.name in self.args.service]
            progress = self.run_dags(env, chosen, emulator)
            ok = self.summary(progress)
            for p in progress.values():
                if not p.succeeded:
                    reason = p.errors[0] if p.errors else f"the DAG run ended {p.dag_state}"
                    self.out.plain(f"\nmake demo FAILED: {p.service.label}: {reason}")
                    self.out.plain(f"  Airflow log: {self.log_of(p.service)}")
        except DemoError as exc:
            self.out.plain(f"\nmake demo FAILED: {exc.reason}; log: {exc.log}")
        except Interrupted as exc:
            interrupted = True
            self.out.plain(f"\nmake demo interrupted ({exc}); stopping every process it started")
        except Exception as exc:
            self.out.plain(f"\nmake demo FAILED: {type(exc).__name__}: {exc} (logs under {self.logs})")
        finally:
            self.stop_all()
        if ok:
            elapsed = time.monotonic() - self.out.start
            count = "All four services" if len(progress) == 4 else f"{len(progress)} service(s)"
            self.out.plain(f"\n{count} delivered their outputs in {elapsed:.1f}s.")
        if ok and not self.args.keep_home:
            shutil.rmtree(self.home, ignore_errors=True)
        else:
            self.out.plain(f"Airflow home and logs kept: {self.home}")
        return 0 if ok else 130 if interrupted else 1


class DemoError(Exception):
    def __init__(self, reason: str, log: Path) -> None:
        super().__init__(reason)
        self.reason = reason
        self.log = log


def wait_for_exit(process: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while process.is_running:
        if time.monotonic() > deadline:
            process.stop()
            raise DemoError(f"{process.name} did not finish within {timeout:.0f}s", process.log_path)
        time.sleep(0.2)


def display_path(uri: str) -> str:
    """A ``file://`` URI as a plain path; other URIs unchanged."""
    from urllib.parse import unquote, urlsplit

    parts = urlsplit(uri)
    return unquote(parts.path) if parts.scheme == "file" else uri


# ------------------------------------------------------------------------------------------ child


def run_child(argv: list[str]) -> int:
    """Run one DAG with ``dag.test()`` and report progress as JSON lines in the events file.

    ``dag.test()`` has no progress callbacks, so the two functions it calls per task instance and
    per deferral are wrapped here: that is where a task starts and ends, and where it waits in its
    trigger (inline, in this process).
    """
    parser = argparse.ArgumentParser(prog=f"demo.py {CHILD}")
    parser.add_argument("--dag-file", required=True)
    parser.add_argument("--dag-id", required=True)
    parser.add_argument("--conf", required=True)
    parser.add_argument("--events", required=True)
    args = parser.parse_args(argv)
    events = open(args.events, "a", encoding="utf-8")

    def emit(event: str, **fields: Any) -> None:
        events.write(json.dumps({"event": event, "at": time.time(), **fields}, default=str) + "\n")
        events.flush()

    try:
        code = _run_dag(args, emit)
    except BaseException as exc:
        emit("crashed", error=f"{type(exc).__name__}: {exc}")
        raise
    finally:
        events.close()
    # The run is over and reported. Python's teardown of Airflow's object graph takes several
    # seconds more; skip it, after flushing what goes to the log file.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _run_dag(args: argparse.Namespace, emit: Callable[..., None]) -> int:
    import importlib.util

    import airflow.sdk.definitions.dag as dag_module
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    def xcoms(ti: Any) -> dict[str, Any]:
        with create_session() as session:
            query = XComModel.get_many(run_id=ti.run_id, dag_ids=ti.dag_id, task_ids=ti.task_id)
            rows: list[Any] = list(session.scalars(query).all())
            return {row.key: XComModel.deserialize_value(row) for row in rows}

    run_task = dag_module._run_task
    run_trigger = dag_module._run_inline_trigger

    def reporting_run_task(*, ti: Any, task: Any, run_triggerer: bool = False) -> Any:
        emit("task_started", task_id=ti.task_id)
        result = run_task(ti=ti, task=task, run_triggerer=run_triggerer)
        state = str(getattr(ti.state, "value", ti.state))
        values = xcoms(ti)
        if values.get("job_id"):
            emit("job_known", task_id=ti.task_id, job_id=values["job_id"])
        error = getattr(result, "error", None) if result is not None else None
        emit(
            "task_ended",
            task_id=ti.task_id,
            state=state,
            return_value=values.get("return_value"),
            error=f"{type(error).__name__}: {error}" if error is not None else None,
        )
        return result

    def reporting_run_trigger(trigger: Any, ti: Any) -> Any:
        _, kwargs = trigger.serialize()
        emit(
            "deferred",
            task_id=ti.task_id,
            job_id=kwargs.get("job_id"),
            poll_interval=kwargs.get("poll_interval"),
        )
        event = run_trigger(trigger, ti)
        emit("resumed", task_id=ti.task_id, payload=getattr(event, "payload", None))
        return event

    dag_module._run_task = reporting_run_task
    dag_module._run_inline_trigger = reporting_run_trigger

    spec = importlib.util.spec_from_file_location(f"demo_{args.dag_id}", args.dag_file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    dag_run = module.dag.test(run_conf=json.loads(args.conf))
    state = str(getattr(dag_run.state, "value", dag_run.state))
    emit("dag_ended", state=state)
    return 0 if state == "success" else 1


# ------------------------------------------------------------------------------------------ main


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python scripts/demo.py",
        description="Run the four example DAGs against the local emulator and deliver their outputs.",
    )
    parser.add_argument("--output", help="where the outputs go (default: ./demo-output under the repository)")
    parser.add_argument(
        "--service",
        action="append",
        default=[],
        choices=SERVICE_NAMES,
        help="run only this service's example (repeatable; default: all four)",
    )
    parser.add_argument(
        "--fail-service",
        action="append",
        default=[],
        choices=SERVICE_NAMES,
        help="submit this service's job with the emulator's failure marker (to see a failure)",
    )
    parser.add_argument("--pid-file", help="write the PIDs of every process started, as JSON")
    parser.add_argument("--job-seconds", type=float, default=4.0, help="how long each emulated job runs")
    parser.add_argument("--poll-seconds", type=float, default=2.0, help="the waits' poll interval")
    parser.add_argument(
        "--keep-home", action="store_true", help="keep the throwaway Airflow home and its logs"
    )
    parser.add_argument("--timeout", type=float, default=300.0, help="give up after this many seconds")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == [CHILD]:
        return run_child(argv[1:])
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    return Demo(parse_args(argv)).run()


if __name__ == "__main__":
    sys.exit(main())
