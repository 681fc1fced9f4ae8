"""The webhook receiver: a FastAPI app the api-server mounts at ``/jobstatus`` (see `plugin.py`).

Airflow applies no authentication to plugin apps, so each route's own checks are its only
protection; treat it as internet-facing. Routes:

* ``POST /webhooks/daily/{conn_id}``: Daily's signed envelope (``X-Webhook-Signature``,
  ``X-Webhook-Timestamp``), verified with the connection's ``webhook_secret``.
* ``POST /webhooks/symbl/{conn_id}?token=...`` and ``POST /webhooks/deepaffects/{conn_id}?token=...``:
  unsigned bodies, authenticated by the connection's ``webhook_token``. The token is in the query
  string, not the path, because Airflow's access log prints the path in clear but masks the values
  of query parameters with secret-like names such as ``token``.

Every rejection has the same terse body; an unknown connection and a wrong token or signature
look alike. A verified event is stored in Redis under a key with a TTL and published; a duplicate
(same job, key still stored) is answered 200 and not published again.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError

from airflow_jobstatus.push.config import PushConfig, load_config
from airflow_jobstatus.push.credentials import CredentialCache
from airflow_jobstatus.push.models import (
    CHANNEL,
    DAILY_EVENT_TYPES,
    SYMBL_IN_FLIGHT,
    DailyEnvelope,
    DeepAffectsResult,
    PushEvent,
    SymblStatus,
    event_key,
    seen_key,
)
from airflow_jobstatus.push.verify import (
    DAILY_SIGNATURE_HEADER,
    DAILY_TIMESTAMP_HEADER,
    token_matches,
    verify_daily,
)

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger(__name__)

MAX_CONN_ID_LENGTH = 250


def _rejected(status: int) -> JSONResponse:
    return JSONResponse({"detail": "rejected"}, status_code=status)


ACCEPTED = {"status": "accepted"}


class _Rejected(Exception):
    def __init__(self, status: int) -> None:
        self.status = status


class Receiver:
    """The routes' shared state: configuration, credential cache, Redis client (made on first use)."""

    def __init__(
        self,
        config: PushConfig | Callable[[], PushConfig] = load_config,
        credentials: CredentialCache | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._config_source = config
        self._config: PushConfig | None = config if isinstance(config, PushConfig) else None
        self.credentials = credentials or CredentialCache()
        self.clock = clock
        self._redis: Redis | None = None

    @property
    def config(self) -> PushConfig:
        if self._config is None:
            source = self._config_source
            assert callable(source)
            try:
                self._config = source()
            except Exception as exc:  # a broken [jobstatus] section: push off, said once
                log.warning("jobstatus webhooks are off: %s", exc)
                self._config = PushConfig()
        return self._config

    def redis(self) -> Redis:
        if self._redis is None:
            from redis.asyncio import Redis

            assert self.config.redis_url
            self._redis = Redis.from_url(self.config.redis_url, socket_connect_timeout=2, socket_timeout=5)
        return self._redis

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None

    async def body(self, request: Request, service: str) -> bytes:
        """The raw body, at most the service's cap (413 beyond it, without reading the rest)."""
        limit = self.config.max_body[service]
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            raise _Rejected(413)
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise _Rejected(413)
            chunks.append(chunk)
        return b"".join(chunks)

    async def publish(self, event: PushEvent, kind: str) -> bool:
        """Store the event under its key (TTL) and publish it; False for a duplicate.

        ``kind`` tells webhooks about one job apart (Daily's event type, Symbl's status): the same
        kind again is a re-delivery, answered but not published again.
        """
        client = self.redis()
        ttl = max(1, int(self.config.event_ttl))
        seen = seen_key(event.service, event.conn_id, event.job_id, kind)
        if not await client.set(seen, "1", nx=True, ex=ttl):
            return False
        payload = event.to_json()
        try:
            await client.set(event_key(event.service, event.conn_id, event.job_id), payload, ex=ttl)
            await client.publish(CHANNEL, payload)
        except BaseException:
            # Let the service's retry publish it: forget that we saw it.
            with contextlib.suppress(Exception):
                await client.delete(seen)
            raise
        return True


def _valid_conn_id(conn_id: str) -> bool:
    return 0 < len(conn_id) <= MAX_CONN_ID_LENGTH and all(c.isalnum() or c in "_-." for c in conn_id)


def _parse(model: type[BaseModel], body: bytes) -> Any:
    try:
        return model.model_validate_json(body)
    except ValidationError:
        raise _Rejected(400) from None


def create_app(receiver: Receiver | None = None) -> FastAPI:
    """The receiver app. Push off (no ``redis_url``): every route answers 404."""
    state = receiver or Receiver()
    app = FastAPI(
        title="airflow-jobstatus webhooks",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        on_shutdown=[state.close],
    )
    app.state.receiver = state

    async def handle(request: Request, service: str, conn_id: str, verify_and_parse: Any) -> JSONResponse:
        try:
            if not state.config.enabled:
                raise _Rejected(404)
            if not _valid_conn_id(conn_id):
                raise _Rejected(401)
            body = await state.body(request, service)
            parsed = await verify_and_parse(body)
            if parsed is None:
                return JSONResponse(ACCEPTED)
            job_id, kind = parsed
            event = PushEvent(service=service, conn_id=conn_id, job_id=job_id, received_at=state.clock())
            try:
                fresh = await state.publish(event, kind)
            except Exception as exc:
                log.warning("jobstatus webhook: could not store the event in Redis (%s)", type(exc).__name__)
                return JSONResponse({"detail": "unavailable"}, status_code=503)
            log.debug(
                "jobstatus webhook: %s %s job %s %s",
                service,
                conn_id,
                job_id,
                fresh and "published" or "duplicate",
            )
            return JSONResponse(ACCEPTED)
        except _Rejected as rejected:
            log.debug("jobstatus webhook: rejected a %s webhook (HTTP %s)", service, rejected.status)
            return _rejected(rejected.status)

    async def token_ok(service: str, conn_id: str, token: str | None) -> None:
        try:
            credential = await state.credentials.get(service, conn_id)
        except Exception as exc:
            log.warning("jobstatus webhook: could not read connection %r (%s)", conn_id, type(exc).__name__)
            raise _Rejected(503) from None
        if not token_matches(credential.secret if credential else None, token):
            raise _Rejected(401)

    @app.post("/webhooks/daily/{conn_id}")
    async def daily(request: Request, conn_id: str) -> JSONResponse:
        signature = request.headers.get(DAILY_SIGNATURE_HEADER)
        timestamp = request.headers.get(DAILY_TIMESTAMP_HEADER)

        async def check(body: bytes) -> tuple[str, str] | None:
            if not signature or not timestamp:
                # Daily's verification POST (sent when the webhook is created; its body is not
                # documented): any JSON object that is not a batch-processor event gets a quick 200
                # and publishes nothing. A batch-processor event must be signed.
                if _event_type(body) in DAILY_EVENT_TYPES:
                    raise _Rejected(401)
                if _event_type(body) is _NOT_JSON:
                    raise _Rejected(400)
                return None
            try:
                credential = await state.credentials.get("daily", conn_id)
            except Exception as exc:
                log.warning(
                    "jobstatus webhook: could not read connection %r (%s)", conn_id, type(exc).__name__
                )
                raise _Rejected(503) from None
            if not verify_daily(
                credential.secret if credential else None,
                timestamp,
                signature,
                body,
                now=state.clock(),
                window=state.config.replay_window,
            ):
                raise _Rejected(401)
            kind = _event_type(body)
            if kind is _NOT_JSON:
                raise _Rejected(400)
            if kind not in DAILY_EVENT_TYPES:
                return None  # another event type, or a signed test message: nothing to wake
            envelope: DailyEnvelope = _parse(DailyEnvelope, body)
            return envelope.payload.id, envelope.type

        return await handle(request, "daily", conn_id, check)

    @app.post("/webhooks/symbl/{conn_id}")
    async def symbl(request: Request, conn_id: str, token: str | None = None) -> JSONResponse:
        async def check(body: bytes) -> tuple[str, str] | None:
            await token_ok("symbl", conn_id, token)
            update: SymblStatus = _parse(SymblStatus, body)
            # Every status change is posted; a documented in-flight one cannot end a wait, so it wakes
            # none. Any other status (terminal, or one the docs do not list) costs one status GET.
            status = update.status.lower()
            return None if status in SYMBL_IN_FLIGHT else (update.jobId, status)

        return await handle(request, "symbl", conn_id, check)

    @app.post("/webhooks/deepaffects/{conn_id}")
    async def deepaffects(request: Request, conn_id: str, token: str | None = None) -> JSONResponse:
        async def check(body: bytes) -> tuple[str, str] | None:
            await token_ok("deepaffects", conn_id, token)
            result: DeepAffectsResult = _parse(DeepAffectsResult, body)
            return result.request_id, "result"

        return await handle(request, "deepaffects", conn_id, check)

    return app


_NOT_JSON = object()


def _event_type(body: bytes) -> object:
    """The envelope's ``type`` (None if absent or not an object), or `_NOT_JSON`."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return _NOT_JSON
    return data.get("type") if isinstance(data, dict) else None
