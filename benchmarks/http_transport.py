"""CPU per request of the HTTP clients the triggerer could use, measured in one run.

Compares, against one loopback server running in a separate process: httpx's default async
transport, httpx over our aiohttp transport (the choice), a raw shared aiohttp session, and our
full `ServiceClient` path (rate limiter, retries, size checks, redaction), sequentially and with
10 and 200 requests in flight. Prints CPU milliseconds per request of this (client) process.

Usage: python benchmarks/http_transport.py [--requests N] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from airflow_jobstatus.http import HttpSettings, ServiceClient
from airflow_jobstatus.http.client import close_async_clients
from airflow_jobstatus.http.transport import AiohttpTransport
from airflow_jobstatus.testing.processes import free_port


async def measure(send: Callable[[], Awaitable[None]], total: int, in_flight: int) -> float:
    """CPU ms per request for ``total`` requests with ``in_flight`` concurrent senders."""
    for _ in range(min(50, total)):  # warm the pool
        await send()
    per_worker = total // in_flight

    async def worker() -> None:
        for _ in range(per_worker):
            await send()

    cpu0 = time.process_time()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    return (time.process_time() - cpu0) * 1000 / (per_worker * in_flight)


async def run(url: str, total: int) -> dict[str, dict[int, float]]:
    results: dict[str, dict[int, float]] = {}
    for in_flight in (1, 10, 200):
        n = max(total, in_flight * 5)
        limits = httpx.Limits(max_connections=in_flight, max_keepalive_connections=in_flight)
        async with httpx.AsyncClient(limits=limits) as client:

            async def default_send(client: httpx.AsyncClient = client) -> None:
                (await client.get(url)).json()

            results.setdefault("httpx default transport", {})[in_flight] = await measure(
                default_send, n, in_flight
            )

        async with httpx.AsyncClient(transport=AiohttpTransport(max_connections=in_flight)) as client:

            async def aio_send(client: httpx.AsyncClient = client) -> None:
                (await client.get(url)).json()

            results.setdefault("httpx + AiohttpTransport (chosen)", {})[in_flight] = await measure(
                aio_send, n, in_flight
            )

        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=in_flight)) as session:

            async def raw_send(session: aiohttp.ClientSession = session) -> None:
                async with session.get(url) as resp:
                    await resp.json()

            results.setdefault("raw aiohttp session (floor)", {})[in_flight] = await measure(
                raw_send, n, in_flight
            )

        service = ServiceClient(
            service="bench",
            conn_id=f"bench-{in_flight}",
            base_url=url,
            settings=HttpSettings(max_requests_per_second=0),
            max_connections=in_flight,
        )

        async def full_send(service: ServiceClient = service) -> None:
            (await service.arequest("get_job", "GET", url)).json()

        results.setdefault("ServiceClient (full core path)", {})[in_flight] = await measure(
            full_send, n, in_flight
        )
        await close_async_clients()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--quick", action="store_true", help="a few hundred requests: a smoke run")
    args = parser.parse_args()
    total = 300 if args.quick else args.requests
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("_loopback_server.py")), str(port)],
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        assert server.stdout is not None
        server.stdout.readline()  # "ready"
        # The default asyncio loop, as in Airflow's triggerer.
        results = asyncio.run(run(f"http://127.0.0.1:{port}/v1/batch-processor/x", total))
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(10)
    print(f"HTTP client CPU per request (ms), {total} requests per cell, server in a separate process")
    print(f"{'client':40s} {'1 in flight':>12s} {'10':>8s} {'200':>8s}")
    for name, row in results.items():
        print(f"{name:40s} {row[1]:12.3f} {row[10]:8.3f} {row[200]:8.3f}")
    base = results["httpx default transport"]
    chosen = results["httpx + AiohttpTransport (chosen)"]
    for k in (1, 10, 200):
        print(
            f"in flight {k:3d}: chosen transport uses {chosen[k] / base[k]:.2f}x the CPU of httpx's default"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
