"""Push vs poll: N waits on Daily jobs in one event loop, ended by webhook events or found by polling.

Starts the emulator and a ``redis-server`` as their own processes, then runs the same scenario twice
in this process, each in a fresh event loop (as one triggerer loop would run them):

1. submit N Daily jobs that stay in flight (``emu_duration=100000``) on one account;
2. start N `JobStatusTrigger.run()` generators with ``poll_interval`` P (default 5 s) and wait
   until every one has made its first status check;
3. end the jobs one by one (the emulator's admin ``PATCH``). In **push** mode each end is followed
   at once by what the receiver publishes for a verified webhook (the event stored under its key
   and published on the channel); in **poll** mode nothing is published;
4. measure, per wait, the status requests after the first check (emulator ``/_admin/stats``: per-job
   ``GET`` requests and the poll hub's list sweeps, one page of 100 jobs answering many waits) and the
   latency from the job's end (push: the event's publication) to the trigger yielding its event.

Push mode has ``[jobstatus] redis_url`` set and a 600 s safety-net interval; the connection has a
``webhook_secret``. Targets (PASS/FAIL): push at most 1 request per wait and p99 latency < 1 s.
The latency ends at the trigger's event (what the triggerer hands to the scheduler), not at the task
resuming in a worker, which adds the scheduler's and executor's own delay, the same in both modes.

    .venv/bin/python benchmarks/push_vs_poll.py             # N = 1,000 (about a minute)
    .venv/bin/python benchmarks/push_vs_poll.py --waits 200 # smoke run

Everything started here is stopped by PID.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

MARKER = "emu_duration=100000"
STATUS_ROUTES = ("/batch-processor/{id}", "/batch-processor")
CONN_ID = "bench_push_daily"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))] if ordered else float("nan")


def _port_open(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def job_gets(emulator: Any, credential: str) -> int:
    """Status requests of the account: per-job GETs and the hub's list sweeps (one page: many waits)."""
    rows = emulator.stats(service="daily", credential=credential)["requests"]
    return sum(r["count"] for r in rows if r["method"] == "GET" and r["route"] in STATUS_ROUTES)


