"""`JobEventTrigger`: schedule DAGs when jobs end, from the same Redis events the waits use.

Use it in an asset watcher (``Asset(..., watchers=[AssetWatcher(name=..., trigger=JobEventTrigger(...))])``).
Each event the receiver publishes is a new message, so a job that stays finished does not fire
again; a job's repeated webhooks are published once (``docs/contracts.md`` O-H7).

A webhook is only a hint here too: for a matching event the trigger asks the service for the
job's status once (the service's hook, async) and fires only when the job has ended, with
``{service, conn_id, job_id, state, raw_status, preset}`` (ids and states, never the result).
Filters: ``service``, ``conn_id`` (both optional) and ``preset`` (Daily's preset; a job without
one never matches a ``preset`` filter). Redis is ``[jobstatus] redis_url`` (unset: the trigger
waits forever, warning once, and fires nothing); while it is
unreachable the trigger retries every few seconds (events published meanwhile are not seen: a
pub/sub message is only delivered to live subscribers).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseEventTrigger, TriggerEvent

from airflow_jobstatus.exceptions import InvalidParameterError
from airflow_jobstatus.push.config import PUSH_SERVICES, load_config
from airflow_jobstatus.push.models import CHANNEL, PushEvent
from airflow_jobstatus.services import SERVICES

log = logging.getLogger(__name__)

RECONNECT_DELAY = 5.0


class JobEventTrigger(BaseEventTrigger):
    """Fires once per ended job whose webhook matches the filters (see the module docstring)."""

    def __init__(self, *, service: str | None = None, conn_id: str | None = None, preset: str | None = None):
        super().__init__()
        if service is not None and service not in PUSH_SERVICES:
            raise InvalidParameterError(
                f"JobEventTrigger service must be one of {', '.join(PUSH_SERVICES)}, got {service!r}",
                hint="Wasabi AiR sends no webhooks; leave service unset to match every pushing service.",
            )
        self.service = service
        self.conn_id = conn_id
        self.preset = preset

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {"service": self.service, "conn_id": self.conn_id, "preset": self.preset},
        )

    def matches(self, event: PushEvent) -> bool:
        return (self.service is None or event.service == self.service) and (
            self.conn_id is None or event.conn_id == self.conn_id
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from redis.asyncio import Redis

        url = load_config().redis_url
        if not url:
            # Push off (e.g. an example DAG loaded by a demo): never fire, and do not fail the triggerer.
            log.warning("JobEventTrigger: [jobstatus] redis_url is not set, so no job events will arrive")
            await asyncio.Event().wait()
            return
        while True:
            client = Redis.from_url(url, socket_connect_timeout=5)
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(CHANNEL)
                while True:
                    message = await pubsub.get_message(timeout=30.0)
                    if message is None:
                        continue
                    event = PushEvent.from_json(message["data"])
                    if event is None or not self.matches(event):
                        continue
                    fired = await self._ended(event)
                    if fired is not None:
                        yield TriggerEvent(fired)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis went away: say so, then subscribe again
                log.warning("JobEventTrigger: Redis subscription failed (%s); retrying", type(exc).__name__)
                await asyncio.sleep(RECONNECT_DELAY)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
                    await client.aclose()

    async def _ended(self, event: PushEvent) -> dict[str, Any] | None:
        """The job's status (one request); the event to fire when it has ended and matches."""
        spec = SERVICES[event.service]
        module, _, name = spec.hook_class.rpartition(".")
        hook = getattr(importlib.import_module(module), name)(**{spec.conn_id_kwarg: event.conn_id})
        try:
            status = await hook.aget_job(event.job_id)
        except Exception as exc:
            log.warning(
                "JobEventTrigger: %s job %s status request failed (%s)", spec.display_name, event.job_id, exc
            )
            return None
        preset = status.raw.get("preset") if isinstance(status.raw, dict) else None
        if not status.is_terminal or (self.preset is not None and preset != self.preset):
            return None
        return {
            "service": event.service,
            "conn_id": event.conn_id,
            "job_id": status.job_id,
            "state": status.state.value,
            "raw_status": status.raw_status,
            "preset": preset if isinstance(preset, str) else None,
        }
