"""Push completion's pure parts: Daily's signature, URL tokens, typed bodies, configuration,
the receiver's credential cache, the connection form fields and the plugin's entry point."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import threading
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from airflow_jobstatus.exceptions import InvalidParameterError
from airflow_jobstatus.get_provider_info import get_provider_info
from airflow_jobstatus.push.config import DEFAULT_PUSH_POLL_INTERVAL, PushConfig, load_config
from airflow_jobstatus.push.credentials import CredentialCache, WebhookCredential
from airflow_jobstatus.push.models import PushEvent, event_key
from airflow_jobstatus.push.verify import (
    daily_signature,
    new_webhook_token,
    timestamp_seconds,
    token_matches,
    verify_daily,
)
from airflow_jobstatus.services.daily import DailyEnvelope
from airflow_jobstatus.services.symbl import SymblStatus

pytestmark = pytest.mark.unit

SECRET = base64.b64encode(b"a shared webhook secret").decode()
BODY = b'{"type":"batch-processor.job-finished"}'


def test_daily_signature_is_the_documented_formula():
    expected = base64.b64encode(
        hmac.new(base64.b64decode(SECRET), b"1700000000." + BODY, hashlib.sha256).digest()
    ).decode()
    assert daily_signature(SECRET, "1700000000", BODY) == expected


def test_verify_daily_accepts_fresh_and_refuses_the_rest():
    now = 1_700_000_000.0
    ts = str(int(now))
    good = daily_signature(SECRET, ts, BODY)
    assert verify_daily(SECRET, ts, good, BODY, now=now + 10, window=300)
    assert verify_daily(
        SECRET,
        str(int(now * 1000)),
        daily_signature(SECRET, str(int(now * 1000)), BODY),
        BODY,
        now=now,
        window=300,
    )
    assert not verify_daily(SECRET, ts, good, BODY + b" ", now=now, window=300)
    assert not verify_daily(SECRET, ts, good, BODY, now=now + 301, window=300)
    assert not verify_daily(SECRET, ts, good, BODY, now=now - 301, window=300)
    assert not verify_daily(None, ts, good, BODY, now=now, window=300)
    assert not verify_daily(SECRET, None, good, BODY, now=now, window=300)
    assert not verify_daily(SECRET, ts, None, BODY, now=now, window=300)
    assert not verify_daily("not base64!", ts, good, BODY, now=now, window=300)
    assert not verify_daily(SECRET, "soon", good, BODY, now=now, window=300)
    assert not verify_daily(SECRET, ts, good + "x", BODY, now=now, window=300)
    assert not verify_daily(SECRET, ts, "é" * 10, BODY, now=now, window=300)


def test_timestamps():
    assert timestamp_seconds("1700000000") == 1_700_000_000
    assert timestamp_seconds("1700000000123") == pytest.approx(1_700_000_000.123)
    for bad in ("", "abc", "-5", "1e9", "1" * 30, "1.2.3"):
        assert timestamp_seconds(bad) is None


def test_tokens():
    token = new_webhook_token()
    assert len(token) >= 40 and token != new_webhook_token()
    assert token_matches(token, token)
    assert not token_matches(token, token[:-1])
    assert not token_matches(token, None)
    assert not token_matches(None, token)
    assert not token_matches("", "")


def test_models_are_strict_about_the_fields_they_use():
    envelope = DailyEnvelope.model_validate_json(
        b'{"version":"1.0.0","type":"batch-processor.error","id":"e","payload":{"id":"j","x":1},"event_ts":1.5,"new":1}'
    )
    assert envelope.payload.id == "j"
    for bad in (
        b'{"version":"1.0.0","type":"meeting.started","id":"e","payload":{"id":"j"},"event_ts":1}',
        b'{"version":"1.0.0","type":"batch-processor.error","id":"e","payload":{"id":7},"event_ts":1}',
        b'{"version":"1.0.0","type":"batch-processor.error","id":"e","payload":{"id":"j"},"event_ts":"1"}',
        b'{"version":"1.0.0","type":"batch-processor.error","id":"e","payload":{"id":"j"}}',
    ):
        with pytest.raises(ValueError):
            DailyEnvelope.model_validate_json(bad)
    with pytest.raises(ValueError):
        SymblStatus.model_validate_json(b'{"jobId":"' + b"j" * 300 + b'","status":"completed"}')


def test_push_event_round_trip_and_junk():
    event = PushEvent("symbl", "c:1", "j", 12.5)
    assert PushEvent.from_json(event.to_json()) == event
    for junk in (b"", b"[]", b'{"service":"s"}', b'{"service":1,"conn_id":"c","job_id":"j","received_at":1}'):
        assert PushEvent.from_json(junk) is None
    # a conn_id with the separator in it cannot collide with another connection's key
    assert event_key("symbl", "a:b", "c") != event_key("symbl", "a", "b:c")


def test_config_defaults_off(monkeypatch: pytest.MonkeyPatch):
    for name in ("REDIS_URL", "WEBHOOK_BASE_URL", "EVENT_TTL", "PUSH_POLL_INTERVAL"):
        monkeypatch.delenv(f"AIRFLOW__JOBSTATUS__{name}", raising=False)
    config = load_config()
    assert not config.enabled
    assert config.poll_interval("daily") == DEFAULT_PUSH_POLL_INTERVAL


def test_config_from_environment(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("AIRFLOW__JOBSTATUS__REDIS_URL", "redis://:pw-in-url@127.0.0.1:6379/0")
    monkeypatch.setenv("AIRFLOW__JOBSTATUS__WEBHOOK_BASE_URL", "https://airflow.example.com/jobstatus/")
    monkeypatch.setenv("AIRFLOW__JOBSTATUS__EVENT_TTL", "3600")
    monkeypatch.setenv("AIRFLOW__JOBSTATUS__PUSH_POLL_INTERVAL", "300")
    monkeypatch.setenv("AIRFLOW__JOBSTATUS__PUSH_POLL_INTERVAL_DEEPAFFECTS", "3600")
    config = load_config()
    assert config.enabled and config.event_ttl == 3600
    assert config.webhook_base_url == "https://airflow.example.com/jobstatus"
    assert config.poll_interval("daily") == 300 and config.poll_interval("deepaffects") == 3600
    assert "pw-in-url" not in repr(config)


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("REDIS_URL", "localhost:6379"),
        ("EVENT_TTL", "0"),
        ("PUSH_POLL_INTERVAL", "soon"),
        ("WEBHOOK_BASE_URL", "ftp://x"),
    ],
)
def test_bad_config_names_the_option(monkeypatch: pytest.MonkeyPatch, option: str, value: str):
    monkeypatch.setenv("AIRFLOW__JOBSTATUS__REDIS_URL", "redis://127.0.0.1:6379/0")
    monkeypatch.setenv(f"AIRFLOW__JOBSTATUS__{option}", value)
    with pytest.raises(InvalidParameterError, match=option.lower()):
        load_config()


async def test_credential_cache_shares_reads_and_keeps_misses_briefly():
    calls: list[tuple[str, str]] = []
    gate = threading.Event()

    def lookup(service: str, conn_id: str) -> WebhookCredential | None:
        calls.append((service, conn_id))
        gate.wait(5)
        return None if conn_id == "missing" else WebhookCredential("tok")

    cache = CredentialCache(lookup, ttl=0.3)
    pending = [asyncio.ensure_future(cache.get("symbl", "c")) for _ in range(20)]
    await asyncio.sleep(0.05)
    gate.set()
    results = await asyncio.gather(*pending)
    assert {r.secret for r in results if r} == {"tok"} and calls == [("symbl", "c")]
    assert await cache.get("symbl", "missing") is None
    assert await cache.get("symbl", "missing") is None
    assert calls.count(("symbl", "missing")) == 1
    await asyncio.sleep(0.35)
    await cache.get("symbl", "c")
    assert calls.count(("symbl", "c")) == 2
    assert "tok" not in repr(results[0])


def test_connection_forms_have_password_webhook_fields():
    forms = {c["connection-type"]: c["conn-fields"] for c in get_provider_info()["connection-types"]}
    assert forms["daily"]["webhook_secret"]["schema"]["format"] == "password"
    assert forms["symbl"]["webhook_token"]["schema"]["format"] == "password"
    assert forms["deepaffects"]["webhook_token"]["schema"]["format"] == "password"
    assert not {"webhook_secret", "webhook_token"} & set(forms["wasabi_air"])  # Wasabi documents no webhook


def test_plugin_entry_point_mounts_the_receiver_at_jobstatus():
    tomllib = pytest.importorskip("tomllib")
    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    value = pyproject["project"]["entry-points"]["airflow.plugins"]["jobstatus_push"]
    plugin = EntryPoint(name="jobstatus_push", value=value, group="airflow.plugins").load()
    from airflow.plugins_manager import AirflowPlugin

    assert issubclass(plugin, AirflowPlugin)
    [app] = plugin.fastapi_apps
    assert app["url_prefix"] == "/jobstatus"
    from airflow.api_fastapi.app import RESERVED_URL_PREFIXES

    assert not any(app["url_prefix"].startswith(p) for p in RESERVED_URL_PREFIXES)
    assert {r.path for r in app["app"].routes} >= {
        "/webhooks/daily/{conn_id}",
        "/webhooks/symbl/{conn_id}",
        "/webhooks/deepaffects/{conn_id}",
    }
    assert PushConfig().enabled is False


async def test_airflow_access_log_never_shows_the_token():
    """The api-server's access log prints the path in clear; the token travels in the query string,
    whose ``token`` value Airflow's access-log middleware masks."""
    import httpx
    import structlog
    from airflow.api_fastapi.common.http_access_log import HttpAccessLogMiddleware

    from airflow_jobstatus.push.receiver import Receiver, create_app
    from tests.helpers.push import webhook_token

    token = webhook_token("access-log")
    cache = CredentialCache(lambda service, conn_id: WebhookCredential(token))
    app = HttpAccessLogMiddleware(create_app(Receiver(PushConfig(redis_url="redis://127.0.0.1:1/0"), cache)))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        with structlog.testing.capture_logs() as logs:
            wrong = await client.post("/webhooks/symbl/c1", params={"token": token + "x"}, json={})
            right = await client.post("/webhooks/symbl/c1", params={"token": token}, content=b"{")
    assert (wrong.status_code, right.status_code) == (401, 400)
    access = [entry for entry in logs if entry.get("event") == "request finished"]
    assert len(access) == 2 and all(entry["path"] == "/webhooks/symbl/c1" for entry in access)
    assert all("token=" in entry["query"] for entry in access)
    assert token not in repr(logs)


