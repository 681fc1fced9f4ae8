"""The fault matrix's parts: its cells, log capture per cell, request-rate analysis and the report.

Used by ``tests/integration/test_fault_matrix.py``. A *cell* is one service x one fault x one path
(``deferrable``: `JobStatusTrigger` in an asyncio loop, its event handed to the sensor's resume
method; ``sync``: the sensor's ``poke``). Every cell has its own emulator account, so faults (scoped
by credential) and request counts never mix between cells that run at the same time.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from airflow_jobstatus import exceptions
from airflow_jobstatus.exceptions import JobStatusError

SERVICES = ("daily", "wasabi_air", "symbl", "deepaffects")
EMULATOR_NAME = {"daily": "daily", "wasabi_air": "wasabi", "symbl": "symbl", "deepaffects": "deepaffects"}
SUCCESS_STATUS = {
    "daily": "finished",
    "wasabi": "completed",
    "symbl": "completed",
    "deepaffects": "Completed",
}
TOKEN_ROUTE = "/oauth2/token:generate"

RATE_LIMIT = 2.0
"""``max_requests_per_second`` of every connection: low, so that retries and polls press against it."""
POLL_INTERVAL = 0.5
"""The trigger's minimum poll interval."""
REQUEST_TIMEOUT = 2.0
MAX_RETRIES = 2
"""HTTP-level retries per call: small, so that long storms also go through the poll hub's error budget."""
MAX_ERRORS = 6
"""``max_consecutive_errors``: more than any transient fault below causes in a row."""
WAIT_TIMEOUT = 45.0
JITTER_TOLERANCE = 0.35
"""Seconds the arrival gap between two requests may fall short of 1/limit. The emulator stamps a
request when its event loop gets to it, which lags by up to a few hundred ms on a loaded machine;
a missing or bypassed limiter shows gaps of a few milliseconds."""
RETRY_AFTER_TOLERANCE = 0.05


@dataclass(frozen=True)
class Fault:
    """One column of the matrix: what is injected and what the wait must end with."""

    name: str
    title: str
    rules: tuple[dict[str, Any], ...] = ()
    """Fault rules added (scoped to the cell's credential) just before the wait starts."""
    mid_wait: dict[str, Any] | None = None
    """A rule added once the wait has polled the job successfully at least once."""
    release_unknown: bool = False
    """``unknown_status``: the rule is deleted only after the job is finished at the emulator and two
    more polls got the unknown status, so the wait can only end after that."""
    expect: str = "succeeded"
    """``succeeded`` (the job's real final state) or the name of the typed error."""
    duration: float = 4.0
    """Emulator job duration (``emu_duration``) in seconds."""
    services: tuple[str, ...] = SERVICES
    token_lifetime: float | None = None
    """Symbl token lifetime while the cell's token is issued (``PATCH /_admin/config``)."""
    retry_after_min: float | None = None
    """The least gap after a 429 that honours its Retry-After (http-date has 1-second resolution)."""

    @property
    def counted_rules(self) -> tuple[dict[str, Any], ...]:
        return tuple(r for r in self.rules if "count" in r)


FAULTS: tuple[Fault, ...] = (
    Fault(
        "429_seconds",
        "429 storm, Retry-After seconds",
        rules=({"kind": "rate_limit", "retry_after": 1, "retry_after_form": "seconds", "count": 4},),
        retry_after_min=1.0,
    ),
    Fault(
        "429_http_date",
        "429 storm, Retry-After HTTP-date",
        rules=({"kind": "rate_limit", "retry_after": 2, "retry_after_form": "http-date", "count": 3},),
        retry_after_min=1.0,  # the date has whole seconds: 2 s ahead is between 1 and 2 s away
    ),
    Fault(
        "5xx_burst",
        "5xx burst",
        rules=(
            {"kind": "status", "status": 503, "count": 2},
            {"kind": "status", "status": 500, "count": 1},
            {"kind": "status", "status": 502, "count": 2},
        ),
    ),
    Fault("reset", "connection resets", rules=({"kind": "drop", "count": 3},)),
    Fault(
        "read_timeout",
        "read timeouts",
        rules=({"kind": "slow", "delay": REQUEST_TIMEOUT + 1.5, "count": 2},),
    ),
    Fault("malformed", "malformed JSON", rules=({"kind": "malformed", "count": 2},)),
    Fault("truncated", "truncated JSON", rules=({"kind": "truncated", "count": 2},)),
    Fault(
        "unknown_status",
        "unknown status",
        rules=({"kind": "unknown_status", "value": "on_hold", "method": "GET"},),
        release_unknown=True,
        duration=3.0,
    ),
    Fault(
        "vanish", "job vanishes mid-wait", mid_wait={"kind": "vanish"}, expect="NotFoundError", duration=60
    ),
    Fault(
        "revoke",
        "credentials revoked mid-wait",
        mid_wait={"kind": "revoke"},
        expect="AuthenticationError",
        duration=60,
    ),
    Fault("token_expiry", "token expiry", services=("symbl",), token_lifetime=1.5, duration=8.0),
)

