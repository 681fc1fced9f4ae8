"""An httpx async transport that sends through one shared aiohttp session.

httpx stays the client API (requests, responses, auth flows, errors), while aiohttp's C-accelerated
HTTP/1.1 parser and connection pool do the sending: measured on this machine it costs about a
third of httpx's default transport's CPU per request (``benchmarks/http_transport.py``), and the
triggerer sends thousands of polls through it. aiohttp already ships with Airflow.

aiohttp failures are translated into the httpx exceptions the retry policy classifies, with
messages that never quote the URL (it may carry an API key).
"""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import AsyncIterator

import aiohttp
import httpx

_CHUNK = 64 * 1024
_ssl_context: ssl.SSLContext | None = None
_ssl_lock = threading.Lock()


def _verifying_ssl_context() -> ssl.SSLContext:
    """One verifying context per process, shared by every session (an SSLContext is thread-safe).

    Loading the CA store takes tens of milliseconds: far too long for a triggerer's event loop, so
    async code gets it through `ready_ssl_context`.
    """
    global _ssl_context
    with _ssl_lock:
        if _ssl_context is None:
            _ssl_context = ssl.create_default_context()
        return _ssl_context


async def ready_ssl_context() -> ssl.SSLContext:
    """The shared verifying context; the first call loads it in a worker thread, never in the loop."""
    if _ssl_context is not None:
        return _ssl_context
    return await asyncio.to_thread(_verifying_ssl_context)


class _AiohttpStream(httpx.AsyncByteStream):
    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_chunked(_CHUNK):
                yield chunk
        except (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError) as exc:
            raise httpx.RemoteProtocolError(_describe(exc)) from None
        except aiohttp.ClientOSError as exc:
            raise httpx.ReadError(_describe(exc)) from None
        except (asyncio.TimeoutError, aiohttp.ServerTimeoutError):
            raise httpx.ReadTimeout("timed out reading the response body") from None

    async def aclose(self) -> None:
        self._response.release()


def _describe(exc: BaseException) -> str:
    """An aiohttp error as text without the URL (aiohttp puts it in some messages)."""
    kind = type(exc).__name__
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"{kind}: cannot connect to {exc.host}:{exc.port} ({exc.os_error.strerror or exc.os_error})"
    if isinstance(exc, aiohttp.ClientOSError):
        return f"{kind}: {exc.strerror or 'connection error'}"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return f"{kind}: server disconnected without a complete response"
    if isinstance(exc, aiohttp.ClientPayloadError):
        return f"{kind}: response body incomplete"
    return kind


class AiohttpTransport(httpx.AsyncBaseTransport):
    """httpx transport over one aiohttp session (and its connection pool), bound to one event loop."""

    def __init__(self, *, verify: bool = True, max_connections: int = 100) -> None:
        self._verify = verify
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    def _get_session(self, ssl_option: ssl.SSLContext | bool) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self._max_connections,
                ssl=ssl_option,
                ttl_dns_cache=300,
                keepalive_timeout=30,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                cookie_jar=aiohttp.DummyCookieJar(),
                auto_decompress=False,  # httpx decodes Content-Encoding itself
                skip_auto_headers=("User-Agent", "Accept-Encoding", "Accept", "Content-Type"),
                timeout=aiohttp.ClientTimeout(total=None),
            )
            # aiohttp resends an idempotent request at once when a reused keep-alive connection
            # drops, bypassing the connection's rate limit and retry policy (the ServiceClient
            # retries it, spaced). No public switch: aiohttp's own test client clears this flag.
            if hasattr(self._session, "_retry_connection"):
                self._session._retry_connection = False
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = self._session
        if session is None or session.closed:
            ssl_option: ssl.SSLContext | bool = await ready_ssl_context() if self._verify else False
            session = self._get_session(ssl_option)  # no await in between: one session per transport
        timeouts = request.extensions.get("timeout", {})
        timeout = aiohttp.ClientTimeout(
            total=None,
            sock_connect=timeouts.get("connect"),
            sock_read=timeouts.get("read"),
        )
        body = request.content if request.method not in ("GET", "HEAD") or request.content else None
        try:
            response = await session.request(
                request.method,
                str(request.url),
                headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw],
                data=body,
                allow_redirects=False,
                timeout=timeout,
                compress=None,
            )
        except aiohttp.ClientConnectorError as exc:
            raise httpx.ConnectError(_describe(exc), request=request) from None
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError) as exc:
            raise httpx.RemoteProtocolError(_describe(exc), request=request) from None
        except aiohttp.ClientOSError as exc:
            raise httpx.ReadError(_describe(exc), request=request) from None
        except aiohttp.ServerTimeoutError:
            raise httpx.ReadTimeout("timed out waiting for the response", request=request) from None
        except asyncio.TimeoutError:
            raise httpx.ReadTimeout("timed out waiting for the response", request=request) from None
        except aiohttp.ClientResponseError as exc:
            raise httpx.RemoteProtocolError(
                f"invalid response: {exc.status} {exc.message}", request=request
            ) from None
        except aiohttp.ClientError as exc:
            raise httpx.TransportError(_describe(exc), request=request) from None
        return httpx.Response(
            status_code=response.status,
            headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in response.raw_headers],
            stream=_AiohttpStream(response),
            request=request,
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": (response.reason or "").encode()},
        )

    async def aclose(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None
