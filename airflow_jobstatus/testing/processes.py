"""Start and stop helper processes (emulator, S3 server, Airflow components) by PID.

Every process is started in its own session (``start_new_session=True``) so that it leads its own
process group: stopping sends SIGTERM to that group, waits, then SIGKILLs the group. Nothing is
ever stopped by name.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType

__all__ = ["ManagedProcess", "ProcessStartError", "free_port"]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free on ``host`` a moment ago (bind to port 0 and let the kernel pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class ProcessStartError(RuntimeError):
    """The process died, or did not become ready in time. The message ends with its log tail."""


class ManagedProcess:
    """One child process in its own session, logging to a file, stopped by PID.

    >>> proc = ManagedProcess([sys.executable, "-m", "http.server"], name="http")
    >>> proc.start(ready=lambda: port_open(8000), timeout=10)
    >>> proc.stop()
    """

    def __init__(
        self,
        cmd: Sequence[str],
        *,
        name: str | None = None,
        log_path: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
    ) -> None:
        self.cmd = [str(part) for part in cmd]
        self.name = name or Path(self.cmd[0]).name
        self._log_path = Path(log_path) if log_path is not None else None
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self._proc: subprocess.Popen[bytes] | None = None
        self._pgid: int | None = None

    # -- properties -------------------------------------------------------------------------------
    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def returncode(self) -> int | None:
        return self._proc.poll() if self._proc is not None else None

    @property
    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def log_path(self) -> Path:
        if self._log_path is None:
            fd, path = tempfile.mkstemp(prefix=f"{self.name}-", suffix=".log")
            os.close(fd)
            self._log_path = Path(path)
        return self._log_path

    # -- life cycle -------------------------------------------------------------------------------
    def start(
        self,
        ready: Callable[[], bool] | None = None,
        *,
        timeout: float = 30.0,
        poll_interval: float = 0.05,
    ) -> ManagedProcess:
        """Start the process; if ``ready`` is given, wait until it returns true.

        Raises :class:`ProcessStartError` (with the log tail) if the process exits first or is not
        ready within ``timeout`` seconds; the process is stopped in that case.
        """
        if self._proc is not None:
            raise RuntimeError(f"{self.name} was already started (pid {self._proc.pid})")
        log_path = self.log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as log:
            self._proc = subprocess.Popen(
                self.cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
            )
        self._pgid = self._proc.pid  # a session leader leads the process group with its own pid
        atexit.register(self._stop_at_exit)
        if ready is not None:
            self.wait_ready(ready, timeout=timeout, poll_interval=poll_interval)
        return self

    def wait_ready(
        self, ready: Callable[[], bool], *, timeout: float = 30.0, poll_interval: float = 0.05
    ) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if not self.is_running:
                code = self.returncode
                self.stop()
                raise ProcessStartError(
                    f"{self.name} exited with code {code} before it was ready; log {self.log_path}:\n"
                    + self.log_tail()
                )
            try:
                if ready():
                    return
            except Exception:  # noqa: S110 - a failing probe only means "not ready yet"
                pass
            if time.monotonic() >= deadline:
                self.stop()
                raise ProcessStartError(
                    f"{self.name} was not ready within {timeout:.1f}s; log {self.log_path}:\n"
                    + self.log_tail()
                )
            time.sleep(poll_interval)

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM the process group, wait up to ``timeout`` s, then SIGKILL the group. Idempotent."""
        proc = self._proc
        if proc is None:
            return None
        pgid = self._pgid if self._pgid is not None else proc.pid
        if proc.poll() is None:
            self._signal_group(pgid, signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._signal_group(pgid, signal.SIGKILL)
                proc.wait(timeout=10)
        # Children left behind in the group after the leader exited get SIGKILL too.
        if self._group_alive(pgid):
            self._signal_group(pgid, signal.SIGKILL)
        with contextlib.suppress(Exception):
            atexit.unregister(self._stop_at_exit)
        return proc.returncode

    def _stop_at_exit(self) -> None:
        with contextlib.suppress(Exception):
            self.stop(timeout=5)

    @staticmethod
    def _signal_group(pgid: int, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)

    @staticmethod
    def _group_alive(pgid: int) -> bool:
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True

    # -- logs -------------------------------------------------------------------------------------
    def log_tail(self, lines: int = 40) -> str:
        try:
            with open(self.log_path, "rb") as fh:
                fh.seek(0, os.SEEK_END)
                size = fh.tell()
                fh.seek(max(0, size - 64 * 1024))
                data = fh.read()
        except OSError:
            return ""
        return "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:])

    # -- context manager --------------------------------------------------------------------------
    def __enter__(self) -> ManagedProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"ManagedProcess(name={self.name!r}, pid={self.pid}, running={self.is_running})"
