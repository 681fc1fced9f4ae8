"""The per-minute rate and the per-day budget of a connection (`http.ratelimit`, `http.settings`)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from airflow_jobstatus.http import ratelimit
from airflow_jobstatus.http.ratelimit import DAY, AsyncRateLimiter, BudgetExhausted, SyncRateLimiter
from airflow_jobstatus.http.settings import HttpSettings

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(ratelimit.time, "monotonic", c)
    monkeypatch.setattr(ratelimit.time, "sleep", lambda s: setattr(c, "now", c.now + s))
    return c


def test_the_stricter_rate_applies() -> None:
    assert HttpSettings(max_requests_per_second=10, max_requests_per_minute=5).rate == pytest.approx(5 / 60)
    assert HttpSettings(max_requests_per_second=0.05, max_requests_per_minute=5).rate == 0.05
    assert HttpSettings(max_requests_per_second=0, max_requests_per_minute=0).rate == 0
    assert HttpSettings(max_requests_per_second=0, max_requests_per_minute=6).rate == pytest.approx(0.1)


def test_service_defaults_and_the_extra_override_them() -> None:
    defaults = {"default_max_rps": 10.0, "default_max_rpm": 5.0, "default_max_per_day": 100}
    settings = HttpSettings.from_extra({}, conn_type="deepaffects", **defaults)
    assert (settings.max_requests_per_minute, settings.max_requests_per_day) == (5.0, 100)
    raised = HttpSettings.from_extra(
        {"max_requests_per_minute": "50", "extra__deepaffects__max_requests_per_day": 1000},
        conn_type="deepaffects",
        **defaults,
    )
    assert (raised.max_requests_per_minute, raised.max_requests_per_day) == (50.0, 1000)
    assert HttpSettings.from_extra({}, conn_type="daily", default_max_rps=10.0).max_requests_per_day == 0


def test_the_day_budget_refuses_at_once_then_refills_a_day_after_the_oldest(clock: Clock, caplog) -> None:
    caplog.set_level(logging.WARNING, logger=ratelimit.__name__)
    limiter = SyncRateLimiter(0, per_day=3, key="DeepAffects:da")
    for step in (0, 10, 20):
        clock.now = 1000.0 + step
        limiter.acquire()
    clock.now = 1030.0
    for _ in range(3):
        with pytest.raises(BudgetExhausted) as info:
            limiter.acquire(deadline=clock.now + 1e9)  # refused at once, not slept through
        assert info.value.retry_in == pytest.approx(DAY - 30)
    assert clock.now == 1030.0
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "DeepAffects:da" in warnings[0] and "max_requests_per_day" in warnings[0]
    clock.now = 1000.0 + DAY + 0.5  # the oldest request is a day old: one request frees up
    limiter.acquire()
    with pytest.raises(BudgetExhausted):
        limiter.acquire()
    assert len(caplog.records) == 2  # a new spell is logged once again


def test_refused_requests_do_not_use_the_budget_or_a_slot(clock: Clock) -> None:
    limiter = SyncRateLimiter(1.0, per_day=2)
    limiter.acquire()
    with pytest.raises(ratelimit.DeadlineExceeded):
        limiter.acquire(deadline=clock.now + 0.5)  # the next slot is 1 s away
    limiter.acquire()  # the refused one took neither the slot nor the budget
    assert clock.now == pytest.approx(1001.0)
    with pytest.raises(BudgetExhausted):
        limiter.acquire()


def test_the_async_limiter_keeps_the_same_budget(clock: Clock) -> None:
    async def scenario() -> float:
        limiter = AsyncRateLimiter(0, per_day=1)
        await limiter.acquire()
        with pytest.raises(BudgetExhausted) as info:
            await limiter.acquire()
        return info.value.retry_in

    assert asyncio.run(scenario()) == pytest.approx(DAY)
