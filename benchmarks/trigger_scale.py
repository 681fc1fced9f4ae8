"""Trigger scale: N concurrent waits in one event loop, ours against the HTTP provider's trigger.

Starts the emulator as its own process (pinned to one CPU when the machine has more than one) and,
for each N, submits N jobs that stay in flight for the whole run (``emu_duration=100000``) on one
Daily account and on one Wasabi AiR account. Each measurement then runs in a fresh worker process
(pinned to the other CPU) that starts N `JobStatusTrigger.run()` generators as tasks of one event
loop, the way the triggerer does (added 500 at a time), lets them settle for one interval after the
first poll, and measures over ``--windows`` poll intervals:

* CPU seconds per wait per interval (the worker's process time over the window);
* requests sent per interval (from the emulator's ``/_admin/stats``);
* peak RSS per wait (peak RSS during the run minus RSS before the triggers were created);
* event-loop lag p99 (a probe sleeping 50 ms at a time, from the first trigger created to the end).

The reference is the HTTP provider's ``HttpSensorTrigger`` (kwargs: ``endpoint``, ``http_conn_id``,
``method``, ``poke_interval``; its ``http`` connection is an ``AIRFLOW_CONN_*`` variable whose host is
the emulator's Daily base URL and whose extra carries the ``Authorization`` header) waiting, in the
same run, on Daily job status URLs that answer 404 until the job exists: exactly one request per
poll. It runs ``--ref-waits`` waits (it opens an aiohttp session per poll, so 10,000 of them cannot
keep a 5-second interval on one core); its CPU is reported per poll.

Connections: ``max_requests_per_second`` is 50 on our benchmark connections (the default of 10 would
stretch a 100-page sweep over 10 s, longer than the interval; Daily documents about 20/s); the
emulator accounts themselves have no limit. Targets (PASS/FAIL): our CPU per wait-interval at most
1/10 of HttpSensorTrigger's CPU per poll; requests per interval at most N/50 on Daily and Wasabi
AiR; at most 50 KB RSS per wait; event-loop lag p99 under 100 ms at the largest N.

    .venv/bin/python benchmarks/trigger_scale.py            # N = 1,000 and 10,000 (about 4 minutes)
    .venv/bin/python benchmarks/trigger_scale.py --quick    # N = 200, workers at once: a smoke run

Everything started here is stopped by PID.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import pin

MARKER = "emu_duration=100000"
REFERENCE = "HttpSensorTrigger"
SERVICE_PREFIX = {"daily": "daily", "wasabi_air": "wasabi"}


def connection(service: str, base_url: str, credential: str, rps: float) -> str:
    conn: dict[str, Any] = {
        "conn_type": service,
        "host": base_url,
        "extra": {"max_requests_per_second": rps, "allow_http_links": True},
    }
    if service == "wasabi_air":
        conn.update(login=credential, password=f"secret-{credential}")
    else:
        conn["password"] = credential
    return json.dumps(conn)


# ------------------------------------------------------------------------------------ parent side


async def submit_jobs(service: str, conn_id: str, n: int) -> list[str]:
    from airflow_jobstatus.hooks.daily import DailyHook
    from airflow_jobstatus.hooks.wasabi import WasabiAirHook
    from airflow_jobstatus.http.client import close_async_clients

    ids: list[str] = []
    try:
        if service == "daily":
            daily = DailyHook(daily_conn_id=conn_id)
            for start in range(0, n, 200):
                ids += await asyncio.gather(
                    *(
                        daily.asubmit_job("transcript", uri=f"https://media.example/{i}.mp4?{MARKER}")
                        for i in range(start, min(n, start + 200))
                    )
                )
        else:
            wasabi = WasabiAirHook(wasabi_air_conn_id=conn_id)
            for start in range(0, n, 200):
                ids += await asyncio.gather(
                    *(
                        wasabi.asubmit_job(
                            f"bench-{i}",
                            services={"s2t": ""},
                            source={
                                "Endpoint": "s3.us-east-1.wasabisys.com",
                                "Bucket": "media",
                                "Region": "us-east-1",
                                "ObjectKey": f"clips/{i}.mp4?{MARKER}",
                            },
                            destination={"Bucket": "out", "Region": "us-east-1"},
                        )
                        for i in range(start, min(n, start + 200))
                    )
                )
    finally:
        await close_async_clients()
    return ids


def run_worker(env: dict[str, str], spec: dict[str, Any], cpus: set[int]) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump(spec, fh)
        spec_path = fh.name
    try:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", spec_path]
        proc = subprocess.Popen(
            cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
        )
        if cpus:
            pin(proc.pid, cpus)
        try:
            out, err = proc.communicate(timeout=spec["budget"])
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            out, err = proc.communicate()
            raise RuntimeError(f"worker timed out: {err[-2000:]}") from None
        if proc.returncode != 0:
            raise RuntimeError(f"worker failed ({proc.returncode}): {err[-3000:]}")
        return dict(json.loads(out.strip().splitlines()[-1]))
    finally:
        os.unlink(spec_path)


# ------------------------------------------------------------------------------------ worker side


def rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def admin_total(url: str, service: str, credential: str) -> int:
    import httpx

    async with httpx.AsyncClient(trust_env=False, timeout=30) as client:
        r = await client.get(f"{url}/_admin/stats", params={"service": service, "credential": credential})
        r.raise_for_status()
        return int(r.json()["total"])


async def measure(spec: dict[str, Any]) -> dict[str, Any]:
    import gc
    import logging

    logging.disable(logging.WARNING)  # neither trigger's per-poll logging is part of the comparison
    from airflow.providers.http.triggers.http import HttpSensorTrigger

    from airflow_jobstatus.http.client import close_async_clients
    from airflow_jobstatus.triggers.job import JobStatusTrigger

    loop = asyncio.get_running_loop()
    interval: float = spec["interval"]
    n: int = spec["n"]
    triggers: list[Any]
    ids: list[str] = spec.get("job_ids", [])
    gc.collect()
    baseline = peak = rss_bytes()  # before the triggers exist: they are part of the cost per wait
    if spec["kind"] == "ours":
        triggers = [
            JobStatusTrigger(
                service=spec["service"],
                conn_id=spec["conn_id"],
                job_id=job_id,
                poll_interval=interval,
                deadline=time.time() + 3600,
            )
            for job_id in ids[:n]
        ]
    else:
        triggers = [
            HttpSensorTrigger(
                endpoint=f"batch-processor/missing-{uuid.uuid4().hex}",
                http_conn_id=spec["conn_id"],
                method="GET",
                poke_interval=interval,
            )
            for _ in range(n)
        ]
    lags: list[float] = []
    stop = asyncio.Event()

    async def probe() -> None:
        while not stop.is_set():
            start = loop.time()
            await asyncio.sleep(0.05)
            lags.append(loop.time() - start - 0.05)

    async def first(trigger: Any) -> Any:
        async for event in trigger.run():
            return event
        return None

    prober = asyncio.ensure_future(probe())
    tasks = []
    for i, trigger in enumerate(triggers):
        tasks.append(asyncio.ensure_future(first(trigger)))
        if i % 500 == 499:
            await asyncio.sleep(0)
    del triggers

    async def sample_rss(seconds: float) -> None:
        nonlocal peak
        end = loop.time() + seconds
        while loop.time() < end:
            peak = max(peak, rss_bytes())
            await asyncio.sleep(0.25)

    # settle: the first polls (one interval after registration, at least 2 s) and one more interval
    await sample_rss(max(2.0, interval * 1.1) + interval)
    before = await admin_total(spec["emulator"], spec["stats_service"], spec["credential"])
    cpu0, t0 = time.process_time(), loop.time()
    await sample_rss(interval * spec["windows"])
    cpu1, t1 = time.process_time(), loop.time()
    after = await admin_total(spec["emulator"], spec["stats_service"], spec["credential"])
    finished = sum(1 for t in tasks if t.done())
    stop.set()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, prober, return_exceptions=True)
    await close_async_clients()
    lags.sort()
    intervals = (t1 - t0) / interval
    requests = after - before
    return {
        "kind": spec["kind"],
        "service": spec["service"],
        "n": n,
        "intervals": intervals,
        "cpu": cpu1 - cpu0,
        "requests": requests,
        "requests_per_interval": requests / intervals,
        "cpu_per_wait_interval": (cpu1 - cpu0) / (n * intervals),
        "cpu_per_request": (cpu1 - cpu0) / requests if requests else None,
        "rss_per_wait": (peak - baseline) / n,
        "lag_p99": lags[int(0.99 * (len(lags) - 1))] if lags else 0.0,
        "lag_max": lags[-1] if lags else 0.0,
        "finished_early": finished,
    }


def worker_main(spec_path: str) -> int:
    spec = json.loads(Path(spec_path).read_text())
    if spec["kind"] == "ours":
        spec["job_ids"] = json.loads(Path(spec["ids"]).read_text())
    result = asyncio.run(measure(spec))
    print(json.dumps(result))
    return 0


# ------------------------------------------------------------------------------------ main


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="N = 200, short windows: a smoke run")
    parser.add_argument("--n", type=int, nargs="+", default=[1000, 10000], help="numbers of concurrent waits")
    parser.add_argument("--interval", type=float, default=5.0, help="poll interval (s)")
    parser.add_argument("--windows", type=int, default=4, help="intervals measured")
    parser.add_argument("--ref-waits", type=int, default=300, help="HttpSensorTrigger waits")
    parser.add_argument("--rps", type=float, default=50.0, help="max_requests_per_second of our connections")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker_main(args.worker)
    if args.quick:
        args.n, args.interval, args.windows, args.ref_waits = [200], 1.0, 2, 50

    from jobstatus_emulator.server import EmulatorServer

    home = tempfile.mkdtemp(prefix="jobstatus-bench-home-")
    os.environ.setdefault("AIRFLOW_HOME", home)
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    server = EmulatorServer(job_duration=3600, log_level="warning")
    server.start()
    results: list[dict[str, Any]] = []
    id_files: list[str] = []
    try:
        assert server.pid is not None
        pinned = len(cpus) > 1 and pin(server.pid, {cpus[0]})
        worker_cpus = set(cpus[1:]) if pinned else set()
        print(f"emulator pid {server.pid} at {server.url}; pinned to CPU {cpus[0] if pinned else '-'}")
        print(
            f"poll interval {args.interval:g}s, {args.windows} intervals measured, our connections at {args.rps:g} req/s"
        )
        env = dict(os.environ)
        key = f"bench-http-{uuid.uuid4().hex[:8]}"
        env["AIRFLOW_CONN_BENCH_HTTP"] = json.dumps(
            {
                "conn_type": "http",
                "host": server.service_url("daily"),
                "extra": {"Authorization": f"Bearer {key}"},
            }
        )
        budget = 120 + args.interval * (args.windows + 4)
        specs: list[dict[str, Any]] = [
            {
                "kind": "http",
                "service": "daily",
                "n": args.ref_waits,
                "conn_id": "bench_http",
                "interval": args.interval,
                "windows": args.windows,
                "emulator": server.url,
                "stats_service": "daily",
                "credential": key,
                "budget": budget,
            }
        ]
        for n in args.n:
            for service in ("daily", "wasabi_air"):
                credential = f"bench-{uuid.uuid4().hex[:8]}"
                base = server.service_url(SERVICE_PREFIX[service])
                submit_conn = f"bench_submit_{service}"
                os.environ[f"AIRFLOW_CONN_{submit_conn.upper()}"] = connection(service, base, credential, 0)
                started = time.monotonic()
                ids = asyncio.run(submit_jobs(service, submit_conn, n))
                print(f"submitted {n} {service} jobs in {time.monotonic() - started:.1f}s")
                conn_id = f"bench_{service}_{n}"
                env[f"AIRFLOW_CONN_{conn_id.upper()}"] = connection(service, base, credential, args.rps)
                with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
                    json.dump(ids, fh)
                id_files.append(fh.name)
                specs.append(
                    {
                        "kind": "ours",
                        "service": service,
                        "n": n,
                        "ids": fh.name,
                        "conn_id": conn_id,
                        "interval": args.interval,
                        "windows": args.windows,
                        "emulator": server.url,
                        "stats_service": SERVICE_PREFIX[service],
                        "credential": credential,
                        "budget": budget + n / 50,
                    }
                )
        if args.quick:
            # a smoke run: every worker at once (the figures are not the point, the whole path is)
            with ThreadPoolExecutor(len(specs)) as pool:
                results = list(pool.map(lambda spec: run_worker(env, spec, worker_cpus), specs))
        else:
            results = [run_worker(env, spec, worker_cpus) for spec in specs]
    finally:
        with contextlib.suppress(Exception):
            server.stop()
        for path in id_files:
            with contextlib.suppress(OSError):
                os.unlink(path)
    return report(results, args)


def report(results: list[dict[str, Any]], args: argparse.Namespace) -> int:
    ref = next(r for r in results if r["kind"] == "http")
    ref_cpu = ref["cpu_per_request"] or float("nan")
    print()
    print(
        f"{REFERENCE} ({ref['n']} waits): {ref['requests_per_interval']:.0f} requests/interval, "
        f"{1e3 * ref_cpu:.3f} ms CPU per poll, {ref['rss_per_wait'] / 1024:.1f} KB RSS per wait, "
        f"lag p99 {1e3 * ref['lag_p99']:.0f} ms"
    )
    header = (
        f"{'JobStatusTrigger':18s} {'N':>6s} {'CPU/wait-interval':>18s} {'vs ref':>7s} {'req/interval':>13s} "
        f"{'N/50':>6s} {'RSS/wait':>9s} {'lag p99':>8s} {'lag max':>8s}"
    )
    print(header)
    checks: list[tuple[str, bool]] = []
    largest = max(r["n"] for r in results if r["kind"] == "ours")
    for r in results:
        if r["kind"] != "ours":
            continue
        ratio = r["cpu_per_wait_interval"] / ref_cpu
        print(
            f"{r['service']:18s} {r['n']:6d} {1e6 * r['cpu_per_wait_interval']:15.1f} us {ratio:7.3f} "
            f"{r['requests_per_interval']:13.1f} {r['n'] / 50:6.0f} {r['rss_per_wait'] / 1024:6.1f} KB "
            f"{1e3 * r['lag_p99']:5.0f} ms {1e3 * r['lag_max']:5.0f} ms"
        )
        label = f"{r['service']} N={r['n']}"
        checks.append(
            (f"{label}: CPU per wait-interval <= 1/10 of {REFERENCE} per poll ({ratio:.3f})", ratio <= 0.1)
        )
        checks.append(
            (
                f"{label}: requests per interval <= N/50 ({r['requests_per_interval']:.1f} <= {r['n'] / 50:.0f})",
                r["requests_per_interval"] <= r["n"] / 50,
            )
        )
        checks.append(
            (
                f"{label}: RSS per wait <= 50 KB ({r['rss_per_wait'] / 1024:.1f} KB)",
                r["rss_per_wait"] <= 50 * 1024,
            )
        )
        if r["n"] == largest:
            checks.append(
                (f"{label}: loop lag p99 < 100 ms ({1e3 * r['lag_p99']:.0f} ms)", r["lag_p99"] < 0.1)
            )
        if r["finished_early"]:
            checks.append((f"{label}: no wait ended during the run ({r['finished_early']} did)", False))
    print()
    for text, ok in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {text}")
    failed = [text for text, ok in checks if not ok]
    print(f"{'PASS' if not failed else 'FAIL'}: {len(checks) - len(failed)}/{len(checks)} checks")
    if args.quick:
        return 0  # a smoke run: figures at small N are not the targets' subject
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())
