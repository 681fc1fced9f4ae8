"""The webhook receiver: a FastAPI app the api-server mounts at ``/jobstatus`` (see `plugin.py`).

Airflow applies no authentication to plugin apps, so each route's own checks are its only
protection; treat it as internet-facing. Each service with a webhook in its description has the
route ``POST /webhooks/{service}/{conn_id}``, checked by its scheme:

* `SignedWebhook` (Daily): the body's HMAC signature and timestamp headers, verified with the
  connection's secret (``webhook_secret``) within the replay window.
* `TokenInUrl` (Symbl.ai, DeepAffects): ``?token=...``, compared with the connection's
  ``webhook_token``. The token is in the query string, not the path, because Airflow's access log
  prints the path in clear but masks the values of query parameters with secret-like names.

A verified body is parsed strictly with the description's `WebhookBody`, which names the job and
the kind of change.

Every rejection has the same terse body; an unknown connection and a wrong token or signature
look alike. A verified event is stored in Redis under a key with a TTL and published; a duplicate
(same job, key still stored) is answered 200 and not published again.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError

from airflow_jobstatus.push.config import WEBHOOKS, PushConfig, load_config
from airflow_jobstatus.push.credentials import CredentialCache
from airflow_jobstatus.push.models import CHANNEL, PushEvent, event_key, seen_key
from airflow_jobstatus.push.verify import token_matches, verify_signature
from airflow_jobstatus.services import SignedWebhook, TokenInUrl, WebhookBody, WebhookSpec

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger(__name__)

MAX_CONN_ID_LENGTH = 250


def _rejected(status: int) -> JSONResponse:
    return JSONResponse({"detail": "rejected"}, status_code=status)


ACCEPTED = {"status": "accepted"}
Route = Callable[[Request, str], Awaitable[JSONResponse]]


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

        ``kind`` tells webhooks about one job apart (`WebhookBody.kind`): the same
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


def _hint(webhook: WebhookSpec, body: bytes) -> tuple[str, str] | None:
    """(job id, kind) a verified body names; None when it wakes nothing; 400 when it is malformed."""
    if webhook.event_types:
        kind = _event_type(body, webhook.type_field)
        if kind is _NOT_JSON:
            raise _Rejected(400)
        if kind not in webhook.event_types:
            return None  # another event type, or a signed test message: nothing to wake
    parsed: WebhookBody = _parse(webhook.body, body)
    return None if parsed.in_flight() else (parsed.job_id(), parsed.kind())


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

    async def secret(service: str, conn_id: str) -> str | None:
        try:
            credential = await state.credentials.get(service, conn_id)
        except Exception as exc:
            log.warning("jobstatus webhook: could not read connection %r (%s)", conn_id, type(exc).__name__)
            raise _Rejected(503) from None
        return credential.secret if credential else None

    def signed_route(service: str, webhook: WebhookSpec, scheme: SignedWebhook) -> Route:
        async def route(request: Request, conn_id: str) -> JSONResponse:
            signature = request.headers.get(scheme.signature_header)
            timestamp = request.headers.get(scheme.timestamp_header)

            async def check(body: bytes) -> tuple[str, str] | None:
                if not signature or not timestamp:
                    # The service's verification POST (Daily's, sent when the webhook is created; its
                    # body is not documented): any JSON object that is not one of its events gets a
                    # quick 200 and publishes nothing. An event must be signed.
                    kind = _event_type(body, webhook.type_field)
                    if kind in webhook.event_types:
                        raise _Rejected(401)
                    if kind is _NOT_JSON:
                        raise _Rejected(400)
                    return None
                window = state.config.replay_window or scheme.replay_window
                key = await secret(service, conn_id)
                if not verify_signature(key, timestamp, signature, body, now=state.clock(), window=window):
                    raise _Rejected(401)
                return _hint(webhook, body)

            return await handle(request, service, conn_id, check)

        return route

    def token_route(service: str, webhook: WebhookSpec, scheme: TokenInUrl) -> Route:
        async def route(request: Request, conn_id: str) -> JSONResponse:
            token = request.query_params.get(scheme.query_param)

            async def check(body: bytes) -> tuple[str, str] | None:
                if not token_matches(await secret(service, conn_id), token):
                    raise _Rejected(401)
                return _hint(webhook, body)

            return await handle(request, service, conn_id, check)

        return route

    for service, webhook in WEBHOOKS.items():
        scheme = webhook.scheme
        route = (
            signed_route(service, webhook, scheme)
            if isinstance(scheme, SignedWebhook)
            else token_route(service, webhook, scheme)
        )
        app.add_api_route(f"/webhooks/{service}/{{conn_id}}", route, methods=["POST"], name=service)

    return app


_NOT_JSON = object()


def _event_type(body: bytes, field: str) -> object:
    """The body's event type: its ``field`` if that is text (else None), or `_NOT_JSON`."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return _NOT_JSON
    kind = data.get(field) if isinstance(data, dict) else None
    return kind if isinstance(kind, str) else None
