"""One request rate, per-day budget and Retry-After pause per account, for the whole deployment.

With ``[jobstatus] redis_url`` set, every triggerer and worker takes its send slots from one Lua
script in Redis (`SCRIPT`), run atomically with Redis' own clock (``TIME``), so the hosts' clocks do
not matter. Per account (service + host + a one-way fingerprint of the credential: two connections
of one account share everything) it keeps:

* ``next_free``: slots are handed out ``1/rate`` apart (the stricter of the connection's per-second
  and per-minute limits), so no second holds more than rate+1 requests across all processes;
* ``paused_until``: a 429 or Retry-After seen by any process moves every later slot past it;
* the send times of the last ``window`` seconds (a sorted set): once ``max_requests_per_day`` of
  them lie within one window, the next slot is when the oldest leaves it.

A request sleeps until its slot (a timer, no polling). A spent budget never fails a wait: a request
whose caller gave a deadline (each poll does; a submit operator passes its ``timeout``) waits for
the budget to free up when that happens before the deadline; otherwise nothing is sent and
`BudgetExhausted` tells the caller when to come back (waits hold until then, as without Redis).

Without Redis, or while it is unreachable, the per-process limiters of `http.ratelimit` apply
(falling back and recovering are logged once each); a wait never fails because Redis went away.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import os
import threading
import time
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from airflow_jobstatus.http.ratelimit import (
    DAY,
    AsyncRateLimiter,
    BudgetExhausted,
    DeadlineExceeded,
    SyncRateLimiter,
    async_limiter,
    sync_limiter,
    window_text,
)
from airflow_jobstatus.shared import redis as shared_redis

log = logging.getLogger(__name__)

KEY_PREFIX = "jobstatus:budget:"
REPORT_EVERY = 60.0
"""Seconds between two summary log lines of one account (at most; none while it sends nothing)."""
GAUGE_EVERY = 1.0
"""Seconds between two updates of one account's gauges (budget left, queued waits)."""

SCRIPT = """
-- KEYS[1]: the account's hash (next_free, paused_until, seq); KEYS[2]: its send times (sorted set)
-- ARGV: op ('take' | 'pause'), interval s, per_day (0: none), window s, max_wait s (-1: none), pause s
-- Returns {code, seconds, spent}: code 0 = go in `seconds` (slot taken); 1 = the slot is `seconds`
-- away, past max_wait (nothing taken); 2 = the budget is spent until `seconds` from now (nothing
-- taken). `spent`: send times in the slot's window, this one included. Times are Redis' clock.
local function fmt(x) return string.format('%.6f', x) end
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local interval = tonumber(ARGV[2])
local per_day = tonumber(ARGV[3])
local window = tonumber(ARGV[4])
local max_wait = tonumber(ARGV[5])
local next_free = tonumber(redis.call('HGET', KEYS[1], 'next_free') or '0')
local paused_until = tonumber(redis.call('HGET', KEYS[1], 'paused_until') or '0')
local function keep(last)
  local ttl = math.ceil(math.max(0, last - now) + window) + 60
  redis.call('EXPIRE', KEYS[1], ttl)
  if per_day > 0 then redis.call('EXPIRE', KEYS[2], ttl) end
end
if ARGV[1] == 'pause' then
  local till = now + tonumber(ARGV[6])
  if till > paused_until then
    redis.call('HSET', KEYS[1], 'paused_until', fmt(till))
    paused_until = till
  end
  keep(math.max(paused_until, next_free))
  return {0, fmt(paused_until - now), 0}
end
local slot = math.max(now, paused_until, next_free)
local spent = 0
if per_day > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', fmt(now - window))
  local out = redis.call('ZCOUNT', KEYS[2], '-inf', fmt(slot - window))
  local n = redis.call('ZCARD', KEYS[2]) - out
  if n >= per_day then
    local oldest = redis.call('ZRANGE', KEYS[2], out + n - per_day, out + n - per_day, 'WITHSCORES')
    local free_at = tonumber(oldest[2]) + window
    if max_wait < 0 or free_at - now > max_wait then
      return {2, fmt(free_at - now), n}
    end
    slot = math.max(slot, free_at)
    n = per_day - 1
  end
  spent = n + 1
end
if max_wait >= 0 and slot - now > max_wait then
  return {1, fmt(slot - now), spent - 1}
end
redis.call('HSET', KEYS[1], 'next_free', fmt(slot + interval))
if per_day > 0 then
  local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
  redis.call('ZADD', KEYS[2], fmt(slot), fmt(slot) .. ':' .. seq)
end
keep(slot + interval)
return {0, fmt(slot - now), spent}
"""

