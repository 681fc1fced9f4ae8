"""Webhook delivery: the POSTs the services make to their users' endpoints, as each documents them.

Rows ``H<n>`` and ``O-H<n>`` are in ``docs/contracts.md`` ("Webhooks").

* Symbl (H6): ``{"jobId", "status"}`` on every status change; no retry is documented, so none.
* DeepAffects (H7): ``{"request_id", "response"}`` once the job ends; any answer other than ``200``
  is retried up to 5 times with exponential backoff, then the message is dropped.
* Daily (H3-H5): the signed envelope; ``retryType`` ``exponential`` retries each message up to 5
  times, ``circuit-breaker`` (default) does not retry a message and marks the webhook ``FAILED``
  after 3 consecutive failures (kept by ``daily.py``, told through ``on_result``).

Delivery runs in background tasks and never blocks the API: POSTs to one URL go out one after the
other, in order (a retrying message holds back later ones to that URL), at most
`MAX_CONCURRENT` at once over all URLs. Only loopback URLs are called (the emulator is a test
double), and the host names given with ``--webhook-host`` (e.g. a compose service). The backoff before retry ``n`` is ``webhook_retry_base * 2**(n-1)`` seconds (a runtime
setting, short in tests), at most `MAX_BACKOFF` (Daily: "up to 15 min", H4).

``GET /_admin/webhooks?service=`` lists the last `MAX_KEPT` deliveries with every attempt's
status code. URLs are shown without their query string (tokens travel there).
"""

from __future__ import annotations

import asyncio
import ipaddress
import itertools
import json
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from jobstatus_emulator.state import EmulatorConfig, Store

log = logging.getLogger("jobstatus.emulator")

MAX_CONCURRENT = 64
MAX_KEPT = 10_000
MAX_BACKOFF = 900.0
TIMEOUT = 5.0

RETRIES = {"symbl": 0, "deepaffects": 5}
"""Retries per message when the caller does not say (H6: none documented; H7: up to 5)."""

Headers = Callable[[bytes], dict[str, str]]
"""Builds the headers of one attempt from its body (Daily signs each attempt with its timestamp)."""


def is_loopback(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    if parts.hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(parts.hostname).is_loopback
    except ValueError:
        return False


def shown_url(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


@dataclass
class Delivery:
    id: int
    service: str
    kind: str
    url: str
    retries: int
    state: str = "pending"
    """``pending``, ``delivered`` (a 200), or ``dropped`` (every attempt failed)."""
    attempts: list[dict[str, Any]] = field(default_factory=list)

    def view(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "service": self.service,
            "kind": self.kind,
            "url": shown_url(self.url),
            "retries": self.retries,
            "state": self.state,
            "attempts": list(self.attempts),
        }


class WebhookSender:
    """Sends webhooks in the background with each service's retry policy; records every attempt."""

    def __init__(self, config: EmulatorConfig, store: Store) -> None:
        self.config = config
        self.store = store
        self._client: Any = None
        self._last: dict[str, asyncio.Future[Any]] = {}
        self._slots: asyncio.Semaphore | None = None
        self._ids = itertools.count(1)
        self.deliveries: deque[Delivery] = deque(maxlen=MAX_KEPT)
        self.sent = 0
        self.failed = 0

    def is_loopback(self, url: str) -> bool:
        """Whether webhooks may go to ``url``: loopback, or a host named with ``--webhook-host``."""
        if is_loopback(url):
            return True
        try:
            host = urlsplit(url).hostname
        except ValueError:
            return False
        return (
            host is not None and host in self.config.webhook_hosts and url.startswith(("http://", "https://"))
        )

    def post(
        self,
        url: str,
        payload: Any,
        *,
        service: str = "",
        kind: str = "event",
        retries: int | None = None,
        headers: Headers | None = None,
        on_result: Callable[[bool], None] | None = None,
    ) -> Delivery | None:
        """Queue a POST of ``payload`` (JSON); None when the URL is not loopback (nothing sent)."""
        if not self.is_loopback(url):
            return None
        count = RETRIES.get(service, 0) if retries is None else retries
        delivery = Delivery(next(self._ids), service, kind, url, count)
        self.deliveries.append(delivery)
        body = json.dumps(payload, separators=(",", ":")).encode()
        previous = self._last.get(url)
        task = self.store.spawn(self._deliver(delivery, body, headers, previous, on_result))
        self._last[url] = task
        task.add_done_callback(lambda t: self._last.pop(url, None) if self._last.get(url) is t else None)
        return delivery

    async def send_now(self, url: str, payload: Any, headers: Headers | None, timeout: float) -> int | None:
        """One POST, awaited (Daily's test request, H2): its status code, or None if it failed."""
        delivery = Delivery(next(self._ids), "daily", "test", url, 0)
        self.deliveries.append(delivery)
        if not self.is_loopback(url):
            delivery.state = "dropped"
            delivery.attempts.append({"at": time.time(), "status": None, "error": "not loopback"})
            return None
        body = json.dumps(payload, separators=(",", ":")).encode()
        status = await self._attempt(delivery, body, headers, timeout)
        delivery.state = "delivered" if status == 200 else "dropped"
        return status

    async def _deliver(
        self,
        delivery: Delivery,
        body: bytes,
        headers: Headers | None,
        previous: asyncio.Future[Any] | None,
        on_result: Callable[[bool], None] | None,
    ) -> None:
        if previous is not None and not previous.done():
            await asyncio.wait([previous])
        for attempt in range(delivery.retries + 1):
            if attempt:
                base = float(self.config.webhook_retry_base)
                await asyncio.sleep(min(MAX_BACKOFF, base * 2 ** (attempt - 1)))
            if self._slots is None:
                self._slots = asyncio.Semaphore(MAX_CONCURRENT)
            async with self._slots:
                status = await self._attempt(delivery, body, headers, TIMEOUT)
            if status == 200:  # H2/H7: a 200 is success, anything else a failure
                delivery.state = "delivered"
                self.sent += 1
                break
        else:
            delivery.state = "dropped"
            self.failed += 1
        if on_result is not None:
            try:
                on_result(delivery.state == "delivered")
            except Exception:
                log.exception("webhook result callback failed")

    async def _attempt(
        self, delivery: Delivery, body: bytes, headers: Headers | None, timeout: float
    ) -> int | None:
        import httpx

        if self._client is None:
            self._client = httpx.AsyncClient(trust_env=False)
        sent_headers = {"content-type": "application/json", **(headers(body) if headers else {})}
        record: dict[str, Any] = {"at": time.time(), "status": None, "error": None}
        delivery.attempts.append(record)
        try:
            response = await self._client.post(
                delivery.url, content=body, headers=sent_headers, timeout=timeout
            )
        except Exception as exc:
            record["error"] = type(exc).__name__
            log.warning("webhook POST failed: %s", type(exc).__name__)
            return None
        record["status"] = response.status_code
        return int(response.status_code)

    def view(self, service: str | None = None) -> dict[str, Any]:
        rows = [d.view() for d in self.deliveries if service is None or d.service == service]
        return {"deliveries": rows, "total": len(rows)}

    def reset(self) -> None:
        """Forget deliveries (their tasks are cancelled by the store's reset)."""
        self.deliveries.clear()
        self._last.clear()
        self.sent = self.failed = 0

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
