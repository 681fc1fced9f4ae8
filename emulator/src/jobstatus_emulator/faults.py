"""Fault rules and the request dispatch that applies them.

A rule matches a request by ``service`` (or ``*``), and optionally ``credential`` (the account
identity), ``route`` (substring of the path below the service prefix), ``job_id`` and ``method``.
It fires on the next ``count`` matching requests, or with a seeded ``probability``, or (neither
given) on every matching request until it is deleted. ``rate_limit`` with ``rps`` fires only for
requests over a per-credential token bucket.

Kinds: ``status`` (``status`` 500/502/503..., optional ``body``), ``rate_limit`` (``retry_after``
seconds, ``retry_after_form`` ``seconds|http-date``, optional ``rps``), ``drop`` (the connection is
aborted without any response), ``slow`` (``delay`` seconds, then the normal response),
``malformed`` (200 with invalid JSON), ``truncated`` (valid headers, a Content-Length larger than
the body sent, then the connection closes), ``unknown_status`` (the real response with its status
value replaced by ``value``), ``vanish`` (404 in the service's not-found shape for requests about a
job), ``revoke`` (the credential gets 401 from then on, until the rule is deleted or a reset).

Daily-storage downloads (``GET|HEAD /_storage/daily/<token>``, the presigned-style output links) go
through the same engine as service ``daily``, with the full path as route, no credential and no job
id. They match only rules that name them with a ``route`` inside that path (e.g. ``"/_storage"``), so
that rules written for Daily's API never touch downloads, and never rules with a ``credential`` or
``job_id`` (a download carries neither). There, ``status`` and ``vanish`` answer S3-style XML errors
(``vanish``: 404 ``NoSuchKey``), ``rate_limit`` answers 503 ``SlowDown`` with ``Retry-After``,
``malformed`` answers 200 with bytes that are not the object, and ``drop``, ``slow`` and
``truncated`` behave as for the API; ``unknown_status`` and ``revoke`` do not apply.

Every request is counted with its arrival time (``Stats``), before any ``slow`` delay.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import logging
import random
import time
import uuid
from typing import TYPE_CHECKING, Any, Protocol

from jobstatus_emulator.base import (
    TRANSPORT_KEY,
    BadJson,
    BodyTooLarge,
    Receive,
    Request,
    Response,
    Scope,
    Send,
    Service,
    raw_headers,
    send_response,
)
from jobstatus_emulator.storage import DailyStorage, _xml_error

if TYPE_CHECKING:
    from jobstatus_emulator.state import Stats, Store

log = logging.getLogger("jobstatus.emulator")

KINDS = (
    "status",
    "rate_limit",
    "drop",
    "slow",
    "malformed",
    "truncated",
    "unknown_status",
    "vanish",
    "revoke",
)
FAULT_SERVICES = ("daily", "wasabi", "symbl", "deepaffects", "*")
STORAGE_ROUTE_PREFIX = "/_storage/"
"""Paths starting with this are Daily-storage downloads (the full path is their route)."""
DAILY_STORAGE_PREFIX = "/_storage/daily/"
DOWNLOAD_KINDS = frozenset({"status", "rate_limit", "drop", "slow", "malformed", "truncated", "vanish"})


class FaultRule:
    def __init__(self, spec: dict[str, Any], rule_id: str | None = None) -> None:
        self.spec = validate_rule(spec)
        self.id = rule_id or uuid.uuid4().hex[:12]
        s = self.spec
        self.service: str = s["service"]
        self.kind: str = s["kind"]
        self.credential: str | None = s.get("credential")
        self.route: str | None = s.get("route")
        self.job_id: str | None = s.get("job_id")
        self.method: str | None = s["method"].upper() if s.get("method") else None
        self.remaining: int | None = s.get("count")
        self.probability: float | None = s.get("probability")
        self.rps: float | None = s.get("rps")
        self.hits = 0
        self.created = time.time()
        self._buckets: dict[str, tuple[float, float]] = {}

    def matches(self, service: str, credential: str, sub_path: str, job_id: str | None, method: str) -> bool:
        if sub_path.startswith(STORAGE_ROUTE_PREFIX):
            return self._matches_download(service, sub_path, method)
        if self.service != "*" and self.service != service:
            return False
        if self.credential is not None and self.credential != credential:
            return False
        if self.method is not None and self.method != method:
            return False
        if self.route is not None and self.route not in sub_path:
            return False
        if self.job_id is not None and self.job_id != job_id:
            return False
        if self.kind == "vanish" and job_id is None:
            return False
        return not (self.remaining is not None and self.remaining <= 0)

    def _matches_download(self, service: str, path: str, method: str) -> bool:
        """A Daily-storage download: only rules that name it by route (see the module docstring)."""
        if self.service not in ("*", service) or self.kind not in DOWNLOAD_KINDS:
            return False
        if self.route is None or self.route not in path:
            return False
        if self.credential is not None or self.job_id is not None:
            return False
        if self.method is not None and self.method != method:
            return False
        return not (self.remaining is not None and self.remaining <= 0)

    def over_rate(self, credential: str, now: float) -> bool:
        """Token bucket per credential (capacity = max(1, rps)); True when the request is over."""
        assert self.rps is not None
        capacity = max(1.0, self.rps)
        tokens, last = self._buckets.get(credential, (capacity, now))
        tokens = min(capacity, tokens + (now - last) * self.rps)
        if tokens >= 1.0:
            self._buckets[credential] = (tokens - 1.0, now)
            return False
        self._buckets[credential] = (tokens, now)
        return True

    def view(self) -> dict[str, Any]:
        return {**self.spec, "id": self.id, "remaining": self.remaining, "hits": self.hits}


def validate_rule(spec: Any) -> dict[str, Any]:
    if not isinstance(spec, dict):
        raise ValueError("a fault rule must be a JSON object")
    s = dict(spec)
    s.setdefault("service", "*")
    if s["service"] not in FAULT_SERVICES:
        raise ValueError(f"service must be one of {', '.join(FAULT_SERVICES)}")
    if s.get("kind") not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}")
    for key in ("credential", "route", "job_id", "method"):
        if s.get(key) is not None and not isinstance(s[key], str):
            raise ValueError(f"{key} must be a string")
    count = s.get("count")
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 0):
        raise ValueError("count must be a non-negative integer")
    prob = s.get("probability")
    if prob is not None:
        if isinstance(prob, bool) or not isinstance(prob, (int, float)) or not 0 <= prob <= 1:
            raise ValueError("probability must be a number between 0 and 1")
        s["probability"] = float(prob)
    kind = s["kind"]
    if kind == "status":
        status = s.setdefault("status", 500)
        if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
            raise ValueError("status must be an HTTP status code")
    if kind == "rate_limit":
        ra = s.setdefault("retry_after", 1)
        if isinstance(ra, bool) or not isinstance(ra, (int, float)) or ra < 0:
            raise ValueError("retry_after must be a non-negative number of seconds")
        if s.setdefault("retry_after_form", "seconds") not in ("seconds", "http-date"):
            raise ValueError("retry_after_form must be 'seconds' or 'http-date'")
        rps = s.get("rps")
        if rps is not None and (isinstance(rps, bool) or not isinstance(rps, (int, float)) or rps <= 0):
            raise ValueError("rps must be a positive number")
    if kind == "slow":
        delay = s.setdefault("delay", 1.0)
        if isinstance(delay, bool) or not isinstance(delay, (int, float)) or delay < 0:
            raise ValueError("delay must be a non-negative number of seconds")
    if kind == "unknown_status":
        if not isinstance(s.setdefault("value", "mystery_status"), str):
            raise ValueError("value must be a string")
    return s


class FaultEngine:
    def __init__(self, seed: int) -> None:
        self.rules: list[FaultRule] = []
        self.rng = random.Random(seed)

    def reseed(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def add(self, spec: dict[str, Any]) -> FaultRule:
        rule = FaultRule(spec)
        self.rules.append(rule)
        return rule

    def remove(self, rule_id: str) -> FaultRule | None:
        for i, rule in enumerate(self.rules):
            if rule.id == rule_id:
                del self.rules[i]
                return rule
        return None

    def clear(self) -> None:
        self.rules.clear()

    def pick(
        self, service: str, credential: str, sub_path: str, job_id: str | None, method: str
    ) -> FaultRule | None:
        now = time.monotonic()
        for rule in self.rules:
            if not rule.matches(service, credential, sub_path, job_id, method):
                continue
            if rule.rps is not None and not rule.over_rate(credential, now):
                continue
            if rule.probability is not None and self.rng.random() >= rule.probability:
                continue
            if rule.remaining is not None:
                rule.remaining -= 1
            rule.hits += 1
            return rule
        return None


# -- responses for faults -------------------------------------------------------------------------
def retry_after_header(rule: FaultRule) -> bytes:
    seconds = float(rule.spec.get("retry_after", 1))
    if rule.spec.get("retry_after_form") == "http-date":
        return email.utils.formatdate(time.time() + seconds, usegmt=True).encode()
    return str(int(seconds) if seconds == int(seconds) else seconds).encode()


def substitute_status(resp: Response, service: Service, value: str) -> None:
    obj = resp.obj
    if not isinstance(obj, dict):
        return
    for key in service.status_keys:
        if key in obj:
            obj[key] = value
    for list_key in service.list_keys:
        items = obj.get(list_key)
        if isinstance(items, list):
            for item in items:
                if isinstance(item, dict):
                    for key in service.status_keys:
                        if key in item:
                            item[key] = value
    resp.body = None


async def _wait_disconnect(receive: Receive, timeout: float = 2.0) -> None:
    """After aborting/closing the transport, wait until uvicorn noticed, so it sends nothing."""

    async def until_disconnect() -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return

    with contextlib.suppress(Exception):
        await asyncio.wait_for(until_disconnect(), timeout)


async def drop_connection(scope: Scope, receive: Receive) -> None:
    transport = (scope.get("extensions") or {}).get(TRANSPORT_KEY)
    if transport is None:
        # Without the emulator's protocol class there is no way to drop: fail loudly instead.
        raise ConnectionAbortedError("drop fault: transport not exposed by the server")
    transport.abort()
    await _wait_disconnect(receive)


async def send_truncated(scope: Scope, receive: Receive, send: Send, resp: Response) -> None:
    body = resp.render()
    if len(body) < 2:
        body = body + b" " * (2 - len(body))
    cut = body[: len(body) // 2]
    await send(
        {"type": "http.response.start", "status": resp.status, "headers": raw_headers(resp, body, len(body))}
    )
    await send({"type": "http.response.body", "body": cut, "more_body": True})
    transport = (scope.get("extensions") or {}).get(TRANSPORT_KEY)
    if transport is not None:
        transport.close()  # flushes what was written, then closes: the body stays short
        await _wait_disconnect(receive)
    # without a transport, returning now makes the server close the connection


# -- dispatch -------------------------------------------------------------------------------------
class DispatchHost(Protocol):
    """What routing a request uses of the emulator (`jobstatus_emulator.app.Emulator`)."""

    faults: FaultEngine
    stats: Stats
    store: Store
    daily_storage: DailyStorage


async def dispatch(
    emu: DispatchHost, service: Service, sub_path: str, scope: Scope, receive: Receive, send: Send
) -> None:
    """Route one service request: identity, faults, auth, handler, stats."""
    arrived = time.time()
    req = Request(scope, receive, sub_path or "/")
    method = req.method
    route, params, other_method = service.router.match(method, req.sub_path)
    template = route.template if route is not None else "(unmatched)"
    req.route = route
    req.params = params
    status = 0
    try:
        try:
            if route is not None and not route.auth:
                identity = await service.identity_async(req)
            else:
                identity = service.identity(req)
        except BadJson as exc:
            resp = service.err_bad_json(str(exc))
            status = resp.status
            await send_response(send, resp)
            return
        except BodyTooLarge:
            resp = service.err_too_large()
            status = resp.status
            await send_response(send, resp)
            return
        req.identity = identity
        rule: FaultRule | None = None
        if emu.faults.rules:
            rule = emu.faults.pick(service.name, identity, req.sub_path, service.job_id(req), method)
        post_kind: FaultRule | None = None
        resp_opt: Response | None = None
        if rule is not None:
            kind = rule.kind
            if kind == "drop":
                await drop_connection(scope, receive)
                status = 0
                return
            if kind == "slow":
                await asyncio.sleep(float(rule.spec.get("delay", 1.0)))
            elif kind == "status":
                resp_opt = service.err_server(int(rule.spec["status"]))
                if "body" in rule.spec:
                    resp_opt = Response(resp_opt.status, rule.spec["body"])
            elif kind == "rate_limit":
                resp_opt = service.err_rate_limited()
                resp_opt.headers = [(b"retry-after", retry_after_header(rule))]
            elif kind == "malformed":
                resp_opt = Response(200, body=b'{"status": "finished", "id": ')
            elif kind == "vanish":
                resp_opt = service.err_not_found(service.job_id(req))
            elif kind == "revoke":
                acc = emu.store.account(service.name, identity) if identity else None
                if acc is not None and acc.revoked_by is None:
                    acc.revoked_by = rule.id
                resp_opt = service.err_unauthorized()
            else:  # unknown_status, truncated: applied to the real response
                post_kind = rule
        if resp_opt is None:
            if route is None:
                resp_opt = service.err_route(req, other_method)
            else:
                resp_opt = service.authenticate(req) if route.auth else None
                if resp_opt is None:
                    try:
                        resp_opt = await route.handler(req)
                    except BadJson as exc:
                        resp_opt = service.err_bad_json(str(exc))
                    except BodyTooLarge:
                        resp_opt = service.err_too_large()
        if post_kind is not None:
            if post_kind.kind == "unknown_status" and 200 <= resp_opt.status < 300 and resp_opt.has_json:
                substitute_status(resp_opt, service, str(post_kind.spec.get("value", "mystery_status")))
            elif post_kind.kind == "truncated":
                status = resp_opt.status
                await send_truncated(scope, receive, send, resp_opt)
                return
        status = resp_opt.status
        await send_response(send, resp_opt)
    finally:
        emu.stats.record(service.name, method, template, req.identity, status, at=arrived)


async def dispatch_download(emu: DispatchHost, path: str, scope: Scope, receive: Receive, send: Send) -> None:
    """Serve one Daily-storage download (``path`` is the full ``/_storage/daily/<token>``), with faults."""
    arrived = time.time()
    method = scope["method"]
    status = 0
    try:
        rule = emu.faults.pick("daily", "", path, None, method) if emu.faults.rules else None
        resp: Response | None = None
        if rule is not None:
            kind = rule.kind
            if kind == "drop":
                await drop_connection(scope, receive)
                return
            if kind == "slow":
                await asyncio.sleep(float(rule.spec.get("delay", 1.0)))
            elif kind == "status":
                status_code = int(rule.spec["status"])
                resp = _xml_error(
                    status_code, "InternalError" if status_code >= 500 else "Error", "injected fault"
                )
            elif kind == "rate_limit":
                resp = _xml_error(503, "SlowDown", "Please reduce your request rate.")
                resp.headers = [(b"retry-after", retry_after_header(rule))]
            elif kind == "vanish":
                resp = _xml_error(404, "NoSuchKey", "The specified key does not exist.")
            elif kind == "malformed":
                resp = Response(
                    200, body=b'{"status": "finished", "id": ', content_type=b"binary/octet-stream"
                )
        if resp is None:
            req = Request(scope, receive, path)
            resp = emu.daily_storage.serve(path[len(DAILY_STORAGE_PREFIX) :], req.query)
        status = resp.status
        if rule is not None and rule.kind == "truncated" and resp.status == 200:
            await send_truncated(scope, receive, send, resp)
            return
        await send_response(send, resp)
    finally:
        emu.stats.record("daily", method, "/_storage/daily/{token}", "", status, at=arrived)