_budget_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "jobstatus_budget_deadline", default=None
)


@contextlib.contextmanager
def wait_for_budget_until(deadline: float) -> Iterator[None]:
    """Requests in this context without a deadline of their own wait for slots and a spent
    budget until ``deadline`` (monotonic seconds) instead of being refused (submit operators)."""
    token = _budget_deadline.set(deadline)
    try:
        yield
    finally:
        _budget_deadline.reset(token)


@dataclass(frozen=True)
class Limits:
    """The limits one connection asks for (two connections of one account may differ: each request
    is held to those of its own connection)."""

    rate: float
    """Requests per second (0: no rate limit)."""
    per_day: int
    window: float = DAY

    @property
    def interval(self) -> float:
        return 1.0 / self.rate if self.rate > 0 else 0.0


@dataclass(frozen=True)
class Slot:
    """The script's answer to one ``take``."""

    code: int
    seconds: float
    spent: int

    @classmethod
    def parse(cls, raw: Any) -> Slot:
        return cls(int(raw[0]), float(raw[1]), int(raw[2]))


class Meter:
    """Requests, budget left and queued waits of one connection/account in this process: Airflow
    metrics (``jobstatus.budget.<service>.<conn_id>.*``) and one log line per minute at most."""

    def __init__(self, service: str, conn_id: str, account: str, per_day: int) -> None:
        self.service = service
        self.conn_id = conn_id
        self.account = account
        self.per_day = per_day
        self.prefix = f"jobstatus.budget.{_metric_part(service)}.{_metric_part(conn_id)}"
        self.tags = {"service": service, "conn_id": conn_id, "account": account.rsplit(":", 1)[-1][:12]}
        self.queued = 0
        self.left: int | None = None
        self.sent_since_report = 0
        self.held_since_report = 0
        self.shared = False
        self._reported_at = time.monotonic()
        self._gauged_at = 0.0

    def sent(self, spent: int | None, shared: bool) -> None:
        self.shared = shared
        self.sent_since_report += 1
        if spent is not None and self.per_day > 0:
            self.left = max(0, self.per_day - spent)
        _stats("incr", f"{self.prefix}.requests", 1, self.tags)
        self._maybe_report()

    def held(self, shared: bool) -> None:
        self.shared = shared
        self.held_since_report += 1
        if self.per_day > 0:
            self.left = 0
        _stats("incr", f"{self.prefix}.held", 1, self.tags)
        self._maybe_report()

    @contextlib.contextmanager
    def waiting(self) -> Iterator[None]:
        """Count a request as queued while it waits for its slot."""
        self.queued += 1
        try:
            yield
        finally:
            self.queued -= 1

    def _maybe_report(self) -> None:
        now = time.monotonic()
        if now - self._gauged_at >= GAUGE_EVERY:
            self._gauged_at = now
            _stats("gauge", f"{self.prefix}.queued", self.queued, self.tags)
            if self.left is not None:
                _stats("gauge", f"{self.prefix}.left", self.left, self.tags)
        if now - self._reported_at < REPORT_EVERY:
            return
        elapsed, self._reported_at = now - self._reported_at, now
        sent, self.sent_since_report = self.sent_since_report, 0
        held, self.held_since_report = self.held_since_report, 0
        budget = (
            f"{self.left} of {self.per_day} left in the budget window"
            if self.left is not None
            else "no day budget"
        )
        log.info(
            "%s connection %s (account %s): %d requests and %d held for the budget in the last %.0f s; "
            "%s; %d waiting for a slot; limits %s",
            self.service,
            self.conn_id,
            self.tags["account"],
            sent,
            held,
            elapsed,
            budget,
            self.queued,
            "shared through Redis" if self.shared else "of this process",
        )


def _metric_part(text: str) -> str:
    return "".join(c if c.isalnum() or c in "_-" else "_" for c in text)


_stats_pid = 0


