"""Accounts, jobs, lazily computed job timelines, and request counters.

A job's status is computed from the clock when it is read: ``created + i * duration / n`` are the
boundaries of the ``n`` in-flight statuses and ``created + duration`` is when the job becomes due.
No per-job polling loop exists. A due job that must write outputs first keeps reporting its last
in-flight status until the outputs exist (see :meth:`Store.status`); a timer started at submission
also writes them at the due time when nobody is polling.

**Persistence** (optional, ``--state-file PATH`` / ``EmulatorServer(state_file=...)``): a
:class:`Journal` keeps accounts and jobs across a restart of the process. Every change (a job
submitted, finished, deleted or patched; account settings set through the admin API) appends the
whole record as one JSON line and flushes it to the kernel, so a SIGKILLed emulator loses nothing
(a power loss may: there is no ``fsync``). At start the file is replayed (the last record of each
job wins; a torn last line is ignored), then compacted into a snapshot. Timelines continue
correctly because they are computed from each job's absolute submission time. Not kept: fault
rules, request counters, Symbl access tokens (clients get 401 and exchange their credentials again,
as after an expiry) and webhook delivery state; Daily-storage outputs are rewritten at start from
the job (their content is a pure function of the job id and the seed), under the same link secret.
``POST /_admin/reset`` empties the file.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import logging
import math
import os
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

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
    #: seconds after a Wasabi job completed during which /metadata still answers 404 (contracts W6)
    wasabi_metadata_lag: float = 1.0
    #: DeepAffects' documented limits per API key (contracts A8); 0 turns one off
    deepaffects_requests_per_minute: int = 5
    deepaffects_requests_per_day: int = 100
    link_ttl: float = 3600.0
    seed: int = 0
    daily_bucket: dict[str, str] | None = None
    #: seconds before a webhook's first retry, doubled for each next one (webhooks.py)
    webhook_retry_base: float = 1.0
    # start-up only
    s3_endpoint: str | None = None
    s3_access_key: str = "testing"
    s3_secret_key: str = "testing"
    s3_region: str = "us-east-1"
    public_url: str | None = None
    faults: list[dict[str, Any]] = field(default_factory=list)
    #: accounts and jobs are kept in this file across restarts (see the module docstring)
    state_file: str | None = None
    #: host names webhooks may be sent to besides loopback (e.g. a compose service); see webhooks.py
    webhook_hosts: list[str] = field(default_factory=list)

    RUNTIME_KEYS = (
        "job_duration",
        "symbl_token_lifetime",
        "symbl_max_concurrent_jobs",
        "wasabi_metadata_lag",
        "deepaffects_requests_per_minute",
        "deepaffects_requests_per_day",
        "link_ttl",
        "seed",
        "daily_bucket",
        "webhook_retry_base",
    )

    @property
    def base_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    def runtime_view(self) -> dict[str, Any]:
        view = {key: copy.deepcopy(getattr(self, key)) for key in self.RUNTIME_KEYS}
        view["s3_endpoint"] = self.s3_endpoint
        view["public_url"] = self.base_url
        view["state_file"] = self.state_file
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
            if key in (
                "job_duration",
                "symbl_token_lifetime",
                "link_ttl",
                "wasabi_metadata_lag",
                "webhook_retry_base",
            ):
                if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                    raise ValueError(f"{key} must be a non-negative number of seconds")
                new[key] = float(value)
            elif key in (
                "symbl_max_concurrent_jobs",
                "seed",
                "deepaffects_requests_per_minute",
                "deepaffects_requests_per_day",
            ):
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


JOB_FIELDS = (
    "created",
    "duration",
    "outcome",
    "request",
    "data",
    "webhook",
    "final_status",
    "final_at",
    "error",
    "outputs",
    "materialized",
    "materialized_at",
    "deleted",
)
"""What a journal record keeps of a job (besides its service, id and account); the rest is derived."""


class Journal:
    """The state file: JSON lines appended on every change, replayed and compacted at start.

    Records: ``{"kind": "meta", ...}`` (settings of the process that must survive it, e.g. Daily's
    link secret), ``{"kind": "account", "service", "identity", "settings", "revoked"}`` and
    ``{"kind": "job", "service", "job_id", "account", <JOB_FIELDS>}``. The last record of a job or
    account wins. Appends are flushed to the kernel at once: a killed process loses nothing.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._file: IO[str] | None = None

    def read(self) -> list[dict[str, Any]]:
        """Every record in the file, in order; a torn last line (the process was killed) is dropped."""
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        records: list[dict[str, Any]] = []
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                if number == len(lines):
                    log.warning("state file %s: ignoring a torn last line", self.path)
                    continue
                raise ValueError(f"state file {self.path}: line {number} is not JSON") from None
            if isinstance(record, dict):
                records.append(record)
        return records

    def rewrite(self, records: list[dict[str, Any]]) -> None:
        """Replace the file with ``records`` atomically (temporary file, fsync, rename)."""
        self.close()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        with open(temp, "w", encoding="utf-8") as fh:
            for record in records:
                fh.write(json.dumps(record, separators=(",", ":")) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(temp, self.path)

    def append(self, record: dict[str, Any]) -> None:
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "a", encoding="utf-8")  # kept open between appends
        self._file.write(json.dumps(record, separators=(",", ":")) + "\n")
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None


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
        #: services whose webhooks are per account, not per job (Daily, H1): notified for every job
        self.account_webhooks: set[str] = set()
        #: background tasks (output writes, webhooks), cancelled on reset
        self.tasks: set[asyncio.Future[Any]] = set()
        #: the state file, when the emulator keeps its state across restarts
        self.journal: Journal | None = Journal(config.state_file) if config.state_file else None
        #: process settings kept in the state file's meta record (e.g. Daily's link secret)
        self.meta: dict[str, Any] = {}

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
        self.save_job(job)
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
        self.save_job(job)

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
        self.save_job(job)
        self.notify(job, status)

    def reopen(self, job: Job) -> None:
        """Forget a final status (after an admin PATCH changed duration/outcome) and re-arm timers."""
        job.final_status = None
        job.final_at = None
        job.error = None
        job.account.active.add(job.job_id)
        self.arm(job)
        self.save_job(job)

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
        if job.last_notified == status:
            return
        if job.webhook is None and job.service not in self.account_webhooks:
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

    # -- persistence ------------------------------------------------------------------------------
    def save_job(self, job: Job) -> None:
        """Write the job through to the state file (no-op without one)."""
        if self.journal is None:
            return
        self.journal.append(self._record(job))

    def save_account(self, account: Account) -> None:
        """Write an account's admin settings (``daily_bucket``, admin revocation) through."""
        if self.journal is None:
            return
        self.journal.append(self._account_record(account))

    @staticmethod
    def _account_record(account: Account) -> dict[str, Any]:
        return {
            "kind": "account",
            "service": account.service,
            "identity": account.identity,
            "settings": account.settings,
            "revoked": account.revoked_by == "admin",
        }

    def save_meta(self, **values: Any) -> None:
        self.meta.update(values)
        if self.journal is not None:
            self.journal.append({"kind": "meta", **self.meta})

    def load(self) -> int:
        """Replay the state file into this (empty) store, then compact it; returns the jobs loaded.

        Timers are not armed here (there may be no event loop yet): call :meth:`rearm` from the loop.
        """
        if self.journal is None:
            return 0
        accounts: dict[tuple[str, str], dict[str, Any]] = {}
        jobs: dict[tuple[str, str], dict[str, Any]] = {}  # insertion order = submission order
        for record in self.journal.read():
            kind = record.get("kind")
            if kind == "meta":
                self.meta.update({k: v for k, v in record.items() if k != "kind"})
            elif kind == "account":
                accounts[(record["service"], record["identity"])] = record
            elif kind == "job":
                jobs[(record["service"], record["job_id"])] = record
        for (service, identity), record in accounts.items():
            acc = self.account(service, identity)
            acc.settings = dict(record.get("settings") or {})
            acc.revoked_by = "admin" if record.get("revoked") else None
        for record in sorted(jobs.values(), key=lambda r: float(r["created"])):
            acc = self.account(record["service"], record["account"])
            job = Job(
                record["service"],
                record["job_id"],
                acc,
                created=float(record["created"]),
                duration=float(record["duration"]),
                outcome=record["outcome"],
                request=record["request"],
                data=record["data"],
                webhook=record.get("webhook"),
            )
            for name in JOB_FIELDS[6:]:
                setattr(job, name, record.get(name, getattr(job, name)))
            job.last_notified = job.final_status  # a finished job's webhook was sent before
            acc.order.append(job)
            if job.deleted:
                continue
            acc.jobs[job.job_id] = job
            acc.live += 1
            if job.final_status is None:
                acc.active.add(job.job_id)
        self.compact()
        log.info(
            "state file %s: %d account(s), %d job(s) loaded", self.journal.path, len(self.accounts), len(jobs)
        )
        return len(jobs)

    def compact(self) -> None:
        """Rewrite the state file as one record per account and job (it only grows otherwise)."""
        if self.journal is None:
            return
        records: list[dict[str, Any]] = [{"kind": "meta", **self.meta}] if self.meta else []
        records += [
            self._account_record(acc)
            for acc in self.accounts.values()
            if acc.settings or acc.revoked_by == "admin"
        ]
        records += [self._record(job) for job in sorted(self._every_job(), key=lambda j: j.created)]
        self.journal.rewrite(records)

    def _every_job(self) -> list[Job]:
        return [job for acc in self.accounts.values() for job in acc.order]

    @staticmethod
    def _record(job: Job) -> dict[str, Any]:
        record = {
            "kind": "job",
            "service": job.service,
            "job_id": job.job_id,
            "account": job.account.identity,
        }
        record.update({name: getattr(job, name) for name in JOB_FIELDS})
        return record

    def rearm(self) -> None:
        """Arm the timers of every unfinished job (after :meth:`load`, inside the server loop)."""
        for job in self._every_job():
            if not job.deleted and job.final_status is None:
                self.arm(job)

    # -- reset ------------------------------------------------------------------------------------
    def shutdown(self) -> None:
        """Stop timers and background tasks; the state (and the state file) stays."""
        for acc in self.accounts.values():
            for job in acc.order:
                if job.timer is not None:
                    job.timer.cancel()
                    job.timer = None
        for task in list(self.tasks):
            task.cancel()
        self.tasks.clear()
        if self.journal is not None:
            self.journal.close()

    def reset(self) -> None:
        """Forget every account and job (``POST /_admin/reset``), in the state file too."""
        self.shutdown()
        self.accounts.clear()
        if self.journal is not None:
            self.journal.rewrite([{"kind": "meta", **self.meta}] if self.meta else [])


