"""Daily's ``/webhooks`` API and its batch-processor events (rows H1-H5, H8, O-H1-O-H3, O-H8-O-H10 in
``docs/contracts.md``, "Webhooks").

* ``POST /webhooks`` (H1): ``url`` (required), ``eventTypes``, ``hmac`` (base64; one is generated
  when absent), ``basicAuth``, ``retryType`` (``circuit-breaker`` default, or ``exponential``).
  Before anything is stored, a test ``POST`` goes to ``url``; no ``200`` within `TEST_TIMEOUT`
  seconds -> ``400`` (H2). The test body is not documented (O-H3): ``{"test": "test"}``, signed.
  The emulator only calls loopback URLs, so any other URL fails its test POST (``400``).
* ``GET /webhooks`` (a list, O-H9), ``GET /webhooks/:uuid``, ``POST /webhooks/:uuid`` (update; the
  test ``POST`` again, and a ``FAILED`` webhook becomes ``ACTIVE``), ``DELETE /webhooks/:uuid``.
* One webhook per domain (account); a second ``POST /webhooks`` is a ``400`` (O-H8, assumed).
* When a job ends, each ``ACTIVE`` webhook subscribed to the event type gets the envelope
  ``{version, type, id, payload, event_ts}`` (H5; ``payload`` is the job as ``GET`` shows it),
  signed: ``X-Webhook-Timestamp`` (epoch seconds, O-H2) and ``X-Webhook-Signature`` = base64
  HMAC-SHA256 over ``"{timestamp}.{body}"`` with the base64-decoded ``hmac`` (H3, O-H1).
* Retries (H4): ``exponential`` retries a message up to 5 times; ``circuit-breaker`` does not
  retry and sets ``state`` ``FAILED`` after 3 consecutive failed messages (then sends nothing
  until the webhook is updated). ``failedCount`` counts consecutive failures (O-H10).

Registrations are kept in memory only (not in the state file) and cleared by ``/_admin/reset``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from jobstatus_emulator.base import Request, Response
from jobstatus_emulator.state import Job

if TYPE_CHECKING:
    from jobstatus_emulator.webhooks import WebhookSender

EVENT_TYPES = {"finished": "batch-processor.job-finished", "error": "batch-processor.error"}
RETRY_TYPES = ("circuit-breaker", "exponential")
EXPONENTIAL_RETRIES = 5
CIRCUIT_BREAKER_FAILURES = 3
TEST_TIMEOUT = 3.0
"""H2: the test POST must get a 200 "relatively quickly" ("within a few seconds")."""
ENVELOPE_VERSION = "1.0.0"


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, timezone.utc).isoformat().replace("+00:00", "Z")


def sign(secret_b64: str, body: bytes, timestamp: str) -> str:
    key = base64.b64decode(secret_b64)
    digest = hmac.new(key, f"{timestamp}.".encode() + body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def _invalid(info: str) -> Response:
    return Response(400, {"error": "invalid-request-error", "info": info})


class DailyWebhooks:
    def __init__(self, sender: WebhookSender, view: Callable[[Job, str], dict[str, Any]]) -> None:
        self.sender = sender
        self.view = view
        """The job as the service shows it: the payload of a job event."""
        self.hooks: dict[str, dict[str, Any]] = {}
        """Account identity -> its webhook (the documented object)."""

    def reset(self) -> None:
        self.hooks.clear()

    def _headers(self, secret: str) -> Any:
        def build(body: bytes) -> dict[str, str]:
            timestamp = str(int(time.time()))
            return {"X-Webhook-Timestamp": timestamp, "X-Webhook-Signature": sign(secret, body, timestamp)}

        return build

    def _validate(self, body: Any, current: dict[str, Any] | None) -> dict[str, Any] | Response:
        if not isinstance(body, dict):
            return _invalid("request body must be a JSON object")
        url = body.get("url", current["url"] if current else None)
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            return _invalid("url is required and must be an http(s) URL")
        events = body.get("eventTypes", current["eventTypes"] if current else [])
        if not isinstance(events, list) or not all(isinstance(e, str) and e for e in events):
            return _invalid("eventTypes must be a list of event type names")
        secret = body.get("hmac", current["hmac"] if current else None)
        if secret is None:
            secret = base64.b64encode(secrets.token_bytes(32)).decode()
        try:
            if not isinstance(secret, str) or not secret:
                raise ValueError
            base64.b64decode(secret, validate=True)
        except (binascii.Error, ValueError):
            return _invalid("hmac must be a base64-encoded string")
        retry = body.get("retryType", current["retryType"] if current else "circuit-breaker")
        if retry not in RETRY_TYPES:
            return _invalid(f"retryType must be one of: {', '.join(RETRY_TYPES)}")
        basic = body.get("basicAuth", current["basicAuth"] if current else None)
        if basic is not None and not isinstance(basic, str):
            return _invalid("basicAuth must be a string")
        return {
            "url": url,
            "eventTypes": list(events),
            "hmac": secret,
            "retryType": retry,
            "basicAuth": basic,
        }

    async def _test(self, url: str, secret: str) -> bool:
        status = await self.sender.send_now(url, {"test": "test"}, self._headers(secret), TEST_TIMEOUT)
        return status == 200

    # -- routes -----------------------------------------------------------------------------------
    async def create(self, req: Request) -> Response:
        assert req.account is not None
        who = req.account.identity
        if who in self.hooks:
            return _invalid("a webhook already exists for this domain; update it with POST /webhooks/:uuid")
        fields = self._validate(await req.json(), None)
        if isinstance(fields, Response):
            return fields
        if not await self._test(fields["url"], fields["hmac"]):
            return _invalid(f"non-200 status code returned from webhook endpoint {fields['url']}")
        now = _iso(time.time())
        hook = {
            "uuid": str(uuid.uuid4()),
            **fields,
            "state": "ACTIVE",
            "failedCount": 0,
            "lastMomentPushed": None,
            "domainId": f"domain-{hashlib.sha256(who.encode()).hexdigest()[:12]}",
            "createdAt": now,
            "updatedAt": now,
        }
        self.hooks[who] = hook
        return Response(200, dict(hook))

    def _find(self, req: Request) -> dict[str, Any] | None:
        assert req.account is not None
        hook = self.hooks.get(req.account.identity)
        return hook if hook is not None and hook["uuid"] == req.params["uuid"] else None

    def _missing(self, req: Request) -> Response:
        return Response(404, {"error": "not-found", "info": f"webhook {req.params['uuid']} not found"})

    async def list(self, req: Request) -> Response:
        assert req.account is not None
        hook = self.hooks.get(req.account.identity)
        return Response(200, [dict(hook)] if hook else [])

    async def get(self, req: Request) -> Response:
        hook = self._find(req)
        return Response(200, dict(hook)) if hook else self._missing(req)

    async def update(self, req: Request) -> Response:
        hook = self._find(req)
        if hook is None:
            return self._missing(req)
        fields = self._validate(await req.json(), hook)
        if isinstance(fields, Response):
            return fields
        if not await self._test(fields["url"], fields["hmac"]):
            return _invalid(f"non-200 status code returned from webhook endpoint {fields['url']}")
        hook.update(fields, state="ACTIVE", failedCount=0, updatedAt=_iso(time.time()))
        return Response(200, dict(hook))

    async def delete(self, req: Request) -> Response:
        hook = self._find(req)
        if hook is None:
            return self._missing(req)
        assert req.account is not None
        del self.hooks[req.account.identity]
        return Response(200, {"uuid": hook["uuid"], "deleted": True})

    # -- events -----------------------------------------------------------------------------------
    def notify(self, job: Job, status: str) -> None:
        event_type = EVENT_TYPES.get(status)
        hook = self.hooks.get(job.account.identity)
        if event_type is None or hook is None or hook["state"] != "ACTIVE":
            return
        if event_type not in hook["eventTypes"]:
            return
        now = time.time()
        envelope = {
            "version": ENVELOPE_VERSION,
            "type": event_type,
            "id": str(uuid.uuid4()),
            "payload": self.view(job, status),
            "event_ts": now,
        }
        exponential = hook["retryType"] == "exponential"

        def result(ok: bool) -> None:
            if ok:
                hook["failedCount"] = 0
                hook["lastMomentPushed"] = _iso(time.time())
                return
            hook["failedCount"] += 1
            if not exponential and hook["failedCount"] >= CIRCUIT_BREAKER_FAILURES:
                hook["state"] = "FAILED"

        self.sender.post(
            hook["url"],
            envelope,
            service="daily",
            retries=EXPONENTIAL_RETRIES if exponential else 0,
            headers=self._headers(hook["hmac"]),
            on_result=result,
        )
