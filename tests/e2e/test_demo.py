"""``scripts/demo.py`` (``make demo``) as a user runs it: a subprocess, its terminal output, its files.

* Two runs in a row into one output folder: both exit 0, the summary lists the four services as
  succeeded, every file it lists exists with the size it prints (new jobs land next to the first
  run's files), progress shows each service's states in order with no Airflow log line on the
  terminal, and every process it started (from its ``--pid-file``) is gone afterwards. The kept
  Airflow logs of the first run hold none of the demo's credentials.
* A job that fails (``--fail-service daily``: the emulator's failure marker) makes it exit 1 with
  the service's reason and the log path, while the other service still delivers.
* Ctrl-C (SIGINT) while the DAG processes run: it exits 130 after stopping each of them, the
  emulator and the S3 server by PID; none is left running.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "demo.py"
LABELS = {"daily": "Daily", "wasabi_air": "Wasabi AiR", "symbl": "Symbl.ai", "deepaffects": "DeepAffects"}
DEMO_SECRETS = ("demo-daily-key", "demo-secret-key", "demo-app-secret", "demo-deepaffects-key")
"""The demo's own credentials (scripts/demo.py): none may reach a log line."""
PROGRESS = ("submitted job ", "deferred: ", "job succeeded ", "delivering outputs", "done: ")
"""What each successful service reports, in this order."""


@dataclass
class ServiceResult:
    status: str
    job_id: str
    files: dict[str, int] = field(default_factory=dict)
    """Path -> the size the summary prints."""
    manifest: str = ""
    reasons: list[str] = field(default_factory=list)


@dataclass
class DemoRun:
    returncode: int
    output: str
    seconds: float
    pids: dict[str, int]
    results: dict[str, ServiceResult]

    def progress(self, label: str) -> list[str]:
        """The progress texts of one service, in order."""
        pattern = re.compile(r"^\[\s*[\d.]+s\] " + re.escape(f"{label:<12} ") + "(.*)$")
        return [m.group(1) for line in self.output.splitlines() if (m := pattern.match(line))]


SUMMARY_HEAD = re.compile(r"^  (.{12}) (succeeded|FAILED)\s+job (\S+)")


def parse_summary(output: str) -> dict[str, ServiceResult]:
    """The summary: a head line per service, then its indented details (files, manifest, reasons)."""
    results: dict[str, ServiceResult] = {}
    current: ServiceResult | None = None
    for line in output.split("\nSummary (outputs under ", 1)[1].splitlines()[1:]:
        if head := SUMMARY_HEAD.match(line):
            current = results[head.group(1).strip()] = ServiceResult(head.group(2), head.group(3))
            continue
        if current is None or not line.startswith("      "):
            current = None
            continue
        detail = line.strip()
        if m := re.fullmatch(r"([\d,]+) bytes  (.+)", detail):
            current.files[m.group(2)] = int(m.group(1).replace(",", ""))
        elif detail.startswith("manifest  "):
            current.manifest = detail.removeprefix("manifest").strip()
        elif detail.startswith("reason: "):
            current.reasons.append(detail.removeprefix("reason: "))
    return results


def run_demo(tmp_path: Path, name: str, *args: str) -> DemoRun:
    pid_file = tmp_path / f"{name}-pids.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_", "AIRFLOW__"))}
    began = time.monotonic()
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--pid-file", str(pid_file), *args],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    seconds = time.monotonic() - began
    output = done.stdout + done.stderr
    print(f"--- demo run {name}: exit {done.returncode} in {seconds:.1f}s ---\n{output}")
    assert "\nSummary (outputs under " in output, output[-3000:]
    return DemoRun(done.returncode, output, seconds, json.loads(pid_file.read_text()), parse_summary(output))


def alive(probe: Callable[[int, int], None], pid: int) -> bool:
    try:
        probe(pid, 0)
    except ProcessLookupError:
        return False
    return True  # it exists (PermissionError would also mean that)


def assert_all_stopped(run: DemoRun) -> None:
    """Every process the demo started is gone, and so is its process group."""
    assert {"S3 server", "emulator", "airflow db migrate"} <= set(run.pids), run.pids
    for name, pid in run.pids.items():
        assert not alive(os.kill, pid), f"{name} (pid {pid}) still runs after the demo exited"
        assert not alive(os.killpg, pid), f"the process group of {name} (pid {pid}) outlived the demo"


def assert_succeeded(run: DemoRun, services: dict[str, str]) -> None:
    for service, label in services.items():
        result = run.results[label]
        assert result.status == "succeeded", (label, result)
        assert result.files, label
        for path, size in result.files.items():
            assert os.path.getsize(path) == size, path
            assert f"/{service}/" in path
        manifest = json.loads(Path(result.manifest).read_text())
        assert {o["destination"].removeprefix("file://") for o in manifest["outputs"]} == set(result.files)
        texts = run.progress(label)
        positions = [next(i for i, t in enumerate(texts) if t.startswith(step)) for step in PROGRESS]
        assert positions == sorted(positions), (label, texts)
        assert any(t.startswith("service status: ") for t in texts), (label, texts)


