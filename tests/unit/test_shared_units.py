"""The shared-state building blocks: account keys, records, the concurrent-job limit and its slots."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk import Connection

from airflow_jobstatus.exceptions import ConcurrencyLimitError, InvalidParameterError
from airflow_jobstatus.models import JobState, JobStatus
from airflow_jobstatus.models.common import Service
from airflow_jobstatus.services import DAILY, SYMBL
from airflow_jobstatus.shared import redis as shared_redis
from airflow_jobstatus.shared.accounts import account_key
from airflow_jobstatus.shared.concurrency import free_slot, job_limit, slots_key, submit_in_slot, take_slot
from airflow_jobstatus.shared.status import Record, fresh_for, peer_retry
from tests.helpers.redis_server import RedisServer, running_redis


@pytest.fixture
def redis_server_(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own, on a free port (stopped by PID)."""
    yield from running_redis(tmp_path)


def _conn(conn_id: str = "a", login: str = "app", password: str = "s3cret-value", **extra: Any) -> Connection:
    return Connection(
        conn_id=conn_id, conn_type="symbl", login=login, password=password, extra=json.dumps(extra)
    )


class _Log:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, msg: Any, *args: Any) -> None:
        self.lines.append(str(msg) % args)

    def warning(self, msg: Any, *args: Any) -> None:
        self.lines.append(str(msg) % args)


def test_the_account_key_names_the_account_never_the_credential() -> None:
    key = account_key(SYMBL, _conn("one"))
    assert key == account_key(SYMBL, _conn("two"))  # same credentials, another connection id
    assert key != account_key(SYMBL, _conn(password="other"))
    assert key != account_key(DAILY, _conn("one"))
    assert key.startswith("symbl:") and "s3cret" not in key and "app" not in key


def test_the_concurrent_job_limit_comes_from_the_connection_extra() -> None:
    assert job_limit(SYMBL, {}) == 50
    assert job_limit(SYMBL, {"max_concurrent_jobs": 3}) == 3
    assert job_limit(SYMBL, {"max_concurrent_jobs": "0"}) == 0
    assert job_limit(DAILY, {"max_concurrent_jobs": 3}) == 0  # Daily documents no such limit
    for bad in (-1, "many", True, 2.5):
        with pytest.raises(InvalidParameterError, match="max_concurrent_jobs"):
            job_limit(SYMBL, {"max_concurrent_jobs": bad})


def test_a_record_round_trips_and_a_damaged_one_is_ignored() -> None:
    status = JobStatus(service=Service.DAILY, job_id="j1", state=JobState.SUCCEEDED, raw_status="finished")
    record = Record(time.time(), status.state, status.raw_status, status)
    back = Record.loads(record.dumps())
    assert back == record
    assert Record.loads(b"{not json") is None
    assert Record.loads(json.dumps({"at": 1, "s": "bogus"})) is None


def test_freshness_is_shorter_than_the_shortest_jittered_interval() -> None:
    assert fresh_for(10.0) == pytest.approx(9.0)
    assert peer_retry(1.0) == 0.25 and peer_retry(60.0) == 2.0


def test_without_redis_url_nothing_is_shared(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW__JOBSTATUS__REDIS_URL", raising=False)
    assert shared_redis.sync_client() is None
    sent: list[int] = []

    def send() -> str:
        sent.append(1)
        return "job-1"

    job = submit_in_slot(
        SYMBL,
        lambda: pytest.fail("the connection is not read without Redis"),
        send,
        wait_limit=0,
        hold=60,
        log=_Log(),
    )
    assert job == "job-1" and sent == [1]


def test_slots_queue_at_the_limit_expire_and_are_freed(
    monkeypatch: pytest.MonkeyPatch, redis_server_: RedisServer
) -> None:
    import redis

    monkeypatch.setenv("AIRFLOW__JOBSTATUS__REDIS_URL", redis_server_.url)
    conn = _conn(max_concurrent_jobs=2)
    log = _Log()
    first = submit_in_slot(SYMBL, lambda: conn, lambda: "job-1", wait_limit=1, hold=60, log=log)
    second = submit_in_slot(SYMBL, lambda: conn, lambda: "job-2", wait_limit=1, hold=60, log=log)
    client = redis.Redis.from_url(redis_server_.url)
    key = slots_key(account_key(SYMBL, conn))
    assert sorted(client.zrange(key, 0, -1)) == [b"job-1", b"job-2"] and (first, second) == ("job-1", "job-2")
    with pytest.raises(ConcurrencyLimitError, match="2 of 2 concurrent jobs"):
        take_slot(SYMBL, lambda: conn, wait_limit=1.5, log=log)
    assert any("waiting for one to end" in line for line in log.lines)

    # a failed submission gives its slot back
    def refused() -> str:
        raise RuntimeError("refused")

    free_slot(SYMBL, lambda: conn, "job-1")
    with pytest.raises(RuntimeError):
        submit_in_slot(SYMBL, lambda: conn, refused, wait_limit=1, hold=60, log=log)
    assert client.zrange(key, 0, -1) == [b"job-2"]

    # a slot whose holder vanished expires by itself
    client.zadd(key, {"job-2": time.time() - 1})
    client.zadd(key, {"crashed": time.time() - 1})
    slot = take_slot(SYMBL, lambda: conn, wait_limit=1, log=log)
    assert slot is not None
    slot.bind("job-3", 60)
    assert client.zrange(key, 0, -1) == [b"job-3"]
    client.close()
