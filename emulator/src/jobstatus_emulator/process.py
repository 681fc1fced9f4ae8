"""One child process in its own session, logging to a file, stopped by PID (used by ``server.py``).

The process leads its own process group (``start_new_session=True``): stopping sends SIGTERM to
that group, waits, then SIGKILLs whatever is left of it. Nothing is ever stopped by name.
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

__all__ = ["ManagedProcess", "ProcessStartError", "free_port"]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free on ``host`` a moment ago (bind to port 0 and let the kernel pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class ProcessStartError(RuntimeError):
    """The process died, or did not become ready in time. The message ends with its log tail."""


class ManagedProcess:
    def __init__(
        self,
        cmd: Sequence[str],
        *,
        name: str,
        log_path: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.cmd = [str(part) for part in cmd]
        self.name = name
        self._log_path = Path(log_path) if log_path is not None else None
        self.env = dict(env) if env is not None else None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

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

    def start(self, ready: Callable[[], bool], *, timeout: float = 30.0) -> ManagedProcess:
        """Start the process and wait until ``ready()`` is true; on failure stop it and raise
        :class:`ProcessStartError` with the log tail."""
        if self._proc is not None:
            raise RuntimeError(f"{self.name} was already started (pid {self._proc.pid})")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(
                self.cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                start_new_session=True,
            )
        atexit.register(self._stop_at_exit)
        deadline = time.monotonic() + timeout
        while True:
            if not self.is_running:
                code = self._proc.poll()
                self.stop()
                raise ProcessStartError(
                    f"{self.name} exited with code {code} before it was ready; log {self.log_path}:\n"
                    + self.log_tail()
                )
            try:
                if ready():
                    return self
            except Exception:  # noqa: S110 - a failing probe only means "not ready yet"
                pass
            if time.monotonic() >= deadline:
                self.stop()
                raise ProcessStartError(
                    f"{self.name} was not ready within {timeout:.1f}s; log {self.log_path}:\n"
                    + self.log_tail()
                )
            time.sleep(0.05)

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM the process group, wait up to ``timeout`` s, then SIGKILL the group. Idempotent."""
        proc = self._proc
        if proc is None:
            return None
        pgid = proc.pid  # a session leader leads the process group with its own pid
        if proc.poll() is None:
            self._signal_group(pgid, signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._signal_group(pgid, signal.SIGKILL)
                proc.wait(timeout=10)
        # children left behind in the group after the leader exited
        self._signal_group(pgid, signal.SIGKILL)
        atexit.unregister(self._stop_at_exit)
        return proc.returncode

    def _stop_at_exit(self) -> None:
        with contextlib.suppress(Exception):
            self.stop(timeout=5)

    @staticmethod
    def _signal_group(pgid: int, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)

    def log_tail(self, lines: int = 40) -> str:
        try:
            with open(self.log_path, "rb") as fh:
                fh.seek(0, os.SEEK_END)
                fh.seek(max(0, fh.tell() - 64 * 1024))
                data = fh.read()
        except OSError:
            return ""
        return "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:])

    def __repr__(self) -> str:
        return f"ManagedProcess(name={self.name!r}, pid={self.pid}, running={self.is_running})"
