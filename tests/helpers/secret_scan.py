"""The secret-canary scan: find the session's canary anywhere a user or operator can read it.

Every secret the test suite puts into a connection carries :data:`tests.helpers.canary.CANARY`, so
one substring search finds any leak. What is scanned:

* files: every file under each registered Airflow home's ``logs/`` and every ``AirflowStack``'s
  component logs;
* databases: every row of every table of each registered home's metadata database (XComs,
  rendered fields, trigger rows with their kwargs decrypted by Airflow itself, task instance notes
  and ``next_kwargs``, dag run conf, the audit ``log`` table, serialized DAGs, ...), except the
  columns that are the designated, encrypted secret stores (connection passwords and extras,
  variable values);
* log records: every record emitted in the pytest process (stdlib ``logging`` and structlog's
  rendered lines) except the test harness's own loggers;
* exceptions: the message, repr and attributes of every ``JobStatusError`` created in the session.

Homes are registered when they are created (:func:`register_airflow_home`, :func:`register_stack`);
records and exceptions are checked as they are emitted (:func:`install_log_capture`,
:func:`install_exception_capture`); :meth:`SessionRegistry.scan` does the rest at the end.
A database that lives only as long as its stack (a throwaway PostgreSQL database) is scanned right
after the stack stops, in a subprocess with the stack's own environment, so the fernet key the
database was written with decrypts its trigger rows.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import sys
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
PLACEHOLDER = "<CANARY>"
# The test harness may handle secrets in clear (the emulator checks them): not what users read.
HARNESS_LOGGERS = ("airflow_jobstatus.testing", "tests")
# Columns that are where secrets belong (encrypted by Airflow's fernet key, never shown in clear).
SECRET_STORES: Mapping[str, frozenset[str]] = {
    "connection": frozenset({"password", "extra"}),
    "connection_test_request": frozenset({"password", "extra"}),
    "variable": frozenset({"val"}),
}
MAX_HITS_KEPT = 200  # every hit is counted; the first ones are kept with their location
_EXCERPT = 70  # characters kept on each side of a hit


@dataclass(frozen=True)
class Hit:
    """One occurrence of the canary: what kind of place, where exactly, and the text around it."""

    kind: str  # "file" | "database" | "log record" | "exception"
    where: str
    excerpt: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.where}: {self.excerpt}"


@dataclass
class ScanReport:
    """What was scanned and what was found; merged across targets and processes."""

    files: int = 0
    bytes: int = 0
    log_records: int = 0
    exceptions: int = 0
    rows: dict[str, dict[str, int]] = field(default_factory=dict)  # database label -> table -> rows
    hit_count: int = 0
    hits: list[Hit] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # places that could not be scanned
    targets: list[str] = field(default_factory=list)

    @property
    def total_rows(self) -> int:
        return sum(sum(tables.values()) for tables in self.rows.values())

    def add_hit(self, hit: Hit) -> None:
        self.hit_count += 1
        if len(self.hits) < MAX_HITS_KEPT:
            self.hits.append(hit)

    def merge(self, other: ScanReport) -> None:
        self.files += other.files
        self.bytes += other.bytes
        self.log_records += other.log_records
        self.exceptions += other.exceptions
        for label, tables in other.rows.items():
            self.rows.setdefault(label, {}).update(tables)
        for hit in other.hits:
            self.add_hit(hit)
        self.hit_count += other.hit_count - len(other.hits)
        self.errors.extend(other.errors)
        self.targets.extend(other.targets)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["total_rows"] = self.total_rows
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ScanReport:
        report = cls(
            files=data["files"],
            bytes=data["bytes"],
            log_records=data["log_records"],
            exceptions=data["exceptions"],
            rows={k: dict(v) for k, v in data["rows"].items()},
            errors=list(data["errors"]),
            targets=list(data["targets"]),
        )
        report.hits = [Hit(**hit) for hit in data["hits"]]
        report.hit_count = data["hit_count"]
        return report

    def summary(self) -> str:
        tables: dict[str, int] = {}
        for per_db in self.rows.values():
            for table, count in per_db.items():
                tables[table] = tables.get(table, 0) + count
        busiest = ", ".join(f"{t} {n}" for t, n in sorted(tables.items(), key=lambda kv: -kv[1]) if n)
        lines = [
            f"secret canary scan: {self.hit_count} hit(s), {len(self.errors)} error(s)",
            f"  files: {self.files} ({self.bytes:,} bytes)",
            f"  log records: {self.log_records}",
            f"  exceptions (JobStatusError): {self.exceptions}",
            f"  database rows: {self.total_rows} in {len(self.rows)} database(s): {busiest or 'none'}",
            f"  targets: {'; '.join(self.targets) or 'none'}",
        ]
        lines += [f"  HIT {hit}" for hit in self.hits]
        lines += [f"  ERROR {error}" for error in self.errors]
        return "\n".join(lines)


class Scanner:
    """Searches texts for one canary and records each hit with its location in a report."""

    def __init__(self, canary: str, report: ScanReport | None = None) -> None:
        if len(canary) < 8:
            raise ValueError("a canary shorter than 8 characters would match ordinary text")
        self.canary = canary
        self.report = report if report is not None else ScanReport()

    def excerpt(self, text: str, index: int) -> str:
        start = max(0, index - _EXCERPT)
        end = index + len(self.canary) + _EXCERPT
        window = text[start:end].replace(self.canary, PLACEHOLDER)
        return ("..." if start else "") + " ".join(window.split()) + ("..." if end < len(text) else "")

    def text(self, text: str, kind: str, where: str) -> bool:
        """Record a hit if ``text`` holds the canary; true when it does."""
        index = text.find(self.canary)
        if index < 0:
            return False
        self.report.add_hit(Hit(kind, where, self.excerpt(text, index)))
        return True

    # ------------------------------------------------------------------ files

    def file(self, path: Path) -> None:
        data = path.read_bytes()
        self.report.files += 1
        self.report.bytes += len(data)
        if self.canary.encode() not in data:
            return
        for number, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), start=1):
            self.text(line, "file", f"{path}:{number}")

    def tree(self, root: Path) -> None:
        """Every regular file under ``root`` (a missing root is nothing to scan, not an error)."""
        if not root.is_dir():
            return
        for path in sorted(root.rglob("*")):
            if path.is_file() and not path.is_symlink():
                try:
                    self.file(path)
                except OSError as exc:
                    self.report.errors.append(f"{path}: unreadable ({type(exc).__name__})")

    # ------------------------------------------------------------------ databases

    def database(self, url: str, label: str, decrypt: Callable[[str], Any] | None = None) -> None:
        """Every row of every table; ``decrypt`` turns a trigger row's stored kwargs into its kwargs."""
        from sqlalchemy import create_engine, inspect
        from sqlalchemy.pool import NullPool

        if url.startswith("sqlite:///"):
            path = Path(url.removeprefix("sqlite:///").split("?", 1)[0])
            if not path.is_file():  # never migrated: nothing was written
                self.report.rows.setdefault(label, {})
                return
        engine = create_engine(url, poolclass=NullPool)
        try:
            inspector = inspect(engine)
            quote = engine.dialect.identifier_preparer.quote
            with engine.connect() as conn:
                for table in sorted(inspector.get_table_names()):
                    key = inspector.get_pk_constraint(table).get("constrained_columns") or []
                    result = conn.exec_driver_sql(
                        f"SELECT * FROM {quote(table)}"
                    )  # a reflected table name, quoted
                    columns = list(result.keys())
                    count = 0
                    for row in result:
                        count += 1
                        values = dict(zip(columns, row, strict=True))
                        self._row(table, values, key or columns[:1], label, decrypt)
                    self.report.rows.setdefault(label, {})[table] = count
        finally:
            engine.dispose()

    def _row(
        self,
        table: str,
        values: Mapping[str, Any],
        key: Iterable[str],
        label: str,
        decrypt: Callable[[str], Any] | None,
    ) -> None:
        row_id = ",".join(f"{k}={values.get(k)}" for k in key)
        skipped = SECRET_STORES.get(table, frozenset())
        for column, value in values.items():
            if column in skipped or value is None:
                continue
            where = f"{label} table {table} row [{row_id}] column {column}"
            self.text(_as_text(value), "database", where)
            if table == "trigger" and column == "kwargs" and decrypt is not None:
                try:
                    kwargs = decrypt(str(value))
                except Exception as exc:  # an unreadable trigger row cannot be vouched for
                    self.report.errors.append(f"{where}: could not decrypt ({type(exc).__name__})")
                else:
                    self.text(repr(kwargs), "database", f"{where} (decrypted)")

    # ------------------------------------------------------------------ records and exceptions

    def record(self, text: str, logger_name: str) -> None:
        self.report.log_records += 1
        self.text(text, "log record", f"logger {logger_name}")

    def exception(self, exc: BaseException) -> None:
        self.report.exceptions += 1
        name = type(exc).__name__
        for part, text in (("str", str(exc)), ("repr", repr(exc)), ("attributes", repr(vars(exc)))):
            if self.text(text, "exception", f"{name} {part}"):
                return


