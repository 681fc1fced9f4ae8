"""Accounts, jobs, lazily computed job timelines, and request counters.

A job's status is computed from the clock when it is read: ``created + i * duration / n`` are the
boundaries of the ``n`` in-flight statuses and ``created + duration`` is when the job becomes due.
No per-job polling loop exists. A due job that must write outputs first keeps reporting its last
in-flight status until the outputs exist (see :meth:`Store.status`); a timer started at submission
also writes them at the due time when nobody is polling.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import math
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("jobstatus.emulator")

SERVICES = ("daily", "wasabi", "symbl", "deepaffects")
OUTCOMES = ("succeed", "fail", "cancel")


@dataclass(frozen=True)
class Timeline:
    in_flight: tuple[str, ...]
    success: str
    failure: str
    cancelled: str | None = None

    @property
    def terminal(self) -> tuple[str, ...]:
        return (self.success, self.failure) + ((self.cancelled,) if self.cancelled else ())


TIMELINES: dict[str, Timeline] = {
    "daily": Timeline(("submitted", "processing"), "finished", "error"),
    "wasabi": Timeline(("submitted", "preflight", "in_progress"), "completed", "failed", "cancelled"),
    "symbl": Timeline(("scheduled", "in_progress"), "completed", "failed"),
    "deepaffects": Timeline(("Running",), "Completed", "Failed"),
}


# -- configuration --------------------------------------------------------------------------------
def validate_bucket_setting(value: Any) -> dict[str, str] | None:
    """``None`` (Daily storage) or ``{"bucket", "region", "prefix"}``; raises ValueError."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ValueError("daily_bucket must be null or an object {bucket, region, prefix}")
    bucket = value.get("bucket")
    if not isinstance(bucket, str) or not bucket:
        raise ValueError("daily_bucket.bucket must be a non-empty string")
    region = value.get("region", "us-east-1")
    prefix = value.get("prefix", "jobstatus-emulator")
    if not isinstance(region, str) or not isinstance(prefix, str):
        raise ValueError("daily_bucket.region and daily_bucket.prefix must be strings")
    return {"bucket": bucket, "region": region or "us-east-1", "prefix": prefix.strip("/")}


@dataclass
class EmulatorConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    job_duration: float = 3.0
    symbl_token_lifetime: float = 86400.0
    symbl_max_concurrent_jobs: int = 50
    link_ttl: float = 3600.0
    seed: int = 0
    daily_bucket: dict[str, str] | None = None
    # start-up only
    s3_endpoint: str | None = None
    s3_access_key: str = "testing"
    s3_secret_key: str = "testing"
    s3_region: str = "us-east-1"
    public_url: str | None = None
    faults: list[dict[str, Any]] = field(default_factory=list)

    RUNTIME_KEYS = (
        "job_duration",
        "symbl_token_lifetime",
        "symbl_max_concurrent_jobs",
        "link_ttl",
        "seed",
        "daily_bucket",
    )

    @property
    def base_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    def runtime_view(self) -> dict[str, Any]:
        view = {key: copy.deepcopy(getattr(self, key)) for key in self.RUNTIME_KEYS}
        view["s3_endpoint"] = self.s3_endpoint
        view["public_url"] = self.base_url
        return view

    def apply_patch(self, patch: Any) -> None:
        """Validate then apply a ``PATCH /_admin/config`` body (all or nothing)."""
        if not isinstance(patch, dict):
            raise ValueError("body must be a JSON object")
        new: dict[str, Any] = {}
        for key, value in patch.items():
            if key not in self.RUNTIME_KEYS:
                raise ValueError(
                    f"unknown or read-only setting {key!r}; settable: {', '.join(self.RUNTIME_KEYS)}"
                )
            if key in ("job_duration", "symbl_token_lifetime", "link_ttl"):
                if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                    raise ValueError(f"{key} must be a non-negative number of seconds")
                new[key] = float(value)
            elif key in ("symbl_max_concurrent_jobs", "seed"):
                if isinstance(value, bool) or not isinstance(value, int) or (key != "seed" and value < 0):
                    raise ValueError(f"{key} must be an integer")
                new[key] = value
            elif key == "daily_bucket":
                new[key] = validate_bucket_setting(value)
        for key, value in new.items():
            setattr(self, key, value)


