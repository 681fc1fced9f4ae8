"""An account's concurrent-job limit, kept for the whole deployment: submissions wait for a free slot.

For a service whose description has a `JobConcurrency` (Symbl.ai: a 429 on submit at the limit,
contracts S8), the running jobs of an account are a Redis sorted set ``jobstatus:slots:<account>``:
members are job ids, scores the epoch second at which the slot expires by itself. A submission
first takes a slot (a Lua script drops expired members, then adds one if fewer than the limit are
left), holding it as ``submitting:<uuid>`` for `SUBMIT_HOLD` seconds; once the service returned the
job id the slot is renamed to it and held `JOB_HOLD` seconds. The slot is freed when a wait (the
poll hub, or the operator itself) sees the job end, when the operator deletes the job, or when it
expires: a crashed worker cannot keep a slot for ever. Each status a deferred wait sees of a running
job extends it (`airflow_jobstatus.shared.status.SLOT_REFRESH`).

A submission that finds no slot waits (checking every `SLOT_POLL` seconds, logging at most once a
minute) for at most its operator's ``concurrency_wait_timeout`` and then fails with
`ConcurrencyLimitError`, sending nothing. Without ``[jobstatus] redis_url``, with a limit of 0, or
while Redis cannot be reached, submissions go straight to the service, and a 429 there is handled
by `airflow_jobstatus.operators.resubmit` as before. After a Redis restart the set starts empty:
until the running jobs end, the service's own 429 (and that resubmit path) is the safety net.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from airflow_jobstatus.exceptions import ConcurrencyLimitError, InvalidParameterError
from airflow_jobstatus.shared.accounts import account_key
from airflow_jobstatus.shared.redis import sync_client

if TYPE_CHECKING:
    from airflow_jobstatus.services import ServiceSpec

log = logging.getLogger(__name__)
T = TypeVar("T")

SUBMIT_HOLD = 300.0
"""Seconds a slot is held while the submission is in flight (before the job id is known)."""
JOB_HOLD = 3600.0
"""Seconds a submitted job's slot is held unless a wait sees the job again (or its end) sooner."""
SLOT_POLL = 1.0
"""Seconds between attempts to take a slot while the account is at its limit."""
LOG_EVERY = 60.0

# KEYS[1]: the account's set; ARGV: now, limit, member, expires at. Returns 1 (taken) or 0.
_ACQUIRE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], ARGV[4], ARGV[3])
  return 1
end
return 0
"""
# KEYS[1]: the set; ARGV: pending member, job id, expires at. Renames the slot (re-adds it if lost).
_BIND = """
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[2])
return 1
"""


class _Log(Protocol):
    def info(self, msg: Any, /, *args: Any) -> Any: ...
    def warning(self, msg: Any, /, *args: Any) -> Any: ...


def slots_key(account: str) -> str:
    return f"jobstatus:slots:{account}"


def job_limit(spec: ServiceSpec, extra: dict[str, Any]) -> int:
    """The connection's concurrent-job limit (its extra, else the service's default); 0: none."""
    concurrency = spec.job_concurrency
    if concurrency is None:
        return 0
    value = extra.get(concurrency.extra, concurrency.default)
    if value in (None, ""):
        return concurrency.default
    try:
        limit = int(value)
    except (TypeError, ValueError):
        limit = -1
    if isinstance(value, bool) or limit < 0 or str(limit) != str(value).strip():
        raise InvalidParameterError(
            f"the connection extra {concurrency.extra!r} must be a whole number >= 0, got {value!r}",
            service=spec.display_name,
            hint=f"Set it to the account's concurrent-job limit (default {concurrency.default}), or 0 to "
            "let the service's own 429 decide",
        )
    return limit


class JobSlot:
    """One slot taken in an account's set; `bind` it to the job id, or `release` it."""

    def __init__(self, redis: Any, key: str, member: str) -> None:
        self.redis = redis
        self.key = key
        self.member = member

    def bind(self, job_id: str, hold: float = JOB_HOLD) -> None:
        try:
            self.redis.eval(_BIND, 1, self.key, self.member, job_id, time.time() + hold)
            self.member = job_id
        except Exception as exc:  # the pending slot expires by itself
            log.warning("could not record the job's concurrency slot in Redis: %s", type(exc).__name__)

    def release(self) -> None:
        try:
            self.redis.zrem(self.key, self.member)
        except Exception as exc:  # it expires by itself
            log.warning("could not free a concurrency slot in Redis: %s", type(exc).__name__)