def _as_text(value: Any) -> str:
    if isinstance(value, memoryview):
        value = value.tobytes()
    if isinstance(value, bytes):
        try:  # serialized DAGs and similar blobs are zlib-compressed JSON
            value = zlib.decompress(value)
        except zlib.error:
            pass
        return value.decode("utf-8", errors="replace")
    if isinstance(value, dict | list):
        return json.dumps(value, default=str, ensure_ascii=False)
    return str(value)


# ---------------------------------------------------------------------- what the session registers


@dataclass
class AirflowHome:
    """An Airflow home used in the session: its log folders and its metadata database.

    ``env`` is the environment its processes ran with (``None``: this pytest process), so the
    database scan reads the same configuration (connection URL, fernet key) they wrote with.
    """

    label: str
    home: Path
    log_dirs: list[Path]
    env: dict[str, str] | None = None
    database_report: ScanReport | None = None  # set once scanned (e.g. when its stack stopped)


class SessionRegistry:
    """Everything registered for the session's scan, and the running log/exception checks."""

    def __init__(self, canary: str) -> None:
        self.canary = canary
        self.homes: list[AirflowHome] = []
        self.live = ScanReport()  # log records and exceptions, checked as they happen
        self._live = Scanner(canary, self.live)
        self._lock = threading.Lock()
        self.last_report: ScanReport | None = None
        self._probe: tuple[str, set[str]] | None = None

    def add_home(self, home: AirflowHome) -> AirflowHome:
        with self._lock:
            self.homes.append(home)
        return home

    def check_record(self, text: str, logger_name: str) -> None:
        with self._lock:
            if self._probe is not None and self._probe[0] in text:  # the probe is not part of the scan
                self._probe[1].add("structlog line" if logger_name.endswith("(structlog)") else "log record")
                return
            self._live.record(text, logger_name)

    def check_exception(self, exc: BaseException) -> None:
        with self._lock:
            if self._probe is not None and self._probe[0] in str(exc):
                self._probe[1].add("exception")
                return
            self._live.exception(exc)

    @contextlib.contextmanager
    def probe(self, token: str) -> Iterator[set[str]]:
        """Collect which live checks saw ``token`` (a positive control: the capture still works)."""
        seen: set[str] = set()
        with self._lock:
            self._probe = (token, seen)
        try:
            yield seen
        finally:
            with self._lock:
                self._probe = None

    def scan(self) -> ScanReport:
        """Scan every registered home (files now, databases unless already scanned) plus live checks."""
        report = ScanReport()
        with self._lock:
            homes = list(self.homes)
            report.merge(self.live)
        report.targets.append(
            f"pytest process: {report.log_records} log records, {report.exceptions} exceptions"
        )
        for home in homes:
            files = Scanner(self.canary)
            for folder in home.log_dirs:
                files.tree(folder)
            files.report.targets.append(
                f"{home.label}: {files.report.files} files under {', '.join(str(d) for d in home.log_dirs)}"
            )
            report.merge(files.report)
            if home.database_report is None:
                home.database_report = scan_home_database(home, self.canary)
            report.merge(home.database_report)
        self.last_report = report
        return report


