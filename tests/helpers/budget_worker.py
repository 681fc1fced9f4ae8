"""A separate Airflow process for the shared-budget tests: a worker sending requests, or a
triggerer-like event loop running real `JobStatusTrigger` waits. Configuration comes from the
environment (``AIRFLOW_CONN_*``, ``AIRFLOW__JOBSTATUS__REDIS_URL``) as in a deployment.

    python -m tests.helpers.budget_worker requests SERVICE CONN_ID JOB_ID COUNT [--threads N]
    python -m tests.helpers.budget_worker arequests SERVICE CONN_ID JOB_ID COUNT   (one event loop)
    python -m tests.helpers.budget_worker waits SERVICE CONN_ID JOB_ID[,JOB_ID...] [--poll S]

``requests`` and ``arequests`` print one JSON line ``{"ok": N, "errors": {...}}``; ``waits`` prints one JSON line per
ended wait (``{"job_id", "event"}``). A wait that ends in an error is reported, not raised.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from airflow_jobstatus.services import SERVICES


def send_requests(service: str, conn_id: str, job_id: str, count: int, threads: int) -> dict[str, Any]:
    hook = SERVICES[service].make_hook(conn_id)
    errors: Counter[str] = Counter()

    def one(_: int) -> bool:
        try:
            hook.get_job(job_id)
            return True
        except Exception as exc:  # counted and reported: the test decides
            errors[type(exc).__name__] += 1
            return False

    with ThreadPoolExecutor(threads) as pool:
        ok = sum(pool.map(one, range(count)))
    return {"ok": ok, "errors": dict(errors)}


async def send_requests_async(service: str, conn_id: str, job_id: str, count: int) -> dict[str, Any]:
    """As `send_requests`, on one event loop (the async client and limiter a triggerer uses)."""
    hook = SERVICES[service].make_hook(conn_id)
    errors: Counter[str] = Counter()

    async def one() -> bool:
        try:
            await hook.aget_job(job_id)
            return True
        except Exception as exc:  # counted and reported: the test decides
            errors[type(exc).__name__] += 1
            return False

    ok = sum(await asyncio.gather(*(one() for _ in range(count))))
    return {"ok": ok, "errors": dict(errors)}


async def run_waits(service: str, conn_id: str, job_ids: list[str], poll: float, timeout: float) -> None:
    from airflow_jobstatus.triggers.job import JobStatusTrigger

    async def wait(job_id: str) -> None:
        trigger = JobStatusTrigger(
            service=service,
            conn_id=conn_id,
            job_id=job_id,
            poll_interval=poll,
            deadline=time.time() + timeout,
        )
        async for event in trigger.run():
            print(json.dumps({"job_id": job_id, "event": event.payload}, default=str), flush=True)
            return

    await asyncio.gather(*(wait(j) for j in job_ids))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=("requests", "arequests", "waits"))
    parser.add_argument("service")
    parser.add_argument("conn_id")
    parser.add_argument("job_ids")
    parser.add_argument("count", nargs="?", type=int, default=0)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--poll", type=float, default=1.0)
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    if args.mode == "requests":
        result = send_requests(args.service, args.conn_id, args.job_ids, args.count, args.threads)
        print(json.dumps(result), flush=True)
    elif args.mode == "arequests":
        result = asyncio.run(send_requests_async(args.service, args.conn_id, args.job_ids, args.count))
        print(json.dumps(result), flush=True)
    else:
        asyncio.run(run_waits(args.service, args.conn_id, args.job_ids.split(","), args.poll, args.timeout))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
