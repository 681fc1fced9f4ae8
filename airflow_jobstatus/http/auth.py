"""How a request carries its credential. Reprs never show the credential."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Generator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
import pydantic


class BearerAuth(httpx.Auth):
    """``Authorization: Bearer <key>`` (Daily)."""

    def __init__(self, token: str) -> None:
        self._header = f"Bearer {token}"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self._header
        yield request

    def __repr__(self) -> str:
        return "BearerAuth(***)"


class HeaderAuth(httpx.Auth):
    """Fixed credential headers (Wasabi's ``x-amz-access-key`` / ``x-amz-secret-key``)."""

    def __init__(self, headers: dict[str, str]) -> None:
        self._headers = dict(headers)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers.update(self._headers)
        yield request

    def __repr__(self) -> str:
        return f"HeaderAuth({', '.join(f'{k}=***' for k in self._headers)})"


class AuthScheme(Protocol):
    """A description's auth: builds the request auth from the connection's fields."""

    def build(self, read: Callable[[str], str]) -> tuple[httpx.Auth, list[str]]:
        """The auth and its secrets; ``read(field)`` gives a connection field (or fails naming it)."""
        ...


@dataclass(frozen=True)
class CredentialBearer:
    """A description's auth: one connection field sent as ``Authorization: Bearer`` (Daily's API key)."""

    field: str = "password"

    def build(self, read: Callable[[str], str]) -> tuple[httpx.Auth, list[str]]:
        token = read(self.field)
        return BearerAuth(token), [token]


@dataclass(frozen=True)
class CredentialHeaders:
    """A description's auth: connection fields sent as headers, ``{field: header}`` (Wasabi)."""

    headers: Mapping[str, str]

    def build(self, read: Callable[[str], str]) -> tuple[httpx.Auth, list[str]]:
        """The auth and its secrets; ``read(field)`` gives a connection field (or fails naming it)."""
        values = {header: read(field) for field, header in self.headers.items()}
        return HeaderAuth(values), list(values.values())


class QueryParamAuth(httpx.Auth):
    """A credential in the query string (DeepAffects' ``apikey``); the URL is redacted wherever printed."""

    def __init__(self, name: str, value: str) -> None:
        self._name = name
        self._value = value

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.url = request.url.copy_merge_params({self._name: self._value})
        yield request

    def __repr__(self) -> str:
        return f"QueryParamAuth({self._name}=***)"


@dataclass(frozen=True)
class CredentialQuery:
    """A description's auth: a connection field sent as a query parameter (DeepAffects' ``apikey``)."""

    field: str
    param: str

    def build(self, read: Callable[[str], str]) -> tuple[httpx.Auth, list[str]]:
        """The auth and its secret; ``read(field)`` gives the connection field (or fails naming it)."""
        value = read(self.field)
        return QueryParamAuth(self.param, value), [value]


class TokenSource(Protocol):
    """Supplies a bearer token, shared and cached by its owner."""

    def get(self) -> str: ...

    async def aget(self) -> str: ...

    def invalidate(self, token: str) -> None: ...

    def call(self) -> Any:
        """The request that gets a token (a connection test sends it alone)."""
        ...


class RefreshableTokenAuth(httpx.Auth):
    """A bearer token from a `TokenSource`. On a 401 the `ServiceClient` calls `invalidate_for`
    and resends once, so the refresh goes through the same rate limit and retries as any call."""

    def __init__(self, source: TokenSource) -> None:
        self.source = source

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self.source.get()}"
        yield request

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        request.headers["Authorization"] = f"Bearer {await self.source.aget()}"
        yield request

    def bind(self, client: Any) -> None:
        """Give a source that makes requests of its own (a token exchange) the client to send them."""
        bind = getattr(self.source, "bind", None)
        if bind is not None:
            self.source = bind(client)

    def probe(self) -> Any:
        """The token request alone: it proves the credentials (the hook's connection test)."""
        return self.source.call()

    def invalidate_for(self, request: httpx.Request) -> None:
        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            self.source.invalidate(header[len("Bearer ") :])

    def __repr__(self) -> str:
        return "RefreshableTokenAuth(***)"


@dataclass(frozen=True)
class TokenExchange:
    """A description's auth: connection fields posted to ``path`` for a short-lived bearer token
    (Symbl's appId/appSecret). One token per API and credentials is shared in the process
    (`http.tokens.ExchangedToken`), refreshed shortly before it expires and once on a 401."""

    path: str
    response: type[pydantic.BaseModel]
    """The token response; ``token_field`` holds the token, ``lifetime_field`` its seconds to live."""
    fields: Mapping[str, str]
    """``{connection field: body key}``; the ``password`` field is the secret."""
    constants: Mapping[str, str] = field(default_factory=dict)
    """Fixed body keys sent with the fields (``{"type": "application"}``)."""
    token_field: str = "accessToken"
    lifetime_field: str = "expiresIn"

    def build(self, read: Callable[[str], str]) -> tuple[httpx.Auth, list[str]]:
        """The auth (its token source joins a client in `RefreshableTokenAuth.bind`) and its secrets."""
        values = {name: read(name) for name in self.fields}
        body = {**self.constants, **{key: values[name] for name, key in self.fields.items()}}
        secrets = [values["password"]] if "password" in values else []
        return RefreshableTokenAuth(_UnboundExchange(self, body)), secrets


class _UnboundExchange:
    """A token exchange before `bind` gives it the client that sends it."""

    def __init__(self, exchange: TokenExchange, body: dict[str, str]) -> None:
        self.exchange = exchange
        self._body = body

    def __repr__(self) -> str:
        return "_UnboundExchange(***)"

    def bind(self, client: Any) -> TokenSource:
        from airflow_jobstatus.http.tokens import shared_token  # imports Airflow: not at load time

        return shared_token(client, self.exchange, self._body)

    def get(self) -> str:
        raise RuntimeError("token exchange not bound to a client")

    async def aget(self) -> str:
        raise RuntimeError("token exchange not bound to a client")

    def invalidate(self, token: str) -> None:
        return None

    def call(self) -> Any:
        raise RuntimeError("token exchange not bound to a client")