# -- counters -------------------------------------------------------------------------------------
class Stats:
    """Request counts by (service, method, route template, credential identity, status).

    A dropped connection counts with status 0. The last `REQUEST_LOG_SIZE` requests are also kept
    one by one with their arrival time (``GET /_admin/requests``), so that tests can check a
    client's request rate against its limit.
    """

    REQUEST_LOG_SIZE = 100_000

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str, str, str, int], int] = {}
        self.log: deque[tuple[float, str, str, str, str, int]] = deque(maxlen=self.REQUEST_LOG_SIZE)
        self.logged = 0

    def record(
        self, service: str, method: str, route: str, credential: str, status: int, at: float | None = None
    ) -> None:
        """Count one request; ``at`` is its arrival time (epoch seconds, default now)."""
        key = (service, method, route, credential, status)
        self.counts[key] = self.counts.get(key, 0) + 1
        self.log.append((time.time() if at is None else at, service, method, route, credential, status))
        self.logged += 1

    def requests(
        self, service: str | None = None, credential: str | None = None, since: float = 0.0
    ) -> dict[str, Any]:
        """The logged requests (oldest first); ``dropped`` counts those older than the log keeps."""
        rows = [
            {"at": at, "service": svc, "method": method, "route": route, "credential": cred, "status": status}
            for at, svc, method, route, cred, status in self.log
            if at >= since and not (service and svc != service) and (credential is None or cred == credential)
        ]
        return {"requests": rows, "total": len(rows), "dropped": self.logged - len(self.log)}

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
        self.log.clear()
        self.logged = 0


def ceil_seconds(value: float) -> int:
    return max(0, math.ceil(value))
