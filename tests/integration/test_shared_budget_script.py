"""The shared limiter's Lua script (`shared.budget.SCRIPT`), run by a real redis-server: its slot
arithmetic, day budget, pause and refusals, and the account key it is stored under."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from airflow_jobstatus.http.ratelimit import BudgetExhausted, SyncRateLimiter
from airflow_jobstatus.shared import budget
from airflow_jobstatus.shared import redis as shared_redis
from airflow_jobstatus.shared.accounts import account_of as account_key
from airflow_jobstatus.shared.budget import SCRIPT, Limits, Slot
from tests.helpers.redis_server import RedisServer, redis_server  # noqa: F401 - fixture

pytestmark = pytest.mark.integration

KEYS = ["jobstatus:budget:t", "jobstatus:budget:t:day"]


@pytest.fixture
def take(redis_server: RedisServer) -> Iterator[Any]:  # noqa: F811
    client = redis.Redis.from_url(redis_server.url)
    script = client.register_script(SCRIPT)

    def run(interval: float = 0.0, per_day: int = 0, window: float = 86400, max_wait: float = -1) -> Slot:
        return Slot.parse(script(keys=KEYS, args=["take", interval, per_day, window, max_wait, 0]))

    run.pause = lambda seconds: script(keys=KEYS, args=["pause", 0, 0, 86400, -1, seconds])  # type: ignore[attr-defined]
    run.client = client  # type: ignore[attr-defined]
    yield run
    client.close()


def test_slots_are_spaced_one_interval_apart(take) -> None:
    waits = [take(interval=0.5).seconds for _ in range(4)]
    for i, wait in enumerate(waits):
        assert wait == pytest.approx(0.5 * i, abs=0.05)


def test_a_slot_past_max_wait_is_refused_and_takes_nothing(take) -> None:
    assert take(interval=10).seconds == pytest.approx(0, abs=0.05)
    refused = take(interval=10, max_wait=1)
    assert (refused.code, refused.seconds) == (1, pytest.approx(10, abs=0.05))
    assert take(interval=10).seconds == pytest.approx(10, abs=0.05)  # not 20: the refusal took no slot


def test_the_day_budget_counts_within_the_window_and_names_when_one_frees_up(take) -> None:
    answers = [take(per_day=3, window=2) for _ in range(3)]
    assert [(a.code, a.spent) for a in answers] == [(0, 1), (0, 2), (0, 3)]
    spent = take(per_day=3, window=2)
    assert (spent.code, spent.seconds, spent.spent) == (2, pytest.approx(2, abs=0.1), 3)
    assert take.client.zcard(KEYS[1]) == 3  # the refusal spent nothing
    # A caller who may wait that long gets the slot at which the oldest send leaves the window.
    later = take(per_day=3, window=2, max_wait=5)
    assert (later.code, later.seconds, later.spent) == (0, pytest.approx(2, abs=0.1), 3)
    # ... and the next one waits for the second-oldest, never four in one window.
    assert take(per_day=3, window=2).code == 2
    time.sleep(2.2)
    fresh = take(per_day=3, window=2)
    assert (fresh.code, fresh.spent) == (0, 2)  # the first three left the window; the 4th and this remain
    assert take.client.zcard(KEYS[1]) == 2


def test_no_window_ever_holds_more_than_the_budget(take) -> None:
    times = []
    for _ in range(12):
        slot = take(interval=0.01, per_day=4, window=1.0, max_wait=10)
        assert slot.code == 0
        times.append(time.monotonic() + slot.seconds)
    times.sort()
    for i in range(len(times) - 4):
        assert times[i + 4] - times[i] >= 1.0 - 0.02, times


def test_a_pause_moves_every_later_slot_past_it(take) -> None:
    take.pause(3)
    assert take(interval=0.1).seconds == pytest.approx(3, abs=0.05)
    take.pause(1)  # a shorter pause never shortens the one in force
    assert take(interval=0.1).seconds == pytest.approx(3.1, abs=0.05)


def test_keys_expire_after_the_window(take) -> None:
    take(interval=1, per_day=5, window=100)
    assert 100 < take.client.ttl(KEYS[0]) <= 100 + 62
    assert 100 < take.client.ttl(KEYS[1]) <= 100 + 62


def test_the_account_key_is_one_per_credential_and_never_holds_it() -> None:
    one = account_key("DeepAffects", "https://proxy.api.deepaffects.com/audio", ("sekret-api-key",))
    assert one == account_key("DeepAffects", "https://proxy.api.deepaffects.com/other", ("sekret-api-key",))
    assert one != account_key("DeepAffects", "https://proxy.api.deepaffects.com/audio", ("other-key",))
    assert one != account_key("DeepAffects", "https://eu.example.com/audio", ("sekret-api-key",))
    assert "sekret" not in one and one.startswith("deepaffects:proxy.api.deepaffects.com:")


def test_limiter_falls_back_per_process_while_redis_is_down_and_logs_each_change_once(
    redis_server: RedisServer,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("AIRFLOW__JOBSTATUS__REDIS_URL", redis_server.url)
    monkeypatch.setattr(shared_redis, "RETRY_AFTER", 0.2)
    shared_redis.reset()
    monkeypatch.setattr(budget, "HEALTH", shared_redis.Health("shared request limits", "per process"))
    caplog.set_level(logging.WARNING, logger=shared_redis.__name__)
    limits = Limits(rate=0, per_day=2, window=60)
    local = SyncRateLimiter(0, per_day=5, key="t", window=60)
    account = account_key("DeepAffects", "http://127.0.0.1:1", ("k",))
    meter = budget.Meter("DeepAffects", "c", account, 2)
    limiter = budget.SharedSyncLimiter(budget._Shared("DeepAffects:c", account, limits, meter), local)
    try:
        limiter.acquire()
        limiter.acquire()
        with pytest.raises(BudgetExhausted):  # shared: the account's budget of 2
            limiter.acquire()
        with pytest.raises(BudgetExhausted):  # a caller may wait up to its deadline: 60 s is too far
            limiter.acquire(deadline=time.monotonic() + 5)
        redis_server.stop()
        for _ in range(3):
            limiter.acquire()  # per process: the local budget of 5 is untouched
        redis_server.start()
        time.sleep(0.3)
        with pytest.raises(BudgetExhausted):  # a fresh Redis: the shared budget counts from zero
            for _ in range(3):
                limiter.acquire()
        messages = [r.getMessage() for r in caplog.records]
        assert sum("unreachable" in m for m in messages) == 1, messages
        assert sum("reachable again" in m for m in messages) == 1, messages
        assert not any(redis_server.url in m for m in messages)
    finally:
        shared_redis.reset()


def test_a_submission_waits_for_the_shared_budget_up_to_its_deadline(
    redis_server: RedisServer,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AIRFLOW__JOBSTATUS__REDIS_URL", redis_server.url)
    shared_redis.reset()
    account = account_key("DeepAffects", "http://127.0.0.1:1", ("submit",))
    limits = Limits(rate=0, per_day=1, window=1.5)
    meter = budget.Meter("DeepAffects", "s", account, 1)
    limiter = budget.SharedSyncLimiter(
        budget._Shared("DeepAffects:s", account, limits, meter), SyncRateLimiter(0, 1, "s", 1.5)
    )
    try:
        limiter.acquire()
        with pytest.raises(BudgetExhausted):  # no deadline: refused at once (a wait holds)
            limiter.acquire()
        started = time.monotonic()
        with budget.wait_for_budget_until(time.monotonic() + 10):  # as a submit operator runs
            limiter.acquire()
        assert 1.2 < time.monotonic() - started < 2.5  # slept until the first send left the window
        with budget.wait_for_budget_until(time.monotonic() + 0.5), pytest.raises(BudgetExhausted):
            limiter.acquire()  # frees up after the deadline: refused, nothing taken
    finally:
        shared_redis.reset()
