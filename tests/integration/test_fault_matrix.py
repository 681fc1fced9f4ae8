"""The fault matrix: every service x every fault the emulator injects, through the provider's own wait.

Each cell submits a job to its own emulator account, injects its fault through ``/_admin/faults``
and waits twice (two accounts):

* **deferrable**: `JobStatusTrigger.run()` in an asyncio loop in debug mode (any callback slower
  using more than `SLOW_CALLBACK_CPU` of CPU or blocked for `BLOCKED_CALLBACK` fails the matrix), all cells' triggers in one loop as in a triggerer; the
  event then goes to the sensor's ``resume_execution``, so the outcome is what the task would do;
* **sync**: the sensor's ``poke`` every poll interval, as a poke-mode sensor does.

A cell passes when the wait ends in the job's real final state (transient faults) or with the right
typed error and a message naming what was wrong and how to fix it; when the emulator's request log
for the account shows the connection's rate limit (and every Retry-After) kept; and when no log
record at any level carries a traceback of an exception that is not one of the package's typed
errors, or a secret. The matrix goes to ``tests/artifacts/fault_matrix/fault_matrix.md`` and
``.json`` and is printed in pytest's terminal summary, whether the test passes or not.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import airflow.sdk.execution_time.supervisor  # noqa: F401  (see below)
import httpx
import pytest

from airflow_jobstatus.hooks.daily import DailyHook
from airflow_jobstatus.hooks.deepaffects import DeepAffectsHook
from airflow_jobstatus.hooks.symbl import SymblHook
from airflow_jobstatus.hooks.wasabi import WasabiAirHook
from airflow_jobstatus.http.client import close_async_clients
from airflow_jobstatus.sensors.base import JobSensor
from airflow_jobstatus.sensors.daily import DailyJobSensor
from airflow_jobstatus.sensors.deepaffects import DeepAffectsJobSensor
from airflow_jobstatus.sensors.symbl import SymblJobSensor
from airflow_jobstatus.sensors.wasabi import WasabiAirJobSensor
from airflow_jobstatus.triggers.job import JobStatusTrigger
from tests.helpers.canary import secret
from tests.helpers.loop_watch import LoopReport, is_wall_report, run_watched
from tests.integration.fault_matrix_support import (
    CURRENT_CELL,
    EMULATOR_NAME,
    FAULTS,
    MAX_ERRORS,
    MAX_RETRIES,
    POLL_INTERVAL,
    RATE_LIMIT,
    REQUEST_TIMEOUT,
    SERVICES,
    SUCCESS_STATUS,
    TOKEN_ROUTE,
    WAIT_TIMEOUT,
    CellResult,
    Fault,
    LogCapture,
    bad_record,
    check_outcome,
    check_requests,
    render_markdown,
)

pytestmark = pytest.mark.integration

# Airflow imports its supervisor module on the first `aget_connection` of a process, inside the
# event loop (about 50 ms). A triggerer runs under the supervisor and has it loaded: so does this test.

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "fault_matrix"
SLOW_CALLBACK_CPU = 0.05
"""CPU seconds one callback of the trigger loop may use (the unit tests' 50 ms, in CPU time)."""
BLOCKED_CALLBACK = 0.1
"""Seconds one callback may spend blocked (sleeping, synchronous I/O): half the triggerer's
0.2 s blocked-loop warning threshold."""
ASYNCIO_SLOW_CALLBACK = 0.2
"""asyncio's own debug-mode report (wall time, so also preemption): counted, not failed on."""
PHASE_TIMEOUT = 120.0

SENSORS: dict[str, tuple[type[JobSensor], str]] = {
    "daily": (DailyJobSensor, "daily_conn_id"),
    "wasabi_air": (WasabiAirJobSensor, "wasabi_air_conn_id"),
    "symbl": (SymblJobSensor, "symbl_conn_id"),
    "deepaffects": (DeepAffectsJobSensor, "deepaffects_conn_id"),
}
HOOKS: dict[str, Callable[[str], Any]] = {
    "daily": lambda conn_id: DailyHook(daily_conn_id=conn_id),
    "wasabi_air": lambda conn_id: WasabiAirHook(wasabi_air_conn_id=conn_id),
    "symbl": lambda conn_id: SymblHook(symbl_conn_id=conn_id),
    "deepaffects": lambda conn_id: DeepAffectsHook(deepaffects_conn_id=conn_id),
}


@dataclass
class Cell:
    """One service x fault x path, with its own connection and emulator account."""

    service: str
    fault: Fault
    path: str
    conn_id: str
    identity: str
    """The emulator's account identity (what fault rules and the request log are keyed by)."""
    secret: str
    result: CellResult
    job_ref: str = ""
    rule_ids: list[str] = field(default_factory=list)
    started: float = 0.0
    """Wall-clock time the wait started (faults injected just before)."""
    ended: float = 0.0
    outcome: Any = None
    payload: Any = None
    trigger_kwargs: dict[str, Any] = field(default_factory=dict)
    released_at: float | None = None
    acting: bool = False
    """The controller is injecting or releasing a fault right now: let it finish."""

    @property
    def emu(self) -> str:
        return EMULATOR_NAME[self.service]

    @property
    def emu_job_id(self) -> str:
        return self.job_ref.split(":", 1)[0] if self.service == "symbl" else self.job_ref


@dataclass
class Matrix:
    emulator: Any
    s3_endpoint: str
    bucket: str


# -- connections and submissions ------------------------------------------------------------------
def define_cell(
    monkeypatch: pytest.MonkeyPatch, matrix: Matrix, service: str, fault: Fault, path: str
) -> Cell:
    """An Airflow connection (environment variable) to a fresh emulator account."""
    tag = uuid.uuid4().hex[:8]
    conn_id = f"fm_{service}_{fault.name}_{path}_{tag}"
    key = secret(f"fm-{service}")
    extra: dict[str, Any] = {
        "max_requests_per_second": RATE_LIMIT,
        # the matrix polls every second: without DeepAffects' per-minute and per-day defaults
        "max_requests_per_minute": 0,
        "max_requests_per_day": 0,
        "request_timeout": REQUEST_TIMEOUT,
        "max_retries": MAX_RETRIES,
        "allow_http_links": True,
    }
    conn: dict[str, Any] = {
        "conn_type": service,
        "host": matrix.emulator.service_url(EMULATOR_NAME[service]),
        "extra": extra,
    }
    if service == "wasabi_air":
        identity = f"fm-access-{tag}"
        conn.update(login=identity, password=key)
        extra["s3_endpoint_url"] = matrix.s3_endpoint
    elif service == "symbl":
        identity = f"fm-app-{tag}"
        conn.update(login=identity, password=key)
    else:
        identity = key  # Daily's and DeepAffects' API key is the secret and the account
        conn["password"] = key
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))
    result = CellResult(service=service, fault=fault.name, path=path, expected=fault.expect)
    return Cell(service, fault, path, conn_id, identity, key, result)


