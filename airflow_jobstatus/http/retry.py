"""When to retry, and how long to wait: exponential backoff with full jitter and Retry-After."""

from __future__ import annotations

import random
import ssl
import time
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime

import httpx

from airflow_jobstatus.exceptions import error_class_for_status

# Failures before the request reached the server: always safe to resend.
NOT_SENT_ERRORS: tuple[type[Exception], ...] = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# Failures after sending (reset, timeout while reading): safe to resend only idempotent requests.
SENT_ERRORS: tuple[type[Exception], ...] = (
    httpx.ReadTimeout,
    httpx.WriteTimeout,
    httpx.ReadError,
    httpx.WriteError,
    httpx.RemoteProtocolError,
)


def is_certificate_error(exc: BaseException) -> bool:
    """True when a connection failed because the server's TLS certificate was not trusted.

    httpx (sync) and our aiohttp transport both keep the `ssl.SSLCertVerificationError` in the
    exception chain (as cause or context); retrying such a failure can never succeed.
    """
    current: BaseException | None = exc
    for _ in range(10):  # chains are short; the bound only guards against cycles
        if current is None:
            return False
        if isinstance(current, ssl.SSLCertVerificationError):
            return True
        current = current.__cause__ or current.__context__
    return False


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header, in either of its forms (seconds or HTTP-date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    now = time.time() if now is None else now
    return max(0.0, when.timestamp() - now)


@dataclass(frozen=True)
class RetryPolicy:
    """Which failures are retried and how long to wait between attempts."""

    max_retries: int = 5
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    max_retry_after: float = 120.0
    """A Retry-After longer than this is not slept through inside one call: the error is raised
    with its ``retry_after`` so that callers with more patience (triggers) can pause instead."""
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def should_retry_status(self, status: int, *, idempotent: bool) -> bool:
        """Retry what its error class says is not permanent; a POST only when it was not processed."""
        kind = error_class_for_status(status)
        return not kind.permanent and (idempotent or kind.not_processed)

    def should_retry_error(self, exc: Exception, *, idempotent: bool) -> bool:
        if is_certificate_error(exc):
            return False
        if isinstance(exc, NOT_SENT_ERRORS):
            return True
        return idempotent and isinstance(exc, SENT_ERRORS)

    def backoff(self, attempt: int) -> float:
        """Full jitter: uniform between 0 and base * 2**attempt, capped."""
        return self.rng.uniform(0.0, min(self.backoff_max, self.backoff_base * (2**attempt)))

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Wait before the next attempt: the server's Retry-After if it gave one, else backoff."""
        if retry_after is not None:
            # A little jitter on top, so many waiters do not return in the same instant.
            return retry_after + self.rng.uniform(0.0, min(1.0, 0.1 * retry_after + 0.05))
        return self.backoff(attempt)
