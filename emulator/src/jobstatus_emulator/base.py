"""Minimal ASGI request/response primitives and the per-service base class.

The emulator's hot paths (status and list routes) go through a hand-written router and these
small objects instead of a framework request/response stack: a regex match, a dict lookup and one
``json.dumps`` per request.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import parse_qsl, unquote_plus

if TYPE_CHECKING:
    from jobstatus_emulator.state import Account, EmulatorConfig, Store
    from jobstatus_emulator.webhooks import WebhookSender

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

DEFAULT_BODY_LIMIT = 32 * 1024 * 1024
TRANSPORT_KEY = "jobstatus.transport"


class BodyTooLarge(Exception):
    pass


class BadJson(Exception):
    pass


_MISSING: Any = object()


class Response:
    """A response whose JSON body (``obj``) stays inspectable until it is rendered."""

    __slots__ = ("body", "content_type", "headers", "obj", "status")

    def __init__(
        self,
        status: int = 200,
        obj: Any = _MISSING,
        *,
        body: bytes | None = None,
        headers: list[tuple[bytes, bytes]] | None = None,
        content_type: bytes = b"application/json",
    ) -> None:
        self.status = status
        self.obj = obj
        self.body = body
        self.headers = headers
        self.content_type = content_type

    @property
    def has_json(self) -> bool:
        return self.obj is not _MISSING

    def render(self) -> bytes:
        if self.body is None:
            self.body = b"" if self.obj is _MISSING else json.dumps(self.obj, separators=(",", ":")).encode()
        return self.body


def raw_headers(resp: Response, body: bytes, content_length: int | None = None) -> list[tuple[bytes, bytes]]:
    headers = [
        (b"content-type", resp.content_type),
        (b"content-length", str(len(body) if content_length is None else content_length).encode()),
    ]
    if resp.headers:
        headers.extend(resp.headers)
    return headers


async def send_response(send: Send, resp: Response) -> None:
    body = resp.render()
    await send({"type": "http.response.start", "status": resp.status, "headers": raw_headers(resp, body)})
    await send({"type": "http.response.body", "body": body})


class Request:
    __slots__ = (
        "_body",
        "_headers",
        "_json",
        "_query",
        "account",
        "identity",
        "method",
        "params",
        "receive",
        "route",
        "scope",
        "sub_path",
    )

    def __init__(self, scope: Scope, receive: Receive, sub_path: str) -> None:
        self.scope = scope
        self.receive = receive
        self.method: str = scope["method"]
        self.sub_path = sub_path
        self._headers: dict[bytes, bytes] | None = None
        self._query: dict[str, str] | None = None
        self._body: bytes | None = None
        self._json: Any = _MISSING
        self.identity = ""
        self.account: Account | None = None
        self.params: dict[str, str] = {}
        self.route: Route | None = None

    def header(self, name: bytes) -> str | None:
        """A request header by lower-case name (latin-1 decoded)."""
        if self._headers is None:
            self._headers = dict(self.scope["headers"])
        value = self._headers.get(name)
        return value.decode("latin-1") if value is not None else None

    @property
    def query(self) -> dict[str, str]:
        if self._query is None:
            qs = self.scope.get("query_string") or b""
            self._query = dict(parse_qsl(qs.decode("latin-1"), keep_blank_values=True)) if qs else {}
        return self._query

    @property
    def query_string(self) -> str:
        """The raw query string, percent-decoded (where timeline markers are looked for)."""
        return unquote_plus((self.scope.get("query_string") or b"").decode("latin-1"))

    async def body(self, limit: int = DEFAULT_BODY_LIMIT) -> bytes:
        if self._body is not None:
            return self._body
        declared = self.header(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise BodyTooLarge()
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await self.receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            if chunk:
                size += len(chunk)
                if size > limit:
                    raise BodyTooLarge()
                chunks.append(chunk)
            if not message.get("more_body", False):
                break
        self._body = b"".join(chunks)
        return self._body

    async def json(self, limit: int = DEFAULT_BODY_LIMIT) -> Any:
        if self._json is _MISSING:
            raw = await self.body(limit)
            if not raw.strip():
                raise BadJson("empty body")
            try:
                self._json = json.loads(raw)
            except (ValueError, UnicodeDecodeError) as exc:
                raise BadJson(str(exc)) from exc
        return self._json

    def bearer(self) -> tuple[bool, str]:
        """(well-formed, token) from ``Authorization: Bearer <token>``."""
        value = self.header(b"authorization")
        if value is None:
            return False, ""
        scheme, _, token = value.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token or " " in token:
            return False, ""
        return True, token


Handler = Callable[[Request], Awaitable[Response]]
_PARAM = re.compile(r"\{(\w+)(:path)?\}")


class Route:
    __slots__ = ("auth", "handler", "job_param", "method", "regex", "template")

    def __init__(
        self, method: str, template: str, handler: Handler, *, job_param: str | None = None, auth: bool = True
    ) -> None:
        self.method = method
        self.template = template
        self.handler = handler
        self.job_param = job_param
        self.auth = auth

        self.regex = re.compile(_compile(template))


def _compile(template: str) -> str:
    out = ["^"]
    pos = 0
    for m in _PARAM.finditer(template):
        out.append(re.escape(template[pos : m.start()]))
        out.append(f"(?P<{m.group(1)}>.+)" if m.group(2) else f"(?P<{m.group(1)}>[^/]+)")
        pos = m.end()
    out.append(re.escape(template[pos:]))
    out.append("$")
    return "".join(out)


class Router:
    def __init__(self, routes: list[Route]) -> None:
        self.routes = routes

    def match(self, method: str, path: str) -> tuple[Route | None, dict[str, str], bool]:
        """(route, params, path_matched_other_method)."""
        other = False
        for route in self.routes:
            m = route.regex.match(path)
            if m is None:
                continue
            if route.method == method:
                return route, m.groupdict(), False
            other = True
        return None, {}, other


class ServiceHost(Protocol):
    """What every service uses of the emulator (`jobstatus_emulator.app.Emulator`)."""

    config: EmulatorConfig
    store: Store
    webhooks: WebhookSender


class Service:
    """One emulated API. Subclasses define routes, identity extraction, auth and error shapes."""

    name: str = ""
    prefix: str = ""
    #: keys whose value ``unknown_status`` faults replace in a JSON response
    status_keys: tuple[str, ...] = ("status",)
    #: keys of lists of jobs inside list responses
    list_keys: tuple[str, ...] = ()
    body_limit: int = DEFAULT_BODY_LIMIT

    def __init__(self, emulator: ServiceHost) -> None:
        self.emu = emulator
        self.router = Router(self.routes())

    # -- to override ------------------------------------------------------------------------------
    def routes(self) -> list[Route]:
        raise NotImplementedError

    def setup(self) -> None:
        """Register materializers, failure messages and notifiers with the store."""

    def identity(self, req: Request) -> str:
        """The account identity the request claims (no validation); ``""`` when none."""
        raise NotImplementedError

    async def identity_async(self, req: Request) -> str:
        """Like :meth:`identity`, for routes whose identity is in the body (Symbl token exchange)."""
        return self.identity(req)

    def authenticate(self, req: Request) -> Response | None:
        """Validate credentials; set ``req.account``; return an error response or None."""
        raise NotImplementedError

    def admit(self, req: Request, identity: str) -> Response | None:
        """Let ``req`` in as ``identity``'s account (made on first use) unless it was revoked."""
        acc = self.emu.store.account(self.name, identity)
        if acc.revoked_by is not None:
            return self.err_unauthorized()
        req.account = acc
        return None

    def job_id(self, req: Request) -> str | None:
        if req.route is not None and req.route.job_param:
            return req.params.get(req.route.job_param)
        return None

    def err_unauthorized(self) -> Response:
        raise NotImplementedError

    def err_not_found(self, job_id: str | None) -> Response:
        raise NotImplementedError

    def err_route(self, req: Request, method_not_allowed: bool) -> Response:
        return (
            self.err_not_found(None)
            if not method_not_allowed
            else Response(405, {"message": "Method Not Allowed"})
        )

    def err_server(self, status: int) -> Response:
        raise NotImplementedError

    def err_rate_limited(self) -> Response:
        raise NotImplementedError

    def err_bad_json(self, detail: str) -> Response:
        raise NotImplementedError

    def err_too_large(self) -> Response:
        return Response(413, {"message": "Request Entity Too Large"})