def submission(cell: Cell, matrix: Matrix) -> tuple[tuple[Any, ...], dict[str, Any]]:
    marker = f"emu_duration={cell.fault.duration:g}"
    if cell.service == "daily":
        return ("transcript",), {"uri": f"https://media.example/fm.mp4?{marker}"}
    if cell.service == "wasabi_air":
        source = {
            "Endpoint": matrix.s3_endpoint,
            "Bucket": "media",
            "Region": "us-east-1",
            "ObjectKey": f"fm.mp4?{marker}",
        }
        destination = {"Bucket": matrix.bucket, "Region": "us-east-1"}
        return (f"fm-{cell.fault.name}",), {
            "services": {"s2t": ""},
            "source": source,
            "destination": destination,
        }
    if cell.service == "symbl":
        return (), {"audio_url": f"https://media.example/fm.mp3?{marker}"}
    return ("asr",), {
        "url": f"https://media.example/fm.wav?{marker}",
        "webhook": "https://hooks.example/deepaffects",
    }


def make_sensor(cell: Cell, *, deferrable: bool) -> JobSensor:
    cls, conn_kwarg = SENSORS[cell.service]
    return cls(
        task_id=f"fm_{cell.fault.name}_{cell.path}",
        job_id=cell.job_ref,
        poll_interval=POLL_INTERVAL,
        timeout=WAIT_TIMEOUT,
        deferrable=deferrable,
        max_consecutive_errors=MAX_ERRORS,
        **{conn_kwarg: cell.conn_id},
    )


