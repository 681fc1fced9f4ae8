"""Submitting again while a service refuses new jobs at the account's concurrency limit.

A service that caps how many jobs an account runs at once (Symbl.ai: a 429 on submit, contracts
S8) refuses a submission with `ConcurrencyLimitError` until some jobs end. That takes minutes, not
the seconds the HTTP retries wait: `submit_while_limited` waits with a growing backoff (each wait
logged with the reason) and submits again, for at most ``limit_seconds`` in total.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from airflow_jobstatus.exceptions import ConcurrencyLimitError

T = TypeVar("T")


class _Log(Protocol):
    def warning(self, msg: Any, /, *args: Any) -> Any: ...


BACKOFF_INITIAL = 15.0
"""Seconds before the first new submission."""
BACKOFF_MAX = 300.0
"""The backoff doubles up to this many seconds between submissions."""
DEFAULT_CONCURRENCY_WAIT = 3600.0
"""Seconds a submit operator keeps submitting again by default (its ``concurrency_wait_timeout``)."""


def submit_while_limited(
    send: Callable[[], T],
    *,
    limit_seconds: float,
    log: _Log,
    service: str,
    initial: float = BACKOFF_INITIAL,
    maximum: float = BACKOFF_MAX,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """``send()``; while it raises `ConcurrencyLimitError`, wait and call it again.

    Waits ``initial`` seconds, doubling up to ``maximum`` (at least the service's ``Retry-After``),
    and gives up with a `ConcurrencyLimitError` naming the time spent when the next wait would end
    past ``limit_seconds`` after the first attempt.
    """
    started = time.monotonic()
    delay = initial
    attempt = 1
    while True:
        try:
            return send()
        except ConcurrencyLimitError as exc:
            spent = time.monotonic() - started
            wait = max(min(delay, maximum), exc.retry_after or 0.0)
            if spent + wait > limit_seconds:
                raise ConcurrencyLimitError(
                    f"the account was still at its limit of concurrent jobs after {attempt} submission "
                    f"attempts over {spent:.0f} s (the limit on waiting is {limit_seconds:.0f} s); "
                    "no job was submitted",
                    service=service,
                    operation="submit_job",
                    status_code=exc.http_status,
                ) from exc
            log.warning(
                "%s refused the submission: the account's concurrent-job limit is reached (%s). "
                "Submitting again in %.0f s (attempt %d; %.0f s of at most %.0f s spent waiting)",
                service,
                exc,
                wait,
                attempt + 1,
                spent,
                limit_seconds,
            )
            sleep(wait)
            delay = min(delay * 2, maximum)
            attempt += 1