def scan_home_database(home: AirflowHome, canary: str) -> ScanReport:
    """Scan a home's metadata database with the configuration its processes used."""
    if home.env is None:
        return scan_this_process_database(canary, home.label)
    env = {**home.env, "JOBSTATUS_TEST_CANARY": canary, "PYTHONPATH": str(REPO_ROOT)}
    command = [sys.executable, "-m", "tests.helpers.secret_scan", "--label", home.label]
    try:
        done = subprocess.run(
            command, env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, check=False
        )
    except subprocess.TimeoutExpired:
        return ScanReport(errors=[f"{home.label}: database scan timed out"])
    if done.returncode != 0:
        tail = done.stderr.replace(canary, PLACEHOLDER)[-1500:]
        return ScanReport(errors=[f"{home.label}: database scan failed ({done.returncode}): {tail}"])
    return ScanReport.from_json(json.loads(done.stdout.strip().splitlines()[-1]))


def scan_this_process_database(canary: str, label: str) -> ScanReport:
    """The metadata database configured in this process, trigger kwargs decrypted by Airflow."""
    from airflow.configuration import conf
    from airflow.models.trigger import Trigger

    url = conf.get("database", "sql_alchemy_conn")
    scanner = Scanner(canary)
    # Airflow's own decryption: the fernet key this process's configuration holds
    scanner.database(url, label, decrypt=Trigger._decrypt_kwargs)
    scanner.report.targets.append(f"{label}: database {_display_url(url)}")
    return scanner.report


def _display_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


# ---------------------------------------------------------------------- the session's registry

_registry: SessionRegistry | None = None


def registry() -> SessionRegistry:
    """The session's registry (created on first use with the session's canary)."""
    global _registry
    if _registry is None:
        from tests.helpers.canary import CANARY

        _registry = SessionRegistry(CANARY)
    return _registry


