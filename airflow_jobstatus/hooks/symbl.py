"""Symbl.ai: an appId/appSecret token exchange, then Bearer calls to the Job and Conversation APIs.

Job references: Symbl's job status answers only ``{id, status}``, while the outputs live under the
conversation. `SymblHook.submit_job` therefore returns ``"<jobId>:<conversationId>"``, and every
method accepts that form or a bare ``jobId`` (then no outputs can be listed).
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
import weakref
from dataclasses import replace
from typing import Any

from airflow_jobstatus.exceptions import ConcurrencyLimitError, MalformedResponseError, RateLimitedError
from airflow_jobstatus.hooks.base import JobServiceHook, Plan, await_shared, segment, start_shared
from airflow_jobstatus.http.auth import RefreshableTokenAuth
from airflow_jobstatus.http.client import Call, ServiceClient
from airflow_jobstatus.models import JobStatus
from airflow_jobstatus.services import SubmitRequest
from airflow_jobstatus.services.symbl import (
    JOB,
    SYMBL,
    TOKEN,
    SymblJob,
    SymblToken,
    split_job_ref,
    symbl_job_status,
)


class SymblTokenSource:
    """One cached token per (API, appId, secret) in this process; concurrent callers share one exchange.

    The token is refreshed shortly before it expires and at once when a call gets a 401.
    """

    def __init__(self, client: ServiceClient, app_id: str, app_secret: str) -> None:
        self.client = client
        self._body = {"type": "application", "appId": app_id, "appSecret": app_secret}
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = threading.Lock()
        self._inflight: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task[str]] = (
            weakref.WeakKeyDictionary()
        )
        self.exchanges = 0

    def __repr__(self) -> str:
        return f"SymblTokenSource(appId={self._body['appId']!r}, appSecret=***)"

    def _valid(self) -> str | None:
        return self._token if self._token and time.monotonic() < self._expires_at else None

    def _store(self, token: SymblToken) -> str:
        value = token.accessToken
        if not value or not value.isascii() or not value.isprintable() or value != value.strip():
            # it goes into an Authorization header as is: refuse what no header can carry
            raise MalformedResponseError(
                "the token response holds no usable accessToken",
                service=SYMBL.display_name,
                operation="get_token",
            )
        # clamped to a year: an absurd expiresIn (beyond float range) must not overflow
        lifetime = float(max(0, min(token.expiresIn, 365 * 86400)))
        margin = min(60.0, lifetime * 0.1)
        self._token = token.accessToken
        self._expires_at = time.monotonic() + lifetime - margin
        self.exchanges += 1
        return token.accessToken

    def _call(self) -> Call:
        return Call("get_token", "POST", TOKEN, SymblToken, json=self._body, idempotent=True, no_auth=True)

    def get(self) -> str:
        with self._lock:
            token = self._valid()
            if token is None:
                token = self._store(self.client.execute(self._call()))
            return token

    async def aget(self) -> str:
        token = self._valid()
        if token is not None:
            return token
        loop = asyncio.get_running_loop()
        pending = self._inflight.get(loop)
        if pending is None:
            # A task of its own: a caller cancelled mid-exchange cancels only its own wait.
            pending = self._inflight[loop] = start_shared(self._exchange(loop), "symbl-token")
        return await await_shared(pending, service=SYMBL.display_name, operation="get_token")

    async def _exchange(self, loop: asyncio.AbstractEventLoop) -> str:
        try:
            return self._store(await self.client.aexecute(self._call()))
        finally:
            self._inflight.pop(loop, None)

    def invalidate(self, token: str) -> None:
        if token == self._token:
            self._token = None
            self._expires_at = 0.0


_token_sources: dict[tuple[str, str, str], SymblTokenSource] = {}
_token_sources_lock = threading.Lock()


class SymblHook(JobServiceHook):
    """Symbl.ai Async, Job and Conversation APIs.

    :param symbl_conn_id: a ``symbl`` connection (login = App ID, password = App secret).
    """

    spec = SYMBL
    conn_name_attr = "symbl_conn_id"
    default_conn_name = SYMBL.default_conn_id
    conn_type = SYMBL.conn_type
    hook_name = SYMBL.display_name

    def __init__(self, symbl_conn_id: str = SYMBL.default_conn_id, **kwargs: Any) -> None:
        super().__init__(symbl_conn_id, **kwargs)

    def _auth(self, conn: Any, extra: dict[str, Any]) -> tuple[Any, list[str]]:
        self._app_id = self._require(conn.login, "login")
        self._app_secret = self._require(conn.password, "password")
        self._token_auth = RefreshableTokenAuth(_PendingSource())
        return self._token_auth, [self._app_secret]

    def _configure(self, client: ServiceClient, conn: Any, extra: dict[str, Any]) -> None:
        digest = hashlib.sha256(self._app_secret.encode()).hexdigest()
        key = (client.base_url, self._app_id, digest)
        with _token_sources_lock:
            source = _token_sources.get(key)
            if source is None:
                source = _token_sources[key] = SymblTokenSource(client, self._app_id, self._app_secret)
        self._token_auth.source = source
        client.options["token_source"] = source
        del self._app_secret

    @property
    def token_source(self) -> SymblTokenSource:
        source: SymblTokenSource = self.get_client().options["token_source"]
        return source

    def _get_job(self, job_id: str) -> Plan[JobStatus]:
        symbl_job_id, conversation_id = split_job_ref(job_id)
        job = yield Call("get_job", "GET", JOB.format(id=segment(symbl_job_id)), SymblJob, job_id=job_id)
        status = symbl_job_status(job, conversation_id)
        if conversation_id:
            status = status.model_copy(
                update={"job_id": job_id, "raw": {**status.raw, "conversationId": conversation_id}}
            )
        return status

    def _submit(self, request: SubmitRequest) -> Plan[str]:
        """S8: a 429 on submit is the account's concurrent-job limit, not a request rate: the same
        error (message, status, URL), typed `ConcurrencyLimitError` so that a submit loop can wait."""
        try:
            response = yield replace(request.call(), hints={429: ConcurrencyLimitError.hint})
        except RateLimitedError as exc:
            if exc.http_status != 429:  # the connection's own request budget, not the service's answer
                raise
            limited = ConcurrencyLimitError.__new__(ConcurrencyLimitError)
            limited.__dict__.update(exc.__dict__)
            limited.args = exc.args
            raise limited from None
        return request.job_ref(response)

    def _test_connection(self) -> Plan[str]:
        yield Call("test_connection", "POST", TOKEN, SymblToken, json=self.token_source._body, no_auth=True)
        return "Connected to Symbl.ai: the App ID and secret were exchanged for a token"


class _PendingSource:
    """Placeholder until `_configure` attaches the shared token source."""

    def get(self) -> str:
        raise RuntimeError("token source not configured")

    async def aget(self) -> str:
        raise RuntimeError("token source not configured")

    def invalidate(self, token: str) -> None:
        return None
