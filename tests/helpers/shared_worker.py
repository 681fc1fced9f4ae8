"""One stand-in for a triggerer or worker process, for the shared-state tests and benchmark.

``wait``: runs `JobStatusTrigger.run()` for each job id on this process's own event loop (the real
poll hub and poller, as a triggerer runs them), from the epoch second ``--start`` for at most
``--seconds``; prints one JSON line: each job's event kind (or ``"pending"``) and the pollers'
counters (``shared`` is absent without ``[jobstatus] redis_url``).

``submit``: runs ``--count`` `SymblSubmitJobOperator` tasks in threads (``durable=False``,
waiting in the worker), each submitting one job and waiting for its end, as Celery workers would;
prints one JSON line: each task's outcome.

The connection comes from the environment (``AIRFLOW_CONN_*``), like ``[jobstatus] redis_url``
(``AIRFLOW__JOBSTATUS__REDIS_URL``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def start(args: list[str], redis_url: str | None) -> subprocess.Popen[str]:
    """This module with ``args`` in its own process and session; ``[jobstatus] redis_url`` is
    ``redis_url`` or unset, whatever this environment says."""
    env = dict(os.environ)
    env.pop("AIRFLOW__JOBSTATUS__REDIS_URL", None)
    if redis_url:
        env["AIRFLOW__JOBSTATUS__REDIS_URL"] = redis_url
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT), str(ROOT / "emulator" / "src"), env.get("PYTHONPATH", "")]
    )
    return subprocess.Popen(
        [sys.executable, "-m", "tests.helpers.shared_worker", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


async def wait_all(
    service: str, conn_id: str, job_ids: list[str], interval: float, start: float, seconds: float
) -> dict[str, Any]:
    from airflow_jobstatus.http.client import close_async_clients
    from airflow_jobstatus.triggers.hub import PollHub
    from airflow_jobstatus.triggers.job import JobStatusTrigger

    await asyncio.sleep(max(0.0, start - time.time()))
    kinds: dict[str, str] = dict.fromkeys(job_ids, "pending")

    async def one(job_id: str) -> None:
        trigger = JobStatusTrigger(
            service=service,
            conn_id=conn_id,
            job_id=job_id,
            poll_interval=interval,
            deadline=time.time() + 3600,
        )
        async for event in trigger.run():
            kinds[job_id] = str(event.payload["event"])
            return

    tasks = [asyncio.ensure_future(one(j)) for j in job_ids]
    await asyncio.sleep(0)
    pollers = list(PollHub.current().pollers.values())
    done, pending = await asyncio.wait(tasks, timeout=seconds)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    errors = [repr(t.exception()) for t in done if t.exception() is not None]
    counters: dict[str, Any] = {}
    for poller in pollers:
        counters.update(poller.counters)
        if poller.shared is not None:
            counters["shared"] = poller.shared.counters
    await close_async_clients()
    return {"events": kinds, "counters": counters, "errors": errors}


def submit_all(conn_id: str, count: int, url: str, backoff: float) -> dict[str, Any]:
    from airflow_jobstatus.operators.symbl import SymblSubmitJobOperator

    outcomes: dict[str, str] = {}

    def run(i: int) -> None:
        try:
            outcomes[f"submit_{i}"] = _submit_one(i)
        except Exception as exc:
            outcomes[f"submit_{i}"] = f"{type(exc).__name__}: {exc}"

    def _submit_one(i: int) -> str:
        op = SymblSubmitJobOperator(
            task_id=f"submit_{i}",
            symbl_conn_id=conn_id,
            audio_url=f"{url}&n={i}",
            deferrable=False,
            poll_interval=0.5,
            durable=False,
            retries=0,
            concurrency_wait_timeout=120,
        )
        op.concurrency_backoff_initial = backoff
        op.concurrency_backoff_max = backoff
        result = op.execute({})
        return str(result["state"])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"outcomes": outcomes}


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=("wait", "submit"))
    parser.add_argument("--service", default="daily")
    parser.add_argument("--conn", required=True)
    parser.add_argument("--jobs", default="")
    parser.add_argument("--interval", type=float, default=2.0)
    parser.add_argument("--start", type=float, default=0.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--count", type=int, default=1)
    parser.add_argument("--url", default="https://media.example/a.mp3?emu_duration=1")
    parser.add_argument("--backoff", type=float, default=0.5)
    args = parser.parse_args(argv)
    if args.mode == "wait":
        jobs = [j for j in args.jobs.split(",") if j]
        result = asyncio.run(wait_all(args.service, args.conn, jobs, args.interval, args.start, args.seconds))
    else:
        result = submit_all(args.conn, args.count, args.url, args.backoff)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