def wait_started(cell: Cell, rows: list[dict[str, Any]]) -> bool:
    """The wait has polled the job successfully at least once (the moment for mid-wait faults)."""
    return any(
        r["credential"] == cell.identity
        and r["at"] >= cell.started
        and r["method"] == "GET"
        and r["status"] == 200
        and r["route"] != TOKEN_ROUTE
        for r in rows
    )


def rule_hits(rules: list[dict[str, Any]], rule_id: str) -> int:
    return next((int(r["hits"]) for r in rules if r["id"] == rule_id), -1)


# -- the deferrable path --------------------------------------------------------------------------
class AsyncAdmin:
    """The emulator's admin API from inside the trigger loop (never blocking it).

    Credentials go only in request bodies: a query string would put Daily's key into httpx's log.
    """

    def __init__(self, url: str) -> None:
        self.client = httpx.AsyncClient(base_url=url, trust_env=False, timeout=30.0)

    async def call(
        self, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None
    ) -> Any:
        resp = await self.client.request(method, f"/_admin/{path}", json=body, params=params)
        resp.raise_for_status()
        return resp.json()

    async def add_fault(self, cell: Cell, rule: dict[str, Any]) -> str:
        created = await self.call(
            "POST", "faults", {"service": cell.emu, "credential": cell.identity, **rule}
        )
        return str(created["id"])

    async def requests(self, service: str, since: float) -> list[dict[str, Any]]:
        return list(
            (await self.call("GET", "requests", params={"service": service, "since": since}))["requests"]
        )

    async def aclose(self) -> None:
        await self.client.aclose()


async def first_payload(trigger: JobStatusTrigger) -> Any:
    events = trigger.run()
    try:
        event = await events.__anext__()
    finally:
        await events.aclose()
    return event.payload


async def prepare_async(cell: Cell, matrix: Matrix) -> None:
    CURRENT_CELL.set(cell.result.key)
    try:
        args, kwargs = submission(cell, matrix)
        cell.job_ref = await HOOKS[cell.service](cell.conn_id).asubmit_job(*args, **kwargs)
    except Exception as exc:
        cell.result.problems.append(f"submitting the job failed: {type(exc).__name__}: {exc}")


async def until(check: Callable[[], Awaitable[bool]], interval: float) -> None:
    """Ask the emulator (another process: there is nothing to await but its answers) until ``check``."""
    while True:
        if await check():
            return
        await asyncio.sleep(interval)


async def control_async(cell: Cell, admin: AsyncAdmin) -> None:
    """Mid-wait faults, and the release of an unknown status once the job really finished."""
    fault = cell.fault
    if fault.mid_wait is not None:

        async def polled() -> bool:
            return wait_started(cell, await admin.requests(cell.emu, cell.started))

        await until(polled, 0.2)
        cell.acting = True
        cell.rule_ids.append(await admin.add_fault(cell, fault.mid_wait))
        cell.acting = False
    if fault.release_unknown:
        rule_id = cell.rule_ids[0]

        async def finished() -> bool:
            job = await admin.call("GET", f"jobs/{cell.emu}/{cell.emu_job_id}")
            return bool(job["status"] == SUCCESS_STATUS[cell.emu])

        async def hits() -> int:
            return rule_hits((await admin.call("GET", "faults"))["faults"], rule_id)

        await until(finished, 0.2)
        hits_when_finished = await hits()

        async def two_more() -> bool:
            return await hits() >= hits_when_finished + 2

        await until(two_more, 0.1)
        cell.acting = True
        await admin.call("DELETE", f"faults/{rule_id}")
        cell.released_at = time.time()
        cell.acting = False