# -- markers --------------------------------------------------------------------------------------
_DURATION_RE = re.compile(r"emu_duration=([0-9]+(?:\.[0-9]+)?)")
_OUTCOME_RE = re.compile(r"emu_outcome=(succeed|fail|cancel)\b")


def find_markers(*values: Any) -> tuple[float | None, str | None]:
    """``emu_duration=<s>`` / ``emu_outcome=succeed|fail|cancel`` in any string inside ``values``."""
    duration: float | None = None
    outcome: str | None = None
    stack = list(values)
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "emu_" not in item:
                continue
            if duration is None and (m := _DURATION_RE.search(item)):
                duration = float(m.group(1))
            if outcome is None and (m2 := _OUTCOME_RE.search(item)):
                outcome = m2.group(1)
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return duration, outcome


# -- accounts and jobs ----------------------------------------------------------------------------
class Job:
    __slots__ = (
        "account",
        "cache",
        "created",
        "data",
        "deleted",
        "duration",
        "error",
        "final_at",
        "final_status",
        "job_id",
        "last_notified",
        "materialized",
        "materialized_at",
        "materializing",
        "outcome",
        "outputs",
        "request",
        "service",
        "timer",
        "webhook",
    )

    def __init__(
        self,
        service: str,
        job_id: str,
        account: Account,
        *,
        created: float,
        duration: float,
        outcome: str,
        request: dict[str, Any],
        data: dict[str, Any],
        webhook: str | None = None,
    ) -> None:
        self.service = service
        self.job_id = job_id
        self.account = account
        self.created = created
        self.duration = duration
        self.outcome = outcome
        self.request = request
        self.data = data
        self.webhook = webhook
        self.final_status: str | None = None
        self.final_at: float | None = None
        self.error: str | None = None
        self.outputs: list[dict[str, Any]] = []
        self.materializing = False
        self.materialized = False
        self.materialized_at: float | None = None
        self.deleted = False
        self.timer: asyncio.TimerHandle | None = None
        self.last_notified: str | None = None
        self.cache: dict[str, Any] = {}

    @property
    def due_at(self) -> float:
        return self.created + self.duration


class Account:
    __slots__ = ("active", "identity", "jobs", "live", "order", "revoked_by", "service", "settings")

    def __init__(self, service: str, identity: str) -> None:
        self.service = service
        self.identity = identity
        self.settings: dict[str, Any] = {}
        self.revoked_by: str | None = None  # fault id, or "admin"
        self.jobs: dict[str, Job] = {}
        self.order: list[Job] = []  # creation order; deleted jobs stay as tombstones
        self.live = 0
        self.active: set[str] = set()  # job ids possibly still in flight (Symbl concurrency)


Materializer = Callable[[Job], Awaitable[list[dict[str, Any]]]]


class OutputError(Exception):
    """Writing a job's outputs failed; the message becomes the job's error."""


