"""The receiver as the services' descriptions make it (`WebhookSpec`), over real HTTP with a real Redis:
a route per described webhook and none for a service without one, the replay window from the scheme
unless configured, and event types read only when they are text."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
import redis

from airflow_jobstatus.push.config import DEFAULT_MAX_BODY, PUSH_SERVICES, PushConfig
from airflow_jobstatus.push.fields import SECRET_EXTRA
from airflow_jobstatus.push.models import CHANNEL
from airflow_jobstatus.push.receiver import Receiver, create_app
from airflow_jobstatus.services import SERVICES, SignedWebhook
from tests.helpers.connections import exported
from tests.helpers.push import conn_env, daily_envelope, daily_headers, daily_hmac_secret, serve
from tests.helpers.redis_server import RedisServer, redis_server  # noqa: F401 - fixture

pytestmark = pytest.mark.integration


def test_push_settings_come_from_the_descriptions():
    # The names users configured (routes, extras, option suffixes) are the ones before issue 15.
    assert PUSH_SERVICES == ("daily", "symbl", "deepaffects")
    assert SECRET_EXTRA == {
        "daily": "webhook_secret",
        "symbl": "webhook_token",
        "deepaffects": "webhook_token",
    }
    assert DEFAULT_MAX_BODY == {"daily": 256 * 1024, "symbl": 16 * 1024, "deepaffects": 16 * 1024 * 1024}
    assert SERVICES["wasabi_air"].webhook is None
    daily = SERVICES["daily"].webhook
    assert daily is not None and isinstance(daily.scheme, SignedWebhook)
    assert daily.scheme.replay_window == 300


@contextmanager
def receiver(
    redis_url: str, secret: str, **config: float
) -> Iterator[tuple[httpx.Client, redis.client.PubSub]]:
    client = redis.Redis.from_url(redis_url)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(CHANNEL)
    app = create_app(Receiver(PushConfig(redis_url=redis_url, event_ttl=120, **config)))  # type: ignore[arg-type]
    with exported(conn_env("push_daily", "daily", webhook_secret=secret)), serve(app) as base:
        with httpx.Client(base_url=base, timeout=10) as http:
            pubsub.get_message(timeout=0.2)  # subscription confirmed
            yield http, pubsub
    pubsub.close()
    client.close()


def published(pubsub: redis.client.PubSub) -> list[str]:
    out = []
    while (message := pubsub.get_message(timeout=0.5)) is not None:
        out.append(json.loads(message["data"])["job_id"])
    return out


def test_a_service_without_a_webhook_has_no_route(redis_server: RedisServer):  # noqa: F811
    with receiver(redis_server.url, daily_hmac_secret()) as (http, pubsub):
        response = http.post("/webhooks/wasabi_air/c", params={"token": "t" * 32}, json={"jobId": "j"})
        assert response.status_code == 404
        assert published(pubsub) == []


def test_the_replay_window_is_the_schemes_unless_configured(redis_server: RedisServer):  # noqa: F811
    secret = daily_hmac_secret()
    body = daily_envelope("job-late")
    late = daily_headers(secret, body, timestamp=time.time() - 400)
    with receiver(redis_server.url, secret) as (http, pubsub):
        assert http.post("/webhooks/daily/push_daily", content=body, headers=late).status_code == 401
        assert published(pubsub) == []
    with receiver(redis_server.url, secret, replay_window=600) as (http, pubsub):
        assert http.post("/webhooks/daily/push_daily", content=body, headers=late).status_code == 200
        assert published(pubsub) == ["job-late"]


def test_an_event_type_that_is_not_text_wakes_nothing_and_is_no_server_error(redis_server: RedisServer):  # noqa: F811
    secret = daily_hmac_secret()
    body = daily_envelope("job-odd-type", event_type=["batch-processor.error"])  # type: ignore[arg-type]
    with receiver(redis_server.url, secret) as (http, pubsub):
        unsigned = http.post("/webhooks/daily/push_daily", content=body)
        signed = http.post("/webhooks/daily/push_daily", content=body, headers=daily_headers(secret, body))
        assert (unsigned.status_code, signed.status_code) == (200, 200)
        assert published(pubsub) == []