def _stats(kind: str, name: str, value: float, tags: dict[str, str]) -> None:
    """Emit through Airflow's task SDK metrics (StatsD or OpenTelemetry, as ``[metrics]`` says)."""
    global _stats_pid
    try:
        from airflow.sdk.observability import stats

        if _stats_pid != os.getpid():
            _stats_pid = os.getpid()
            _ensure_stats_backend()
        getattr(stats, kind)(name, value, tags=tags)
    except Exception:  # metrics are best effort: never fail or slow a request for them
        log.debug("could not emit metric %s", name, exc_info=True)


def _ensure_stats_backend() -> None:
    """Set up the SDK's metrics from ``[metrics]`` where this process has not (Airflow does it in
    task runners and when ``airflow.sdk.serde`` loads; a triggerer sets up only its core copy)."""
    from airflow.sdk._shared.observability.metrics import stats as sdk_stats

    if getattr(sdk_stats, "_factory", None) is not None:
        return
    from airflow.sdk import conf
    from airflow.sdk.observability.metrics import stats_utils

    sdk_stats.initialize(
        factory=stats_utils.get_stats_factory(),
        export_legacy_names=conf.getboolean("metrics", "legacy_names_on", fallback=True),
    )


HEALTH = shared_redis.Health("shared request limits", "each process limits its own requests")
_REDIS_ERRORS: tuple[type[BaseException], ...] = (OSError, asyncio.TimeoutError)


def _redis_errors() -> tuple[type[BaseException], ...]:
    from redis.exceptions import RedisError

    return (*_REDIS_ERRORS, RedisError)


class _Shared:
    """What the sync and async limiters share: keys, limits, the spent-budget log, the meter."""

    def __init__(self, conn_key: str, account: str, limits: Limits, meter: Meter) -> None:
        self.conn_key = conn_key
        self.account = account
        self.limits = limits
        self.meter = meter
        # {account}: a Redis Cluster hash tag, so that the script's two keys live on one node
        self.keys = [f"{KEY_PREFIX}{{{account}}}", f"{KEY_PREFIX}{{{account}}}:day"]
        self.exhausted_logged = False

    def take_args(self, deadline: float | None) -> list[Any]:
        if deadline is None:
            deadline = _budget_deadline.get()
        max_wait = -1.0 if deadline is None else max(0.0, deadline - time.monotonic())
        return ["take", self.limits.interval, self.limits.per_day, self.limits.window, max_wait, 0]

    def pause_args(self, seconds: float) -> list[Any]:
        return ["pause", self.limits.interval, self.limits.per_day, self.limits.window, -1, seconds]

    def outcome(self, slot: Slot) -> float:
        """Seconds to sleep before sending; raises when the script took no slot."""
        if slot.code == 0:
            self.exhausted_logged = False
            self.meter.sent(slot.spent, shared=True)
            return slot.seconds
        if slot.code == 1:
            raise DeadlineExceeded(f"the next request slot is {slot.seconds:.1f}s away, past the deadline")
        self.meter.held(shared=True)
        if not self.exhausted_logged:  # once per spell, not once per refused request
            self.exhausted_logged = True
            log.warning(
                "connection %s: its account's request budget of %d per %s ('max_requests_per_day', "
                "shared by every process through Redis) is spent; no request is sent and waits hold "
                "until one frees up in %.0f s",
                self.conn_key,
                self.limits.per_day,
                window_text(self.limits.window),
                slot.seconds,
            )
        raise BudgetExhausted(
            f"the account's request budget of {self.limits.per_day} per {window_text(self.limits.window)} "
            f"is spent; the next request frees up in {slot.seconds:.0f}s",
            slot.seconds,
        )


