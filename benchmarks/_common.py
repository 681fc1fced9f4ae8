"""What several benchmarks do alike: pin a process to CPUs, read RSS, run one case in its own
process, start the emulator and a redis-server. Imported as ``benchmarks._common`` (the repository
root on ``sys.path``)."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_jobstatus.testing.s3 import S3Server
    from jobstatus_emulator.server import EmulatorServer


def pin(pid: int, cpus: set[int]) -> bool:
    """Run ``pid`` on ``cpus`` only (0: this process); False where the OS cannot."""
    if not hasattr(os, "sched_setaffinity"):
        return False
    try:
        os.sched_setaffinity(pid, cpus)
        return True
    except OSError:
        return False


def peak_rss_mb() -> float:
    """This process's peak RSS so far (``ru_maxrss``), in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def run_case(
    script: str, case: dict[str, Any], env: dict[str, str], *, label: str, timeout: float
) -> dict[str, Any]:
    """``python <script> --worker <case JSON>`` in its own process (its RSS its own); its last output line."""
    proc = subprocess.run(
        [sys.executable, script, "--worker", json.dumps(case)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"case {label} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def s3_case_env(s3: S3Server, conn_id: str, work: Path) -> dict[str, str]:
    """This environment plus ``conn_id`` as an Airflow connection to ``s3``, for the case processes."""
    env = dict(os.environ)
    env.update(s3.airflow_connection_env(conn_id))
    env.setdefault("AIRFLOW_HOME", str(work / "airflow-home"))
    env["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    return env


@contextmanager
def emulator_and_redis(prefix: str) -> Iterator[tuple[Path, EmulatorServer, str]]:
    """A work folder, the emulator (jobs that last an hour) and a redis-server's URL; both stopped
    by PID at the end. Without ``redis-server`` the benchmark exits with 2."""
    from jobstatus_emulator.server import EmulatorServer
    from tests.helpers.redis_server import REDIS_SERVER, RedisServer

    if REDIS_SERVER is None:
        print("redis-server is not installed", file=sys.stderr)
        raise SystemExit(2)
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    redis_server = RedisServer(workdir)
    emulator = EmulatorServer(job_duration=3600, log_level="warning", log_path=workdir / "emulator.log")
    redis_server.start()
    emulator.start()
    try:
        yield workdir, emulator, redis_server.url
    finally:
        emulator.stop()
        redis_server.stop()