async def wait_async(cell: Cell, admin: AsyncAdmin) -> None:
    CURRENT_CELL.set(cell.result.key)
    started = time.monotonic()
    try:
        cell.started = time.time()
        for rule in cell.fault.rules:
            cell.rule_ids.append(await admin.add_fault(cell, rule))
        trigger = JobStatusTrigger(
            service=cell.service,
            conn_id=cell.conn_id,
            job_id=cell.job_ref,
            poll_interval=POLL_INTERVAL,
            deadline=time.time() + WAIT_TIMEOUT,
            max_consecutive_errors=MAX_ERRORS,
        )
        cell.trigger_kwargs = trigger.serialize()[1]
        control = None
        if cell.fault.mid_wait is not None or cell.fault.release_unknown:
            control = asyncio.ensure_future(control_async(cell, admin))
        try:
            cell.payload = await first_payload(trigger)
        finally:
            if control is not None:
                if not control.done() and not cell.acting:
                    control.cancel()  # still watching: the wait ended without it (checked later)
                (outcome,) = await asyncio.gather(control, return_exceptions=True)
                if isinstance(outcome, Exception):
                    cell.result.problems.append(f"controlling the fault failed: {outcome!r}")
    except Exception as exc:
        cell.result.problems.append(f"the wait raised {type(exc).__name__}: {exc}")
    cell.ended = time.time()
    cell.result.seconds = time.monotonic() - started


async def gather_in_batches(coros: list[Coroutine[Any, Any, None]]) -> None:
    """Start tasks a few at a time (debug mode records a stack per task: slow in bulk), await all."""
    tasks = []
    for i, coro in enumerate(coros):
        tasks.append(asyncio.ensure_future(coro))
        if i % 4 == 3:
            await asyncio.sleep(0)
    await asyncio.gather(*tasks)


async def deferrable_phase(cells: list[Cell], matrix: Matrix) -> None:
    admin = AsyncAdmin(matrix.emulator.url)
    lifetime = None
    try:
        plain = [c for c in cells if c.fault.token_lifetime is None]
        expiring = [c for c in cells if c.fault.token_lifetime is not None]
        await gather_in_batches([prepare_async(c, matrix) for c in plain])
        if expiring:
            # Only these cells' tokens are issued while the lifetime is short.
            lifetime = (await admin.call("GET", "config"))["symbl_token_lifetime"]
            await admin.call("PATCH", "config", {"symbl_token_lifetime": expiring[0].fault.token_lifetime})
            await gather_in_batches([prepare_async(c, matrix) for c in expiring])
        await gather_in_batches([wait_async(c, admin) for c in cells if c.job_ref])
    finally:
        if lifetime is not None:
            await admin.call("PATCH", "config", {"symbl_token_lifetime": lifetime})
        await admin.aclose()


def run_trigger_loop(factory: Callable[[], Awaitable[None]]) -> LoopReport:
    """Run the deferrable phase in a watched debug-mode loop; its slow callbacks become matrix problems."""

    async def phase() -> None:
        try:
            await asyncio.wait_for(factory(), PHASE_TIMEOUT)
        finally:
            await close_async_clients()

    _, report = run_watched(
        phase,
        cpu_limit=SLOW_CALLBACK_CPU,
        blocked_limit=BLOCKED_CALLBACK,
        wall_report=ASYNCIO_SLOW_CALLBACK,
        check=False,
    )
    return report


