"""Run the emulator as a real subprocess on a free loopback port, with admin helpers (httpx)."""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx

from jobstatus_emulator.process import ManagedProcess, free_port

SERVICE_PREFIXES = {
    "daily": "/daily/v1",
    "wasabi": "/wasabi",
    "symbl": "/symbl",
    "deepaffects": "/deepaffects",
}


class EmulatorError(RuntimeError):
    """An admin call returned an error status."""


class EmulatorServer:
    """``python -m jobstatus_emulator`` as a child process, stopped by PID.

    >>> with EmulatorServer(s3_endpoint=s3.endpoint_url, job_duration=1) as emu:
    ...     httpx.get(emu.service_url("daily") + "/batch-processor", headers=...)
    ...     emu.add_fault(service="daily", kind="status", status=503, count=1)

    With ``state_file``, accounts and jobs survive the process (``--state-file``, see
    ``state.py``): ``kill()`` then ``start()``, or ``restart()``, bring the same jobs back on the
    same port, their timelines carrying on from their submission times.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        s3_endpoint: str | None = None,
        s3_access_key: str = "testing",
        s3_secret_key: str = "testing",
        s3_region: str = "us-east-1",
        job_duration: float | None = None,
        seed: int | None = None,
        symbl_token_lifetime: float | None = None,
        symbl_max_concurrent_jobs: int | None = None,
        deepaffects_requests_per_minute: int | None = None,
        deepaffects_requests_per_day: int | None = None,
        link_ttl: float | None = None,
        daily_bucket: Mapping[str, str] | None = None,
        public_url: str | None = None,
        faults: Iterable[Mapping[str, Any]] = (),
        state_file: str | os.PathLike[str] | None = None,
        log_path: str | os.PathLike[str] | None = None,
        log_level: str = "info",
        extra_args: Iterable[str] = (),
        env: Mapping[str, str] | None = None,
        startup_timeout: float = 30.0,
    ) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.s3_endpoint = s3_endpoint
        self.startup_timeout = startup_timeout
        args = [
            sys.executable,
            "-m",
            "jobstatus_emulator",
            "--host",
            host,
            "--port",
            str(self.port),
        ]
        if s3_endpoint:
            args += [
                "--s3-endpoint",
                s3_endpoint,
                "--s3-access-key",
                s3_access_key,
                "--s3-secret-key",
                s3_secret_key,
                "--s3-region",
                s3_region,
            ]
        for flag, value in (
            ("--job-duration", job_duration),
            ("--seed", seed),
            ("--symbl-token-lifetime", symbl_token_lifetime),
            ("--symbl-max-concurrent-jobs", symbl_max_concurrent_jobs),
            ("--deepaffects-requests-per-minute", deepaffects_requests_per_minute),
            ("--deepaffects-requests-per-day", deepaffects_requests_per_day),
            ("--link-ttl", link_ttl),
            ("--public-url", public_url),
        ):
            if value is not None:
                args += [flag, str(value)]
        if daily_bucket is not None:
            args += ["--daily-bucket", json.dumps(dict(daily_bucket))]
        for rule in faults:
            args += ["--fault", json.dumps(dict(rule))]
        self.state_file = Path(state_file) if state_file is not None else None
        if self.state_file is not None:
            args += ["--state-file", str(self.state_file)]
        args += ["--log-level", log_level, *extra_args]
        self.command = args
        full_env = dict(os.environ if env is None else env)
        full_env["PYTHONUNBUFFERED"] = "1"
        self._env = full_env
        self._process = self._new_process(Path(log_path) if log_path else None)
        self._client: httpx.Client | None = None

    def _new_process(self, log_path: Path | None) -> ManagedProcess:
        return ManagedProcess(self.command, name="jobstatus-emulator", log_path=log_path, env=self._env)

    # -- addresses --------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def service_url(self, service: str) -> str:
        """The connection host for ``service``: e.g. ``http://127.0.0.1:PORT/daily/v1``."""
        try:
            return self.url + SERVICE_PREFIXES[service]
        except KeyError:
            raise ValueError(f"unknown service {service!r}; one of {', '.join(SERVICE_PREFIXES)}") from None

    @property
    def pid(self) -> int | None:
        return self._process.pid

    @property
    def process(self) -> ManagedProcess:
        return self._process

    @property
    def log_path(self) -> Path:
        return self._process.log_path

    # -- life cycle -------------------------------------------------------------------------------
    def _healthy(self) -> bool:
        resp = httpx.get(self.url + "/_admin/health", timeout=1.0, trust_env=False)
        return resp.status_code == 200 and resp.json().get("ok") is True

    def start(self) -> EmulatorServer:
        """Start the process (again, after :meth:`stop` or :meth:`kill`: same port, same log file)."""
        if self._process.pid is not None:
            if self._process.is_running:
                raise RuntimeError(f"{self!r} is already running")
            self._process = self._new_process(self._process.log_path)
        self._process.start(self._healthy, timeout=self.startup_timeout)
        return self

    def kill(self) -> int:
        """SIGKILL the process group (no shutdown at all, like a crash); return the old PID."""
        pid = self._process.pid
        if pid is None or not self._process.is_running:
            raise RuntimeError(f"{self!r} is not running")
        if self._client is not None:
            self._client.close()
            self._client = None
        os.killpg(pid, signal.SIGKILL)
        self._process.stop(timeout=10)  # reaps it
        return pid

    def restart(self, *, kill: bool = True) -> EmulatorServer:
        """Kill (or stop with SIGTERM) and start again on the same port. Keeps jobs only with ``state_file``."""
        if self._process.is_running:
            if kill:
                self.kill()
            else:
                self.stop()
        return self.start()

    def stop(self, timeout: float = 10.0) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        self._process.stop(timeout=timeout)

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- admin API --------------------------------------------------------------------------------
    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(base_url=self.url, timeout=30.0, trust_env=False)
        return self._client

    def admin(self, method: str, path: str, json: Any = None, params: Mapping[str, Any] | None = None) -> Any:
        """Call ``/_admin/<path>``; return the decoded JSON; raise :class:`EmulatorError` on >= 400."""
        url = "/_admin/" + path.lstrip("/")
        kwargs: dict[str, Any] = {}
        if json is not None:
            kwargs["json"] = json
        if params:
            kwargs["params"] = {k: v for k, v in params.items() if v is not None}
        resp = self.client.request(method.upper(), url, **kwargs)
        if resp.status_code >= 400:
            raise EmulatorError(f"{method.upper()} {url} -> {resp.status_code}: {resp.text}")
        return resp.json()

    def health(self) -> bool:
        try:
            return bool(self.admin("GET", "health").get("ok"))
        except (httpx.HTTPError, EmulatorError):
            return False

    def reset(self) -> None:
        self.admin("POST", "reset")

    def get_config(self) -> dict[str, Any]:
        return dict(self.admin("GET", "config"))

    def configure(self, **changes: Any) -> dict[str, Any]:
        """``PATCH /_admin/config`` (e.g. ``job_duration=1``, ``daily_bucket={...}``)."""
        return dict(self.admin("PATCH", "config", json=changes))

    def set_account(self, service: str, credential: str, **settings: Any) -> dict[str, Any]:
        """``PUT /_admin/accounts/{service}/{credential}`` (``daily_bucket=...``, ``revoked=...``)."""
        return dict(self.admin("PUT", f"accounts/{service}/{quote(credential, safe='')}", json=settings))

    def add_fault(self, **rule: Any) -> str:
        """``POST /_admin/faults``; returns the rule id."""
        return str(self.admin("POST", "faults", json=rule)["id"])

    def faults(self) -> list[dict[str, Any]]:
        return list(self.admin("GET", "faults")["faults"])

    def delete_fault(self, fault_id: str) -> None:
        self.admin("DELETE", f"faults/{fault_id}")

    def clear_faults(self) -> None:
        self.admin("DELETE", "faults")

    def stats(self, service: str | None = None, credential: str | None = None) -> dict[str, Any]:
        return dict(self.admin("GET", "stats", params={"service": service, "credential": credential}))

    def requests(
        self, service: str | None = None, credential: str | None = None, since: float | None = None
    ) -> list[dict[str, Any]]:
        """``GET /_admin/requests``: each request, oldest first, with its arrival time ``at`` (epoch s)."""
        params = {"service": service, "credential": credential, "since": since}
        return list(self.admin("GET", "requests", params=params)["requests"])

    def jobs(self, service: str | None = None, credential: str | None = None) -> list[dict[str, Any]]:
        return list(self.admin("GET", "jobs", params={"service": service, "credential": credential})["jobs"])

    def job(self, service: str, job_id: str) -> dict[str, Any]:
        return dict(self.admin("GET", f"jobs/{service}/{job_id}"))

    def patch_job(
        self, service: str, job_id: str, *, duration: float | None = None, outcome: str | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if duration is not None:
            body["duration"] = duration
        if outcome is not None:
            body["outcome"] = outcome
        return dict(self.admin("PATCH", f"jobs/{service}/{job_id}", json=body))

    def __repr__(self) -> str:
        return f"EmulatorServer(url={self.url!r}, pid={self.pid})"
