"""The triggerer side of push: one Redis subscription per event loop, shared by all its waits.

A wait registers ``(service, conn_id, job_id)`` with a callback. The listener calls it (in the
loop, without blocking) when an event for that job is published, or when one is found stored in
Redis: at registration and after every (re)connect, so an event published before the wait started
or while the triggerer was down is not missed. The callback must only *schedule* a status request;
a webhook never ends a wait by itself.

Health: `PushListener.healthy` is true only while the subscription is confirmed live (a PING
answered within `PushListener.stale_after`). On a drop the listener logs once, tells its health
callbacks, and reconnects with backoff; waits poll at their normal interval meanwhile
(`PushListener.interval_for`). Nothing here imports ``redis`` unless push is configured.

Integration with the poll hub (kept small on purpose)::

    listener = listener_for_loop()              # None when push is off
    if listener is not None:
        reg = listener.register(service, conn_id, job_id, lambda event: poller.poke(job_id))
        undo = listener.add_health_callback(poller.push_health_changed)
        interval = listener.interval_for(service, normal_interval)
        ...
        reg.close()                             # when the wait ends
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING

from airflow_jobstatus.push.config import PushConfig, load_config
from airflow_jobstatus.push.models import CHANNEL, PushEvent, event_key

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.asyncio.client import PubSub

log = logging.getLogger(__name__)

EventCallback = Callable[[PushEvent], None]
HealthCallback = Callable[[bool], None]
JobKey = tuple[str, str, str]

KEY_BATCH = 500
"""Stored keys read per MGET when checking many waits at once."""


class Registration:
    """One wait's interest in one job's events; `close` it when the wait ends."""

    __slots__ = ("_listener", "callback", "key", "last_received_at")

    def __init__(self, listener: PushListener, key: JobKey, callback: EventCallback) -> None:
        self._listener: PushListener | None = listener
        self.key = key
        self.callback = callback
        self.last_received_at: float | None = None

    def deliver(self, event: PushEvent) -> None:
        # The same event can arrive twice (published while its stored key was being read).
        if event.received_at == self.last_received_at:
            return
        self.last_received_at = event.received_at
        try:
            self.callback(event)
        except Exception:
            log.exception("jobstatus push: a wait's event callback failed")

    def close(self) -> None:
        if self._listener is not None:
            self._listener._unregister(self)
            self._listener = None

    def __repr__(self) -> str:
        return f"Registration{self.key}"


class PushListener:
    """The subscription of one event loop. Use `listener_for_loop` rather than building one."""

    def __init__(
        self,
        config: PushConfig,
        *,
        ping_interval: float = 5.0,
        min_backoff: float = 0.2,
        max_backoff: float = 5.0,
    ) -> None:
        if not config.enabled:
            raise ValueError("push is off: [jobstatus] redis_url is not set")
        self.config = config
        self.ping_interval = ping_interval
        self.stale_after = 3 * ping_interval
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self._routes: dict[JobKey, set[Registration]] = {}
        self._health_callbacks: list[HealthCallback] = []
        self._healthy = False
        self._reported_down = False
        self._client: Redis | None = None
        self._to_check: set[JobKey] = set()
        self._check_task: asyncio.Task[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.connects = 0
        """Subscriptions made so far (1 + reconnections)."""

    # -- for the waits ------------------------------------------------------------------------------
    @property
    def healthy(self) -> bool:
        return self._healthy

    def interval_for(self, service: str, normal: float) -> float:
        """The poll interval a wait on ``service`` should use now: the safety net while push is healthy."""
        return max(normal, self.config.poll_interval(service)) if self._healthy else normal

    def register(self, service: str, conn_id: str, job_id: str, callback: EventCallback) -> Registration:
        """Route this job's events to ``callback``; a stored event is looked up at once."""
        self._ensure_running()
        key = (service, conn_id, job_id)
        registration = Registration(self, key, callback)
        self._routes.setdefault(key, set()).add(registration)
        self._check_stored([key])
        return registration

    def add_health_callback(self, callback: HealthCallback) -> Callable[[], None]:
        """Call ``callback(healthy)`` on every change; returns the function that removes it."""
        self._health_callbacks.append(callback)

        def remove() -> None:
            with contextlib.suppress(ValueError):
                self._health_callbacks.remove(callback)

        return remove

    @property
    def waits(self) -> int:
        return sum(len(r) for r in self._routes.values())

    async def aclose(self) -> None:
        self._closed = True
        for task in (self._task, self._check_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._set_healthy(False, quiet=True)

    # -- internals ----------------------------------------------------------------------------------
    def _unregister(self, registration: Registration) -> None:
        regs = self._routes.get(registration.key)
        if regs is not None:
            regs.discard(registration)
            if not regs:
                del self._routes[registration.key]

    def _ensure_running(self) -> None:
        if self._closed:
            raise RuntimeError("this push listener was closed")
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="jobstatus-push-listener")

    def _set_healthy(self, healthy: bool, reason: str = "", *, quiet: bool = False) -> None:
        if healthy == self._healthy and (healthy or self._reported_down or quiet):
            return
        was = self._healthy
        self._healthy = healthy
        if not quiet:
            if healthy:
                log.info("jobstatus push: subscribed to Redis; waits use push with a safety-net poll")
                self._reported_down = False
            elif not self._reported_down:
                self._reported_down = True
                log.warning(
                    "jobstatus push: Redis is unreachable or the subscription dropped (%s); "
                    "waits poll at their normal interval until it is back",
                    reason,
                )
        if healthy != was:
            for callback in list(self._health_callbacks):
                try:
                    callback(healthy)
                except Exception:
                    log.exception("jobstatus push: a health callback failed")

    def _route(self, event: PushEvent) -> None:
        for registration in list(self._routes.get((event.service, event.conn_id, event.job_id), ())):
            registration.deliver(event)

    def _check_stored(self, keys: list[JobKey]) -> None:
        """Read these jobs' stored events soon (batched); only while connected."""
        if not keys:
            return
        self._to_check.update(keys)
        if self._client is not None and (self._check_task is None or self._check_task.done()):
            self._check_task = asyncio.get_running_loop().create_task(self._read_stored())

    async def _read_stored(self) -> None:
        client = self._client
        while self._to_check and client is not None and client is self._client:
            batch = [self._to_check.pop() for _ in range(min(KEY_BATCH, len(self._to_check)))]
            batch = [key for key in batch if key in self._routes]
            if not batch:
                continue
            try:
                values = await client.mget([event_key(*key) for key in batch])
            except Exception:
                # The subscription loop notices the outage and checks every wait on reconnect.
                self._to_check.update(batch)
                return
            for value in values:
                event = PushEvent.from_json(value) if value is not None else None
                if event is not None:
                    self._route(event)

    async def _run(self) -> None:
        from redis.asyncio import Redis

        backoff = self.min_backoff
        url = self.config.redis_url
        assert url
        while not self._closed:
            client = Redis.from_url(url, socket_connect_timeout=2)
            pubsub = client.pubsub()
            try:
                await pubsub.subscribe(CHANNEL)
                await self._await_subscribed(pubsub)
                self.connects += 1
                self._client = client
                self._set_healthy(True)
                backoff = self.min_backoff
                self._check_stored(list(self._routes))
                await self._consume(pubsub)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._client = None
                self._set_healthy(False, type(exc).__name__)
            finally:
                self._client = None
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
                with contextlib.suppress(Exception):
                    await client.aclose()
            if self._closed:
                return
            await asyncio.sleep(backoff)
            backoff = min(self.max_backoff, backoff * 2)

    async def _await_subscribed(self, pubsub: PubSub) -> None:
        deadline = time.monotonic() + self.stale_after
        while time.monotonic() < deadline:
            message = await pubsub.get_message(timeout=self.ping_interval)
            if message is not None and message.get("type") == "subscribe":
                return
        raise TimeoutError("no subscription confirmation")

    async def _consume(self, pubsub: PubSub) -> None:
        """Route messages; PING now and then so that a silent dead connection is noticed."""
        last_seen = time.monotonic()
        next_ping = last_seen + self.ping_interval
        while not self._closed:
            message = await pubsub.get_message(timeout=min(1.0, self.ping_interval))
            now = time.monotonic()
            if message is not None:
                last_seen = now
                if message.get("type") == "message":
                    event = PushEvent.from_json(message["data"])
                    if event is not None:
                        self._route(event)
            if now - last_seen > self.stale_after:
                raise TimeoutError("the Redis subscription went silent")
            if now >= next_ping:
                await pubsub.ping()
                next_ping = now + self.ping_interval


_listeners: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, PushListener] = weakref.WeakKeyDictionary()


def listener_for_loop(config: PushConfig | None = None) -> PushListener | None:
    """The running loop's listener (made on first call), or None when push is off.

    ``config`` defaults to ``[jobstatus]`` (`load_config`); it is read once per loop.
    """
    loop = asyncio.get_running_loop()
    listener = _listeners.get(loop)
    if listener is None or listener._closed:
        if config is None:
            if loop in _push_off:
                return None
            config = load_config()
            if not config.enabled:
                _push_off.add(loop)
        if not config.enabled:
            return None
        listener = _listeners[loop] = PushListener(config)
    return listener


_push_off: weakref.WeakSet[asyncio.AbstractEventLoop] = weakref.WeakSet()
"""Loops that found push off in ``[jobstatus]`` (read once per loop)."""