async def scenario(
    mode: str, emulator: Any, redis_url: str, credential: str, waits: int, poll: float
) -> dict[str, Any]:
    from airflow_jobstatus.hooks.daily import DailyHook
    from airflow_jobstatus.http.client import close_async_clients
    from airflow_jobstatus.push.listener import listener_for_loop
    from airflow_jobstatus.push.models import CHANNEL, PushEvent, event_key
    from airflow_jobstatus.triggers.job import JobStatusTrigger

    hook = DailyHook(CONN_ID)
    sem = asyncio.Semaphore(50)

    async def submit(i: int) -> str:
        async with sem:
            return await hook.asubmit_job("transcript", uri=f"https://media.example/{mode}-{i}.mp4?{MARKER}")

    job_ids = await asyncio.gather(*(submit(i) for i in range(waits)))
    ended: dict[str, float] = {}
    fired: dict[str, float] = {}

    async def wait(job_id: str) -> None:
        trigger = JobStatusTrigger(
            service="daily", conn_id=CONN_ID, job_id=job_id, poll_interval=poll, deadline=time.time() + 3600
        )
        async for _ in trigger.run():
            fired[job_id] = time.time()
            return

    before = await asyncio.to_thread(job_gets, emulator, credential)
    tasks = [asyncio.ensure_future(wait(j)) for j in job_ids]
    listener = listener_for_loop()
    if mode == "push":
        assert listener is not None, "push mode needs [jobstatus] redis_url"
    deadline = time.monotonic() + 60
    # the hub's first sweep lists the account's jobs (100 a page) for all the waits at once
    while await asyncio.to_thread(job_gets, emulator, credential) - before < max(1, waits // 100):
        failed = [t.exception() for t in tasks if t.done() and not t.cancelled() and t.exception()]
        assert not failed, f"a wait failed: {failed[0]!r}"
        assert time.monotonic() < deadline, (
            f"the waits did not all make their first check: {emulator.stats(service='daily')}"
        )
        await asyncio.sleep(0.2)
    if listener is not None:
        while not listener.healthy:
            assert time.monotonic() < deadline, "the Redis subscription never became healthy"
            await asyncio.sleep(0.05)
    await asyncio.sleep(1.0)
    first = await asyncio.to_thread(job_gets, emulator, credential)

    def end_jobs() -> None:
        import redis

        client = redis.Redis.from_url(redis_url) if mode == "push" else None
        for job_id in job_ids:
            created = emulator.job("daily", job_id)["timeline"][0]["at"]
            emulator.patch_job("daily", job_id, duration=max(0.0, time.time() - created))
            emulator.job("daily", job_id)  # reading the status ends the job now (its outputs written)
            if client is not None:
                event = PushEvent("daily", CONN_ID, job_id, time.time()).to_json()
                client.set(event_key("daily", CONN_ID, job_id), event, ex=600)
                client.publish(CHANNEL, event)
            ended[job_id] = time.time()
        if client is not None:
            client.close()

    await asyncio.to_thread(end_jobs)
    done, pending = await asyncio.wait(tasks, timeout=max(60.0, 3 * poll))
    for task in pending:
        task.cancel()
    total = await asyncio.to_thread(job_gets, emulator, credential)
    if listener is not None:
        await listener.aclose()
    await close_async_clients()
    latencies = [fired[j] - ended[j] for j in job_ids if j in fired and j in ended]
    return {
        "mode": mode,
        "waits": waits,
        "completed": len(fired),
        "requests_per_wait": (total - first) / waits,
        "latency_p50_s": percentile(latencies, 0.50),
        "latency_p99_s": percentile(latencies, 0.99),
    }


def run_mode(
    mode: str, emulator: Any, redis_url: str, credential: str, waits: int, poll: float
) -> dict[str, Any]:
    os.environ.pop("AIRFLOW__JOBSTATUS__REDIS_URL", None)
    if mode == "push":
        os.environ["AIRFLOW__JOBSTATUS__REDIS_URL"] = redis_url
    os.environ["AIRFLOW__JOBSTATUS__PUSH_POLL_INTERVAL"] = "600"
    result: dict[str, Any] = {}

    def target() -> None:  # a fresh event loop (and so a fresh listener) per mode
        result.update(asyncio.run(scenario(mode, emulator, redis_url, credential, waits, poll)))

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--waits", type=int, default=1000)
    parser.add_argument("--poll-interval", type=float, default=5.0)
    args = parser.parse_args(argv)
    redis_binary = shutil.which("redis-server")
    if redis_binary is None:
        print("redis-server is not installed", file=sys.stderr)
        return 2

    from airflow_jobstatus.testing.processes import ManagedProcess, free_port
    from jobstatus_emulator.server import EmulatorServer

    workdir = Path(tempfile.mkdtemp(prefix="push-vs-poll-"))
    port = free_port()
    redis_url = f"redis://127.0.0.1:{port}/0"
    redis_proc = ManagedProcess(
        [redis_binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"],
        name="redis-server",
        log_path=workdir / "redis.log",
    )
    emulator = EmulatorServer(job_duration=3600, log_level="warning", log_path=workdir / "emulator.log")
    redis_proc.start(ready=lambda: _port_open(port), timeout=15)
    emulator.start()
    results = []
    try:
        for mode in ("poll", "push"):
            credential = f"bench-{mode}-{int(time.time())}"
            secret = base64.b64encode(os.urandom(32)).decode()
            os.environ[f"AIRFLOW_CONN_{CONN_ID.upper()}"] = json.dumps(
                {
                    "conn_type": "daily",
                    "host": emulator.service_url("daily"),
                    "password": credential,
                    "extra": {"max_requests_per_second": 0, "webhook_secret": secret},
                }
            )
            results.append(run_mode(mode, emulator, redis_url, credential, args.waits, args.poll_interval))
    finally:
        emulator.stop()
        redis_proc.stop()
    print(f"{'mode':<6} {'waits':>6} {'done':>6} {'req/wait':>9} {'p50 s':>8} {'p99 s':>8}")
    for r in results:
        print(
            f"{r['mode']:<6} {r['waits']:>6} {r['completed']:>6} {r['requests_per_wait']:>9.2f} "
            f"{r['latency_p50_s']:>8.3f} {r['latency_p99_s']:>8.3f}"
        )
    push = next(r for r in results if r["mode"] == "push")
    ok = (
        push["completed"] == push["waits"]
        and push["requests_per_wait"] <= 1.0
        and push["latency_p99_s"] < 1.0
    )
    print(("PASS" if ok else "FAIL") + ": push at most 1 request per wait and p99 latency under 1 s")
    print(json.dumps(results))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