def resume(cell: Cell) -> None:
    """Hand the trigger's event to the sensor, as the worker does after a deferral."""
    token = CURRENT_CELL.set(cell.result.key)
    try:
        sensor = make_sensor(cell, deferrable=True)
        try:
            cell.outcome = sensor.resume_execution("execute_complete", {"event": cell.payload}, context={})  # type: ignore[arg-type]
        except Exception as exc:
            cell.outcome = exc
    finally:
        CURRENT_CELL.reset(token)


# -- the sync path --------------------------------------------------------------------------------
class SyncAdmin:
    """The admin API from one cell's thread (its own client)."""

    def __init__(self, url: str) -> None:
        self.client = httpx.Client(base_url=url, trust_env=False, timeout=30.0)

    def call(self, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None) -> Any:
        resp = self.client.request(method, f"/_admin/{path}", json=body, params=params)
        resp.raise_for_status()
        return resp.json()

    def add_fault(self, cell: Cell, rule: dict[str, Any]) -> str:
        return str(
            self.call("POST", "faults", {"service": cell.emu, "credential": cell.identity, **rule})["id"]
        )

    def close(self) -> None:
        self.client.close()


def prepare_sync(cell: Cell, matrix: Matrix) -> None:
    token = CURRENT_CELL.set(cell.result.key)
    try:
        args, kwargs = submission(cell, matrix)
        cell.job_ref = HOOKS[cell.service](cell.conn_id).submit_job(*args, **kwargs)
    except Exception as exc:
        cell.result.problems.append(f"submitting the job failed: {type(exc).__name__}: {exc}")
    finally:
        CURRENT_CELL.reset(token)


def wait_sync(cell: Cell, matrix: Matrix) -> None:
    """Poke every poll interval until the sensor is done or raises; mid-wait faults between pokes."""
    token = CURRENT_CELL.set(cell.result.key)
    admin = SyncAdmin(matrix.emulator.url)
    started = time.monotonic()
    fault = cell.fault
    try:
        cell.started = time.time()
        for rule in fault.rules:
            cell.rule_ids.append(admin.add_fault(cell, rule))
        sensor = make_sensor(cell, deferrable=False)
        injected = fault.mid_wait is None
        released = not fault.release_unknown
        hits_when_finished: int | None = None
        while True:
            try:
                poked = sensor.poke(context={})  # type: ignore[arg-type]
            except Exception as exc:
                cell.outcome = exc
                break
            if poked.is_done:
                cell.outcome = poked.xcom_value
                break
            if not injected:
                rows = admin.call("GET", "requests", params={"service": cell.emu, "since": cell.started})
                if wait_started(cell, rows["requests"]):
                    cell.rule_ids.append(admin.add_fault(cell, fault.mid_wait or {}))
                    injected = True
            if not released:
                rule_id = cell.rule_ids[0]
                if hits_when_finished is None:
                    job = admin.call("GET", f"jobs/{cell.emu}/{cell.emu_job_id}")
                    if job["status"] == SUCCESS_STATUS[cell.emu]:
                        hits_when_finished = rule_hits(admin.call("GET", "faults")["faults"], rule_id)
                elif rule_hits(admin.call("GET", "faults")["faults"], rule_id) >= hits_when_finished + 2:
                    admin.call("DELETE", f"faults/{rule_id}")
                    cell.released_at = time.time()
                    released = True
            if time.monotonic() - started > WAIT_TIMEOUT:
                cell.outcome = TimeoutError(f"the sensor was still poking after {WAIT_TIMEOUT:g}s")
                break
            time.sleep(POLL_INTERVAL)
    except Exception as exc:
        cell.result.problems.append(f"the wait raised {type(exc).__name__}: {exc}")
    finally:
        cell.ended = time.time()
        cell.result.seconds = time.monotonic() - started
        admin.close()
        CURRENT_CELL.reset(token)