def register_airflow_home(
    home: Path, *, label: str, env: Mapping[str, str] | None = None, log_dirs: Iterable[Path] = ()
) -> AirflowHome:
    """Scan this home's ``logs/`` (and ``log_dirs``) and its metadata database at the end of the session."""
    base = Path((env or os.environ).get("AIRFLOW__LOGGING__BASE_LOG_FOLDER") or home / "logs")
    dirs = [base, *(Path(d) for d in log_dirs if Path(d) != base)]
    return registry().add_home(
        AirflowHome(label=label, home=home, log_dirs=dirs, env=dict(env) if env is not None else None)
    )


def register_stack(stack: Any) -> None:
    """Register an ``AirflowStack``: its home, its component logs, and a database scan when it stops.

    Scanning right after ``stop()`` covers databases that end with the stack (a throwaway
    PostgreSQL database is dropped after its test); the scan at the session's end reuses it.
    """
    home = register_airflow_home(
        stack.home, label=f"stack {stack.root.name}", env=stack.env, log_dirs=[stack.logs]
    )
    original_stop = stack.stop

    def stop_then_scan(*args: Any, **kwargs: Any) -> Any:
        try:
            return original_stop(*args, **kwargs)
        finally:
            home.env = dict(stack.env)  # the final environment (a test may add to it after __init__)
            home.database_report = scan_home_database(home, registry().canary)

    stack.stop = stop_then_scan


# ---------------------------------------------------------------------- live capture


class CanaryLogHandler(logging.Handler):
    """Checks each record, formatted with its exception text, for the canary (harness loggers excepted)."""

    def __init__(self, check: Callable[[str, str], None]) -> None:
        super().__init__(logging.NOTSET)
        self._check = check
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        if is_harness(record.name):
            return
        try:
            text = self.format(record)
        except Exception:  # a record whose arguments do not format: check its parts
            text = f"{record.msg!r} {record.args!r}"
        self._check(text, record.name)


def is_harness(logger_name: str | None) -> bool:
    name = logger_name or ""
    return any(name == prefix or name.startswith(prefix + ".") for prefix in HARNESS_LOGGERS)


_installed: dict[str, Any] = {}


def install_log_capture(check: Callable[[str, str], None]) -> CanaryLogHandler:
    """See every log record of this process, whatever logging configuration is active.

    Airflow's ``dictConfig`` replaces the root handlers whenever it configures logging, and some
    loggers do not propagate, so a handler on the root logger would miss records. Instead the
    handler is called from ``Logger.callHandlers`` (after the logger's own level and filters, as
    any handler of that logger would be). Structlog-native lines (task logs under ``dag.test()``)
    never become stdlib records: they are checked as rendered, where structlog writes them.
    """
    if "handler" in _installed:
        return _installed["handler"]  # type: ignore[no-any-return]
    handler = CanaryLogHandler(check)
    original = logging.Logger.callHandlers

    def call_handlers(self: logging.Logger, record: logging.LogRecord) -> None:
        handler.handle(record)
        original(self, record)

    logging.Logger.callHandlers = call_handlers  # type: ignore[method-assign]
    _installed["handler"] = handler
    _install_structlog_capture(check)
    return handler


def _install_structlog_capture(check: Callable[[str, str], None]) -> None:
    try:
        import structlog
    except ImportError:  # pragma: no cover - Airflow depends on structlog
        return
    methods = ("msg", "log", "debug", "info", "warn", "warning", "fatal", "failure", "err", "error")
    methods += ("critical", "exception")
    for cls in (structlog.PrintLogger, structlog.WriteLogger, structlog.BytesLogger):
        original = cls.msg

        def write(self: Any, message: Any, _original: Callable[..., None] = original) -> None:
            name = getattr(self, "name", None) or "structlog"
            if not is_harness(name):
                text = message.decode("utf-8", "replace") if isinstance(message, bytes) else str(message)
                check(text, f"{name} (structlog)")
            _original(self, message)

        for method in methods:
            setattr(cls, method, write)


def install_exception_capture(check: Callable[[BaseException], None]) -> None:
    """Check every ``JobStatusError`` once it is built (observes ``__init__``, changes nothing)."""
    from airflow_jobstatus.exceptions import JobStatusError

    if "exceptions" in _installed:
        return
    original = JobStatusError.__init__

    def init(self: JobStatusError, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        check(self)

    JobStatusError.__init__ = init  # type: ignore[method-assign]
    _installed["exceptions"] = original


# ---------------------------------------------------------------------- subprocess entry point


def _main(argv: list[str]) -> int:
    """Scan the metadata database configured by this process's environment; print a JSON report."""
    import argparse

    parser = argparse.ArgumentParser(description=_main.__doc__)
    parser.add_argument("--label", required=True)
    args = parser.parse_args(argv)
    canary = os.environ["JOBSTATUS_TEST_CANARY"]
    report = scan_this_process_database(canary, args.label)
    print(json.dumps(report.to_json()))
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
