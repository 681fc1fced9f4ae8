"""The link between one connection's poller (`airflow_jobstatus.triggers.poller`) and push events.

An event only *pokes* the job: its watch becomes due now, so the poller sends one status request
and the service's answer decides, exactly as for a timed poll. A poke that arrives while a request
for the job is in flight (which may predate the event) makes the next poll immediate instead.
While push is healthy, a wait's next poll after a non-terminal answer comes after the service's
safety-net interval (``[jobstatus] push_poll_interval``), but only on a connection that has its
webhook credential (``webhook_secret``/``webhook_token``): without it no webhook can be verified,
so its waits keep their normal interval. When push turns unhealthy, watches that were parked on
the long interval are brought back to their normal one at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any, Protocol

from airflow_jobstatus.push.config import PUSH_SERVICES
from airflow_jobstatus.push.fields import SECRET_EXTRA
from airflow_jobstatus.push.listener import PushListener, Registration, listener_for_loop
from airflow_jobstatus.push.models import webhook_job_id
from airflow_jobstatus.triggers.pacing import jittered

if TYPE_CHECKING:
    from airflow_jobstatus.triggers.waits import JobWatch

log = logging.getLogger(__name__)
_config_error_logged = False


def _listener() -> PushListener | None:
    """The loop's listener; a broken ``[jobstatus]`` section is logged once and means polling."""
    global _config_error_logged
    try:
        return listener_for_loop()
    except Exception as exc:
        if not _config_error_logged:
            _config_error_logged = True
            log.warning("jobstatus push is off: %s", exc)
        return None


class PolledConnection(Protocol):
    """What a link reads and reschedules of its poller (`ConnectionPoller`, which owns the link)."""

    service: str
    conn_id: str
    loop: asyncio.AbstractEventLoop
    watches: dict[str, JobWatch]

    def _schedule(self, watch: JobWatch, due: float) -> None: ...


class PushLink:
    """Registrations of one poller's watches with the loop's listener."""

    def __init__(self, poller: PolledConnection, listener: PushListener) -> None:
        self.poller = poller
        self.listener = listener
        self._registrations: dict[str, Registration] = {}
        self._poked_busy: set[str] = set()
        self._undo = listener.add_health_callback(self._on_health)
        self.pokes = 0
        self.configured = False
        """The connection has its webhook credential (read once, off the loop's critical path)."""
        self._reader = poller.loop.create_task(self._read_connection())

    @classmethod
    def for_poller(cls, poller: PolledConnection) -> PushLink | None:
        """None when push is off, or the service documents no webhook (Wasabi AiR)."""
        if poller.service not in PUSH_SERVICES:
            return None
        listener = _listener()
        return cls(poller, listener) if listener is not None else None

    def watch(self, job_id: str) -> None:
        if job_id not in self._registrations:
            # the webhook may name the job differently (Symbl: jobId, the wait: "jobId:conversationId")
            pushed_id = webhook_job_id(self.poller.service, job_id)
            self._registrations[job_id] = self.listener.register(
                self.poller.service,
                self.poller.conn_id,
                pushed_id,
                lambda event: self._on_event(job_id, event.received_at),
            )

    def unwatch(self, job_id: str) -> None:
        self._poked_busy.discard(job_id)
        registration = self._registrations.pop(job_id, None)
        if registration is not None:
            registration.close()

    def close(self) -> None:
        for job_id in list(self._registrations):
            self.unwatch(job_id)
        self._undo()
        self._reader.cancel()

    async def _read_connection(self) -> None:
        from airflow.sdk import BaseHook

        try:
            conn = await BaseHook.aget_connection(self.poller.conn_id)
            reader = getattr(conn, "aextra_dejson", None)
            extra = dict(await reader()) if reader is not None else dict(conn.extra_dejson)
        except asyncio.CancelledError:
            raise
        except Exception:
            return  # the poller reports connection problems itself; without push it just polls
        value = extra.get(SECRET_EXTRA[self.poller.service])
        self.configured = isinstance(value, str) and bool(value.strip())

    def interval(self, watch: JobWatch) -> float:
        """Seconds until the watch's next poll after a non-terminal answer."""
        if watch.job_id in self._poked_busy:
            self._poked_busy.discard(watch.job_id)
            return 0.0
        if not self.configured:
            return watch.interval
        return self.listener.interval_for(self.poller.service, watch.interval)

    def _on_event(self, job_id: str, received_at: float = 0.0) -> None:
        watch = self.poller.watches.get(job_id)
        if watch is None or not watch.active:
            return
        self.pokes += 1
        # a status shared by another triggerer (shared/status.py) must be newer than the event
        watch.poked_at = max(watch.poked_at, received_at or time.time())
        if watch.busy:
            self._poked_busy.add(job_id)
            return
        self.poller._schedule(watch, self.poller.loop.time())

    def _on_health(self, healthy: bool) -> None:
        if healthy:
            return  # parked watches keep their due time; the listener re-reads stored events
        now = self.poller.loop.time()
        for watch in list(self.poller.watches.values()):
            due: Any = watch.due
            if watch.active and not watch.busy and due is not None and due > now + watch.interval:
                self.poller._schedule(watch, now + jittered(watch.interval))
