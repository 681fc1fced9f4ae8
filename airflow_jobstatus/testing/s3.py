"""A local S3 server: moto's server mode as a real subprocess on a free loopback port."""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

from airflow_jobstatus.testing.processes import ManagedProcess, free_port

__all__ = ["S3Server"]

ACCESS_KEY = "testing"
SECRET_KEY = "testing"
REGION = "us-east-1"


def _no_proxy_opener() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(urllib.request.ProxyHandler({}))


class S3Server:
    """``python -m moto.server -H 127.0.0.1 -p PORT`` started and stopped by PID.

    Any access/secret key is accepted by moto; :meth:`client` uses ``testing``/``testing`` and
    region ``us-east-1``.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        log_path: str | os.PathLike[str] | None = None,
        startup_timeout: float = 30.0,
    ) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.startup_timeout = startup_timeout
        self._log_path = Path(log_path) if log_path is not None else None
        self._process: ManagedProcess | None = None
        self.access_key = ACCESS_KEY
        self.secret_key = SECRET_KEY
        self.region = REGION

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def process(self) -> ManagedProcess | None:
        return self._process

    def _ready(self) -> bool:
        try:
            with _no_proxy_opener().open(self.endpoint_url + "/", timeout=1.0) as resp:
                return int(resp.status) < 500
        except urllib.error.HTTPError as exc:
            return exc.code < 500
        except OSError:
            return False

    def start(self) -> S3Server:
        env = dict(os.environ)
        env.setdefault("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        env.setdefault("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        env.setdefault("AWS_DEFAULT_REGION", REGION)
        env["PYTHONUNBUFFERED"] = "1"
        self._process = ManagedProcess(
            [sys.executable, "-m", "moto.server", "-H", self.host, "-p", str(self.port)],
            name="moto-s3",
            log_path=self._log_path,
            env=env,
        )
        self._process.start(self._ready, timeout=self.startup_timeout)
        return self

    def stop(self) -> None:
        if self._process is not None:
            self._process.stop()

    def reset(self) -> None:
        """Forget every bucket and object (moto's ``/moto-api/reset``)."""
        req = urllib.request.Request(self.endpoint_url + "/moto-api/reset", method="POST", data=b"")
        with _no_proxy_opener().open(req, timeout=10):
            pass

    # -- clients ----------------------------------------------------------------------------------
    def client(self) -> Any:
        """A boto3 S3 client for this server (dummy keys, region us-east-1, path-style)."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=self.region,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}),
        )

    def create_bucket(self, name: str) -> str:
        self.client().create_bucket(Bucket=name)
        return name

    # -- Airflow connection -----------------------------------------------------------------------
    def airflow_connection(self) -> dict[str, Any]:
        return {
            "conn_type": "aws",
            "login": self.access_key,
            "password": self.secret_key,
            "extra": {"endpoint_url": self.endpoint_url, "region_name": self.region},
        }

    def airflow_conn_uri(self, conn_id: str | None = None) -> str:
        """The connection in Airflow's JSON form (what an ``AIRFLOW_CONN_<ID>`` variable holds).

        ``conn_id`` is accepted for symmetry with :meth:`airflow_connection_env` and not used.
        """
        del conn_id
        return json.dumps(self.airflow_connection())

    def airflow_connection_env(self, conn_id: str = "aws_default") -> dict[str, str]:
        """``{"AIRFLOW_CONN_<CONN_ID>": <JSON>}`` for an Airflow ``aws`` connection to this server."""
        return {f"AIRFLOW_CONN_{conn_id.upper()}": self.airflow_conn_uri(conn_id)}

    # -- context manager --------------------------------------------------------------------------
    def __enter__(self) -> S3Server:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
