"""Which service account a connection speaks for, as a key safe to store: never the credential.

Two connections with the same service, host and credentials are the same account, whatever their
ids; the key is a SHA-256 digest of those fields (with a fixed domain prefix), cut to 24 hex digits,
from which the credential cannot be recovered.
"""

from __future__ import annotations

import hashlib
from typing import Any

from airflow_jobstatus.services import ServiceSpec

DOMAIN = b"airflow-jobstatus account v1\0"


def account_key(spec: ServiceSpec, conn: Any) -> str:
    """``<service>:<digest>`` for the connection ``conn`` (host, port, login and password)."""
    host = (getattr(conn, "host", None) or spec.default_host or "").strip().rstrip("/").lower()
    parts = (spec.name, host, str(getattr(conn, "port", None) or ""), conn.login or "", conn.password or "")
    digest = hashlib.sha256(DOMAIN + "\0".join(parts).encode()).hexdigest()[:24]
    return f"{spec.name}:{digest}"


async def aaccount_key(spec: ServiceSpec, conn_id: str) -> str:
    """`account_key` of a connection read with Airflow's async API (inside an event loop)."""
    from airflow.sdk import BaseHook

    return account_key(spec, await BaseHook.aget_connection(conn_id))