EXPECTED_HINT = {
    "NotFoundError": "Check the job id",
    "AuthenticationError": "Check the credentials",
}


# -- results -------------------------------------------------------------------------------------
@dataclass
class CellResult:
    service: str
    fault: str
    path: str
    expected: str
    outcome: str = "not run"
    requests: int = 0
    peak_rate: int = 0
    """Most requests the emulator saw in any 1-second window."""
    min_gap: float | None = None
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    timeline: list[tuple[float, str, str, int]] = field(default_factory=list)
    """Every request of the account: (seconds since the wait started, method, route, status)."""

    @property
    def key(self) -> str:
        return f"{self.service}/{self.fault}/{self.path}"

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_json(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "fault": self.fault,
            "path": self.path,
            "ok": self.ok,
            "expected": self.expected,
            "outcome": self.outcome,
            "requests": self.requests,
            "peak_requests_per_1s": self.peak_rate,
            "rate_limit": RATE_LIMIT,
            "min_gap_s": None if self.min_gap is None else round(self.min_gap, 3),
            "seconds": round(self.seconds, 2),
            "problems": self.problems,
            "notes": self.notes,
            "timeline": [[round(t, 3), m, r, s] for t, m, r, s in self.timeline],
        }


def check_outcome(
    result: CellResult, fault: Fault, outcome: Any, *, job_ref: str, conn_id: str, secret: str
) -> None:
    """The wait ended as the fault requires: the job's real final state, or the right typed error."""
    from airflow_jobstatus.models import JobStatus

    if isinstance(outcome, BaseException):
        kind = type(outcome).__name__
        text = str(outcome)
        result.outcome = f"{kind}: {text[:160]}"
        if fault.expect == "succeeded":
            result.problems.append(f"expected the job's final state, got {kind}: {text[:300]}")
            return
        expected_cls = getattr(exceptions, fault.expect)
        if not isinstance(outcome, expected_cls):
            result.problems.append(f"expected {fault.expect}, got {kind}: {text[:300]}")
        if EXPECTED_HINT[fault.expect] not in text:
            result.problems.append(f"the message does not say how to fix it: {text[:300]}")
        if fault.expect == "NotFoundError" and job_ref not in text:
            result.problems.append(f"the message does not name the job {job_ref}: {text[:300]}")
        if fault.expect == "AuthenticationError" and conn_id not in text:
            result.problems.append(f"the message does not name the connection {conn_id}: {text[:300]}")
        if secret in text or secret in repr(outcome):
            result.problems.append("the error's message or repr contains the secret")
        return
    if fault.expect != "succeeded":
        result.outcome = f"returned {str(outcome)[:80]}"
        result.problems.append(f"expected {fault.expect}, but the wait returned a value")
        return
    try:
        status = JobStatus.model_validate(outcome)
    except Exception as exc:
        result.outcome = f"returned {str(outcome)[:80]}"
        result.problems.append(f"the XCom value is not a JobStatus: {exc}")
        return
    result.outcome = status.state.value
    if not status.succeeded or status.job_id != job_ref:
        result.problems.append(f"expected job {job_ref} succeeded, got {status.job_id} {status.state.value}")
    if secret in json.dumps(outcome):
        result.problems.append("the XCom value contains the secret")