async def test_a_broken_jobstatus_section_turns_the_receiver_off(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    import httpx

    from airflow_jobstatus.push.receiver import Receiver, create_app

    monkeypatch.setenv("AIRFLOW__JOBSTATUS__REDIS_URL", "localhost:6379")
    app = create_app(Receiver())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        responses = [
            await client.post("/webhooks/deepaffects/c", params={"token": "t"}, json={}) for _ in range(3)
        ]
    assert {(r.status_code, r.text) for r in responses} == {(404, '{"detail":"rejected"}')}
    assert [r.getMessage() for r in caplog.records if "webhooks are off" in r.getMessage()] == [
        "jobstatus webhooks are off: [jobstatus] redis_url must be a redis://, rediss:// or unix:// URL. "
        "For example redis://127.0.0.1:6379/0; leave it unset to keep push off and limits per process."
    ]


def test_hooks_register_webhook_secrets_with_the_masker(monkeypatch: pytest.MonkeyPatch):
    import json

    from airflow_jobstatus.hooks.symbl import SymblHook
    from airflow_jobstatus.http.redaction import scrub
    from tests.helpers.push import webhook_token

    token = webhook_token("hook-masker")
    conn = {"conn_type": "symbl", "login": "app", "password": "app-secret", "extra": {"webhook_token": token}}
    monkeypatch.setenv("AIRFLOW_CONN_PUSH_MASKED", json.dumps(conn))
    SymblHook(symbl_conn_id="push_masked").get_client()
    assert scrub(f"url ?token={token}") == "url ?token=***"


def test_misconfigured_webhook_credentials_are_refused_and_named(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    import json

    from airflow_jobstatus.push.credentials import read_credential

    monkeypatch.setenv(
        "AIRFLOW_CONN_PUSH_BAD_DAILY",
        json.dumps({"conn_type": "daily", "password": "k", "extra": {"webhook_secret": "not base64!"}}),
    )
    monkeypatch.setenv(
        "AIRFLOW_CONN_PUSH_SHORT_TOKEN",
        json.dumps(
            {"conn_type": "symbl", "login": "a", "password": "b", "extra": {"webhook_token": "abc12345"}}
        ),
    )
    monkeypatch.setenv(
        "AIRFLOW_CONN_PUSH_GOOD_DAILY",
        json.dumps({"conn_type": "daily", "password": "k", "extra": {"webhook_secret": SECRET}}),
    )
    assert read_credential("daily", "push_bad_daily") == WebhookCredential(None)
    assert read_credential("symbl", "push_short_token") == WebhookCredential(None)
    assert read_credential("daily", "push_good_daily") == WebhookCredential(SECRET)
    assert read_credential("symbl", "push_good_daily") is None  # another service's connection
    assert read_credential("daily", "push_no_such_connection") is None
    messages = [r.getMessage() for r in caplog.records if "are refused" in r.getMessage()]
    assert len(messages) == 2
    assert "'push_bad_daily'" in messages[0] and "webhook_secret is not base64" in messages[0]
    assert "'push_short_token'" in messages[1] and "shorter than 16" in messages[1]
    assert "abc12345" not in " ".join(messages)
