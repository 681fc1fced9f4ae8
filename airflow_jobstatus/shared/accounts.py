"""Which service account a connection speaks for, as a key safe to store: never the credential.

Two connections with the same service, host and credentials are the same account, whatever their
ids. The key is ``<service>:<host>:<fingerprint>``, the fingerprint a keyed BLAKE2b digest of the
credentials from which they cannot be recovered (fast on purpose: clients are built inside the
triggerer's event loop). Budgets, shared statuses and job slots all key their Redis state by it.
"""

from __future__ import annotations

import functools
import hashlib
from typing import Any, Protocol
from urllib.parse import urlsplit


class _Service(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def default_host(self) -> str | None: ...


@functools.lru_cache(maxsize=1024)
def _fingerprint(secrets: tuple[str, ...]) -> str:
    material = "\0".join(secrets).encode()
    return hashlib.blake2b(material, key=b"airflow-jobstatus account", digest_size=12).hexdigest()


def account_of(service: str, base_url: str, secrets: tuple[str, ...]) -> str:
    """The account of requests to ``base_url`` made with ``secrets``: service, host, fingerprint."""
    parts = urlsplit(base_url if "://" in base_url else f"https://{base_url}")
    host = (parts.hostname or "").lower()
    if parts.port:
        host = f"{host}:{parts.port}"
    name = service.lower().replace(" ", "_").replace(".", "_")
    return f"{name}:{host}:{_fingerprint(secrets)}"


def account_key(spec: _Service, conn: Any) -> str:
    """The account of the connection ``conn`` (its host, or the service's, and its credentials)."""
    host = str(getattr(conn, "host", None) or spec.default_host or "").strip()
    port = getattr(conn, "port", None)
    if port and "://" in host and not urlsplit(host).port:
        parts = urlsplit(host)
        host = f"{parts.scheme}://{parts.hostname}:{port}{parts.path}"
    secrets = tuple(value for value in (conn.login, conn.password) if value)
    return account_of(spec.name, host, secrets)


async def aaccount_key(spec: _Service, conn_id: str) -> str:
    """`account_key` of a connection read with Airflow's async API (inside an event loop)."""
    from airflow.sdk import BaseHook

    return account_key(spec, await BaseHook.aget_connection(conn_id))