def check_requests(
    result: CellResult, fault: Fault, rows: list[dict[str, Any]], *, since: float
) -> list[dict[str, Any]]:
    """Rate limit, Retry-After and counts from the emulator's request log (this cell's account).

    The checks cover the wait (from ``since``); the submission before it is in the timeline only.
    """
    rows = sorted(rows, key=lambda r: r["at"])
    result.timeline = [(r["at"] - since, r["method"], r["route"], r["status"]) for r in rows]
    rows = [r for r in rows if r["at"] >= since]
    times = [r["at"] for r in rows]
    result.requests = len(times)
    result.peak_rate = peak_per_second(times)
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    result.min_gap = min(gaps) if gaps else None
    # Evenly spaced slots put at most limit+1 requests into a closed 1 s window; and no two requests
    # may be closer than 1/limit, but for arrival jitter.
    if result.peak_rate > RATE_LIMIT + 1:
        result.problems.append(f"{result.peak_rate} requests within 1 s, limit {RATE_LIMIT:g}/s")
    if result.min_gap is not None and result.min_gap < 1 / RATE_LIMIT - JITTER_TOLERANCE:
        result.problems.append(
            f"two requests {result.min_gap * 1000:.0f} ms apart, limit {RATE_LIMIT:g}/s "
            f"({1000 / RATE_LIMIT:.0f} ms spacing)"
        )
    if fault.retry_after_min is not None:
        for before, after in zip(rows, rows[1:], strict=False):
            if (
                before["status"] == 429
                and after["at"] - before["at"] < fault.retry_after_min - RETRY_AFTER_TOLERANCE
            ):
                result.problems.append(
                    f"a request {after['at'] - before['at']:.2f}s after a 429 ignored its Retry-After "
                    f"(at least {fault.retry_after_min:g}s)"
                )
    statuses: dict[int, int] = {}
    for row in rows:
        statuses[row["status"]] = statuses.get(row["status"], 0) + 1
    result.notes.append("statuses " + ", ".join(f"{k or 'dropped'}x{v}" for k, v in sorted(statuses.items())))
    return rows


def peak_per_second(times: list[float]) -> int:
    """The most requests in any half-open 1-second window starting at a request."""
    peak, j = 0, 0
    for i, start in enumerate(times):
        j = max(j, i)
        while j < len(times) and times[j] < start + 1.0:
            j += 1
        peak = max(peak, j - i)
    return peak


# -- log capture ----------------------------------------------------------------------------------
CURRENT_CELL: contextvars.ContextVar[str | None] = contextvars.ContextVar("fault_matrix_cell", default=None)
"""The cell a log record belongs to: set in each cell's task or thread; tasks inherit it."""


@dataclass
class Captured:
    cell: str | None
    logger: str
    level: str
    message: str
    exc_type: type[BaseException] | None
    exc_text: str


