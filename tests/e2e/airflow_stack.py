"""A real Airflow 3 deployment for end-to-end tests: api-server, scheduler, dag-processor, triggerer.

By default LocalExecutor on SQLite (one DAG run at a time: concurrent runs lock SQLite) with one
triggerer. A scale-out deployment asks for a PostgreSQL URL, CeleryExecutor (plus a Celery worker
process) and several triggerers (``triggerer-1``, ``triggerer-2``...). Every port is a free
loopback port (the api-server and each log server), each process runs in its own session and is
stopped by its PID (SIGTERM to its process group, then SIGKILL, then any descendant that left
the group), never by name.

>>> with AirflowStack(tmp_path, dags_folder=dags, env={"AIRFLOW_CONN_...": "..."}) as stack:
...     run_id = stack.trigger("my_dag", conf={"job_id": "..."})
...     stack.watch_run("my_dag", run_id)
>>> celery = CeleryConfig(broker_url="redis://127.0.0.1:6379/5", result_backend="db+postgresql://...")
>>> AirflowStack(tmp_path, dags_folder=dags, database_url=pg_url, celery=celery, triggerers=2)
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import psutil

from airflow_jobstatus.testing.processes import ManagedProcess, free_port
from tests.helpers.secret_scan import register_stack

AIRFLOW = str(Path(sys.executable).parent / "airflow")
# The default deployment's components, in start order
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
# The Airflow command each component runs (also what docker-compose.yaml must run: tests/e2e/test_compose.py)
AIRFLOW_COMMANDS: dict[str, tuple[str, ...]] = {
    "api-server": ("api-server",),
    "scheduler": ("scheduler",),
    "dag-processor": ("dag-processor",),
    "triggerer": ("triggerer",),
    "celery-worker": ("celery", "worker"),
}
FINISHED = frozenset({"success", "failed", "upstream_failed", "skipped", "removed"})
# PostgreSQL allows 100 connections on the development machines, shared by parallel test runs
PG_POOL_ENV = {
    "AIRFLOW__DATABASE__SQL_ALCHEMY_POOL_SIZE": "2",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_MAX_OVERFLOW": "5",
}


def command_of(name: str) -> tuple[str, ...]:
    """The Airflow command of a component name; ``triggerer-2`` runs the ``triggerer`` command."""
    return AIRFLOW_COMMANDS[re.sub(r"-\d+$", "", name)]


def process_tree(pid: int) -> list[psutil.Process]:
    """The process and its live descendants (empty when it is gone)."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def kill_leftovers(tree: list[psutil.Process]) -> None:
    """SIGKILL every process of ``tree`` still alive (task runners lead their own process groups).

    ``psutil`` checks each process's identity (PID and start time) first, so a reused PID is safe.
    """
    for proc in tree:
        with contextlib.suppress(psutil.Error):
            proc.kill()


@dataclass(frozen=True)
class CeleryConfig:
    """CeleryExecutor settings: the broker, the Celery result backend and the worker's processes.

    ``broker_key_prefix`` (kombu's ``global_keyprefix``) puts every broker key under one prefix, so
    a test can share a Redis database with others and delete exactly its own keys afterwards.
    """

    broker_url: str
    result_backend: str
    worker_concurrency: int = 4
    broker_key_prefix: str | None = None

    def env(self) -> dict[str, str]:
        env = {
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CELERY__BROKER_URL": self.broker_url,
            "AIRFLOW__CELERY__RESULT_BACKEND": self.result_backend,
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(self.worker_concurrency),
            # the scheduler's cap on queued + running tasks; the worker's concurrency is the real limit
            "AIRFLOW__CORE__PARALLELISM": str(max(16, 4 * self.worker_concurrency)),
        }
        if self.broker_key_prefix:
            env["AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__GLOBAL_KEYPREFIX"] = self.broker_key_prefix
        return env


