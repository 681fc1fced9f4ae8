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

from airflow_jobstatus.testing.processes import ManagedProcess, ProcessStartError, free_port
from airflow_jobstatus.testing.s3 import S3Server
from jobstatus_emulator.process import ProcessStartError as EmulatorStartError
from jobstatus_emulator.server import EmulatorServer

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
    with pytest.raises(EmulatorStartError, match="kind must be one of"):
        emu.start()


# -- persistence: --state-file --------------------------------------------------------------------
def _submit_all(emu: EmulatorServer, bucket: str, tag: str, seconds: float) -> dict[str, str]:
    """One job per service through the raw APIs (plus a Daily job that is already finished)."""
    marker = f"emu_duration={seconds}"
    http = httpx.Client(timeout=10, trust_env=False)
    daily = {"Authorization": f"Bearer daily-{tag}"}
    jobs: dict[str, str] = {}
    for name, duration in (("daily", marker), ("daily_done", "emu_duration=0.2")):
        body = {
            "preset": "transcript",
            "inParams": {"sourceType": "uri", "uri": f"https://m.example/a.mp4?{duration}"},
            "outParams": {"s3Config": {"s3KeyTemplate": "output"}},
        }
        jobs[name] = http.post(
            emu.service_url("daily") + "/batch-processor", json=body, headers=daily
        ).json()["id"]
    body = {
        "preset": "transcript",
        "inParams": {"sourceType": "uri", "uri": f"https://m.example/f.mp4?{marker}&emu_outcome=fail"},
        "outParams": {"s3Config": {"s3KeyTemplate": "output"}},
    }
    jobs["daily_fail"] = http.post(
        emu.service_url("daily") + "/batch-processor", json=body, headers=daily
    ).json()["id"]
    wasabi = {"x-amz-access-key": f"wasabi-{tag}", "x-amz-secret-key": "s"}
    body = {
        "Name": f"persist-{tag}",
        "Services": {"s2t": ""},
        "Source": {
            "Endpoint": "https://s3.example",
            "Bucket": "media",
            "Region": "us-east-1",
            "ObjectKey": f"a.mp4?{marker}",
        },
        "Destination": {"Bucket": bucket, "Region": "us-east-1"},
    }
    jobs["wasabi"] = http.post(emu.service_url("wasabi") + "/jobs", json=body, headers=wasabi).json()["Job"][
        "Id"
    ]
    token = http.post(
        emu.service_url("symbl") + "/oauth2/token:generate",
        json={"type": "application", "appId": f"symbl-{tag}", "appSecret": "s"},
    ).json()["accessToken"]
    jobs["symbl_token"] = token
    jobs["symbl"] = http.post(
        emu.service_url("symbl") + "/v1/process/audio/url",
        json={"url": f"https://m.example/a.mp3?{marker}"},
        headers={"Authorization": f"Bearer {token}"},
    ).json()["jobId"]
    resp = http.post(
        emu.service_url("deepaffects") + "/audio/generic/api/v1/async/asr",
        params={"apikey": f"da-{tag}", "request_id": f"req-{tag}", "webhook": "https://hooks.example/da"},
        json={"url": f"https://m.example/a.wav?{marker}", "encoding": "LINEAR16", "sampleRate": 16000},
    )
    jobs["deepaffects"] = resp.json()["request_id"]
    http.close()
    return jobs


def _admin_views(emu: EmulatorServer) -> dict[str, dict[str, object]]:
    return {j["job_id"]: j for j in emu.jobs()}


