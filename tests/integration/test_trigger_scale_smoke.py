"""A small-N smoke run of ``benchmarks/trigger_scale.py --quick`` (no timing assertions)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "trigger_scale.py"


def test_trigger_scale_benchmark_quick_run() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCHMARK), "--quick"], capture_output=True, text=True, timeout=240
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "HttpSensorTrigger (50 waits)" in output
    for service in ("daily", "wasabi_air"):
        line = next(
            line for line in result.stdout.splitlines() if line.startswith(f"{service} ") and " 200 " in line
        )
        assert "us" in line and "KB" in line and "ms" in line, line
    assert "checks" in result.stdout.splitlines()[-1]