def sync_phase(cells: list[Cell], matrix: Matrix) -> None:
    plain = [c for c in cells if c.fault.token_lifetime is None]
    expiring = [c for c in cells if c.fault.token_lifetime is not None]

    def expiring_cell(cell: Cell) -> None:
        prepare_sync(cell, matrix)  # its token gets the short lifetime; the wait starts at once
        if cell.job_ref:
            wait_sync(cell, matrix)

    with ThreadPoolExecutor(max_workers=len(cells), thread_name_prefix="fault-matrix") as pool:
        list(pool.map(lambda c: prepare_sync(c, matrix), plain))
        lifetime = matrix.emulator.get_config()["symbl_token_lifetime"]
        if expiring:
            matrix.emulator.configure(symbl_token_lifetime=expiring[0].fault.token_lifetime)
        try:
            waits = [pool.submit(wait_sync, c, matrix) for c in plain if c.job_ref]
            waits += [pool.submit(expiring_cell, c) for c in expiring]
            for future in waits:
                future.result()
        finally:
            matrix.emulator.configure(symbl_token_lifetime=lifetime)


# -- checks after the waits -----------------------------------------------------------------------
def check_cell(
    cell: Cell, rows: list[dict[str, Any]], rules: list[dict[str, Any]], logs: LogCapture, secrets: list[str]
) -> None:
    result, fault = cell.result, cell.fault
    if not cell.job_ref:
        return
    check_outcome(result, fault, cell.outcome, job_ref=cell.job_ref, conn_id=cell.conn_id, secret=cell.secret)
    if cell.path == "deferrable":
        text = json.dumps(cell.payload)
        if cell.secret in text or cell.secret in json.dumps(cell.trigger_kwargs):
            result.problems.append("the trigger's kwargs or event contain the secret")
    own = check_requests(
        result, fault, [r for r in rows if r["credential"] == cell.identity], since=cell.started
    )
    # the fault really happened during the wait
    for rule_id, rule in zip(
        cell.rule_ids, [*fault.rules, *([fault.mid_wait] if fault.mid_wait else [])], strict=False
    ):
        hits = rule_hits(rules, rule_id)
        if "count" in rule and hits != rule["count"]:
            result.problems.append(f"the {rule['kind']} fault fired {hits} of {rule['count']} times")
        elif "count" not in rule and not fault.release_unknown and hits < 1:
            result.problems.append(f"the {rule['kind']} fault never fired")
    if fault.mid_wait is not None and len(cell.rule_ids) < len(fault.rules) + 1:
        result.problems.append("the wait ended before the mid-wait fault could be injected")
    if fault.release_unknown:
        if cell.released_at is None or cell.ended < cell.released_at:
            result.problems.append("the wait ended while the service still reported an unknown status")
        mine = [r for r in logs.records if r.cell == result.key]
        if not any("undocumented status" in r.message for r in mine):
            result.problems.append("the unknown status was not logged")
        result.notes.append("unknown status served after the job finished; wait ended after it cleared")
    if fault.token_lifetime is not None:
        exchanges = sum(1 for r in own if r["route"] == TOKEN_ROUTE and r["at"] >= cell.started)
        rejected = sum(1 for r in own if r["status"] == 401 and r["at"] >= cell.started)
        result.notes.append(f"{exchanges} token exchanges, {rejected} expired-token 401s during the wait")
        if exchanges < 2:
            result.problems.append(
                f"only {exchanges} token exchanges during the wait: the token never expired"
            )
    for record in logs.records:
        if record.cell == result.key:
            why = bad_record(record, secrets)
            if why:
                result.problems.append(why)


def global_problems(logs: LogCapture, cells: list[Cell], emulator_log: str) -> list[str]:
    problems = []
    secrets = [c.secret for c in cells]
    for record in logs.records:
        if record.cell is None and not is_wall_report(record.logger, record.message):  # see LoopReport
            why = bad_record(record, secrets)
            if why:
                problems.append(why)
    if "Traceback" in emulator_log:
        start = emulator_log.index("Traceback")
        problems.append(f"the emulator logged a traceback: {emulator_log[start : start + 500]}")
    return problems


