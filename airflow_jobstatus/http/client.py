"""`ServiceClient`: one connection's requests, sync and async, with retries and typed errors.

Clients are built once and reused: the async client (over `AiohttpTransport`) is shared by every
caller of the same connection in one event loop and closed when that loop shuts down; the sync
client belongs to the `ServiceClient` (one per hook instance). Every request waits for the
connection's shared rate limiter, every failure becomes a `JobStatusError` subclass whose text is
redacted, and no wait (backoff, Retry-After, rate limit) runs past the caller's deadline.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
import weakref
from collections.abc import AsyncIterator, Callable, Generator, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypedDict, TypeVar

import httpx
import pydantic

from airflow_jobstatus import __version__
from airflow_jobstatus.exceptions import (
    AuthenticationError,
    JobStatusError,
    MalformedResponseError,
    RateLimitedError,
    RequestBudgetExhaustedError,
    ServiceUnreachableError,
    error_class_for_status,
)
from airflow_jobstatus.http.auth import RefreshableTokenAuth
from airflow_jobstatus.http.call import Call
from airflow_jobstatus.http.ratelimit import BudgetExhausted, DeadlineExceeded
from airflow_jobstatus.http.redaction import excerpt, install_log_filters, redact_url, register_secret, scrub
from airflow_jobstatus.http.retry import RetryPolicy, is_certificate_error, parse_retry_after
from airflow_jobstatus.http.settings import HttpSettings
from airflow_jobstatus.http.transport import AiohttpTransport, ready_ssl_context
from airflow_jobstatus.shared import budget as shared_budget  # a module: budget imports http too
from airflow_jobstatus.shared.accounts import account_of

if TYPE_CHECKING:
    from typing_extensions import Unpack

log = logging.getLogger(__name__)
install_log_filters()

USER_AGENT = f"airflow-jobstatus/{__version__}"
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})

M = TypeVar("M", bound=pydantic.BaseModel)


MESSAGE_KEYS = ("error", "Error", "ErrorCode", "message", "info")
"""Where error text usually is, for a body no description's `ErrorBody` reads (Symbl's ``{"message"}``)."""


def service_message(content: bytes) -> str:
    """A guess at the error text of a response body its service's `ErrorBody` did not read."""
    try:
        body = json.loads(content)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: nesting too deep
        return excerpt(content, 200) if content else ""
    if not isinstance(body, dict):
        return excerpt(content, 200)
    parts = []
    for key in MESSAGE_KEYS:
        value = body.get(key)
        if isinstance(value, str | int) and str(value) not in parts:
            parts.append(str(value))
    return scrub(": ".join(parts)) if parts else excerpt(content, 200)


@dataclass(frozen=True)
class _Acquire:
    deadline: float | None


@dataclass(frozen=True)
class _Send:
    request: httpx.Request
    auth: httpx.Auth | None


@dataclass(frozen=True)
class _Sleep:
    seconds: float


@dataclass(frozen=True)
class _Token:
    """Have the bearer token ready before taking a send slot (see `_attempts`)."""

    auth: RefreshableTokenAuth


_Step = _Token | _Acquire | _Send | _Sleep


class RequestOptions(TypedDict, total=False):
    """The keyword options of `ServiceClient.request` and `arequest`."""

    params: Mapping[str, Any] | None
    json: Any
    headers: Mapping[str, str] | None
    idempotent: bool | None
    deadline: float | None
    job_id: str | None
    hints: Mapping[int, str] | None
    auth: httpx.Auth | None
    no_auth: bool


@dataclass(frozen=True)
class _Request:
    """One request as the retry plan reads it, whichever executor (sync or async) carries it out."""

    call: Call
    deadline: float | None = None
    headers: Mapping[str, str] | None = None
    auth: httpx.Auth | None = None
    """Instead of the client's own (a `Call` always uses the client's, or none: ``no_auth``)."""

    @classmethod
    def asked(cls, operation: str, method: str, path: str, options: RequestOptions) -> _Request:
        """The request `request` / `arequest` were asked for."""
        unknown = options.keys() - RequestOptions.__optional_keys__
        if unknown:
            raise TypeError(f"unexpected keyword argument(s): {', '.join(sorted(unknown))}")
        call = Call(
            operation,
            method,
            path,
            params=options.get("params"),
            json=options.get("json"),
            job_id=options.get("job_id"),
            hints=options.get("hints"),
            idempotent=options.get("idempotent"),
            no_auth=options.get("no_auth", False),
        )
        return cls(call, options.get("deadline"), options.get("headers"), options.get("auth"))


