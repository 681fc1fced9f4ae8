"""The Redis of a deployment: ``[jobstatus] redis_url``, and the clients every module shares.

One sync client per process (thread-safe, its pool is re-made in a forked child) and one async
client per event loop (closed when the loop shuts down). The URL is read once per process (restart
the processes after changing it); `reset` forgets it (tests). Nothing here imports ``redis`` until a
URL is set, so a deployment without Redis never needs the package.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import threading
import time
import weakref
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from airflow_jobstatus.exceptions import InvalidParameterError

if TYPE_CHECKING:
    import redis as redis_sync
    import redis.asyncio as redis_async

log = logging.getLogger(__name__)

SECTION = "jobstatus"
CONNECT_TIMEOUT = 1.0
"""Seconds to connect to Redis: an unreachable Redis must not hold requests up."""
COMMAND_TIMEOUT = 2.0
"""Seconds a Redis command may take before the caller falls back to per-process state."""
RETRY_AFTER = 5.0
"""Seconds after a Redis failure before shared state is tried again (per process)."""

_UNSET: Any = object()
_url: str | None = _UNSET
_sync_client: redis_sync.Redis | None = None
_lock = threading.Lock()
_async_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, redis_async.Redis] = (
    weakref.WeakKeyDictionary()
)


def read_redis_url() -> str | None:
    """``[jobstatus] redis_url`` as configured now (None: unset); `InvalidParameterError` if not a Redis URL."""
    from airflow.sdk import conf

    raw = conf.get(SECTION, "redis_url", fallback=None)
    url = (str(raw) if raw is not None else "").strip() or None
    if url is not None and not url.startswith(("redis://", "rediss://", "unix://")):
        raise InvalidParameterError(
            f"[{SECTION}] redis_url must be a redis://, rediss:// or unix:// URL",
            hint="For example redis://127.0.0.1:6379/0; leave it unset to keep push off and limits per process.",
        )
    return url


def redis_url() -> str | None:
    """The URL this process uses (read once)."""
    global _url
    if _url is _UNSET:
        with _lock:
            if _url is _UNSET:
                try:
                    _url = read_redis_url()
                except InvalidParameterError as exc:  # push reports it too; requests must still go
                    log.warning("Redis is not used by this process: %s", exc)
                    _url = None
                if _url is not None and importlib.util.find_spec("redis") is None:
                    log.warning(
                        "Redis is not used by this process: [%s] redis_url is set but the 'redis' "
                        "package is not installed (pip install 'airflow-jobstatus[push]')",
                        SECTION,
                    )
                    _url = None
    return _url


def reset() -> None:
    """Forget the URL and the clients (tests that change ``redis_url`` within one process)."""
    global _url, _sync_client
    with _lock:
        _url = _UNSET
        client, _sync_client = _sync_client, None
    if client is not None:
        client.close()
    _async_clients.clear()


def sync_client() -> redis_sync.Redis | None:
    """This process's client (None without ``redis_url``)."""
    global _sync_client
    url = redis_url()
    if url is None:
        return None
    if _sync_client is None:
        import redis as redis_sync

        with _lock:
            if _sync_client is None:
                _sync_client = redis_sync.Redis.from_url(
                    url, socket_connect_timeout=CONNECT_TIMEOUT, socket_timeout=COMMAND_TIMEOUT
                )
    return _sync_client


async def async_client() -> redis_async.Redis | None:
    """The running event loop's client (None without ``redis_url``); closed at loop shutdown."""
    url = redis_url()
    if url is None:
        return None
    loop = asyncio.get_running_loop()
    client = _async_clients.get(loop)
    if client is None:
        import redis.asyncio as redis_async

        client = _async_clients[loop] = redis_async.Redis.from_url(
            url, socket_connect_timeout=CONNECT_TIMEOUT, socket_timeout=COMMAND_TIMEOUT
        )
        closer = _closer(client)
        await closer.__anext__()  # parked at its yield until loop.shutdown_asyncgens()
        _closers[loop] = closer
    return client


_closers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncIterator[None]] = (
    weakref.WeakKeyDictionary()
)


async def _closer(client: redis_async.Redis) -> AsyncIterator[None]:
    try:
        yield
    finally:
        try:
            await client.aclose()
        except Exception:  # best effort at loop shutdown
            log.debug("error closing a Redis client", exc_info=True)


class Health:
    """Whether one use of Redis (e.g. shared limits) is up in this process; each change is logged once.

    `usable` says whether to try Redis now: always while up, once every `RETRY_AFTER` seconds while
    down. Callers report each try's result with `succeeded` / `failed`.
    """

    def __init__(self, what: str, fallback: str) -> None:
        self.what = what
        self.fallback = fallback
        self.down_since: float | None = None
        self._retry_at = 0.0
        self._lock = threading.Lock()

    def usable(self) -> bool:
        return self.down_since is None or time.monotonic() >= self._retry_at

    def succeeded(self) -> None:
        if self.down_since is None:
            return
        with self._lock:
            if self.down_since is None:
                return
            down_for, self.down_since = time.monotonic() - self.down_since, None
        log.warning("%s: Redis is reachable again after %.0f s; shared again", self.what, down_for)

    def failed(self, exc: BaseException) -> None:
        with self._lock:
            now = time.monotonic()
            self._retry_at = now + RETRY_AFTER
            if self.down_since is not None:
                return
            self.down_since = now
        log.warning(
            "%s: Redis is unreachable (%s); %s until it is back (retried every %.0f s)",
            self.what,
            type(exc).__name__,
            self.fallback,
            RETRY_AFTER,
        )