def test_fault_matrix(
    emulator: Any, jobstatus_s3: Any, monkeypatch: pytest.MonkeyPatch, request: Any
) -> None:
    matrix = Matrix(
        emulator, jobstatus_s3.endpoint_url, jobstatus_s3.create_bucket(f"fm-{uuid.uuid4().hex[:8]}")
    )
    pairs = [(service, fault) for service in SERVICES for fault in FAULTS if service in fault.services]
    deferrable = [define_cell(monkeypatch, matrix, s, f, "deferrable") for s, f in pairs]
    sync = [define_cell(monkeypatch, matrix, s, f, "sync") for s, f in pairs]
    cells = deferrable + sync
    log_offset = emulator.log_path.stat().st_size
    logs = LogCapture()
    started = time.monotonic()
    with logs.installed():
        loop_report = run_trigger_loop(lambda: deferrable_phase(deferrable, matrix))
        for cell in deferrable:
            resume(cell)
        sync_phase(sync, matrix)
    total = time.monotonic() - started

    rules = emulator.faults()
    rows_by_service = {name: emulator.requests(service=name) for name in set(EMULATOR_NAME.values())}
    for cell in cells:
        check_cell(cell, rows_by_service[cell.emu], rules, logs, [c.secret for c in cells])
    with emulator.log_path.open(errors="replace") as handle:
        handle.seek(log_offset)
        problems = global_problems(logs, cells, handle.read())
    problems += [f"a callback of the trigger loop used {slow.describe()}" for slow in loop_report.slow]
    reported = loop_report.wall_reports
    loop_figures = (
        f"trigger loop: {loop_report.callbacks} callbacks, most CPU {loop_report.max_cpu * 1000:.1f} ms "
        f"(limit {SLOW_CALLBACK_CPU * 1000:.0f}), most blocked "
        f"{f'{loop_report.max_blocked * 1000:.1f} ms' if loop_report.blocked_measured else 'not measured'} "
        f"(limit {BLOCKED_CALLBACK * 1000:.0f}), longest wall {loop_report.max_wall * 1000:.0f} ms "
        f"({reported} over {ASYNCIO_SLOW_CALLBACK * 1000:.0f} ms wall on this shared machine)"
    )

    results = [c.result for c in cells]
    text = render_markdown(results, total_seconds=total, global_problems=problems, loop=loop_figures)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "fault_matrix.md").write_text(text + "\n")
    report = {
        "seconds": round(total, 2),
        "trigger_loop": {
            "callbacks": loop_report.callbacks,
            "max_cpu_s": round(loop_report.max_cpu, 4),
            "max_blocked_s": round(loop_report.max_blocked, 4),
            "max_wall_s": round(loop_report.max_wall, 4),
            "asyncio_slow_callback_reports": reported,
        },
        "global_problems": problems,
        "cells": [r.as_json() for r in results],
    }
    (ARTIFACTS / "fault_matrix.json").write_text(json.dumps(report, indent=2) + "\n")
    request.config.pluginmanager.register(MatrixSummary(text), f"fault-matrix-{uuid.uuid4().hex}")

    failed = [f"{r.key}: {'; '.join(r.problems)}" for r in results if not r.ok]
    failed += [f"matrix: {p}" for p in problems]
    assert not failed, f"{len(failed)} fault-matrix cells failed:\n" + "\n".join(failed)


class MatrixSummary:
    """Prints the matrix in pytest's terminal summary, even with output capture on."""

    def __init__(self, text: str) -> None:
        self.text = text

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        terminalreporter.write_sep("=", "fault matrix (tests/artifacts/fault_matrix/fault_matrix.md)")
        terminalreporter.write_line(self.text)
