"""Job statuses shared by every triggerer of a deployment, so each is fetched once per poll interval.

One `SharedStatus` per connection poller (`airflow_jobstatus.triggers.poller`), present only when
``[jobstatus] redis_url`` is set. Keys are per *account* (`airflow_jobstatus.shared.accounts`: the
service, host and a digest of the credentials; never the credentials themselves):

* ``jobstatus:st:<account>:<job id>``: the last status fetched by any process, ``{"at", "s", "r",
  "j"}`` (fetched at, epoch s; state; the service's status; the full `JobStatus` JSON for a
  terminal answer of a status request, as the trigger event carries it, download links left out).
  Kept one poll interval (terminal: `TERMINAL_TTL`). A reader uses a record younger than
  ``interval * (1 - JITTER)`` of its own wait instead of asking the service.
* ``jobstatus:cl:<account>:<job id>`` / ``jobstatus:sw:<account>``: a claim (``SET NX PX``, for
  that same span) on fetching one job, or on listing the account (a sweep, Daily and Wasabi AiR).
  The process holding it asks the service and publishes what it learnt; the others come back a
  little later (`peer_retry`) for the record, and after `MAX_PEER_WAITS` tries ask themselves.

Every Redis call is bounded by `REDIS_TIMEOUT`; a failure switches sharing off for `OUTAGE_BACKOFF`
seconds (logged at most once a minute) and the poller then asks the service itself, exactly as
without Redis: a Redis outage or restart costs requests, never a wait.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from airflow_jobstatus.models import JobState, JobStatus
from airflow_jobstatus.shared.accounts import aaccount_key
from airflow_jobstatus.shared.redis import async_client, redis_url
from airflow_jobstatus.triggers.pacing import GATHER, JITTER

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from airflow_jobstatus.services import ServiceSpec

log = logging.getLogger("airflow_jobstatus.triggers.hub")

TERMINAL_TTL = 3600.0
"""Seconds a terminal status stays shared (a job's end does not change)."""
REDIS_TIMEOUT = 1.0
"""Seconds one Redis call may take before sharing is off for `OUTAGE_BACKOFF`."""
OUTAGE_BACKOFF = 5.0
OUTAGE_LOG_EVERY = 60.0
MAX_PEER_WAITS = 3
"""Times a due job comes back for a peer's answer before asking the service itself."""
SLOT_REFRESH = 3600.0
"""A running job's concurrency slot (`airflow_jobstatus.shared.concurrency`) is kept this long past
each status seen."""

_FAILED = object()


def fresh_for(interval: float) -> float:
    """How old (seconds) a shared status may be for a wait polling every ``interval`` seconds.

    Shorter than the shortest jittered interval, so a process never skips its own next fetch.
    """
    return interval * (1.0 - JITTER)


def peer_retry(interval: float) -> float:
    """Seconds a due job waits for the answer a peer claimed."""
    return max(GATHER, min(2.0, 0.25 * interval))


@dataclass(frozen=True)
class Record:
    """A shared status: when it was fetched, the state, and the full status when terminal."""

    at: float
    state: JobState
    raw_status: str | None
    job: JobStatus | None = None

    def dumps(self) -> str:
        job = self.job.model_dump(mode="json") if self.job is not None else None
        return json.dumps({"at": self.at, "s": self.state.value, "r": self.raw_status, "j": job})

    @classmethod
    def loads(cls, raw: bytes | str) -> Record | None:
        """The record, or None when unreadable (another version wrote it, or it was damaged)."""
        try:
            data = json.loads(raw)
            job = JobStatus.model_validate(data["j"]) if data.get("j") is not None else None
            return cls(float(data["at"]), JobState(data["s"]), data.get("r"), job)
        except Exception:
            return None


class SharedStatus:
    """The Redis side of one connection poller: shared records, claims, and job slots."""

    def __init__(self, spec: ServiceSpec, conn_id: str) -> None:
        self.spec = spec
        self.conn_id = conn_id
        self.redis: Redis = cast("Redis", None)
        """The loop's client, set by `_read_account` before `ready` can be true."""
        self.loop = asyncio.get_running_loop()
        self.account: str | None = None
        """Read from the connection once, off the poll path; until then nothing is shared."""
        self._down_until = 0.0
        self._next_outage_log = 0.0
        self.counters = {"hits": 0, "claims": 0, "peer_waits": 0, "published": 0, "failures": 0}
        self._background: set[asyncio.Task[Any]] = set()
        self._reader = self.loop.create_task(self._read_account())

    @classmethod
    def for_poller(cls, spec: ServiceSpec, conn_id: str) -> SharedStatus | None:
        """None without ``[jobstatus] redis_url``: the poller then works exactly as on its own."""
        return cls(spec, conn_id) if redis_url() is not None else None

    def __repr__(self) -> str:
        return f"SharedStatus({self.spec.name}, {self.conn_id!r}, ready={self.ready})"

    async def _read_account(self) -> None:
        try:
            redis = await async_client()
            if redis is None:
                return
            self.redis = redis
            self.account = await aaccount_key(self.spec, self.conn_id)
        except asyncio.CancelledError:
            raise
        except Exception:
            return  # the poller reports connection problems itself; without an account it polls alone

    @property
    def ready(self) -> bool:
        return self.account is not None and self.loop.time() >= self._down_until

    def close(self) -> None:
        self._reader.cancel()

    # ------------------------------------------------------------------ keys

    def _status_key(self, job_id: str) -> str:
        return f"jobstatus:st:{self.account}:{job_id}"

    def _claim_key(self, job_id: str) -> str:
        return f"jobstatus:cl:{self.account}:{job_id}"

    def _sweep_key(self) -> str:
        return f"jobstatus:sw:{self.account}"

    # ------------------------------------------------------------------ calls

    async def _call(self, call: Awaitable[Any]) -> Any:
        """The call's result, or `_FAILED` (sharing is then off for a few seconds)."""
        try:
            return await asyncio.wait_for(call, REDIS_TIMEOUT)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.counters["failures"] += 1
            now = self.loop.time()
            self._down_until = now + OUTAGE_BACKOFF
            if now >= self._next_outage_log:
                self._next_outage_log = now + OUTAGE_LOG_EVERY
                log.warning(
                    "%s connection %r: shared job status unavailable (%s: %s); this triggerer polls on "
                    "its own meanwhile",
                    self.spec.display_name,
                    self.conn_id,
                    type(exc).__name__,
                    exc,
                )
            return _FAILED

    async def lookup(self, job_ids: list[str]) -> dict[str, Record]:
        """The shared records of ``job_ids`` that exist (one MGET)."""
        if not self.ready or not job_ids:
            return {}
        values = await self._call(self.redis.mget([self._status_key(j) for j in job_ids]))
        if values is _FAILED:
            return {}
        found = {}
        for job_id, raw in zip(job_ids, values, strict=True):
            record = Record.loads(raw) if raw is not None else None
            if record is not None:
                found[job_id] = record
        return found

    async def claim_jobs(self, job_ids: list[str], interval: float) -> set[str]:
        """The jobs this process now holds the fetch of; all of them when sharing is off."""
        if not self.ready or not job_ids:
            return set(job_ids)
        ttl = max(1, int(fresh_for(interval) * 1000))
        pipe = self.redis.pipeline(transaction=False)
        for job_id in job_ids:
            pipe.set(self._claim_key(job_id), b"1", nx=True, px=ttl)
        results = await self._call(pipe.execute())
        if results is _FAILED:
            return set(job_ids)
        claimed = {job_id for job_id, ok in zip(job_ids, results, strict=True) if ok}
        self.counters["claims"] += len(claimed)
        return claimed

    async def claim_sweep(self, interval: float) -> bool:
        """Whether this process lists the account now (True when sharing is off)."""
        if not self.ready:
            return True
        ttl = max(1, int(fresh_for(interval) * 1000))
        ok = await self._call(self.redis.set(self._sweep_key(), b"1", nx=True, px=ttl))
        return ok is _FAILED or bool(ok)

    async def release_claim(self, job_id: str) -> None:
        """A claimed fetch failed: let a peer try at once instead of after the claim's span."""
        if self.ready:
            await self._call(self.redis.delete(self._claim_key(job_id)))

    async def publish(self, records: Iterable[tuple[str, Record]], interval: float) -> None:
        """Share what this process learnt (one pipeline); never raises."""
        if not self.ready:
            return
        pipe = self.redis.pipeline(transaction=False)
        count = 0
        for job_id, record in records:
            ttl = TERMINAL_TTL if record.job is not None else max(interval, 1.0)
            pipe.set(self._status_key(job_id), record.dumps(), px=int(ttl * 1000))
            count += 1
        if count and await self._call(pipe.execute()) is not _FAILED:
            self.counters["published"] += count

    def publish_status(
        self, job_id: str, status: JobStatus, fetched_at: float, interval: float
    ) -> Awaitable[None]:
        """Share one status request's answer for the watched ``job_id``."""
        job = status if status.is_terminal else None
        return self.publish([(job_id, Record(fetched_at, status.state, status.raw_status, job))], interval)

    # ------------------------------------------------------------------ concurrency slots

    def job_seen(self, job_id: str, *, ended: bool) -> None:
        """Keep (running) or free (ended) the job's slot, for a service with a concurrent-job limit."""
        if self.spec.job_concurrency is None or self.account is None:
            return
        from airflow_jobstatus.shared.concurrency import slots_key

        key = slots_key(self.account)
        call: Awaitable[Any]
        if ended:
            call = self.redis.zrem(key, job_id)
        else:
            call = self.redis.zadd(key, {job_id: time.time() + SLOT_REFRESH}, xx=True)
        task = self.loop.create_task(self._call(call))
        self._background.add(task)
        task.add_done_callback(self._background.discard)
