"""A throwaway ``redis-server`` on a free loopback port, started and stopped by PID.

Tests that need it skip with a clear reason when ``redis-server`` is not installed.
"""

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from airflow_jobstatus.testing.processes import ManagedProcess, free_port

REDIS_SERVER = shutil.which("redis-server")


class RedisServer:
    """One redis-server without persistence; `stop` and `start` again keep its port."""

    def __init__(self, log_dir: Path, port: int | None = None) -> None:
        self.host = "127.0.0.1"
        self.port = port or free_port(self.host)
        self._log_dir = log_dir
        self._proc: ManagedProcess | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def _ping(self) -> bool:
        with socket.create_connection((self.host, self.port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")

    def start(self) -> RedisServer:
        assert REDIS_SERVER is not None
        self.starts += 1
        cmd = [
            REDIS_SERVER,
            "--bind",
            self.host,
            "--port",
            str(self.port),
            "--save",
            "",
            "--appendonly",
            "no",
        ]
        log = self._log_dir / f"redis-{self.port}-{self.starts}.log"
        self._proc = ManagedProcess(cmd, name="redis-server", log_path=log).start(
            ready=self._ping, timeout=15
        )
        return self

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.stop(timeout=5)
            self._proc = None


def running_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A started server for a fixture to yield from (skips without ``redis-server``), then stopped."""
    if REDIS_SERVER is None:
        pytest.skip(
            "redis-server is not installed (apt-get install redis-server); push tests need a real one"
        )
    server = RedisServer(tmp_path).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    yield from running_redis(tmp_path)
