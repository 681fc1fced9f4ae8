"""`ExchangedToken`: the bearer token a `TokenExchange` gets, shared per API and credentials.

Loaded when a hook first builds a client (it imports Airflow's exceptions); descriptions import
only `http.auth.TokenExchange`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import time
import weakref
from collections.abc import Mapping
from typing import Any, Protocol

from airflow_jobstatus.exceptions import MalformedResponseError
from airflow_jobstatus.http.call import Call
from airflow_jobstatus.http.inflight import await_shared, start_shared


class TokenExchange(Protocol):
    """What a token exchange states (`http.auth.TokenExchange`, a description's auth)."""

    @property
    def path(self) -> str: ...
    @property
    def response(self) -> type[Any]: ...
    @property
    def fields(self) -> Mapping[str, str]: ...
    @property
    def token_field(self) -> str: ...
    @property
    def lifetime_field(self) -> str: ...


MAX_LIFETIME = 365 * 86400.0
"""A lifetime is clamped to a year: an absurd one (beyond float range) must not overflow."""


class ExchangedToken:
    """One cached token; concurrent callers share one exchange. The token is refreshed shortly
    before it expires and at once when a call gets a 401 (`invalidate`)."""

    def __init__(self, client: Any, exchange: TokenExchange, body: dict[str, str]) -> None:
        self.client = client
        self.exchange = exchange
        self._body = body
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = threading.Lock()
        self._inflight: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task[str]] = (
            weakref.WeakKeyDictionary()
        )
        self.exchanges = 0

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{key}=***" if self.exchange.fields.get("password") == key else f"{key}={value!r}"
            for key, value in self._body.items()
        )
        return f"ExchangedToken({shown})"

    def _valid(self) -> str | None:
        return self._token if self._token and time.monotonic() < self._expires_at else None

    def _store(self, response: Any) -> str:
        value = getattr(response, self.exchange.token_field)
        if not value or not value.isascii() or not value.isprintable() or value != value.strip():
            # it goes into an Authorization header as is: refuse what no header can carry
            raise MalformedResponseError(
                f"the token response holds no usable {self.exchange.token_field}",
                service=self.client.service,
                operation="get_token",
            )
        lifetime = float(max(0, min(getattr(response, self.exchange.lifetime_field), MAX_LIFETIME)))
        self._token = value
        self._expires_at = time.monotonic() + lifetime - min(60.0, lifetime * 0.1)
        self.exchanges += 1
        return value

    def call(self) -> Call:
        """The exchange request (sent without the bearer token it is for)."""
        return Call(
            "get_token",
            "POST",
            self.exchange.path,
            self.exchange.response,
            json=self._body,
            idempotent=True,
            no_auth=True,
        )

    def get(self) -> str:
        with self._lock:
            token = self._valid()
            if token is None:
                token = self._store(self.client.execute(self.call()))
            return token

    async def aget(self) -> str:
        token = self._valid()
        if token is not None:
            return token
        loop = asyncio.get_running_loop()
        pending = self._inflight.get(loop)
        if pending is None:
            # A task of its own: a caller cancelled mid-exchange cancels only its own wait.
            pending = self._inflight[loop] = start_shared(self._exchange(loop), "token")
        return await await_shared(pending, service=self.client.service, operation="get_token")

    async def _exchange(self, loop: asyncio.AbstractEventLoop) -> str:
        try:
            return self._store(await self.client.aexecute(self.call()))
        finally:
            self._inflight.pop(loop, None)

    def invalidate(self, token: str) -> None:
        if token == self._token:
            self._token = None
            self._expires_at = 0.0


_sources: dict[tuple[str, str, str], ExchangedToken] = {}
_sources_lock = threading.Lock()


def shared_token(client: Any, exchange: TokenExchange, body: dict[str, str]) -> ExchangedToken:
    """The process's token for this API and credentials (the first client to ask sends its exchanges)."""
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    key = (client.base_url, exchange.path, digest)
    with _sources_lock:
        source = _sources.get(key)
        if source is None:
            source = _sources[key] = ExchangedToken(client, exchange, body)
        return source
