"""The emulator sends each service's webhooks as its docs describe (docs/contracts.md H1-H7):
Daily's /webhooks API with its test POST, signed envelopes and retry types; Symbl's status
posts; DeepAffects' result with up to 5 retries. Real HTTP both ways on loopback."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from jobstatus_emulator.server import EmulatorServer
from tests.helpers.emulator_http import Endpoint

RETRY_BASE = 0.05
DAILY_SECRET = base64.b64encode(b"emulator-webhook-test-secret-32b").decode()


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    with Endpoint() as e:
        yield e


@pytest.fixture
def emu(emulator: EmulatorServer) -> EmulatorServer:
    emulator.admin("PATCH", "config", json={"webhook_retry_base": RETRY_BASE})
    return emulator


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(trust_env=False, timeout=15) as c:
        yield c


def _wait(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.03)


def _deliveries(emu: EmulatorServer, service: str) -> list[dict[str, Any]]:
    return list(emu.admin("GET", "webhooks", params={"service": service})["deliveries"])


def _signed_ok(headers: dict[str, str], body: bytes, secret: str = DAILY_SECRET) -> bool:
    """H3/O-H1: base64 HMAC-SHA256 over "{timestamp}.{body}" with the base64-decoded secret."""
    ts = headers["x-webhook-timestamp"]
    digest = hmac.new(base64.b64decode(secret), f"{ts}.".encode() + body, hashlib.sha256).digest()
    return hmac.compare_digest(base64.b64encode(digest).decode(), headers["x-webhook-signature"])


# -- Daily ----------------------------------------------------------------------------------------
def _daily(emu: EmulatorServer, client: httpx.Client, key: str) -> tuple[str, dict[str, str]]:
    return emu.service_url("daily"), {"Authorization": f"Bearer {key}"}


def _daily_job(client: httpx.Client, base: str, headers: dict[str, str], marker: str) -> str:
    r = client.post(
        f"{base}/batch-processor",
        headers=headers,
        json={
            "preset": "transcript",
            "inParams": {"sourceType": "uri", "uri": f"https://m.example/a.mp4?{marker}"},
            "outParams": {"s3Config": {"s3KeyTemplate": "t"}},
        },
    )
    assert r.status_code == 200, r.text
    return str(r.json()["id"])


def _create_hook(
    client: httpx.Client, base: str, headers: dict[str, str], url: str, retry: str = "exponential"
) -> httpx.Response:
    return client.post(
        f"{base}/webhooks",
        headers=headers,
        json={
            "url": url,
            "hmac": DAILY_SECRET,
            "eventTypes": ["batch-processor.job-finished", "batch-processor.error"],
            "retryType": retry,
        },
    )


def test_daily_webhook_api_and_signed_events(
    emu: EmulatorServer, client: httpx.Client, jobstatus_credential: str, endpoint: Endpoint
) -> None:
    base, headers = _daily(emu, client, jobstatus_credential)
    assert client.get(f"{base}/webhooks", headers=headers).json() == []
    created = _create_hook(client, base, headers, endpoint.url)
    assert created.status_code == 200, created.text
    hook = created.json()
    assert hook["state"] == "ACTIVE" and hook["retryType"] == "exponential" and hook["url"] == endpoint.url
    # H2: the test POST reached the endpoint before the webhook was created; every POST is signed (H3)
    assert len(endpoint.received) == 1 and _signed_ok(*endpoint.received[0])
    assert client.get(f"{base}/webhooks", headers=headers).json() == [hook]
    assert client.get(f"{base}/webhooks/{hook['uuid']}", headers=headers).json() == hook
    # one webhook per domain (O-H8): a second create is refused; an update is the way
    assert _create_hook(client, base, headers, endpoint.url).status_code == 400

    finished = _daily_job(client, base, headers, "emu_duration=0.3")
    failed = _daily_job(client, base, headers, "emu_duration=0.3&emu_outcome=fail")
    _wait(lambda: len(endpoint.received) == 3)
    time.sleep(0.3)  # nothing else (no in-flight statuses) is sent
    assert len(endpoint.received) == 3
    envelopes = {e["payload"]["id"]: e for e in endpoint.bodies()[1:]}
    for received_headers, body in endpoint.received[1:]:
        assert _signed_ok(received_headers, body)
        assert abs(int(received_headers["x-webhook-timestamp"]) - time.time()) < 30
    ok, bad = envelopes[finished], envelopes[failed]
    assert set(ok) == {"version", "type", "id", "payload", "event_ts"}  # H5
    assert ok["type"] == "batch-processor.job-finished" and ok["payload"]["status"] == "finished"
    assert bad["type"] == "batch-processor.error" and bad["payload"]["status"] == "error"
    assert ok["payload"] == client.get(f"{base}/batch-processor/{finished}", headers=headers).json()

    assert client.delete(f"{base}/webhooks/{hook['uuid']}", headers=headers).status_code == 200
    assert client.get(f"{base}/webhooks", headers=headers).json() == []
    _daily_job(client, base, headers, "emu_duration=0.1")
    time.sleep(0.6)
    assert len(endpoint.received) == 3  # deleted: no more events


def test_daily_create_fails_when_the_test_post_is_not_answered_200(
    emu: EmulatorServer, client: httpx.Client, jobstatus_credential: str, endpoint: Endpoint
) -> None:
    base, headers = _daily(emu, client, jobstatus_credential)
    endpoint.script = [500]
    refused = _create_hook(client, base, headers, endpoint.url)
    assert refused.status_code == 400 and refused.json()["error"] == "invalid-request-error"
    assert client.get(f"{base}/webhooks", headers=headers).json() == []
    bad = client.post(f"{base}/webhooks", headers=headers, json={"url": endpoint.url, "hmac": "not base64!"})
    assert bad.status_code == 400 and "hmac" in bad.json()["info"]
    bad = client.post(f"{base}/webhooks", headers=headers, json={"url": endpoint.url, "retryType": "x"})
    assert bad.status_code == 400 and "retryType" in bad.json()["info"]


def test_daily_exponential_retries_a_message_up_to_five_times(
    emu: EmulatorServer, client: httpx.Client, jobstatus_credential: str, endpoint: Endpoint
) -> None:
    base, headers = _daily(emu, client, jobstatus_credential)
    assert _create_hook(client, base, headers, endpoint.url).status_code == 200
    endpoint.script = [500, 503]
    _daily_job(client, base, headers, "emu_duration=0.1")
    _wait(lambda: any(d["kind"] == "event" and d["state"] != "pending" for d in _deliveries(emu, "daily")))
    event = next(d for d in _deliveries(emu, "daily") if d["kind"] == "event")
    assert event["state"] == "delivered" and [a["status"] for a in event["attempts"]] == [500, 503, 200]
    endpoint.script = [500] * 6
    _daily_job(client, base, headers, "emu_duration=0.1")
    _wait(lambda: sum(d["state"] == "dropped" for d in _deliveries(emu, "daily")) == 1, timeout=15)
    dropped = next(d for d in _deliveries(emu, "daily") if d["state"] == "dropped")
    assert [a["status"] for a in dropped["attempts"]] == [500] * 6  # 1 + 5 retries, then dropped


def test_daily_circuit_breaker_fails_the_webhook_after_three_failures(
    emu: EmulatorServer, client: httpx.Client, jobstatus_credential: str, endpoint: Endpoint
) -> None:
    base, headers = _daily(emu, client, jobstatus_credential)
    hook = _create_hook(client, base, headers, endpoint.url, retry="circuit-breaker").json()
    endpoint.script = [500, 500, 500]
    for _ in range(3):
        _daily_job(client, base, headers, "emu_duration=0.1")
    _wait(lambda: client.get(f"{base}/webhooks/{hook['uuid']}", headers=headers).json()["state"] == "FAILED")
    assert len(endpoint.received) == 4  # the test POST + one attempt per message, no retries
    _daily_job(client, base, headers, "emu_duration=0.1")
    time.sleep(0.6)
    assert len(endpoint.received) == 4  # FAILED: nothing is sent
    # updating with the same url re-activates it (after a new test POST)
    again = client.post(f"{base}/webhooks/{hook['uuid']}", headers=headers, json={"url": endpoint.url})
    assert again.status_code == 200 and again.json()["state"] == "ACTIVE" and again.json()["failedCount"] == 0


# -- Symbl and DeepAffects ------------------------------------------------------------------------
def test_symbl_posts_every_status_once_without_retry(
    emu: EmulatorServer, client: httpx.Client, jobstatus_credential: str, endpoint: Endpoint
) -> None:
    base = emu.service_url("symbl")
    r = client.post(
        f"{base}/oauth2/token:generate",
        json={"type": "application", "appId": jobstatus_credential, "appSecret": "s"},
    )
    headers = {"Authorization": f"Bearer {r.json()['accessToken']}"}
    endpoint.script = [500]  # H6: no retry documented, so a failed post is not repeated
    job = client.post(
        f"{base}/v1/process/audio/url",
        headers=headers,
        json={"url": "https://m.example/a.mp3?emu_duration=0.4", "webhookUrl": endpoint.url + "?token=t"},
    ).json()["jobId"]
    _wait(lambda: len(endpoint.received) == 3)
    assert [b["status"] for b in endpoint.bodies()] == ["scheduled", "in_progress", "completed"]
    assert all(b["jobId"] == job for b in endpoint.bodies())
    rows = _deliveries(emu, "symbl")
    assert [len(d["attempts"]) for d in rows] == [1, 1, 1] and rows[0]["state"] == "dropped"
    assert all("token" not in d["url"] for d in rows)  # the admin view leaves the query out


def test_deepaffects_retries_a_non_200_up_to_five_times(
    emu: EmulatorServer, client: httpx.Client, jobstatus_credential: str, endpoint: Endpoint
) -> None:
    base = emu.service_url("deepaffects")
    submit = f"{base}/audio/generic/api/v1/async/asr"
    endpoint.script = [404, 500]
    r = client.post(
        submit,
        params={"apikey": jobstatus_credential, "webhook": endpoint.url},
        json={"url": "https://m.example/a.wav?emu_duration=0.1", "encoding": "wav", "sampleRate": 16000},
    )
    assert r.status_code in (200, 201, 202), r.text
    request_id = r.json()["request_id"]
    _wait(lambda: len(endpoint.received) == 3)
    bodies = endpoint.bodies()
    assert {tuple(b) for b in bodies} == {("request_id", "response")} and bodies[0][
        "request_id"
    ] == request_id
    assert [a["status"] for a in _deliveries(emu, "deepaffects")[0]["attempts"]] == [404, 500, 200]

    endpoint.script = [500] * 6
    client.post(
        submit,
        params={"apikey": jobstatus_credential, "webhook": endpoint.url},
        json={"url": "https://m.example/b.wav?emu_duration=0.1", "encoding": "wav", "sampleRate": 16000},
    )
    _wait(lambda: _deliveries(emu, "deepaffects")[-1]["state"] == "dropped", timeout=15)
    assert len(_deliveries(emu, "deepaffects")[-1]["attempts"]) == 6
    assert len(endpoint.received) == 3 + 6


def test_webhook_hosts_other_than_loopback_only_when_named() -> None:
    from jobstatus_emulator.__main__ import parse_args
    from jobstatus_emulator.app import create_app

    config, _ = parse_args(["--webhook-host", "airflow-apiserver"])
    assert config.webhook_hosts == ["airflow-apiserver"]
    named = create_app(config).webhooks
    assert named.is_loopback("http://airflow-apiserver:8080/jobstatus/webhooks/symbl/c?token=t")
    assert named.is_loopback("http://127.0.0.1:9/hook") and named.is_loopback("http://localhost/x")
    assert not named.is_loopback("http://hooks.example/x") and not named.is_loopback(
        "ftp://airflow-apiserver/x"
    )
    assert not create_app().webhooks.is_loopback("http://airflow-apiserver:8080/x")
