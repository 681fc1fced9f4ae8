"""Shared job status: status requests per poll interval with 1 and 3 triggerer processes, with and without Redis.

Starts the emulator and a ``redis-server`` as their own processes (stopped by PID), then, in the
same run and at the same time, one account per scenario:

* **daily**: ``--daily-waits`` waits on running Daily jobs spread over the processes (the poll hub
  lists the account, 100 jobs a page, instead of fetching each job);
* **symbl**: ``--symbl-jobs`` running Symbl.ai jobs, each waited on by *every* process (e.g. a
  sensor and an operator in different triggerers; Symbl.ai has no list endpoint).

Each process (``tests/helpers/shared_worker.py``) runs the real trigger, poll hub and poller on its
own event loop, as a triggerer does. Status requests (per-job GETs and list pages) are counted at
the emulator over ``--intervals`` poll intervals after two warm-up intervals, and printed per
interval next to the reference measured in the same run (1 process, no Redis). Target (PASS/FAIL):
with Redis, 3 processes make at most 1.25 times the requests of 1.

    .venv/bin/python benchmarks/shared_status.py               # about 2 minutes
    .venv/bin/python benchmarks/shared_status.py --daily-waits 100 --symbl-jobs 10 --interval 3
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ROUTES = {"daily": ("/batch-processor/{id}", "/batch-processor"), "symbl": ("/v1/job/{jobId}",)}
SCENARIOS = (
    ("1 process", 1, False),
    ("1 process + Redis", 1, True),
    ("3 processes", 3, False),
    ("3 processes + Redis", 3, True),
)
STARTUP = 30.0
"""Seconds for the worker processes to import Airflow before the waits start together."""


def _connection(emulator: Any, service: str, name: str) -> tuple[str, str]:
    conn_id = f"bench_shared_{service}_{name}"
    credential = f"bench-{service}-{name}-{os.urandom(4).hex()}"
    conn: dict[str, Any] = {"conn_type": service, "host": emulator.service_url(service)}
    if service == "daily":
        conn["password"] = credential
    else:
        conn.update(login=credential, password=f"secret-{os.urandom(8).hex()}")
    conn["extra"] = {"max_requests_per_second": 0, "allow_http_links": True}
    os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"] = json.dumps(conn)
    return conn_id, credential


def _submit(service: str, conn_id: str, count: int, tag: str) -> list[str]:
    url = f"https://media.example/{tag}-{{}}.media?emu_duration=100000"
    if service == "daily":
        from airflow_jobstatus.hooks.daily import DailyHook

        daily = DailyHook(conn_id)
        return [daily.submit_job("transcript", uri=url.format(i)) for i in range(count)]
    from airflow_jobstatus.hooks.symbl import SymblHook

    symbl = SymblHook(conn_id)
    return [symbl.submit_job(audio_url=url.format(i)) for i in range(count)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--daily-waits", type=int, default=300)
    parser.add_argument("--symbl-jobs", type=int, default=20)
    parser.add_argument("--interval", type=float, default=5.0)
    parser.add_argument("--intervals", type=int, default=6)
    args = parser.parse_args(argv)

    from benchmarks._common import emulator_and_redis
    from tests.helpers import shared_worker

    procs: list[subprocess.Popen[str]] = []
    counts: dict[tuple[str, str], int] = {}
    with emulator_and_redis("shared-status-") as (_, emulator, redis_url):
        try:
            warm, window = 2 * args.interval, args.intervals * args.interval
            plans = []
            for service, total in (("daily", args.daily_waits), ("symbl", args.symbl_jobs)):
                for name, processes, with_redis in SCENARIOS:
                    tag = name.replace(" ", "").replace("+", "_")
                    conn_id, credential = _connection(emulator, service, tag)
                    jobs = _submit(service, conn_id, total, tag)
                    # daily: the waits spread over the processes; symbl: every process waits on every job
                    groups = (
                        [jobs[i::processes] for i in range(processes)]
                        if service == "daily"
                        else [jobs] * processes
                    )
                    plans.append((service, name, credential, conn_id, groups, with_redis))
            start = time.time() + STARTUP
            for service, _, _, conn_id, groups, with_redis in plans:
                for group in groups:
                    cmd = ["wait", "--service", service, "--conn", conn_id, "--jobs", ",".join(group)]
                    cmd += ["--interval", str(args.interval), "--start", str(start)]
                    cmd += ["--seconds", str(warm + window + 1)]
                    procs.append(shared_worker.start(cmd, redis_url if with_redis else None))
            for proc in procs:
                out, err = proc.communicate(timeout=STARTUP + warm + window + 120)
                if proc.returncode != 0:
                    print(err[-2000:], file=sys.stderr)
                    return 1
            for service, name, credential, *_ in plans:
                rows = emulator.requests(service=service, credential=credential, since=start + warm)
                counts[(service, name)] = sum(
                    1
                    for r in rows
                    if r["method"] == "GET"
                    and r["route"] in ROUTES[service]
                    and r["at"] <= start + warm + window
                )
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(10)

    print(f"status requests per interval ({args.interval:g} s), averaged over {args.intervals} intervals")
    print(f"{'scenario':<34}" + "".join(f"{name:>22}" for name, _, _ in SCENARIOS))
    rows_text = {
        "daily": f"daily, {args.daily_waits} waits spread",
        "symbl": f"symbl, {args.symbl_jobs} jobs x every process",
    }
    ok = True
    for service in ("daily", "symbl"):
        per = {name: counts[(service, name)] / args.intervals for name, _, _ in SCENARIOS}
        print(f"{rows_text[service]:<34}" + "".join(f"{per[name]:>22.1f}" for name, _, _ in SCENARIOS))
        ok = ok and per["3 processes + Redis"] <= 1.25 * per["1 process + Redis"] + 0.5
    print(
        ("PASS" if ok else "FAIL") + ": with Redis, 3 processes send at most 1.25x the status requests of 1"
    )
    print(json.dumps({f"{s}/{n}": c for (s, n), c in counts.items()}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
