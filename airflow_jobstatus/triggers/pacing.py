"""Pacing of one connection's polls: jittered intervals and a pause after a rate limit."""

from __future__ import annotations

import logging
import random
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import asyncio

    from airflow_jobstatus.services import ServiceSpec

log = logging.getLogger("airflow_jobstatus.triggers.hub")

JITTER = 0.1
MIN_FIRST_EVENT_DELAY = 2.0
"""No waiter gets an outcome (nor sends its first poll) sooner than this after it registered."""
GATHER = 0.05
"""Jobs due within this many seconds are polled in the same round."""
CALL_BUDGET = 120.0
"""Seconds one poll may take, retries and Retry-After waits included."""

_rng = random.Random()


def jittered(interval: float) -> float:
    return interval * (1.0 + JITTER * (2.0 * _rng.random() - 1.0))


class Pacing:
    """The pause part of `ConnectionPoller` (mixed in)."""

    if TYPE_CHECKING:
        loop: asyncio.AbstractEventLoop
        paused_until: float
        spec: ServiceSpec
        conn_id: str

    def _pause(self, seconds: float) -> None:
        until = self.loop.time() + max(0.0, seconds)
        if until > self.paused_until:
            self.paused_until = until
            log.info(
                "%s connection %r rate limited: holding every poll for %.1fs",
                self.spec.display_name,
                self.conn_id,
                seconds,
            )