def take_slot(
    spec: ServiceSpec,
    connection: Callable[[], Any],
    *,
    wait_limit: float,
    log: _Log,
    sleep: Callable[[float], None] = time.sleep,
) -> JobSlot | None:
    """A slot of the connection's account, waiting up to ``wait_limit`` seconds for one.

    None when the limit is not enforced here (no Redis, limit 0, a service without one, or Redis
    unreachable: logged). Raises `ConcurrencyLimitError` when no slot freed up in time.
    """
    redis = sync_client()
    if redis is None or spec.job_concurrency is None:
        return None
    conn = connection()  # read only when the limit is kept here
    limit = job_limit(spec, dict(conn.extra_dejson))
    if limit == 0:
        return None
    key = slots_key(account_key(spec, conn))
    member = f"submitting:{uuid.uuid4().hex}"
    started = time.monotonic()
    next_log = started
    while True:
        now = time.time()
        try:
            taken = redis.eval(_ACQUIRE, 1, key, now, limit, member, now + SUBMIT_HOLD)
            in_use = 0 if taken else int(redis.zcard(key))
        except Exception as exc:
            log.warning(
                "%s: the shared count of running jobs is unavailable (%s); submitting without it (a 429 "
                "at the limit is retried)",
                spec.display_name,
                type(exc).__name__,
            )
            return None
        if taken:
            return JobSlot(redis, key, member)
        spent = time.monotonic() - started
        if spent + SLOT_POLL > wait_limit:
            raise ConcurrencyLimitError(
                f"the account's {in_use} of {limit} concurrent jobs were still running after {spent:.0f} s "
                f"of waiting for one to end (the limit on waiting is {wait_limit:.0f} s); no job was "
                "submitted",
                service=spec.display_name,
                operation="submit_job",
            )
        if time.monotonic() >= next_log:
            next_log = time.monotonic() + LOG_EVERY
            log.info(
                "%s: the account runs %d of its %d concurrent jobs (connection extra %r): waiting for one "
                "to end before submitting (%.0f s of at most %.0f s spent)",
                spec.display_name,
                in_use,
                limit,
                spec.job_concurrency.extra if spec.job_concurrency else "",
                spent,
                wait_limit,
            )
        sleep(SLOT_POLL)


def submit_in_slot(
    spec: ServiceSpec,
    connection: Callable[[], Any],
    send: Callable[[], str],
    *,
    wait_limit: float,
    hold: float,
    log: _Log,
) -> str:
    """``send()`` once a slot is free; the slot then belongs to the job id ``send`` returned.

    ``connection`` returns the Airflow connection (its account and limit); called only with Redis.
    """
    slot = take_slot(spec, connection, wait_limit=wait_limit, log=log)
    if slot is None:
        return send()
    try:
        job_id = send()
    except BaseException:
        slot.release()
        raise
    slot.bind(job_id, hold)
    return job_id


def free_slot(spec: ServiceSpec, connection: Callable[[], Any], job_id: str) -> None:
    """The job ended (or was deleted): free its slot now. Best effort; it expires otherwise."""
    if spec.job_concurrency is None:
        return
    redis = sync_client()
    if redis is None:
        return
    try:
        redis.zrem(slots_key(account_key(spec, connection())), job_id)
    except Exception as exc:
        log.warning(
            "could not free %s job %s's concurrency slot: %s", spec.display_name, job_id, type(exc).__name__
        )
