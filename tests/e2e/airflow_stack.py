"""A real Airflow 3 deployment for end-to-end tests: api-server, scheduler, dag-processor, triggerer.

LocalExecutor on SQLite (one DAG run at a time: concurrent runs lock SQLite), every port a free
loopback port (the api-server and both log servers), each process in its own session and stopped
by its PID (SIGTERM to its process group, then SIGKILL), never by name.

>>> with AirflowStack(tmp_path, dags_folder=dags, env={"AIRFLOW_CONN_...": "..."}) as stack:
...     run_id = stack.trigger("my_dag", conf={"job_id": "..."})
...     stack.wait_for_run("my_dag", run_id)
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from airflow_jobstatus.testing.processes import ManagedProcess, free_port

AIRFLOW = str(Path(sys.executable).parent / "airflow")
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


class AirflowStack:
    """Airflow's four long-running components as real processes sharing one SQLite database."""

    def __init__(self, root: Path, *, dags_folder: Path, env: Mapping[str, str] | None = None) -> None:
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
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.home / 'airflow.db'}",
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
            **(env or {}),
        }
        self.processes: dict[str, ManagedProcess] = {}
        self.stop_seconds: dict[str, float] = {}
        self._generation: dict[str, int] = {}
        self._client = httpx.Client(base_url=self.url, timeout=30, trust_env=False)

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
            [AIRFLOW, *AIRFLOW_COMMANDS[name]],
            name=f"airflow-{name}",
            log_path=self.logs / f"{name}-{generation}.log",
            env=self.env,
            cwd=self.root,
        )
        self.processes[name] = process
        process.start(ready, timeout=timeout)

    def start(self) -> AirflowStack:
        self.migrate()
        self.start_component("api-server", self.healthy, timeout=120)
        for name in COMPONENTS[1:]:
            self.start_component(name)
        return self

    def kill(self, name: str) -> int:
        """SIGKILL a component's whole process group (no shutdown at all); return its old PID."""
        process = self.processes[name]
        pid = process.pid
        assert pid is not None and process.is_running, f"{name} is not running"
        os.killpg(pid, signal.SIGKILL)
        process.stop(timeout=10)  # reaps it
        return pid

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM every component's process group at once; SIGKILL what is left after ``timeout``."""
        processes = [self.processes.pop(name) for name in reversed(COMPONENTS) if name in self.processes]

        def stop_one(process: ManagedProcess) -> tuple[str, float]:
            started = time.monotonic()
            with contextlib.suppress(Exception):
                process.stop(timeout=timeout)
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