class SharedSyncLimiter:
    """A connection's limiter for threads of a worker: shared through Redis when it is reachable."""

    def __init__(self, shared: _Shared, local: SyncRateLimiter) -> None:
        self.shared = shared
        self.local = local
        self._scripts: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()

    def _run(self, args: list[Any]) -> Slot | None:
        client = shared_redis.sync_client()
        if client is None or not HEALTH.usable():
            return None
        script = self._scripts.get(client)
        if script is None:
            script = self._scripts[client] = client.register_script(SCRIPT)
        try:
            slot = Slot.parse(script(keys=self.shared.keys, args=args))
        except _redis_errors() as exc:
            HEALTH.failed(exc)
            return None
        HEALTH.succeeded()
        return slot

    def acquire(self, deadline: float | None = None) -> None:
        slot = self._run(self.shared.take_args(deadline))
        if slot is None:
            self._local_acquire(deadline)
            return
        wait = self.shared.outcome(slot)
        if wait > 0:
            with self.shared.meter.waiting():
                time.sleep(wait)

    def _local_acquire(self, deadline: float | None) -> None:
        try:
            with self.shared.meter.waiting():
                self.local.acquire(deadline)
        except BudgetExhausted:
            self.shared.meter.held(shared=False)
            raise
        self.shared.meter.sent(None, shared=False)

    def pause(self, seconds: float) -> None:
        self.local.pause(seconds)
        self._run(self.shared.pause_args(seconds))


class SharedAsyncLimiter:
    """A connection's limiter for one event loop (a triggerer): shared through Redis when reachable."""

    def __init__(self, shared: _Shared, local: AsyncRateLimiter) -> None:
        self.shared = shared
        self.local = local
        self._script: Any = None
        self._script_client: Any = None
        self._pauses: set[asyncio.Task[Any]] = set()

    async def _run(self, args: list[Any]) -> Slot | None:
        if not HEALTH.usable():
            return None
        client = await shared_redis.async_client()
        if client is None:
            return None
        if self._script_client is not client:
            self._script, self._script_client = client.register_script(SCRIPT), client
        try:
            slot = Slot.parse(await self._script(keys=self.shared.keys, args=args))
        except _redis_errors() as exc:
            HEALTH.failed(exc)
            return None
        HEALTH.succeeded()
        return slot

    async def acquire(self, deadline: float | None = None) -> None:
        slot = await self._run(self.shared.take_args(deadline))
        if slot is None:
            try:
                with self.shared.meter.waiting():
                    await self.local.acquire(deadline)
            except BudgetExhausted:
                self.shared.meter.held(shared=False)
                raise
            self.shared.meter.sent(None, shared=False)
            return
        wait = self.shared.outcome(slot)
        if wait > 0:
            with self.shared.meter.waiting():
                await asyncio.sleep(wait)

    def pause(self, seconds: float) -> None:
        """Pause this loop's requests now and every process's as soon as Redis has it."""
        self.local.pause(seconds)
        task = asyncio.get_running_loop().create_task(self._run(self.shared.pause_args(seconds)))
        self._pauses.add(task)
        task.add_done_callback(self._pauses.discard)


_meters: dict[tuple[str, str], Meter] = {}
_sync: dict[tuple[str, str, Limits], SharedSyncLimiter] = {}
_async: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[tuple[str, str, Limits], SharedAsyncLimiter]
] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def _shared(service: str, conn_id: str, conn_key: str, account: str, limits: Limits) -> _Shared:
    with _lock:
        meter = _meters.get((account, conn_id))
        if meter is None:
            meter = _meters[(account, conn_id)] = Meter(service, conn_id, account, limits.per_day)
    return _Shared(conn_key, account, limits, meter)


def sync_limiter_for(service: str, conn_id: str, account: str, limits: Limits) -> SharedSyncLimiter:
    """The limiter every thread of this process uses for ``conn_id`` (its account's, with Redis)."""
    conn_key = f"{service}:{conn_id}"
    key = (conn_key, account, limits)
    limiter = _sync.get(key)
    if limiter is None:
        local = sync_limiter(conn_key, limits.rate, limits.per_day, limits.window)
        shared = _shared(service, conn_id, conn_key, account, limits)
        with _lock:
            limiter = _sync.setdefault(key, SharedSyncLimiter(shared, local))
    return limiter


def async_limiter_for(service: str, conn_id: str, account: str, limits: Limits) -> SharedAsyncLimiter:
    """The limiter every coroutine of the running loop uses for ``conn_id`` (its account's, with Redis)."""
    conn_key = f"{service}:{conn_id}"
    key = (conn_key, account, limits)
    per_loop = _async.setdefault(asyncio.get_running_loop(), {})
    limiter = per_loop.get(key)
    if limiter is None:
        local = async_limiter(conn_key, limits.rate, limits.per_day, limits.window)
        limiter = per_loop[key] = SharedAsyncLimiter(
            _shared(service, conn_id, conn_key, account, limits), local
        )
    return limiter
