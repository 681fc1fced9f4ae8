"""What a shared (Redis) request limiter costs per request, next to the per-process one, in one run.

Starts its own redis-server on a free loopback port and measures, in this process, the limiter's
``acquire`` with no rate limit and a day budget too large to bind (so every call runs the whole Lua
script: slot, window trim, count, record): wall-clock microseconds and CPU microseconds per
request, one at a time and with 100 in flight on one event loop (a triggerer), then the same for a
sync worker thread. The per-process limiter is the reference measured in the same run.

Usage: python benchmarks/shared_limiter.py [--requests N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from airflow_jobstatus.shared import accounts, budget
from airflow_jobstatus.shared import redis as shared_redis
from tests.helpers.redis_server import REDIS_SERVER, RedisServer


def start_redis(log_dir: Path) -> tuple[RedisServer, str]:
    if REDIS_SERVER is None:
        sys.exit("redis-server is not installed (apt-get install redis-server)")
    server = RedisServer(log_dir).start()
    return server, server.url


LIMITS = budget.Limits(rate=0, per_day=10**9)


async def measure_async(
    acquire: Callable[[], Awaitable[None]], total: int, in_flight: int
) -> tuple[float, float]:
    for _ in range(50):
        await acquire()
    per_worker = total // in_flight

    async def worker() -> None:
        for _ in range(per_worker):
            await acquire()

    wall0, cpu0 = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    n = per_worker * in_flight
    return (time.perf_counter() - wall0) * 1e6 / n, (time.process_time() - cpu0) * 1e6 / n


def measure_sync(acquire: Callable[[], None], total: int) -> tuple[float, float]:
    for _ in range(50):
        acquire()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    for _ in range(total):
        acquire()
    return (time.perf_counter() - wall0) * 1e6 / total, (time.process_time() - cpu0) * 1e6 / total


def run_mode(label: str, total: int) -> dict[str, tuple[float, float]]:
    results: dict[str, tuple[float, float]] = {}
    account = accounts.account_of("Bench", f"http://{label}", (label,))

    async def on_loop() -> None:
        limiter = budget.async_limiter_for("Bench", label, account, LIMITS)
        for in_flight in (1, 100):
            results[f"async, {in_flight} in flight"] = await measure_async(limiter.acquire, total, in_flight)

    asyncio.run(on_loop())
    sync = budget.sync_limiter_for("Bench", label, account, LIMITS)
    results["sync, 1 thread"] = measure_sync(sync.acquire, total)
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=5000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        proc, url = start_redis(Path(tmp))
        try:
            os.environ.pop("AIRFLOW__JOBSTATUS__REDIS_URL", None)
            shared_redis.reset()
            local = run_mode("local", args.requests)
            os.environ["AIRFLOW__JOBSTATUS__REDIS_URL"] = url
            shared_redis.reset()
            shared = run_mode("shared", args.requests)
            assert budget.HEALTH.down_since is None, (
                "Redis failed during the run: numbers are not shared ones"
            )
        finally:
            shared_redis.reset()
            proc.stop()
    print(f"limiter acquire, {args.requests} requests per row (no rate limit; day budget counted)")
    print(f"{'case':<22} {'per-process wall µs':>20} {'cpu µs':>8} {'Redis wall µs':>14} {'cpu µs':>8}")
    for case, (wall, cpu) in local.items():
        swall, scpu = shared[case]
        print(f"{case:<22} {wall:>20.1f} {cpu:>8.1f} {swall:>14.1f} {scpu:>8.1f}")


if __name__ == "__main__":
    main()
