"""The webhook receiver over real HTTP (uvicorn) with a real Redis: what it accepts and publishes,
and that everything unverifiable is refused with a 4xx, the same terse body, and publishes nothing."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest
import redis

from airflow_jobstatus.push.config import PushConfig
from airflow_jobstatus.push.models import CHANNEL, KEY_PREFIX, event_key
from airflow_jobstatus.push.receiver import Receiver, create_app
from tests.helpers.connections import exported
from tests.helpers.push import (
    conn_env,
    daily_envelope,
    daily_headers,
    daily_hmac_secret,
    serve,
    webhook_token,
)
from tests.helpers.redis_server import RedisServer, redis_server  # noqa: F401 - fixture

pytestmark = pytest.mark.integration

REJECTED = {"detail": "rejected"}


class Setup:
    def __init__(self, base: str, redis_url: str, secrets: dict[str, str]) -> None:
        self.base = base
        self.redis = redis.Redis.from_url(redis_url)
        self.pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        self.pubsub.subscribe(CHANNEL)
        self.secrets = secrets
        self.http = httpx.Client(base_url=base, timeout=10)

    def published(self, wait: float = 0.5) -> list[dict]:
        """Everything published on the channel until ``wait`` seconds pass without a message."""
        out = []
        while (message := self.pubsub.get_message(timeout=wait)) is not None:
            out.append(json.loads(message["data"]))
        return out

    def stored(self) -> list[bytes]:
        return list(self.redis.scan_iter(f"{KEY_PREFIX}*"))


@pytest.fixture
def setup(redis_server: RedisServer) -> Iterator[Setup]:  # noqa: F811 - fixture
    secrets = {
        "daily": daily_hmac_secret(),
        "symbl": webhook_token("symbl"),
        "deepaffects": webhook_token("deepaffects"),
    }
    env = {
        **conn_env("push_daily", "daily", webhook_secret=secrets["daily"]),
        **conn_env("push_symbl", "symbl", webhook_token=secrets["symbl"]),
        **conn_env("push_deepaffects", "deepaffects", webhook_token=secrets["deepaffects"]),
        **conn_env("push_symbl_untokened", "symbl"),
    }
    config = PushConfig(redis_url=redis_server.url, event_ttl=120)
    with exported(env), serve(create_app(Receiver(config))) as base:
        s = Setup(base, redis_server.url, secrets)
        s.published(wait=0.2)  # subscription confirmed
        yield s
        s.pubsub.close()
        s.http.close()


def test_valid_daily_webhook_is_published_and_stored_with_ttl(setup: Setup):
    body = daily_envelope("job-daily-1")
    response = setup.http.post(
        "/webhooks/daily/push_daily", content=body, headers=daily_headers(setup.secrets["daily"], body)
    )
    assert response.status_code == 200
    [event] = setup.published()
    assert (
        event["service"] == "daily" and event["conn_id"] == "push_daily" and event["job_id"] == "job-daily-1"
    )
    assert abs(event["received_at"] - time.time()) < 30
    assert set(event) == {"service", "conn_id", "job_id", "received_at"}  # no body content
    key = event_key("daily", "push_daily", "job-daily-1")
    assert 0 < setup.redis.ttl(key) <= 120


def test_daily_error_event_is_published(setup: Setup):
    body = daily_envelope("job-daily-err", event_type="batch-processor.error")
    assert (
        setup.http.post(
            "/webhooks/daily/push_daily", content=body, headers=daily_headers(setup.secrets["daily"], body)
        ).status_code
        == 200
    )
    assert [e["job_id"] for e in setup.published()] == ["job-daily-err"]


def test_duplicate_webhook_is_accepted_and_published_once(setup: Setup):
    body = daily_envelope("job-dup")
    headers = daily_headers(setup.secrets["daily"], body)
    assert setup.http.post("/webhooks/daily/push_daily", content=body, headers=headers).status_code == 200
    assert setup.http.post("/webhooks/daily/push_daily", content=body, headers=headers).status_code == 200
    token = setup.secrets["deepaffects"]
    da = json.dumps({"request_id": "req-dup", "response": {"segments": []}}).encode()
    for _ in range(3):  # DeepAffects retries when it did not see our 200
        assert (
            setup.http.post(
                "/webhooks/deepaffects/push_deepaffects", params={"token": token}, content=da
            ).status_code
            == 200
        )
    assert sorted(e["job_id"] for e in setup.published()) == ["job-dup", "req-dup"]


def test_daily_verification_post_gets_a_quick_200_and_publishes_nothing(setup: Setup):
    started = time.monotonic()
    response = setup.http.post("/webhooks/daily/push_daily", json={"test": "test"})
    assert response.status_code == 200
    assert time.monotonic() - started < 2
    assert setup.published() == [] and setup.stored() == []


def _assert_rejected(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.json() == REJECTED


@pytest.mark.parametrize(
    "case",
    [
        "forged",
        "wrong_secret_format",
        "replayed",
        "from_future",
        "unsigned",
        "unknown_conn",
        "wrong_type_conn",
        "tampered",
    ],
)
def test_unverifiable_daily_webhooks_are_rejected_and_publish_nothing(setup: Setup, case: str):
    body = daily_envelope("job-bad")
    secret = setup.secrets["daily"]
    conn = "push_daily"
    headers = daily_headers(secret, body)
    if case == "forged":
        headers = daily_headers("Zm9yZ2VkIHNlY3JldA==", body)
    elif case == "wrong_secret_format":
        headers["X-Webhook-Signature"] = "not base64 !!"
    elif case == "replayed":
        headers = daily_headers(secret, body, timestamp=time.time() - 3600)
    elif case == "from_future":
        headers = daily_headers(secret, body, timestamp=time.time() + 3600)
    elif case == "unsigned":
        headers = {"Content-Type": "application/json"}
    elif case == "unknown_conn":
        conn = "no_such_connection"
    elif case == "wrong_type_conn":
        conn = "push_symbl"
    elif case == "tampered":
        body = body.replace(b"job-bad", b"job-bdd")
    _assert_rejected(setup.http.post(f"/webhooks/daily/{conn}", content=body, headers=headers), 401)
    assert setup.published() == [] and setup.stored() == []


def test_signed_but_malformed_daily_bodies_are_400_and_publish_nothing(setup: Setup):
    secret = setup.secrets["daily"]
    for body in (
        b"{not json",
        json.dumps(
            {"type": "batch-processor.job-finished", "id": "e", "version": "1", "event_ts": 1}
        ).encode(),
        daily_envelope("job-x", payload={"id": 12345}),
        daily_envelope("job-x", event_ts="yesterday"),
        daily_envelope("", payload={"id": ""}),
    ):
        _assert_rejected(
            setup.http.post("/webhooks/daily/push_daily", content=body, headers=daily_headers(secret, body)),
            400,
        )
    assert setup.published() == [] and setup.stored() == []


def test_oversized_bodies_are_413_without_being_read(setup: Setup):
    big = b'{"jobId": "j", "status": "completed", "pad": "' + b"x" * (64 * 1024) + b'"}'
    _assert_rejected(
        setup.http.post("/webhooks/symbl/push_symbl", params={"token": setup.secrets["symbl"]}, content=big),
        413,
    )

    def chunks() -> Iterator[bytes]:  # no Content-Length: the cap applies while streaming
        for _ in range(64):
            yield b"x" * 8192

    _assert_rejected(
        setup.http.post(
            "/webhooks/daily/push_daily",
            content=chunks(),
            headers={"X-Webhook-Timestamp": "1", "X-Webhook-Signature": "x"},
        ),
        413,
    )
    assert setup.published() == [] and setup.stored() == []


def test_symbl_token_webhooks(setup: Setup):
    def status_webhook(status: str) -> int:
        body = {"jobId": "s-1", "status": status}
        params = {"token": setup.secrets["symbl"]}
        return setup.http.post("/webhooks/symbl/push_symbl", params=params, json=body).status_code

    assert status_webhook("in_progress") == 200
    assert setup.published() == []  # an in-flight status cannot end a wait: nothing to wake
    assert status_webhook("completed") == 200
    assert [e["job_id"] for e in setup.published()] == ["s-1"]


@pytest.mark.parametrize("service", ["symbl", "deepaffects"])
def test_wrong_missing_or_unknown_tokens_look_the_same(setup: Setup, service: str):
    body = (
        {"jobId": "t-1", "status": "completed"}
        if service == "symbl"
        else {"request_id": "t-1", "response": {}}
    )
    good = setup.secrets[service]
    responses = [
        setup.http.post(
            f"/webhooks/{service}/push_{service}",
            params={"token": good[:-1] + ("1" if good.endswith("0") else "0")},
            json=body,
        ),
        setup.http.post(f"/webhooks/{service}/push_{service}", json=body),
        setup.http.post(f"/webhooks/{service}/no_such_connection", params={"token": good}, json=body),
        setup.http.post(f"/webhooks/{service}/push_daily", params={"token": good}, json=body),
        setup.http.post(f"/webhooks/{service}/bad%20id!", params={"token": good}, json=body),
    ]
    if service == "symbl":  # a connection without a webhook_token accepts nothing, not even an empty token
        responses.append(
            setup.http.post("/webhooks/symbl/push_symbl_untokened", params={"token": ""}, json=body)
        )
    assert {(r.status_code, r.content) for r in responses} == {
        (401, json.dumps(REJECTED, separators=(",", ":")).encode())
    }
    # a malformed body with the right token is 400: only an authenticated caller learns that
    _assert_rejected(
        setup.http.post(f"/webhooks/{service}/push_{service}", params={"token": good}, content=b"[1,2"), 400
    )
    _assert_rejected(
        setup.http.post(f"/webhooks/{service}/push_{service}", params={"token": good}, json={"status": "x"}),
        400,
    )
    assert setup.published() == [] and setup.stored() == []


def test_deepaffects_result_is_published_by_request_id(setup: Setup):
    body = {"request_id": "req-42", "response": {"segments": [{"speaker_id": "1", "start": 0, "end": 1}]}}
    r = setup.http.post(
        "/webhooks/deepaffects/push_deepaffects", params={"token": setup.secrets["deepaffects"]}, json=body
    )
    assert r.status_code == 200
    assert [e["job_id"] for e in setup.published()] == ["req-42"]


def test_redis_down_answers_503_so_the_service_retries(setup: Setup, redis_server: RedisServer):  # noqa: F811
    redis_server.stop()
    body = daily_envelope("job-later")
    r = setup.http.post(
        "/webhooks/daily/push_daily", content=body, headers=daily_headers(setup.secrets["daily"], body)
    )
    assert r.status_code == 503


def test_push_off_every_route_is_404(redis_server: RedisServer):  # noqa: F811
    with serve(create_app(Receiver(PushConfig(redis_url=None)))) as base:
        r = httpx.post(
            f"{base}/webhooks/symbl/any", params={"token": "x"}, json={"jobId": "1", "status": "completed"}
        )
        assert r.status_code == 404 and r.json() == REJECTED


def test_each_kind_of_webhook_for_a_job_is_published_once(setup: Setup):
    """An undocumented Symbl status wakes the wait, and the later `completed` still does; a
    re-delivery of either does not."""
    token = setup.secrets["symbl"]

    def post(status: str) -> int:
        body = {"jobId": "s-2", "status": status}
        return setup.http.post("/webhooks/symbl/push_symbl", params={"token": token}, json=body).status_code

    assert [post(s) for s in ("PROCESSING", "processing", "COMPLETED", "completed")] == [200] * 4
    events = setup.published()
    assert [e["job_id"] for e in events] == ["s-2", "s-2"]
    assert events[0]["received_at"] < events[1]["received_at"]
    stored = setup.redis.get(event_key("symbl", "push_symbl", "s-2"))
    assert stored is not None and json.loads(stored) == events[1]  # the key keeps the latest
