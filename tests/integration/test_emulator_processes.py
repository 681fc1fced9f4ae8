"""ManagedProcess / S3Server / EmulatorServer process handling: readiness, failures, stop by PID."""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path

import httpx
import pytest

from airflow_jobstatus.testing.emulator.server import EmulatorServer
from airflow_jobstatus.testing.processes import ManagedProcess, ProcessStartError, free_port
from airflow_jobstatus.testing.s3 import S3Server

pytestmark = pytest.mark.integration


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers kill(0); look at its state
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def test_free_port_is_bindable() -> None:
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_process_that_dies_raises_with_log_tail(tmp_path: Path) -> None:
    proc = ManagedProcess(
        [sys.executable, "-c", "import sys; print('boom: bad flag'); sys.exit(3)"],
        name="dies",
        log_path=tmp_path / "dies.log",
    )
    with pytest.raises(ProcessStartError, match="boom: bad flag"):
        proc.start(lambda: False, timeout=10)
    assert proc.returncode == 3


def test_not_ready_in_time_is_stopped(tmp_path: Path) -> None:
    proc = ManagedProcess([sys.executable, "-c", "import time; time.sleep(60)"], log_path=tmp_path / "p.log")
    with pytest.raises(ProcessStartError, match="not ready"):
        proc.start(lambda: False, timeout=0.3)
    assert not proc.is_running


def test_stop_escalates_to_sigkill_for_the_whole_group(tmp_path: Path) -> None:
    # a parent that ignores SIGTERM, with a child that also ignores it
    script = (
        "import signal, subprocess, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "child = subprocess.Popen([sys.executable, '-c', "
        "'import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)'])\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    log = tmp_path / "stubborn.log"
    proc = ManagedProcess([sys.executable, "-c", script], log_path=log)
    proc.start(lambda: log.read_text().strip().isdigit(), timeout=10)
    child = int(log.read_text().strip())
    assert proc.pid is not None and _alive(proc.pid) and _alive(child)
    start = time.monotonic()
    proc.stop(timeout=0.5)
    assert time.monotonic() - start < 5
    assert not proc.is_running
    deadline = time.monotonic() + 5
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child)
    proc.stop()  # idempotent


def test_s3_server_and_airflow_connection(jobstatus_s3: S3Server) -> None:
    env = jobstatus_s3.airflow_connection_env("my_s3")
    assert list(env) == ["AIRFLOW_CONN_MY_S3"]
    conn = json.loads(env["AIRFLOW_CONN_MY_S3"])
    assert conn == {
        "conn_type": "aws",
        "login": "testing",
        "password": "testing",
        "extra": {"endpoint_url": jobstatus_s3.endpoint_url, "region_name": "us-east-1"},
    }
    bucket = jobstatus_s3.create_bucket("proc-test-bucket")
    client = jobstatus_s3.client()
    client.put_object(Bucket=bucket, Key="a.txt", Body=b"hi")
    assert client.get_object(Bucket=bucket, Key="a.txt")["Body"].read() == b"hi"


def test_emulator_server_start_stop(tmp_path: Path) -> None:
    emu = EmulatorServer(log_path=tmp_path / "emu.log", job_duration=2)
    with emu:
        assert emu.pid is not None
        pid = emu.pid
        assert emu.health()
        assert emu.service_url("daily") == emu.url + "/daily/v1"
        assert emu.service_url("wasabi").endswith("/wasabi")
        assert emu.get_config()["job_duration"] == 2
        with pytest.raises(ValueError):
            emu.service_url("zoom")
    assert not _alive(pid)
    with pytest.raises(httpx.ConnectError):
        httpx.get(emu.url + "/_admin/health", trust_env=False)
    assert "Uvicorn running" in (tmp_path / "emu.log").read_text()


def test_emulator_bad_arguments_fail_fast(tmp_path: Path) -> None:
    emu = EmulatorServer(log_path=tmp_path / "bad.log", faults=[{"kind": "explode"}])
    with pytest.raises(ProcessStartError, match="kind must be one of"):
        emu.start()
