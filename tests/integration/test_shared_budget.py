"""One account, several Airflow processes, one rate and day budget through Redis.

Each process here is a real separate Python process (`tests.helpers.budget_worker`) running the
provider's hooks or `JobStatusTrigger` waits against the emulator; the emulator's request log (its
arrival times) is the judge of what the service received.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_jobstatus.hooks.deepaffects import DeepAffectsHook
from airflow_jobstatus.shared import redis as shared_redis
from tests.helpers.canary import CANARY
from tests.helpers.redis_server import RedisServer, redis_server  # noqa: F401 - fixture

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


class Worker:
    """One `budget_worker` process; its stdout lines are JSON results, stderr its log."""

    def __init__(self, tmp: Path, name: str, args: list[str], env: dict[str, str]) -> None:
        self.log = tmp / f"{name}.log"
        self.out = tmp / f"{name}.out"
        with self.log.open("wb") as err, self.out.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tests.helpers.budget_worker", *args],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=err,
            )

    def wait(self, timeout: float) -> list[dict[str, Any]]:
        try:
            code = self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        assert code == 0, self.log.read_text()[-3000:]
        output = self.out.read_text() + self.log.read_text()
        assert CANARY not in output  # no credential in what the process printed or logged
        return [json.loads(line) for line in self.out.read_text().splitlines() if line.startswith("{")]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[list[Worker]]:
    started: list[Worker] = []
    yield started
    for worker in started:
        worker.stop()


def worker_env(redis_url: str | None) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("AIRFLOW__JOBSTATUS__REDIS_URL", None)
    if redis_url:
        env["AIRFLOW__JOBSTATUS__REDIS_URL"] = redis_url
        # Redis turns push completion on too; no webhook reaches these tests, so waits poll
        # as often as without push (the safety-net interval is the wait's own).
        env["AIRFLOW__JOBSTATUS__PUSH_POLL_INTERVAL"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT), str(ROOT / "emulator" / "src"), env.get("PYTHONPATH", "")]
    )
    return env


@pytest.fixture
def spawn(
    tmp_path: Path,
    redis_server: RedisServer,  # noqa: F811
    workers: list[Worker],
) -> Callable[[str, list[str]], Worker]:
    """Start a worker process sharing the test's Redis; it is stopped after the test."""

    def start(name: str, args: list[str]) -> Worker:
        worker = Worker(tmp_path, name, args, worker_env(redis_server.url))
        workers.append(worker)
        return worker

    return start


def one_account(make_connection: Any, **extra: Any) -> tuple[str, str, str]:
    """Two Daily connections of one account: (connection a, connection b, the account's key)."""
    conn_a, key = make_connection("daily", **extra)
    conn_b, _ = make_connection("daily", credential=key, **extra)
    return conn_a, conn_b, key


def most_in_any_window(times: list[float], window: float) -> int:
    times = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


def arrivals(emulator: Any, service: str, credential: str, method: str = "GET") -> list[float]:
    return [
        r["at"] for r in emulator.requests(service=service, credential=credential) if r["method"] == method
    ]


