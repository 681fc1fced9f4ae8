"""The one place handing out Redis clients for shared state (``[jobstatus] redis_url``).

`async_client` (one per event loop) and `sync_client` (one per process) return None when
``redis_url`` is unset or the ``[jobstatus]`` section is unreadable (logged once): callers then work
per process. The clients time out quickly, so an unreachable Redis slows nothing down for long.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import redis as redis_sync
    from redis.asyncio import Redis

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 1.0
SOCKET_TIMEOUT = 2.0

_async_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, tuple[str, Redis]] = (
    weakref.WeakKeyDictionary()
)
_sync_client: tuple[str, redis_sync.Redis] | None = None
_config_error_logged = False


def redis_url() -> str | None:
    """``[jobstatus] redis_url``, or None (unset, or the section is broken: logged once)."""
    global _config_error_logged
    from airflow_jobstatus.push.config import load_config

    try:
        return load_config().redis_url
    except Exception as exc:
        if not _config_error_logged:
            _config_error_logged = True
            log.warning("jobstatus shared state is off: %s", exc)
        return None


def async_client() -> Redis | None:
    """The running event loop's client, or None without ``redis_url``."""
    url = redis_url()
    if url is None:
        return None
    loop = asyncio.get_running_loop()
    entry = _async_clients.get(loop)
    if entry is None or entry[0] != url:
        from redis.asyncio import Redis

        client = Redis.from_url(url, socket_connect_timeout=CONNECT_TIMEOUT, socket_timeout=SOCKET_TIMEOUT)
        entry = _async_clients[loop] = (url, client)
    return entry[1]


def sync_client() -> redis_sync.Redis | None:
    """This process's blocking client (for workers, never inside an event loop), or None."""
    global _sync_client
    url = redis_url()
    if url is None:
        return None
    if _sync_client is None or _sync_client[0] != url:
        import redis as redis_sync

        _sync_client = (
            url,
            redis_sync.Redis.from_url(
                url, socket_connect_timeout=CONNECT_TIMEOUT, socket_timeout=SOCKET_TIMEOUT
            ),
        )
    return _sync_client[1]
