"""Shared state across processes (issue 17 items 2 and 3): real Redis, real emulator, OS processes.

Each process (`tests.helpers.shared_worker`) runs the real trigger, poll hub and poller on its own
event loop, as a triggerer does, or real `SymblSubmitJobOperator` tasks, as workers do. Status
requests are counted at the emulator (``/_admin/requests``), per account, in a window after the
first polls.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_jobstatus.hooks.daily import DailyHook
from airflow_jobstatus.hooks.symbl import SymblHook
from jobstatus_emulator.server import EmulatorServer
from tests.helpers import shared_worker
from tests.helpers.redis_server import RedisServer, running_redis

pytestmark = pytest.mark.integration


@pytest.fixture
def redis_server_(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own, on a free port (stopped by PID)."""
    yield from running_redis(tmp_path)


STATUS_ROUTES = {
    "daily": ("/batch-processor/{id}", "/batch-processor"),
    "symbl": ("/v1/job/{jobId}",),
}
STARTUP = 20.0
"""Seconds given to the worker processes to import Airflow before the waits start together."""
LONG = "emu_duration=100000"


class Workers:
    """Worker processes started together; each one's JSON answer. Stopped by PID on failure."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[str]] = []

    def start(self, args: list[str], redis_url: str | None) -> None:
        self.procs.append(shared_worker.start(args, redis_url))

    def results(self, timeout: float) -> list[dict[str, Any]]:
        answers = []
        deadline = time.monotonic() + timeout
        try:
            for proc in self.procs:
                out, err = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
                assert proc.returncode == 0, err[-3000:]
                answers.append(json.loads(out.strip().splitlines()[-1]))
        finally:
            self.stop()
        return answers

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()  # by its PID
                proc.wait(10)


def _requests(emulator: EmulatorServer, service: str, credential: str, since: float, until: float) -> int:
    routes = STATUS_ROUTES[service]
    rows = emulator.requests(service=service, credential=credential, since=since)
    return sum(1 for r in rows if r["method"] == "GET" and r["route"] in routes and r["at"] <= until)


def _wait_args(
    service: str, conn_id: str, jobs: list[str], interval: float, start: float, seconds: float
) -> list[str]:
    return [
        "wait",
        "--service",
        service,
        "--conn",
        conn_id,
        "--jobs",
        ",".join(jobs),
        "--interval",
        str(interval),
        "--start",
        str(start),
        "--seconds",
        str(seconds),
    ]


def _scenarios(
    emulator: EmulatorServer,
    service: str,
    accounts: dict[str, tuple[str, str, list[list[str]], str | None]],
    interval: float,
) -> dict[str, int]:
    """Run every scenario at once (one account each); status requests in the measured window."""
    warm, window = 2 * interval, 5 * interval
    start = time.time() + STARTUP
    workers = Workers()
    for conn_id, _, groups, redis_url in accounts.values():
        for jobs in groups:
            workers.start(_wait_args(service, conn_id, jobs, interval, start, warm + window + 1), redis_url)
    answers = workers.results(timeout=STARTUP + warm + window + 60)
    for answer in answers:
        assert not answer["errors"], answer
        assert set(answer["events"].values()) == {"pending"}, answer  # nothing ended: only polling
    counts = {
        name: _requests(emulator, service, credential, start + warm, start + warm + window)
        for name, (_, credential, _, _) in accounts.items()
    }
    print(f"{service}: status requests in {window:.0f} s ({window / interval:.0f} intervals): {counts}")
    return counts


def test_three_triggerers_make_the_requests_of_one_with_redis_daily_listing(
    make_connection, emulator: EmulatorServer, redis_server_: RedisServer
) -> None:
    """30 Daily waits over 3 processes: one listing of the account per interval, as with 1 process."""
    accounts: dict[str, Any] = {}
    for name, split, redis_url in (
        ("one", 1, redis_server_.url),
        ("three", 3, redis_server_.url),
        ("three_alone", 3, None),  # the control: without Redis each process lists the account
    ):
        conn_id, credential = make_connection("daily")
        hook = DailyHook(conn_id)
        jobs = [
            hook.submit_job("transcript", uri=f"https://media.example/{name}-{i}.mp4?{LONG}")
            for i in range(30)
        ]
        accounts[name] = (conn_id, credential, [jobs[i::split] for i in range(split)], redis_url)
    counts = _scenarios(emulator, "daily", accounts, interval=2.0)
    assert counts["one"] >= 3, counts
    assert counts["three"] <= counts["one"] * 1.3 + 1, counts
    assert counts["three_alone"] >= 2 * counts["one"], counts


def _members(client: Any, key: str) -> set[str]:
    return {m.decode() if isinstance(m, bytes) else str(m) for m in client.zrange(key, 0, -1)}


def _bytes(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode()


def _assert_no_secret_in_redis(redis_server_: RedisServer, secrets: list[str]) -> None:
    """Keys and values hold account digests and statuses, never a credential."""
    import redis

    client = redis.Redis.from_url(redis_server_.url)
    try:
        keys = [_bytes(k) for k in client.keys("jobstatus:*")]
        assert any(k.startswith(b"jobstatus:st:") for k in keys), keys[:5]
        values = [_bytes(v) for v in client.mget(keys) if v is not None]
        dump = b"\n".join([*keys, *values])
    finally:
        client.close()
    for secret in secrets:
        assert secret.encode() not in dump


def test_three_triggerers_waiting_on_the_same_jobs_fetch_each_once_per_interval(
    make_connection, emulator: EmulatorServer, redis_server_: RedisServer
) -> None:
    """Symbl.ai (no list endpoint): 3 processes wait on the same 6 jobs; each is fetched once per interval."""
    accounts: dict[str, Any] = {}
    for name, copies, redis_url in (
        ("one", 1, redis_server_.url),
        ("three", 3, redis_server_.url),
        ("three_alone", 3, None),
    ):
        conn_id, credential = make_connection("symbl")
        hook = SymblHook(conn_id)
        jobs = [hook.submit_job(audio_url=f"https://media.example/{name}-{i}.mp3?{LONG}") for i in range(6)]
        accounts[name] = (conn_id, credential, [jobs] * copies, redis_url)
    counts = _scenarios(emulator, "symbl", accounts, interval=2.0)
    assert counts["one"] >= 6 * 4, counts
    assert counts["three"] <= counts["one"] * 1.3 + 2, counts
    assert counts["three_alone"] >= 2.5 * counts["one"], counts


def test_a_redis_restart_mid_run_loses_no_wait(
    make_connection, emulator: EmulatorServer, redis_server_: RedisServer
) -> None:
    conn_id, credential = make_connection("daily")
    hook = DailyHook(conn_id)
    jobs = [hook.submit_job("transcript", uri=f"https://media.example/r-{i}.mp4?{LONG}") for i in range(15)]
    start = time.time() + STARTUP
    workers = Workers()
    for i in range(3):
        workers.start(_wait_args("daily", conn_id, jobs[i::3], 1.0, start, 40.0), redis_server_.url)
    try:
        time.sleep(max(0.0, start - time.time()) + 3)
        redis_server_.stop()
        for job_id in jobs[:5]:  # end while Redis is down
            emulator.patch_job("daily", job_id, duration=0)
        time.sleep(3)
        redis_server_.start()  # same port, empty
        time.sleep(3)
        for job_id in jobs[5:]:
            emulator.patch_job("daily", job_id, duration=0)
    except BaseException:
        workers.stop()
        raise
    answers = workers.results(timeout=90)
    events = {job: kind for answer in answers for job, kind in answer["events"].items()}
    assert events == dict.fromkeys(jobs, "succeeded"), answers
    assert all(not a["errors"] for a in answers), answers
    assert sum(a["counters"]["shared"]["failures"] for a in answers) > 0  # they did see the outage
    assert sum(a["counters"]["shared"]["hits"] for a in answers) > 0
    _assert_no_secret_in_redis(redis_server_, [credential])  # final statuses are kept an hour


def _submits(emulator: EmulatorServer, app_id: str) -> list[int]:
    return [
        r["status"]
        for r in emulator.requests(service="symbl", credential=app_id)
        if r["method"] == "POST" and "token" not in r["route"]
    ]


def test_symbl_submits_beyond_the_limit_queue_for_a_slot_with_no_429(
    make_connection, emulator: EmulatorServer, redis_server_: RedisServer
) -> None:
    """3 worker processes x 2 tasks, limit 2: every job runs, the service never refuses one."""
    emulator.configure(symbl_max_concurrent_jobs=2)
    shared_conn, shared_app = make_connection("symbl", max_retries=0, max_concurrent_jobs=2)
    alone_conn, alone_app = make_connection("symbl", max_retries=0, max_concurrent_jobs=2)
    url = f"https://media.example/{uuid.uuid4().hex[:6]}.mp3?emu_duration=1.5"
    workers = Workers()
    for conn_id, redis_url in ((shared_conn, redis_server_.url), (alone_conn, None)):
        for _ in range(3):
            workers.start(["submit", "--conn", conn_id, "--count", "2", "--url", url], redis_url)
    answers = workers.results(timeout=240)
    shared, alone = answers[:3], answers[3:]
    for answer in shared + alone:
        assert set(answer["outcomes"].values()) == {"succeeded"}, answer
    assert _submits(emulator, shared_app) == [201] * 6
    assert 429 in _submits(emulator, alone_app)  # the control: without Redis the service refuses some
    import redis

    client = redis.Redis.from_url(redis_server_.url)
    # every slot was freed when its job ended (they would be held an hour otherwise); an empty
    # sorted set is no key at all
    assert client.keys("jobstatus:slots:*") == []
    client.close()


def test_a_deferred_wait_frees_the_symbl_slot_when_the_job_ends(
    make_connection, emulator: EmulatorServer, redis_server_: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The poll hub (triggerer side) frees the slot of a job it sees end; a running job's slot is kept."""
    import asyncio

    import redis
    from airflow.sdk import BaseHook

    from airflow_jobstatus.http.client import close_async_clients
    from airflow_jobstatus.services import SYMBL
    from airflow_jobstatus.shared.accounts import account_key
    from airflow_jobstatus.shared.concurrency import slots_key, submit_in_slot
    from airflow_jobstatus.triggers.job import JobStatusTrigger

    monkeypatch.setenv("AIRFLOW__JOBSTATUS__REDIS_URL", redis_server_.url)
    conn_id, _ = make_connection("symbl", max_concurrent_jobs=5)
    conn = BaseHook.get_connection(conn_id)
    hook = SymblHook(conn_id)

    class Log:
        def info(self, *args: Any) -> None: ...
        def warning(self, *args: Any) -> None: ...

    def submit(name: str, duration: float) -> str:
        url = f"https://media.example/{name}.mp3?emu_duration={duration}"
        return submit_in_slot(
            SYMBL, lambda: conn, lambda: hook.submit_job(audio_url=url), wait_limit=5, hold=600, log=Log()
        )

    ends, runs = submit("ends", 2), submit("runs", 100000)
    client = redis.Redis.from_url(redis_server_.url)
    key = slots_key(account_key(SYMBL, conn))
    assert _members(client, key) == {ends, runs}

    async def wait() -> str:
        trigger = JobStatusTrigger(
            service="symbl", conn_id=conn_id, job_id=ends, poll_interval=0.5, deadline=time.time() + 60
        )
        other = asyncio.ensure_future(
            JobStatusTrigger(
                service="symbl", conn_id=conn_id, job_id=runs, poll_interval=0.5, deadline=time.time() + 60
            )
            .run()
            .__anext__()
        )
        try:
            async for event in trigger.run():
                await asyncio.sleep(0.5)  # the slot is freed in the background
                return str(event.payload["event"])
        finally:
            other.cancel()
            await asyncio.gather(other, return_exceptions=True)
            await close_async_clients()
        return "none"

    assert asyncio.run(wait()) == "succeeded"
    assert _members(client, key) == {runs}
    # the running job's slot was extended by the statuses seen (an hour from the last one)
    score: Any = client.zscore(key, runs)
    assert score is not None and float(score) > time.time() + 3000
    client.close()