class Store:
    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.accounts: dict[tuple[str, str], Account] = {}
        self.materializers: dict[str, Materializer] = {}
        self.failure_messages: dict[str, Callable[[Job], str]] = {}
        #: called with (job, status) when a job with a webhook changes status
        self.notifiers: dict[str, Callable[[Job, str], None]] = {}
        #: background tasks (output writes, webhooks), cancelled on reset
        self.tasks: set[asyncio.Future[Any]] = set()

    # -- accounts ---------------------------------------------------------------------------------
    def account(self, service: str, identity: str) -> Account:
        key = (service, identity)
        acc = self.accounts.get(key)
        if acc is None:
            acc = self.accounts[key] = Account(service, identity)
        return acc

    def find_account(self, service: str, identity: str) -> Account | None:
        return self.accounts.get((service, identity))

    # -- jobs -------------------------------------------------------------------------------------
    def add_job(
        self,
        account: Account,
        job_id: str,
        *,
        request: dict[str, Any],
        data: dict[str, Any],
        markers_from: tuple[Any, ...] = (),
        webhook: str | None = None,
        now: float | None = None,
    ) -> Job:
        duration, outcome = find_markers(*markers_from) if markers_from else (None, None)
        job = Job(
            account.service,
            job_id,
            account,
            created=time.time() if now is None else now,
            duration=self.config.job_duration if duration is None else duration,
            outcome=outcome or "succeed",
            request=request,
            data=data,
            webhook=webhook,
        )
        if job.outcome == "cancel" and TIMELINES[account.service].cancelled is None:
            job.outcome = "fail"
        account.jobs[job_id] = job
        account.order.append(job)
        account.live += 1
        account.active.add(job_id)
        self.arm(job)
        return job

    def delete_job(self, job: Job) -> None:
        if job.deleted:
            return
        job.deleted = True
        job.account.live -= 1
        job.account.active.discard(job.job_id)
        del job.account.jobs[job.job_id]
        if job.timer is not None:
            job.timer.cancel()
            job.timer = None

    def all_jobs(self, service: str | None = None, identity: str | None = None) -> list[Job]:
        out: list[Job] = []
        for (svc, ident), acc in self.accounts.items():
            if (service and svc != service) or (identity is not None and ident != identity):
                continue
            out.extend(j for j in acc.order if not j.deleted)
        out.sort(key=lambda j: j.created)
        return out

    def find_job(self, service: str, job_id: str) -> Job | None:
        for (svc, _), acc in self.accounts.items():
            if svc == service and job_id in acc.jobs:
                return acc.jobs[job_id]
        return None

    def in_flight_count(self, account: Account, now: float | None = None) -> int:
        now = time.time() if now is None else now
        for job_id in list(account.active):
            job = account.jobs.get(job_id)
            if job is None or self.status(job, now) in TIMELINES[job.service].terminal:
                account.active.discard(job_id)
        return len(account.active)

    # -- the timeline -----------------------------------------------------------------------------
    def status(self, job: Job, now: float | None = None) -> str:
        """The job's status now. Due jobs are finalised here (outputs first, on success)."""
        if job.final_status is not None:
            return job.final_status
        now = time.time() if now is None else now
        tl = TIMELINES[job.service]
        elapsed = now - job.created
        if elapsed < job.duration:
            n = len(tl.in_flight)
            idx = int(elapsed * n / job.duration) if job.duration > 0 else n - 1
            return tl.in_flight[min(max(idx, 0), n - 1)]
        return self._due(job, tl)

    def _due(self, job: Job, tl: Timeline) -> str:
        if job.outcome == "fail":
            make = self.failure_messages.get(job.service)
            self.finish(job, tl.failure, job.due_at, make(job) if make else "Job failed")
        elif job.outcome == "cancel" and tl.cancelled:
            self.finish(job, tl.cancelled, job.due_at, "Job was cancelled")
        elif job.materialized or job.service not in self.materializers:
            self.finish(job, tl.success, max(job.due_at, job.materialized_at or 0.0))
        else:
            if not job.materializing:
                self._start_materialize(job)
            return tl.in_flight[-1]
        return job.final_status or tl.in_flight[-1]

    def finish(self, job: Job, status: str, at: float, error: str | None = None) -> None:
        job.final_status = status
        job.final_at = at
        job.error = error
        job.account.active.discard(job.job_id)
        if job.timer is not None:
            job.timer.cancel()
            job.timer = None
        self.notify(job, status)

    def reopen(self, job: Job) -> None:
        """Forget a final status (after an admin PATCH changed duration/outcome) and re-arm timers."""
        job.final_status = None
        job.final_at = None
        job.error = None
        job.account.active.add(job.job_id)
        self.arm(job)

    def _start_materialize(self, job: Job) -> None:
        job.materializing = True
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not inside the server loop (should not happen)
            job.materializing = False
            return
        task = loop.create_task(self._materialize(job))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _materialize(self, job: Job) -> None:
        materializer = self.materializers[job.service]
        tl = TIMELINES[job.service]
        try:
            outputs = await materializer(job)
        except OutputError as exc:
            job.materializing = False
            if not job.deleted:
                self.finish(job, tl.failure, time.time(), str(exc))
            return
        except Exception:
            log.exception("writing outputs of %s job %s failed", job.service, job.job_id)
            job.materializing = False
            if not job.deleted:
                self.finish(job, tl.failure, time.time(), "Internal error while writing outputs")
            return
        job.outputs = outputs
        job.materialized = True
        job.materialized_at = time.time()
        job.materializing = False
        if not job.deleted:
            self.status(job)

    def timeline(self, job: Job, now: float | None = None) -> list[dict[str, Any]]:
        """The status changes so far, with the time of each (computed boundaries)."""
        now = time.time() if now is None else now
        current = self.status(job, now)
        tl = TIMELINES[job.service]
        n = len(tl.in_flight)
        out = []
        for i, status in enumerate(tl.in_flight):
            at = job.created + job.duration * i / n
            if at > now:
                break
            out.append({"status": status, "at": at})
        if current in tl.terminal and job.final_at is not None:
            out.append({"status": current, "at": job.final_at})
        return out

    # -- timers (outputs at due time; webhooks on every change) -----------------------------------
    def arm(self, job: Job) -> None:
        if job.final_status is not None or job.deleted:
            return
        needs = job.service in self.materializers or job.webhook is not None
        if not needs:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        if job.timer is not None:
            job.timer.cancel()
        now = time.time()
        at = job.due_at
        if job.webhook is not None:
            tl = TIMELINES[job.service]
            n = len(tl.in_flight)
            for i in range(1, n):
                boundary = job.created + job.duration * i / n
                if boundary > now:
                    at = boundary
                    break
        job.timer = loop.call_later(max(0.0, at - now) + 0.001, self._tick, job)

    def _tick(self, job: Job) -> None:
        job.timer = None
        if job.deleted:
            return
        status = self.status(job)
        self.notify(job, status)
        if job.final_status is None and not job.materializing:
            self.arm(job)

    def notify(self, job: Job, status: str) -> None:
        if job.webhook is None or job.last_notified == status:
            return
        notifier = self.notifiers.get(job.service)
        if notifier is None:
            return
        job.last_notified = status
        with contextlib.suppress(Exception):
            notifier(job, status)

    def spawn(self, coro: Awaitable[Any]) -> asyncio.Future[Any]:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    # -- reset ------------------------------------------------------------------------------------
    def reset(self) -> None:
        for acc in self.accounts.values():
            for job in acc.order:
                if job.timer is not None:
                    job.timer.cancel()
                    job.timer = None
        for task in list(self.tasks):
            task.cancel()
        self.tasks.clear()
        self.accounts.clear()


# -- counters -------------------------------------------------------------------------------------
class Stats:
    """Request counts by (service, method, route template, credential identity, status).

    A dropped connection counts with status 0.
    """

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str, str, str, int], int] = {}

    def record(self, service: str, method: str, route: str, credential: str, status: int) -> None:
        key = (service, method, route, credential, status)
        self.counts[key] = self.counts.get(key, 0) + 1

    def view(self, service: str | None = None, credential: str | None = None) -> dict[str, Any]:
        rows = []
        total = 0
        for (svc, method, route, cred, status), count in sorted(self.counts.items()):
            if (service and svc != service) or (credential is not None and cred != credential):
                continue
            rows.append(
                {
                    "service": svc,
                    "method": method,
                    "route": route,
                    "credential": cred,
                    "status": status,
                    "count": count,
                }
            )
            total += count
        return {"requests": rows, "total": total}

    def reset(self) -> None:
        self.counts.clear()


def ceil_seconds(value: float) -> int:
    return max(0, math.ceil(value))