class LogCapture(logging.Handler):
    """Every record at DEBUG from every logger (stdlib and Airflow's structlog), tagged with its cell."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[Captured] = []
        self._lock_records = threading.Lock()

    # stdlib
    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception as exc:  # a broken format string is itself worth seeing
            message = f"<unformattable {record.msg!r}: {exc}>"
        exc_type = record.exc_info[0] if record.exc_info else None
        exc_text = ""
        if record.exc_info:
            exc_text = logging.Formatter().formatException(record.exc_info)
        if record.stack_info:
            exc_text += record.stack_info
        self._add(Captured(CURRENT_CELL.get(), record.name, record.levelname, message, exc_type, exc_text))

    # structlog (Airflow's task and trigger loggers do not go through stdlib handlers)
    def structlog_processor(self, logger: Any, method: str, event: dict[str, Any]) -> dict[str, Any]:
        message = str(event.get("event", ""))
        args = event.get("positional_args")
        if args:
            try:
                message = message % tuple(args)
            except Exception:
                message = f"{message} {args!r}"
        exc_info = event.get("exc_info")
        if exc_info is True:
            exc_info = sys.exc_info()
        elif isinstance(exc_info, BaseException):
            exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
        exc_type = exc_info[0] if isinstance(exc_info, tuple) and exc_info[0] is not None else None
        exc_text = ""
        if exc_type is not None:
            exc_text = logging.Formatter().formatException(exc_info)  # type: ignore[arg-type]
        name = str(event.get("logger") or getattr(logger, "name", "") or "structlog")
        self._add(Captured(CURRENT_CELL.get(), name, method.upper(), message, exc_type, exc_text))
        return event

    def _add(self, captured: Captured) -> None:
        with self._lock_records:
            self.records.append(captured)

    @contextmanager
    def installed(self) -> Iterator[LogCapture]:
        import structlog

        root = logging.getLogger()
        old_level = root.level
        root.addHandler(self)
        root.setLevel(logging.DEBUG)
        # loggers that do not propagate to the root get the handler too
        isolated = [
            logger
            for logger in logging.root.manager.loggerDict.values()
            if isinstance(logger, logging.Logger) and not logger.propagate
        ]
        for logger in isolated:
            logger.addHandler(self)
        processors = structlog.get_config()["processors"]
        processors.insert(0, self.structlog_processor)  # in place: cached loggers share this list
        try:
            yield self
        finally:
            processors.remove(self.structlog_processor)
            for logger in isolated:
                logger.removeHandler(self)
            root.removeHandler(self)
            root.setLevel(old_level)


def bad_record(record: Captured, secrets: list[str]) -> str | None:
    """Why a record must fail its cell, or None."""
    if record.exc_type is not None and not issubclass(record.exc_type, JobStatusError):
        return f"{record.logger} logged a traceback of {record.exc_type.__name__}: {record.message[:200]}"
    # a typed error's own traceback (exc_info) is allowed; traceback text anywhere else is not
    if "Traceback" in record.message or ("Traceback" in record.exc_text and record.exc_type is None):
        return f"{record.logger} logged a traceback: {record.message[:200]}"
    if record.logger.startswith("asyncio") and record.level in ("ERROR", "CRITICAL"):
        return f"asyncio error: {record.message[:200]}"
    for secret in secrets:
        if secret in record.message or secret in record.exc_text:
            return f"{record.logger} logged a secret"
    return None


# -- the report ----------------------------------------------------------------------------------
def cell_text(result: CellResult | None) -> str:
    if result is None:
        return "n/a"
    mark = "PASS" if result.ok else "**FAIL**"
    outcome = result.outcome.split(":", 1)[0]
    gap = "-" if result.min_gap is None else f"{result.min_gap:.2f}s"
    return (
        f"{mark} {outcome} · {result.requests} req · peak {result.peak_rate}/s (limit {RATE_LIMIT:g}, "
        f"min gap {gap}) · {result.seconds:.1f} s"
    )


def render_markdown(
    results: list[CellResult], *, total_seconds: float, global_problems: list[str], loop: str
) -> str:
    by_key = {(r.service, r.fault, r.path): r for r in results}
    lines = [
        "# Fault matrix",
        "",
        f"Every service x every emulator fault, each wait through the provider's own path. Connections: "
        f"max_requests_per_second={RATE_LIMIT:g}, poll_interval={POLL_INTERVAL:g}s, "
        f"request_timeout={REQUEST_TIMEOUT:g}s, max_retries={MAX_RETRIES}, max_consecutive_errors={MAX_ERRORS}. "
        f"Each cell: outcome · requests the emulator counted during the wait · most requests in any "
        f"1 s window (limit, least gap between two requests) · seconds the wait took. "
        f"Whole matrix: {total_seconds:.1f} s; {sum(r.ok for r in results)}/{len(results)} cells pass; "
        f"{loop}.",
        "",
    ]
    for path, title in (
        ("deferrable", "Deferrable path: JobStatusTrigger in a debug asyncio loop, event → sensor resume"),
        ("sync", "Sync path: sensor poke"),
    ):
        lines += [f"## {title}", ""]
        lines.append("| service | " + " | ".join(f.title for f in FAULTS) + " |")
        lines.append("|---" * (len(FAULTS) + 1) + "|")
        for service in SERVICES:
            cells = [cell_text(by_key.get((service, f.name, path))) for f in FAULTS]
            lines.append(f"| {service} | " + " | ".join(cells) + " |")
        lines.append("")
    failed = [r for r in results if not r.ok]
    if failed or global_problems:
        lines += ["## Failures", ""]
        lines += [f"- {r.key}: {'; '.join(r.problems)}" for r in failed]
        lines += [f"- matrix: {p}" for p in global_problems]
        lines.append("")
    return "\n".join(lines)
