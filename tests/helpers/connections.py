"""Airflow connections to the emulator, as the suite defines them (one fresh account each).

Every secret carries the session's canary (`tests.helpers.canary`). Daily's and DeepAffects'
account identity is the API key itself, so there the identity is a secret too; Wasabi's access key
and Symbl's App ID are plain names.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from jobstatus_emulator.server import EmulatorServer
from tests.helpers.canary import secret

EMULATOR_NAME = {"daily": "daily", "wasabi_air": "wasabi", "symbl": "symbl", "deepaffects": "deepaffects"}
"""Connection type -> the emulator's name for the service (URL prefix, admin API)."""
SECRET_IS_ACCOUNT = frozenset({"daily", "deepaffects"})


def emulator_connection(
    emulator: EmulatorServer, conn_type: str, *, label: str, identity: str | None = None, **extra: Any
) -> tuple[dict[str, Any], str]:
    """A connection (a dict for ``AIRFLOW_CONN_*`` as JSON) and the emulator account it uses.

    ``extra`` adds to ``{"allow_http_links": True}``; ``identity`` picks the account (default: new).
    """
    if identity is None:
        identity = (
            secret(f"{label}-{conn_type}")
            if conn_type in SECRET_IS_ACCOUNT
            else f"{label}-{conn_type}-{uuid.uuid4().hex[:10]}"
        )
    if conn_type == "deepaffects":
        # Tests poll every second or so: without DeepAffects' default 5/min and 100/day (the suite's
        # emulator runs without them too, see the pytest plugin); the tests of the limits set them.
        extra = {"max_requests_per_minute": 0, "max_requests_per_day": 0, **extra}
    conn: dict[str, Any] = {
        "conn_type": conn_type,
        "host": emulator.service_url(EMULATOR_NAME[conn_type]),
        "extra": {"allow_http_links": True, **extra},
    }
    if conn_type in SECRET_IS_ACCOUNT:
        conn["password"] = identity
    else:  # login: access key / App ID; password: the secret
        conn.update(login=identity, password=secret(f"{label}-{conn_type}-secret"))
    return conn, identity


@contextlib.contextmanager
def exported(env: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables in this process (e.g. connections it submits through), then restore."""
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def aws_connection(monkeypatch: pytest.MonkeyPatch, endpoint_url: str) -> str:
    """An ``aws`` connection (moto's test keys) to the S3 server at ``endpoint_url``; its id."""
    conn_id = f"t_aws_{uuid.uuid4().hex[:8]}"
    conn = {
        "conn_type": "aws",
        "login": "testing",
        "password": "testing",
        "extra": {"endpoint_url": endpoint_url, "region_name": "us-east-1"},
    }
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))
    return conn_id


def daily_customer_storage(make_connection: Any, emulator: EmulatorServer, bucket: str) -> tuple[str, str]:
    """A Daily connection whose account stores outputs in ``bucket`` under ``acme/``: (conn id, key)."""
    conn_id, key = make_connection("daily", output_storage="customer")
    emulator.set_account(
        "daily", key, daily_bucket={"bucket": bucket, "region": "us-east-1", "prefix": "acme"}
    )
    return conn_id, key