def test_restarted_emulator_with_state_file_keeps_jobs_and_timelines(
    tmp_path: Path, jobstatus_s3: S3Server
) -> None:
    """SIGKILL, then a new process on the same port: same jobs, same timelines, same Daily links."""
    bucket = jobstatus_s3.create_bucket(f"persist-{os.getpid()}")
    state = tmp_path / "state.jsonl"
    emu = EmulatorServer(
        state_file=state,
        s3_endpoint=jobstatus_s3.endpoint_url,
        s3_access_key=jobstatus_s3.access_key,
        s3_secret_key=jobstatus_s3.secret_key,
        # this test polls DeepAffects every 0.1 s: without its documented 5/min (not under test here)
        deepaffects_requests_per_minute=0,
        deepaffects_requests_per_day=0,
        log_path=tmp_path / "emu.log",
    )
    tag = os.urandom(4).hex()
    with emu:
        jobs = _submit_all(emu, bucket, tag, seconds=6)
        http = httpx.Client(timeout=10, trust_env=False)
        daily = {"Authorization": f"Bearer daily-{tag}"}
        done_url = emu.service_url("daily") + f"/batch-processor/{jobs['daily_done']}"
        deadline = time.monotonic() + 20
        while http.get(done_url, headers=daily).json()["status"] != "finished":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        links = http.get(done_url + "/access-link", headers=daily).json()
        link = links["transcription"][0]["link"]
        before_bytes = http.get(link).content
        before = _admin_views(emu)
        port, old_pid = emu.port, emu.kill()
        assert not _alive(old_pid)
        with pytest.raises(httpx.ConnectError):
            http.get(emu.url + "/_admin/health")
        with state.open("a") as fh:  # a record torn by the kill is ignored at start
            fh.write('{"kind": "job", "service": "daily", "job_id": "torn')
        emu.start()
        assert emu.port == port and emu.pid != old_pid

        after = _admin_views(emu)
        assert set(after) == set(before)
        for job_id, view in before.items():
            new = after[job_id]
            for key in ("service", "credential", "request", "outcome", "duration", "created", "due_at"):
                assert new[key] == view[key], (job_id, key)
            # the timeline carries on from the submission time: what had happened still has
            assert new["timeline"][: len(view["timeline"])] == view["timeline"], job_id  # type: ignore[index]
        assert after[jobs["daily"]]["status"] in ("submitted", "processing")
        assert after[jobs["daily_done"]]["status"] == "finished"
        # Daily-storage outputs were rewritten and the old link (same secret) still serves them
        assert http.get(link).content == before_bytes

        # the services answer for the old jobs; Symbl's old token is gone (401), a new one works
        symbl = emu.service_url("symbl")
        assert (
            http.get(
                f"{symbl}/v1/job/{jobs['symbl']}", headers={"Authorization": f"Bearer {jobs['symbl_token']}"}
            ).status_code
            == 401
        )
        token = http.post(
            symbl + "/oauth2/token:generate",
            json={"type": "application", "appId": f"symbl-{tag}", "appSecret": "s"},
        ).json()["accessToken"]
        wasabi = {"x-amz-access-key": f"wasabi-{tag}", "x-amz-secret-key": "s"}

        def states() -> dict[str, str]:
            da = http.get(
                emu.service_url("deepaffects") + "/transaction/generic/api/v1/async/status",
                params={"apikey": f"da-{tag}", "request_id": jobs["deepaffects"]},
            )
            return {
                "daily": http.get(
                    emu.service_url("daily") + f"/batch-processor/{jobs['daily']}", headers=daily
                ).json()["status"],
                "daily_fail": http.get(
                    emu.service_url("daily") + f"/batch-processor/{jobs['daily_fail']}", headers=daily
                ).json()["status"],
                "wasabi": http.get(
                    emu.service_url("wasabi") + f"/jobs/{jobs['wasabi']}/status", headers=wasabi
                ).json()["Status"],
                "symbl": http.get(
                    f"{symbl}/v1/job/{jobs['symbl']}", headers={"Authorization": f"Bearer {token}"}
                ).json()["status"],
                "deepaffects": da.json()["status"],
            }

        final = {
            "daily": "finished",
            "daily_fail": "error",
            "wasabi": "completed",
            "symbl": "completed",
            "deepaffects": "Completed",
        }
        deadline = time.monotonic() + 30
        while (seen := states()) != final:
            assert time.monotonic() < deadline, seen
            assert "finished" not in seen.values() or seen["daily"] == "finished"
            time.sleep(0.2)
        for job_id in (jobs["daily"], jobs["wasabi"], jobs["symbl"], jobs["deepaffects"]):
            view = emu.job(after[job_id]["service"], job_id)  # type: ignore[arg-type]
            # finished on schedule: the due time counted from the original submission
            assert view["timeline"][-1]["at"] >= before[job_id]["due_at"]  # type: ignore[operator]
            assert view["timeline"][-1]["at"] < before[job_id]["due_at"] + 5  # type: ignore[operator]
        conversation = emu.job("symbl", jobs["symbl"])["outputs"][0]["conversationId"]
        symbl_docs = http.get(
            f"{symbl}/v1/conversations/{conversation}/messages", headers={"Authorization": f"Bearer {token}"}
        )
        assert symbl_docs.status_code == 200 and symbl_docs.json()["messages"]

        # a reset empties the state file: after another restart nothing is left
        emu.reset()
        emu.restart()
        assert emu.jobs() == []
        http.close()