class _Body:
    """A response body read chunk by chunk, refused as soon as it is larger than allowed."""

    def __init__(self, response: httpx.Response, check: Callable[[int], None]) -> None:
        self._response = response
        self._check = check
        self._chunks: list[bytes] = []
        self._size = 0
        declared = response.headers.get("Content-Length")
        if declared and declared.isdigit():
            check(int(declared))

    def add(self, chunk: bytes) -> None:
        self._size += len(chunk)
        self._check(self._size)
        self._chunks.append(chunk)

    def read(self) -> httpx.Response:
        """The response, its body read (`.content` and `.json()` work after it is closed)."""
        self._response._content = b"".join(self._chunks)
        return self._response


class _LoopClients:
    """The async clients of one event loop, closed when the loop shuts its async generators down."""

    def __init__(self) -> None:
        self.clients: dict[str, httpx.AsyncClient] = {}
        self._closer: Any = None

    async def start(self) -> None:
        async def closer() -> AsyncIterator[None]:
            try:
                yield
            finally:
                await self.aclose()

        self._closer = closer()
        await self._closer.__anext__()  # parked at its yield until loop.shutdown_asyncgens()

    async def aclose(self) -> None:
        clients, self.clients = list(self.clients.values()), {}
        for client in clients:
            try:
                await client.aclose()
            except Exception:  # closing is best effort; a failure must not mask the caller's result
                log.debug("error closing an HTTP client", exc_info=True)


_loop_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopClients] = (
    weakref.WeakKeyDictionary()
)


async def _clients_for_running_loop() -> _LoopClients:
    loop = asyncio.get_running_loop()
    registry = _loop_clients.get(loop)
    if registry is None:
        registry = _loop_clients[loop] = _LoopClients()
        await registry.start()
    return registry


async def close_async_clients() -> None:
    """Close this event loop's shared clients now (tests and short-lived loops)."""
    registry = _loop_clients.pop(asyncio.get_running_loop(), None)
    if registry is not None:
        await registry.aclose()


