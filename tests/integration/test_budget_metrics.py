"""Requests spent, budget left and queued waits of a connection, as Airflow metrics (through the
task SDK's ``stats`` module) and as one log line per reporting period."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from airflow.sdk._shared.observability.metrics.base_stats_logger import NoStatsLogger

from airflow_jobstatus.exceptions import NotFoundError, RequestBudgetExhaustedError
from airflow_jobstatus.hooks.daily import DailyHook
from airflow_jobstatus.shared import budget
from airflow_jobstatus.shared import redis as shared_redis
from tests.helpers.redis_server import RedisServer, redis_server  # noqa: F401 - fixture

pytestmark = pytest.mark.integration


class Recorder:
    """A metrics backend that keeps what it is sent. Airflow's StatsD and OpenTelemetry backends
    need packages this environment does not have (``statsd``, an OTLP collector); the provider's
    side, ``airflow.sdk.observability.stats``, is the real one."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    def incr(self, stat: str, count: int = 1, rate: float = 1, *, tags: Any = None) -> None:
        self.sent.append(f"{stat}:{count}|c")

    def decr(self, stat: str, count: int = 1, rate: float = 1, *, tags: Any = None) -> None:
        self.sent.append(f"{stat}:-{count}|c")

    def gauge(
        self, stat: str, value: float, rate: float = 1, delta: bool = False, *, tags: Any = None
    ) -> None:
        self.sent.append(f"{stat}:{value:g}|g")
        self.tags = tags

    def timing(self, stat: str, dt: Any, *, tags: Any = None) -> None:
        self.sent.append(f"{stat}:{dt}|ms")


@pytest.fixture
def metrics(monkeypatch: pytest.MonkeyPatch) -> Iterator[Recorder]:
    from airflow.sdk.observability import stats

    recorder = Recorder()
    stats.initialize(factory=lambda: recorder, export_legacy_names=False)
    yield recorder
    stats.initialize(factory=NoStatsLogger, export_legacy_names=False)


@pytest.mark.parametrize("shared", [True, False], ids=["redis", "per-process"])
def test_requests_left_and_held_are_metrics_and_one_log_line_per_period(
    shared: bool,
    make_connection,
    redis_server: RedisServer,  # noqa: F811
    metrics: Recorder,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    if shared:
        monkeypatch.setenv("AIRFLOW__JOBSTATUS__REDIS_URL", redis_server.url)
    else:
        monkeypatch.delenv("AIRFLOW__JOBSTATUS__REDIS_URL", raising=False)
    shared_redis.reset()
    monkeypatch.setattr(budget, "GAUGE_EVERY", 0.0)
    monkeypatch.setattr(budget, "REPORT_EVERY", 3600.0)
    caplog.set_level(logging.INFO, logger=budget.__name__)
    conn_id, _ = make_connection("daily", max_requests_per_day=3)
    hook = DailyHook(daily_conn_id=conn_id)
    try:
        for _ in range(3):
            with pytest.raises(NotFoundError):
                hook.get_job("no-such-job")
        monkeypatch.setattr(budget, "REPORT_EVERY", 0.0)
        with pytest.raises(RequestBudgetExhaustedError):
            hook.get_job("no-such-job")
    finally:
        shared_redis.reset()
    prefix = f"jobstatus.budget.Daily.{conn_id}"
    lines = metrics.sent
    assert lines.count(f"{prefix}.requests:1|c") == 3, lines
    assert [line for line in lines if line.startswith(f"{prefix}.held:")] == [f"{prefix}.held:1|c"]
    lefts = [line for line in lines if line.startswith(f"{prefix}.left:")]
    assert lefts[-1] == f"{prefix}.left:0|g"
    if shared:  # the account's count comes back from Redis with each slot
        assert lefts[:3] == [f"{prefix}.left:2|g", f"{prefix}.left:1|g", f"{prefix}.left:0|g"], lefts
    assert f"{prefix}.queued:0|g" in lines
    assert metrics.tags["conn_id"] == conn_id and set(metrics.tags) == {"service", "conn_id", "account"}
    reports = [
        r.getMessage() for r in caplog.records if r.name == budget.__name__ and r.levelno == logging.INFO
    ]
    assert len(reports) == 1, reports  # nothing until the period ended, then one line
    assert "3 requests and 1 held" in reports[0] and conn_id in reports[0]
    assert ("shared through Redis" in reports[0]) is shared
