"""Pacing of one connection's polls: jittered intervals, the first-poll delay, and the pause that
holds every poll of a connection after a rate limit (429 with or without ``Retry-After``).

Back-off inside one request (retries, ``Retry-After`` up to a bound) is the HTTP core's
(`airflow_jobstatus.http.retry`); what is here spaces the polls of a wait."""

from __future__ import annotations

import asyncio
import logging
import random

log = logging.getLogger("airflow_jobstatus.triggers.hub")  # one logger for the whole poll hub

JITTER = 0.1
MIN_FIRST_EVENT_DELAY = 2.0
"""No waiter gets an outcome (nor sends its first poll) sooner than this after it registered."""
GATHER = 0.05
"""Jobs due within this many seconds are polled in the same round."""
CALL_BUDGET = 120.0
"""Seconds one poll may take, retries and Retry-After waits included."""

_rng = random.Random()


def jittered(interval: float) -> float:
    """``interval`` times a factor drawn from [1 - JITTER, 1 + JITTER]."""
    return interval * (1.0 + JITTER * (2.0 * _rng.random() - 1.0))


def first_poll_in(interval: float) -> float:
    """Seconds from a new watch to its first poll: one jittered interval, never under the first-event delay."""
    return max(MIN_FIRST_EVENT_DELAY, jittered(interval))


def earliest_outcome(now: float) -> float:
    """The loop time before which a wait registered at ``now`` gets no outcome (apache/airflow #71580)."""
    return now + MIN_FIRST_EVENT_DELAY


class Pause:
    """The pause of one connection: after a rate limit, every poll waits until ``until``."""

    __slots__ = ("conn_id", "display_name", "loop", "until")

    def __init__(self, loop: asyncio.AbstractEventLoop, display_name: str, conn_id: str) -> None:
        self.loop = loop
        self.display_name = display_name
        self.conn_id = conn_id
        self.until = 0.0
        """Loop time until which every poll of the connection is held."""

    def extend(self, seconds: float) -> None:
        """Hold every poll for ``seconds`` from now (a shorter pause never cuts a longer one)."""
        until = self.loop.time() + max(0.0, seconds)
        if until > self.until:
            self.until = until
            log.info(
                "%s connection %r rate limited: holding every poll for %.1fs",
                self.display_name,
                self.conn_id,
                seconds,
            )

    async def hold(self) -> None:
        """Sleep out the pause, if one is on."""
        remaining = self.until - self.loop.time()
        if remaining > 0:
            await asyncio.sleep(remaining)