class ServiceClient:
    """Sends one connection's requests to one service."""

    def __init__(
        self,
        *,
        service: str,
        conn_id: str,
        base_url: str,
        settings: HttpSettings,
        auth: httpx.Auth | None = None,
        secrets: Iterable[str | None] = (),
        policy: RetryPolicy | None = None,
        max_connections: int = 100,
        error_text: Callable[[bytes], str | None] | None = None,
    ) -> None:
        self.service = service
        self.error_text = error_text
        """The service's own reading of its error bodies (its description's error model); None where
        it has none, and whenever it returns None, `service_message` guesses the text."""
        self.conn_id = conn_id
        self.base_url = base_url.rstrip("/")
        self.settings = settings
        self.auth = auth
        self.policy = policy or RetryPolicy(max_retries=settings.max_retries)
        self.max_connections = max_connections
        given = tuple(secret for secret in secrets if secret)
        for secret in given:
            register_secret(secret)
        self._account = account_of(service, self.base_url, given)
        """The account the connection's requests count against (credentials only as a one-way hash)."""
        self._limits = shared_budget.Limits(
            settings.rate, settings.max_requests_per_day, settings.request_budget_window
        )
        fingerprint = hashlib.sha256(repr((self.base_url, settings, max_connections)).encode()).hexdigest()[
            :16
        ]
        self._client_key = f"{service}:{conn_id}:{fingerprint}"
        self._sync_client: httpx.Client | None = None
        self.options: dict[str, Any] = {}
        """Service-specific connection settings a hook reads from the extra (not secrets)."""
        self.error_types: Mapping[str, int] = {}
        """Error bodies ``{"type": ...}`` whose type decides the handling, as the HTTP status handled
        alike (e.g. a ``rate_limit`` type is handled as 429, whatever the status it came with)."""

    def __repr__(self) -> str:
        return f"ServiceClient(service={self.service!r}, conn_id={self.conn_id!r}, base_url={redact_url(self.base_url)!r})"

    # ----------------------------------------------------------------- shared pieces

    def url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path
        return f"{self.base_url}/{path.lstrip('/')}"

    def _timeout(self, deadline: float | None) -> httpx.Timeout:
        seconds = self.settings.request_timeout
        if deadline is not None:
            seconds = max(0.05, min(seconds, deadline - time.monotonic()))
        return httpx.Timeout(seconds)

    def _build(self, client: httpx.Client | httpx.AsyncClient, asked: _Request) -> httpx.Request:
        call = asked.call
        return client.build_request(
            call.method,
            self.url(call.path),
            params={k: v for k, v in (call.params or {}).items() if v is not None},
            json=call.json,
            headers=asked.headers,
            timeout=self._timeout(asked.deadline),
        )

    def _where(self, operation: str, method: str, url: object, job_id: str | None) -> dict[str, Any]:
        """What every error of a request names: service, operation, request (redacted) and job."""
        return {
            "service": self.service,
            "operation": operation,
            "url": f"{method} {redact_url(url)}",
            "job_id": job_id,
        }

    def _error_for_status(
        self,
        operation: str,
        request: httpx.Request,
        status: int,
        content: bytes,
        headers: httpx.Headers,
        job_id: str | None,
        hints: Mapping[int, str] | None,
        note: str = "",
        handled_as: int | None = None,
    ) -> JobStatusError:
        documented = self.error_text(content) if self.error_text is not None else None
        message = (
            scrub(documented) if documented else service_message(content)
        ) or httpx.codes.get_reason_phrase(status)
        kind = status if handled_as is None else handled_as
        kwargs = self._where(operation, request.method, request.url, job_id) | {"status_code": status}
        if hints and status in hints:
            kwargs["hint"] = hints[status]
        text = f"{message}{note}"
        error_class = error_class_for_status(
            kind
        )  # the class follows the handling; the text keeps the HTTP status
        if issubclass(error_class, AuthenticationError):
            kwargs.setdefault(
                "hint",
                f"Check the credentials in the Airflow connection '{self.conn_id}' "
                "(they may be wrong, expired or revoked)",
            )
        if issubclass(error_class, RateLimitedError):
            return error_class(text, retry_after=parse_retry_after(headers.get("Retry-After")), **kwargs)
        return error_class(text, **kwargs)

    def _error_for_exception(
        self, operation: str, request: httpx.Request, exc: Exception, job_id: str | None, note: str = ""
    ) -> JobStatusError:
        if is_certificate_error(exc):
            return ServiceUnreachableError(
                f"the service's TLS certificate could not be verified ({scrub(str(exc)) or 'no detail'})",
                **self._where(operation, request.method, request.url, job_id),
                hint="Check the service's certificate chain and the connection's base URL; only for a "
                "test server you trust, set 'verify_tls' to false in the connection's extra",
            )
        return ServiceUnreachableError(
            f"{type(exc).__name__}: {scrub(str(exc)) or 'no detail'}{note}",
            **self._where(operation, request.method, request.url, job_id),
        )

    def _deadline_error(
        self, operation: str, method: str, path: str, job_id: str | None, why: str
    ) -> JobStatusError:
        return ServiceUnreachableError(
            f"gave up before the deadline: {why}",
            **self._where(operation, method, self.url(path), job_id),
            hint="The caller's deadline was reached while waiting to retry; raise the timeout or retry later",
        )

    def _check_size(self, operation: str, request: httpx.Request, size: int, job_id: str | None) -> None:
        if size > self.settings.max_response_bytes:
            raise MalformedResponseError(
                f"response body larger than {self.settings.max_response_bytes} bytes refused",
                **self._where(operation, request.method, request.url, job_id),
                hint="Raise 'max_response_bytes' in the connection's extra if this response is legitimate",
            )

    def _body(self, request: _Request, sent: httpx.Request, response: httpx.Response) -> _Body:
        call = request.call
        return _Body(response, lambda size: self._check_size(call.operation, sent, size, call.job_id))

    def _parsed(self, call: Call, response: httpx.Response) -> Any:
        """A `Call`'s model read from its response (the response itself when it names none)."""
        if call.model is None:
            return response
        return self.parse(call.operation, response, call.model, job_id=call.job_id)

    def parse(
        self, operation: str, response: httpx.Response, model: type[M], *, job_id: str | None = None
    ) -> M:
        """Validate a JSON response into ``model``; anything else is a `MalformedResponseError`."""
        sent = response.request
        where = self._where(operation, sent.method, sent.url, job_id) | {"status_code": response.status_code}
        try:
            data = json.loads(response.content)
        except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: nesting too deep
            raise MalformedResponseError(
                f"response is not valid JSON: {excerpt(response.content, 120)!r}", **where
            ) from None
        try:
            return model.model_validate(data)
        except pydantic.ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in exc.errors()[:5]
            )
            raise MalformedResponseError(
                f"response does not match the documented {model.__name__} shape: {problems}", **where
            ) from None

    # ----------------------------------------------------------------- sync

    def _client(self) -> httpx.Client:
        if self._sync_client is None or self._sync_client.is_closed:
            self._sync_client = httpx.Client(
                timeout=self.settings.request_timeout,
                verify=self.settings.verify_tls,
                headers={"User-Agent": USER_AGENT},
                follow_redirects=False,
                limits=httpx.Limits(max_connections=self.max_connections),
            )
        return self._sync_client

    def close(self) -> None:
        if self._sync_client is not None:
            self._sync_client.close()
            self._sync_client = None

    def request(
        self, operation: str, method: str, path: str, **options: Unpack[RequestOptions]
    ) -> httpx.Response:
        """Send with retries; return the successful (2xx) response with its body read."""
        return self._run(_Request.asked(operation, method, path, options))

    def execute(self, call: Call, *, deadline: float | None = None) -> Any:
        """Send a `Call`; return its model (or the response when it names none)."""
        return self._parsed(call, self._run(_Request(call, deadline)))

    def _run(self, request: _Request) -> httpx.Response:
        """Carry out the plan's steps with the sync client."""
        client = self._client()
        limiter = shared_budget.sync_limiter_for(self.service, self.conn_id, self._account, self._limits)
        plan = self._attempts(client, request, limiter.pause)
        try:
            step = next(plan)
            while True:
                step = plan.send(self._step(step, client, limiter, request))
        except StopIteration as stop:
            return stop.value

    def _step(
        self, step: _Step, client: httpx.Client, limiter: shared_budget.SharedSyncLimiter, request: _Request
    ) -> Any:
        """One step, sync: return what the plan receives (nothing, the response, or the exception met)."""
        if isinstance(step, _Token):
            step.auth.source.get()
        elif isinstance(step, _Acquire):
            try:
                limiter.acquire(step.deadline)
            except DeadlineExceeded as exc:
                return exc
        elif isinstance(step, _Send):
            try:
                response = client.send(step.request, auth=step.auth or httpx.USE_CLIENT_DEFAULT, stream=True)
                try:
                    body = self._body(request, step.request, response)
                    for chunk in response.iter_bytes():
                        body.add(chunk)
                    return body.read()
                finally:
                    response.close()
            except httpx.TransportError as exc:
                return exc
        else:
            time.sleep(step.seconds)
        return None

    # ----------------------------------------------------------------- async

    async def _aclient(self) -> httpx.AsyncClient:
        registry = await _clients_for_running_loop()
        client = registry.clients.get(self._client_key)
        if client is None or client.is_closed:
            if self.settings.verify_tls:
                # loaded now, not inside the first request: that one has its rate-limit slot already
                await ready_ssl_context()
            client = registry.clients.get(self._client_key)
        if client is None or client.is_closed:
            client = registry.clients[self._client_key] = httpx.AsyncClient(
                transport=AiohttpTransport(
                    verify=self.settings.verify_tls, max_connections=self.max_connections
                ),
                timeout=self.settings.request_timeout,
                headers={"User-Agent": USER_AGENT},
                follow_redirects=False,
            )
        return client

    async def arequest(
        self, operation: str, method: str, path: str, **options: Unpack[RequestOptions]
    ) -> httpx.Response:
        """Async twin of `request`: the same plan, driven with the loop's shared client."""
        return await self._arun(_Request.asked(operation, method, path, options))

    async def aexecute(self, call: Call, *, deadline: float | None = None) -> Any:
        """Async twin of `execute`."""
        return self._parsed(call, await self._arun(_Request(call, deadline)))

    async def _arun(self, request: _Request) -> httpx.Response:
        """Carry out the plan's steps with the loop's shared client."""
        client = await self._aclient()
        limiter = shared_budget.async_limiter_for(self.service, self.conn_id, self._account, self._limits)
        plan = self._attempts(client, request, limiter.pause)
        try:
            step = next(plan)
            while True:
                step = plan.send(await self._astep(step, client, limiter, request))
        except StopIteration as stop:
            return stop.value

    async def _astep(
        self,
        step: _Step,
        client: httpx.AsyncClient,
        limiter: shared_budget.SharedAsyncLimiter,
        request: _Request,
    ) -> Any:
        """Async twin of `_step`."""
        if isinstance(step, _Token):
            await step.auth.source.aget()
        elif isinstance(step, _Acquire):
            try:
                await limiter.acquire(step.deadline)
            except DeadlineExceeded as exc:
                return exc
        elif isinstance(step, _Send):
            try:
                response = await client.send(
                    step.request, auth=step.auth or httpx.USE_CLIENT_DEFAULT, stream=True
                )
                try:
                    body = self._body(request, step.request, response)
                    async for chunk in response.aiter_bytes():
                        body.add(chunk)
                    return body.read()
                finally:
                    await response.aclose()
            except httpx.TransportError as exc:
                return exc
        else:
            await asyncio.sleep(step.seconds)
        return None

    # ----------------------------------------------------------------- the retry plan (sync and async)

    def _attempts(
        self,
        client: httpx.Client | httpx.AsyncClient,
        asked: _Request,
        pause: Callable[[float], None],
    ) -> Generator[_Step, Any, httpx.Response]:
        """Every decision of one request: wait for the limiter, send, retry or raise.

        Yields steps for an executor (`_run` or `_arun`) to carry out and receives their
        outcome: nothing, the response (body read), or the exception the step met.
        """
        call, deadline = asked.call, asked.deadline
        auth = None if call.no_auth else (asked.auth or self.auth)
        operation, method, job_id = call.operation, call.method, call.job_id
        idem = method.upper() in IDEMPOTENT_METHODS if call.idempotent is None else call.idempotent
        attempt = 0
        refreshed = False
        while True:
            if isinstance(auth, RefreshableTokenAuth):
                # A token exchange is a request of its own, in its own slot: made inside the auth
                # flow, after this request took its slot, it would send both back to back.
                yield _Token(auth)
            blocked = yield _Acquire(deadline)
            if isinstance(blocked, BudgetExhausted):
                raise RequestBudgetExhaustedError(
                    str(blocked),
                    retry_after=blocked.retry_in,
                    service=self.service,
                    operation=operation,
                    job_id=job_id,
                ) from None
            if isinstance(blocked, DeadlineExceeded):
                raise self._deadline_error(operation, method, call.path, job_id, str(blocked)) from None
            request = self._build(client, asked)
            outcome = yield _Send(request, auth)
            if isinstance(outcome, Exception):
                wait = self._retry_wait_error(outcome, attempt, idem, deadline)
                if wait is None:
                    note = self._give_up_note(attempt, deadline)
                    raise self._error_for_exception(operation, request, outcome, job_id, note) from None
                yield _Sleep(wait)
                attempt += 1
                continue
            response: httpx.Response = outcome
            status = response.status_code
            if status < 300:
                return response
            status = self._handled_as(response)
            if status == 401 and isinstance(auth, RefreshableTokenAuth) and not refreshed:
                auth.invalidate_for(request)  # the token expired or was revoked: fetch one, resend once
                refreshed = True
                continue
            wait = self._retry_wait_status(response, status, attempt, idem, deadline, pause)
            if wait is None:
                note = self._give_up_note(attempt, deadline) if status == 429 or status >= 500 else ""
                raise self._error_for_status(
                    operation,
                    request,
                    response.status_code,
                    response.content,
                    response.headers,
                    job_id,
                    call.hints,
                    note,
                    handled_as=status,
                ) from None
            yield _Sleep(wait)
            attempt += 1

    # ----------------------------------------------------------------- retry decisions

    def _retry_wait_error(
        self, exc: Exception, attempt: int, idempotent: bool, deadline: float | None
    ) -> float | None:
        if attempt >= self.policy.max_retries or not self.policy.should_retry_error(
            exc, idempotent=idempotent
        ):
            return None
        return self._fits(self.policy.delay(attempt, None), deadline)

    def _handled_as(self, response: httpx.Response) -> int:
        """The status an error response is handled as: its own, or its body's mapped ``type``."""
        if not self.error_types:
            return response.status_code
        try:
            body = json.loads(response.content)
        except (ValueError, UnicodeDecodeError, RecursionError):
            return response.status_code
        kind = body.get("type") if isinstance(body, dict) else None
        return (
            self.error_types.get(kind, response.status_code)
            if isinstance(kind, str)
            else response.status_code
        )

    def _retry_wait_status(
        self,
        response: httpx.Response,
        status: int,
        attempt: int,
        idempotent: bool,
        deadline: float | None,
        pause: Callable[[float], None],
    ) -> float | None:
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        if status == 429:
            # Every caller of this connection holds off, not just this one.
            pause(retry_after if retry_after is not None else self.policy.backoff(attempt + 1))
        if attempt >= self.policy.max_retries or not self.policy.should_retry_status(
            status, idempotent=idempotent
        ):
            return None
        if retry_after is not None and retry_after > self.policy.max_retry_after:
            return None
        return self._fits(self.policy.delay(attempt, retry_after), deadline)

    @staticmethod
    def _fits(wait: float, deadline: float | None) -> float | None:
        if deadline is not None and time.monotonic() + wait > deadline:
            return None
        return wait

    def _give_up_note(self, attempt: int, deadline: float | None) -> str:
        if deadline is not None and deadline - time.monotonic() < self.policy.backoff_max:
            return f" (after {attempt + 1} attempts; stopped retrying at the caller's deadline)"
        return f" (after {attempt + 1} attempts)"
