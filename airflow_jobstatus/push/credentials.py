"""The receiver's view of a connection: its webhook secret or token, read off the event loop, cached.

In the api-server the SDK's ``BaseHook.get_connection`` reads the metadata database (and any
secrets backend) synchronously, so it runs in a worker thread. Entries, including "no such
connection", are kept for a short time so that a burst of webhooks, or of probes for made-up
connection ids, costs one lookup per id.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from airflow_jobstatus.http.redaction import register_secret
from airflow_jobstatus.services import SERVICES

log = logging.getLogger(__name__)

CACHE_TTL = 30.0
CACHE_SIZE = 1024


@dataclass(frozen=True)
class WebhookCredential:
    secret: str | None
    """A `SignedWebhook`'s base64 HMAC secret or a `TokenInUrl`'s token. None: not configured."""

    def __repr__(self) -> str:
        return f"WebhookCredential(configured={self.secret is not None})"


Lookup = Callable[[str, str], "WebhookCredential | None"]
"""(service, conn_id) -> the credential; None when the connection does not exist or is another type."""


def read_credential(service: str, conn_id: str) -> WebhookCredential | None:
    """Blocking: read the connection through the SDK (metadata database, secrets backends, env)."""
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        conn = BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        return None
    spec = SERVICES[service]
    if conn.conn_type != spec.conn_type or spec.webhook is None:
        return None
    scheme = spec.webhook.scheme
    field = scheme.extra
    value = conn.extra_dejson.get(field)
    if not isinstance(value, str) or not value.strip():
        return WebhookCredential(None)
    value = value.strip()
    register_secret(value)
    problem = scheme.problem(value)
    if problem is not None:
        # Logged at each (cached) read: every webhook to this connection is refused until fixed.
        log.warning("jobstatus webhooks to connection %r are refused: its %s %s", conn_id, field, problem)
        return WebhookCredential(None)
    return WebhookCredential(value)


class CredentialCache:
    """A small TTL cache in front of a blocking lookup; concurrent misses for one id share a read."""

    def __init__(self, lookup: Lookup = read_credential, *, ttl: float = CACHE_TTL, size: int = CACHE_SIZE):
        self._lookup = lookup
        self._ttl = ttl
        self._size = size
        self._entries: OrderedDict[tuple[str, str], tuple[float, WebhookCredential | None]] = OrderedDict()
        self._pending: dict[tuple[str, str], asyncio.Future[WebhookCredential | None]] = {}

    async def get(self, service: str, conn_id: str) -> WebhookCredential | None:
        key = (service, conn_id)
        hit = self._entries.get(key)
        now = time.monotonic()
        if hit is not None and hit[0] > now:
            self._entries.move_to_end(key)
            return hit[1]
        pending = self._pending.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[WebhookCredential | None] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        try:
            value = await asyncio.to_thread(self._lookup, service, conn_id)
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: a lookup nobody else awaited must not warn
            raise
        finally:
            self._pending.pop(key, None)
        future.set_result(value)
        self._entries[key] = (time.monotonic() + self._ttl, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)
        return value