class AirflowStack:
    """Airflow's long-running components as real processes sharing one metadata database.

    ``database_url`` (a SQLAlchemy URL, e.g. PostgreSQL) replaces the SQLite file; ``celery``
    switches to CeleryExecutor and adds a ``celery-worker`` component; ``triggerers=N`` (N > 1)
    runs ``triggerer-1`` ... ``triggerer-N``, each with its own log-server port. ``env`` overrides
    any setting, last.
    """

    def __init__(
        self,
        root: Path,
        *,
        dags_folder: Path,
        env: Mapping[str, str] | None = None,
        database_url: str | None = None,
        celery: CeleryConfig | None = None,
        triggerers: int = 1,
    ) -> None:
        if triggerers < 1:
            raise ValueError(f"triggerers must be at least 1, not {triggerers}")
        self.root = root
        self.home = root / "airflow-home"
        self.logs = root / "logs"
        self.home.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        base = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        self.env: dict[str, str] = {
            **base,
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": database_url or f"sqlite:///{self.home / 'airflow.db'}",
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(40),
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            # a killed triggerer's triggers are adopted by another one after this many seconds
            "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "2",
            "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "8",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONUNBUFFERED": "1",
            **(PG_POOL_ENV if database_url and not database_url.startswith("sqlite") else {}),
            **(celery.env() if celery else {}),
            **(env or {}),
        }
        triggerer_names = (
            ["triggerer"] if triggerers == 1 else [f"triggerer-{i}" for i in range(1, triggerers + 1)]
        )
        # Components in start order. Several triggerers on one host need one log-server port each.
        self.components: tuple[str, ...] = (
            *COMPONENTS[:-1],
            *(["celery-worker"] if celery else []),
            *triggerer_names,
        )
        self.component_env: dict[str, dict[str, str]] = {
            name: {"AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port())}
            for name in triggerer_names
            if triggerers > 1
        }
        self.processes: dict[str, ManagedProcess] = {}
        self.stop_seconds: dict[str, float] = {}
        self._generation: dict[str, int] = {}
        self._client = httpx.Client(base_url=self.url, timeout=30, trust_env=False)
        register_stack(self)  # the secret-canary scan: this stack's logs, and its database once stopped

    # ------------------------------------------------------------------ life cycle

    def migrate(self) -> None:
        done = subprocess.run(
            [AIRFLOW, "db", "migrate"], env=self.env, capture_output=True, text=True, timeout=300
        )
        if done.returncode != 0:
            raise RuntimeError(f"airflow db migrate failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")

    def start_component(
        self, name: str, ready: Callable[[], bool] | None = None, timeout: float = 90
    ) -> None:
        generation = self._generation.get(name, 0) + 1
        self._generation[name] = generation
        process = ManagedProcess(
            [AIRFLOW, *command_of(name)],
            name=f"airflow-{name}",
            log_path=self.logs / f"{name}-{generation}.log",
            env={**self.env, **self.component_env.get(name, {})},
            cwd=self.root,
        )
        self.processes[name] = process
        process.start(ready, timeout=timeout)

    def start(self, ready: Mapping[str, Callable[[], bool]] | None = None) -> AirflowStack:
        """Migrate, then start every component in order; ``ready[name]`` is awaited before the next."""
        self.migrate()
        self.start_component("api-server", self.healthy, timeout=120)
        for name in self.components[1:]:
            self.start_component(name, (ready or {}).get(name), timeout=120)
        return self

    @property
    def triggerers(self) -> list[str]:
        return [name for name in self.components if command_of(name) == AIRFLOW_COMMANDS["triggerer"]]

    def cpu_seconds(self, name: str) -> float:
        """User + system CPU seconds of a running component's process tree (children it reaped included)."""
        process = self.processes[name]
        assert process.pid is not None, f"{name} was never started"
        total = 0.0
        for proc in process_tree(process.pid):
            with contextlib.suppress(psutil.Error):
                times = proc.cpu_times()
                total += times.user + times.system + times.children_user + times.children_system
        return total

    def kill(self, name: str) -> int:
        """SIGKILL a component's whole process group (no shutdown at all); return its old PID."""
        process = self.processes[name]
        pid = process.pid
        assert pid is not None and process.is_running, f"{name} is not running"
        tree = process_tree(pid)
        os.killpg(pid, signal.SIGKILL)
        kill_leftovers(tree)  # descendants that lead their own process group
        process.stop(timeout=10)  # reaps it
        return pid

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM every component's process group at once; SIGKILL what is left after ``timeout``."""
        processes = [self.processes.pop(name) for name in reversed(list(self.processes))]

        def stop_one(process: ManagedProcess) -> tuple[str, float]:
            started = time.monotonic()
            tree = process_tree(process.pid) if process.is_running and process.pid is not None else []
            with contextlib.suppress(Exception):
                process.stop(timeout=timeout)
            kill_leftovers(tree)
            return process.name, time.monotonic() - started

        if processes:
            with ThreadPoolExecutor(len(processes)) as pool:
                self.stop_seconds = dict(pool.map(stop_one, processes))
        self._client.close()

    def __enter__(self) -> AirflowStack:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def log_tails(self, lines: int = 30) -> str:
        return "\n".join(
            f"--- {name} (pid {p.pid}, running={p.is_running}) {p.log_path}\n{p.log_tail(lines)}"
            for name, p in self.processes.items()
        )

    # ------------------------------------------------------------------ REST API

    def healthy(self) -> bool:
        return self._client.get("/api/v2/monitor/health").status_code == 200

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._client.request(method, f"/api/v2{path}", **kwargs)
        if response.status_code >= 400:
            raise RuntimeError(f"{method} {path} -> {response.status_code}: {response.text[:500]}")
        return response.json()

    def wait_for_dags(self, dag_ids: list[str], timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        missing = set(dag_ids)
        while missing:
            for dag_id in list(missing):
                if self._client.get(f"/api/v2/dags/{dag_id}").status_code == 200:
                    missing.discard(dag_id)
            if missing:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"DAGs never parsed: {sorted(missing)}\n{self.log_tails()}")
                time.sleep(0.5)

    def trigger(self, dag_id: str, conf: Mapping[str, Any] | None = None) -> str:
        run = self.api(
            "POST", f"/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": dict(conf or {})}
        )
        return str(run["dag_run_id"])

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str | None]:
        body = self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")
        return {ti["task_id"]: ti["state"] for ti in body["task_instances"]}

    def watch_run(
        self,
        dag_id: str,
        run_id: str,
        *,
        timeout: float = 120,
        until: Callable[[dict[str, str | None]], bool] | None = None,
    ) -> dict[str, list[str]]:
        """Poll the task instances every 0.3 s; return each task's sequence of observed states.

        Stops when every task is finished (or ``until(states)`` is true).
        """
        seen: dict[str, list[str]] = {}
        deadline = time.monotonic() + timeout
        while True:
            states = self.task_states(dag_id, run_id)
            for task_id, state in states.items():
                history = seen.setdefault(task_id, [])
                if state is not None and (not history or history[-1] != state):
                    history.append(state)
            done = bool(states) and all(s in FINISHED for s in states.values())
            if done or (until is not None and until(states)):
                return seen
            if time.monotonic() > deadline:
                raise TimeoutError(f"{dag_id} {run_id}: {seen}\n{self.log_tails()}")
            time.sleep(0.3)