def test_demo_runs_twice_and_leaves_nothing_running(tmp_path: Path) -> None:
    output = tmp_path / "demo-output"
    first = run_demo(tmp_path, "first", "--output", str(output), "--keep-home")
    kept = re.search(r"Airflow home and logs kept: (\S+)", first.output)
    assert kept is not None, first.output[-3000:]
    home = Path(kept.group(1))
    try:
        assert first.returncode == 0, first.output[-3000:]
        assert set(first.results) == set(LABELS.values())
        assert_succeeded(first, LABELS)
        assert_all_stopped(first)
        assert "All four services delivered their outputs" in first.output
        for noise in ("[info", "[warning", "DAG TEST", "Traceback", "Deprecat"):
            assert noise not in first.output, noise
        scanned = 0
        for path in [*home.glob("logs/**/*"), *home.glob("events/*")]:
            if path.is_file() and path.name not in ("emulator.log", "s3-server.log"):  # the services' side
                text = path.read_text(errors="replace")
                scanned += 1
                for value in DEMO_SECRETS:
                    assert value not in text, f"{value} in {path}"
        assert scanned >= 6  # the migrate log, four DAG logs, their events
    finally:
        shutil.rmtree(home, ignore_errors=True)

    second = run_demo(tmp_path, "second", "--output", str(output))
    assert second.returncode == 0, second.output[-3000:]
    assert_succeeded(second, LABELS)
    assert_all_stopped(second)
    for label in LABELS.values():  # new jobs, delivered next to the first run's
        assert second.results[label].job_id != first.results[label].job_id
        for path, size in first.results[label].files.items():
            assert os.path.getsize(path) == size
    assert not re.search(r"Airflow home and logs kept", second.output)  # a successful run cleans up
    print(f"demo wall time: first {first.seconds:.1f}s, second {second.seconds:.1f}s")


def test_demo_exits_non_zero_with_the_reason_when_a_job_fails(tmp_path: Path) -> None:
    args = ["--output", str(tmp_path / "out"), "--service", "daily", "--service", "deepaffects"]
    run = run_demo(tmp_path, "failing", *args, "--fail-service", "daily")
    assert run.returncode == 1, run.output[-3000:]
    assert set(run.results) == {"Daily", "DeepAffects"}
    daily = run.results["Daily"]
    assert daily.status == "FAILED" and not daily.files
    assert any("JobFailedError" in r and daily.job_id in r and "'error'" in r for r in daily.reasons), daily
    assert "job failed (service status 'error')" in "\n".join(run.progress("Daily"))
    log = re.search(r"make demo FAILED: Daily: .+\n  Airflow log: (\S+)", run.output)
    assert log is not None, run.output[-2000:]
    assert Path(log.group(1)).is_file() and daily.job_id in Path(log.group(1)).read_text()
    assert_succeeded(run, {"deepaffects": "DeepAffects"})
    assert_all_stopped(run)
    home = re.search(r"Airflow home and logs kept: (\S+)", run.output)
    assert home is not None
    shutil.rmtree(home.group(1), ignore_errors=True)


def test_ctrl_c_stops_every_process_the_demo_started(tmp_path: Path) -> None:
    pid_file = tmp_path / "pids.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_", "AIRFLOW__"))}
    cmd = [sys.executable, str(SCRIPT), "--pid-file", str(pid_file), "--output", str(tmp_path / "out")]
    demo = subprocess.Popen(
        [*cmd, "--service", "daily", "--service", "symbl"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    try:
        assert demo.stdout is not None
        for line in demo.stdout:  # interrupt once both DAG processes run
            lines.append(line)
            if sum("running DAG" in seen for seen in lines) == 2:
                break
        demo.send_signal(signal.SIGINT)
        rest, _ = demo.communicate(timeout=120)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
    output = "".join(lines) + rest
    print(output)
    assert demo.returncode == 130, output
    assert "make demo interrupted (SIGINT)" in output
    pids = json.loads(pid_file.read_text())
    assert {"example_jobstatus_daily", "example_jobstatus_symbl", "emulator", "S3 server"} <= set(pids)
    for name, pid in pids.items():
        assert f"stopping {name} (pid {pid})" in output or name == "airflow db migrate", name
    assert_all_stopped(DemoRun(demo.returncode, output, 0.0, pids, {}))
    kept = re.search(r"Airflow home and logs kept: (\S+)", output)
    assert kept is not None
    shutil.rmtree(kept.group(1), ignore_errors=True)
