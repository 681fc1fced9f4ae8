"""Emulator throughput: GET requests per second on one core.

Starts the emulator as its own process (pinned to one CPU when the machine has more than one),
submits some jobs, then drives GET requests at it from this process (an aiohttp ClientSession with
``--concurrency`` requests in flight, bounded by ``--seconds`` per route and ``--max-requests``):

* Daily status route   ``GET /daily/v1/batch-processor/{id}``
* Wasabi list route    ``GET /wasabi/jobs?pageNumber=..&pageSize=10``

Prints requests/second for each and PASS/FAIL against ``--target`` (default 2,000 req/s) for both.
``--quick`` is a ~2 s smoke run. Everything started here is stopped by PID.

    .venv/bin/python benchmarks/emulator_throughput.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import aiohttp
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import pin
from jobstatus_emulator.server import EmulatorServer


def cpu_seconds(pid: int) -> float | None:
    """user+system CPU time of ``pid`` (Linux /proc), or None."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


async def drive(
    make_url: Callable[[int], str],
    headers: dict[str, str],
    seconds: float,
    max_requests: int,
    concurrency: int,
) -> tuple[int, int, float]:
    """(ok, errors, elapsed) for GETs of make_url(i), ``concurrency`` in flight."""
    ok = errors = 0
    issued = 0
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
        # warm up the connections
        await asyncio.gather(*(session.get(make_url(i)) for i in range(concurrency)))
        start = time.perf_counter()
        deadline = start + seconds

        async def worker() -> None:
            nonlocal ok, errors, issued
            while issued < max_requests and time.perf_counter() < deadline:
                i = issued
                issued += 1
                try:
                    async with session.get(make_url(i)) as resp:
                        await resp.read()
                        if resp.status == 200:
                            ok += 1
                        else:
                            errors += 1
                except aiohttp.ClientError:
                    errors += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    return ok, errors, elapsed


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="~2 s smoke run")
    parser.add_argument("--seconds", type=float, default=5.0, help="time bound per route")
    parser.add_argument("--max-requests", type=int, default=60_000, help="request bound per route")
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--jobs", type=int, default=200, help="jobs submitted per service")
    parser.add_argument("--target", type=float, default=2000.0, help="required requests/second")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.max_requests, args.jobs = 1.0, 10_000, 50

    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    server = EmulatorServer(job_duration=3600, log_level="warning")
    server.start()
    try:
        assert server.pid is not None
        pinned = len(cpus) > 1 and pin(server.pid, {cpus[0]})
        if pinned:
            pin(0, set(cpus[1:]))  # the load generator on the other core(s)
        print(f"emulator pid {server.pid} at {server.url}; pinned to CPU {cpus[0] if pinned else '-'}")

        daily_key = f"bench-{uuid.uuid4().hex[:8]}"
        wasabi_key = f"bench-{uuid.uuid4().hex[:8]}"
        daily_ids: list[str] = []
        with httpx.Client(trust_env=False, timeout=10) as client:
            for i in range(args.jobs):
                r = client.post(
                    server.service_url("daily") + "/batch-processor",
                    headers={"Authorization": f"Bearer {daily_key}"},
                    json={
                        "preset": "transcript",
                        "inParams": {"sourceType": "uri", "uri": f"https://m.example/{i}.mp4"},
                        # required by Daily's submit reference (docs/contracts.md D3)
                        "outParams": {"s3Config": {"s3KeyTemplate": "output"}},
                    },
                )
                r.raise_for_status()
                daily_ids.append(r.json()["id"])
                r = client.post(
                    server.service_url("wasabi") + "/jobs",
                    headers={"x-amz-access-key": wasabi_key, "x-amz-secret-key": "secret"},
                    json={
                        "Name": f"bench-{i}",
                        "Priority": 5,
                        "Services": {"s2t": "", "ocr": ""},
                        "Destination": {"Bucket": "out", "Region": "us-east-1"},
                        "Source": {
                            "Endpoint": "s3.us-east-1.wasabisys.com",
                            "Bucket": "media",
                            "Region": "us-east-1",
                            "ObjectKey": f"clips/{i}.mp4",
                        },
                    },
                )
                r.raise_for_status()
        pages = max(1, args.jobs // 10)
        daily_base = server.service_url("daily") + "/batch-processor/"
        wasabi_base = server.service_url("wasabi") + "/jobs?pageSize=10&pageNumber="
        results: list[tuple[str, float, int]] = []
        for label, make_url, headers in (
            (
                "daily  GET /batch-processor/{id}",
                lambda i: daily_base + daily_ids[i % len(daily_ids)],
                {"Authorization": f"Bearer {daily_key}"},
            ),
            (
                "wasabi GET /jobs?pageSize=10 (list)",
                lambda i: wasabi_base + str(1 + i % pages),
                {"x-amz-access-key": wasabi_key, "x-amz-secret-key": "secret"},
            ),
        ):
            cpu_before = cpu_seconds(server.pid)
            ok, errors, elapsed = asyncio.run(
                drive(make_url, headers, args.seconds, args.max_requests, args.concurrency)
            )
            cpu_after = cpu_seconds(server.pid)
            rps = ok / elapsed if elapsed > 0 else 0.0
            results.append((label, rps, errors))
            line = f"{label:40s} {ok:7d} ok {errors:4d} errors in {elapsed:5.2f}s  = {rps:8.0f} req/s"
            if cpu_before is not None and cpu_after is not None and cpu_after > cpu_before:
                busy = (cpu_after - cpu_before) / elapsed
                # the load generator may be the limit: what one fully busy emulator core would serve
                line += f"  (emulator CPU {100 * busy:3.0f}%, ~{ok / (cpu_after - cpu_before):6.0f} req/s per CPU-second)"
            print(line)
    finally:
        with contextlib.suppress(Exception):
            server.stop()
    failed = [label for label, rps, errors in results if rps < args.target or errors]
    worst = min(rps for _, rps, _ in results)
    verdict = "PASS" if not failed else "FAIL"
    print(f"{verdict}: slowest route {worst:.0f} req/s on one core (target {args.target:.0f} req/s)")
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())