def until(ready: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def start_waits(spawn: Callable[[str, list[str]], Worker], service: str, conn: str, jobs: list[str]) -> None:
    """Two triggerer-like processes, each waiting on half of ``jobs``."""
    half = len(jobs) // 2
    for name, part in (("t1", jobs[:half]), ("t2", jobs[half:])):
        spawn(name, ["waits", service, conn, ",".join(part), "--poll", "1"])


def end_jobs_and_collect(emulator: Any, service: str, jobs: list[str], workers: list[Worker]) -> None:
    """End every job now; every wait must report it succeeded (none lost, none failed)."""
    for job_id in jobs:
        emulator.patch_job(service, job_id, duration=0)
    ended = [line for w in workers for line in w.wait(timeout=180)]
    assert sorted(e["job_id"] for e in ended) == sorted(jobs)
    assert {e["event"]["event"] for e in ended} == {"succeeded"}, ended[:3]


@pytest.fixture(autouse=True)
def _fresh_redis_config() -> Iterator[None]:
    shared_redis.reset()
    yield
    shared_redis.reset()


def test_two_processes_with_two_connections_of_one_account_share_one_rate(
    emulator, make_connection, workers, spawn
) -> None:
    conn_a, conn_b, key = one_account(make_connection, max_requests_per_second=4)
    for name, conn in (("a", conn_a), ("b", conn_b)):
        spawn(name, ["requests", "daily", conn, "no-such-job", "12"])
    results = [w.wait(timeout=120)[0] for w in workers]
    assert [r["errors"] for r in results] == [{"NotFoundError": 12}, {"NotFoundError": 12}]
    times = sorted(arrivals(emulator, "daily", key))
    assert len(times) == 24
    # Slots 0.25 s apart across both processes: 24 requests span 5.75 s (two separate 4/s
    # limiters would finish in about 2.75 s) and no second holds more than rate + 1.
    assert times[-1] - times[0] >= 23 * 0.25 - 0.3, times
    assert most_in_any_window(times, 1.0) <= 5 + 1, times


def test_a_deepaffects_budget_of_100_holds_for_50_waits_in_two_triggerers(
    emulator, make_connection, workers, spawn
) -> None:
    window = 10.0
    submit_conn, key = make_connection("deepaffects")
    conn, _ = make_connection(
        "deepaffects",
        credential=key,
        max_requests_per_second=0,
        max_requests_per_minute=0,
        max_requests_per_day=100,
        request_budget_window=window,
    )
    emulator.configure(job_duration=600)  # the test ends the jobs once the budget has refilled
    hook = DeepAffectsHook(deepaffects_conn_id=submit_conn)
    jobs = [
        hook.submit_job("asr", url=f"https://media.example/{i}.wav", webhook="https://hooks.example/da")
        for i in range(50)
    ]
    start_waits(spawn, "deepaffects", conn, jobs)
    # the budget is spent, then refilled
    until(lambda: len(arrivals(emulator, "deepaffects", key)) >= 150, timeout=120)
    end_jobs_and_collect(emulator, "deepaffects", jobs, workers)
    times = arrivals(emulator, "deepaffects", key, method="GET")
    assert len(times) > 100  # the budget was spent and refilled during the run
    # Never more than the budget in one window, as the service counts (arrival times; 0.3 s for
    # the spread between a slot and its arrival).
    assert most_in_any_window(times, window - 0.3) <= 100


def test_retry_after_seen_by_one_process_holds_the_other(emulator, make_connection, workers, spawn) -> None:
    conn_a, conn_b, key = one_account(make_connection, max_requests_per_second=10)
    emulator.add_fault(service="daily", credential=key, kind="rate_limit", retry_after=8, count=1)
    # a: a triggerer's event loop (async client); b: a worker (sync client)
    spawn("a", ["arequests", "daily", conn_a, "no-such-job", "1"])
    until(lambda: bool(arrivals(emulator, "daily", key)), timeout=60)
    throttled_at = arrivals(emulator, "daily", key)[0]
    spawn("b", ["requests", "daily", conn_b, "no-such-job", "1"])
    for worker in workers:
        assert worker.wait(timeout=120)[0]["errors"] == {"NotFoundError": 1}
    later = arrivals(emulator, "daily", key)[1:]
    assert len(later) == 2
    # b started well after a's 429 and saw none itself, yet waited out a's Retry-After.
    assert min(later) >= throttled_at + 8 - 0.3, (throttled_at, later)


def test_redis_stopped_mid_run_falls_back_per_process_and_recovers_without_losing_a_wait(
    emulator,
    make_connection,
    redis_server: RedisServer,  # noqa: F811
    workers,
    spawn,
) -> None:
    from airflow_jobstatus.hooks.daily import DailyHook

    conn, key = make_connection("daily", max_requests_per_second=3)
    emulator.configure(job_duration=600)  # the test ends the jobs after Redis is back
    hook = DailyHook(daily_conn_id=conn)
    jobs = [hook.submit_job("transcript", uri=f"https://media.example/{i}.mp4") for i in range(10)]
    start_waits(spawn, "daily", conn, jobs)
    until(lambda: len(arrivals(emulator, "daily", key)) >= 20, timeout=90)  # both are polling
    time.sleep(3)
    redis_server.stop()
    stopped_at = time.time()
    time.sleep(5)
    redis_server.start()
    restarted_at = time.time()
    time.sleep(10)
    end_jobs_and_collect(emulator, "daily", jobs, workers)
    times = arrivals(emulator, "daily", key)
    assert any(stopped_at < t < restarted_at for t in times)  # polling went on without Redis
    shared_before = [t for t in times if stopped_at - 3 < t < stopped_at]
    shared_after = [t for t in times if t > restarted_at + 6]  # each process retries Redis within 5 s
    assert most_in_any_window(shared_before, 1.0) <= 3 + 1
    after = [round(t - restarted_at, 2) for t in shared_after]  # seconds after the restart, if it fails
    assert len(shared_after) >= 8 and most_in_any_window(shared_after, 1.0) <= 3 + 1, after
    for worker in workers:
        text = worker.out.read_text() + worker.log.read_text()
        assert text.count("shared request limits: Redis is unreachable") == 1, text[-3000:]
        assert text.count("shared request limits: Redis is reachable again") == 1, text[-3000:]
