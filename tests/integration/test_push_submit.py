"""The submit side of push completion, against the emulator, the real receiver (uvicorn) and Redis.

* `DailyHook.ensure_webhook` creates the domain's webhook through Daily's /webhooks API (the
  emulator's test POST must reach the receiver and get a 200), is idempotent, fixes a webhook that
  drifted, and the signed events of the emulator are then verified and published by the receiver.
* Symbl's and DeepAffects' submit operators (in ``dag.test()``) pass the receiver's URL with the
  connection's token when ``[jobstatus] webhook_base_url`` is set; an explicit webhook wins; the
  token never shows in the task's output.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import redis

from airflow_jobstatus.exceptions import InvalidParameterError
from airflow_jobstatus.hooks.daily import DailyHook
from airflow_jobstatus.push import setup as push_setup
from airflow_jobstatus.push.config import PushConfig
from airflow_jobstatus.push.models import KEY_PREFIX, event_key
from airflow_jobstatus.push.receiver import Receiver, create_app
from airflow_jobstatus.push.submit import receiver_url
from tests.helpers.canary import CANARY
from tests.helpers.emulator_http import Endpoint
from tests.helpers.push import daily_hmac_secret, serve, webhook_token
from tests.helpers.redis_server import RedisServer, redis_server  # noqa: F401 - fixture
from tests.integration.test_submit_operators import output, run_dag, state, write_dag  # noqa: F401

pytestmark = pytest.mark.integration


class Push:
    def __init__(self, base: str, redis_url: str) -> None:
        self.base = base
        self.redis = redis.Redis.from_url(redis_url)

    def wait_for(self, key: str, timeout: float = 15.0) -> bytes:
        deadline = time.monotonic() + timeout
        while (value := self.redis.get(key)) is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"no event stored under {key}")
            time.sleep(0.05)
        return bytes(value)

    def keys(self, service: str, conn_id: str) -> list[bytes]:
        return list(self.redis.scan_iter(f"{KEY_PREFIX}{service}:{len(conn_id)}:{conn_id}:*"))


@pytest.fixture
def push(redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[Push]:  # noqa: F811
    config = PushConfig(redis_url=redis_server.url, event_ttl=120)
    with serve(create_app(Receiver(config))) as base:
        monkeypatch.setenv("AIRFLOW__JOBSTATUS__WEBHOOK_BASE_URL", base)
        p = Push(base, redis_server.url)
        yield p
        p.redis.close()


def test_daily_ensure_webhook_creates_checks_and_fixes_the_domain_webhook(
    push: Push, make_connection: Callable[..., tuple[str, str]], jobstatus_emulator: Any
) -> None:
    secret = daily_hmac_secret()
    conn_id, api_key = make_connection("daily", webhook_secret=secret)
    hook = DailyHook(conn_id)
    created = hook.ensure_webhook()
    url = receiver_url(push.base, "daily", conn_id)
    assert created["action"] == "created" and created["url"] == url and created["state"] == "ACTIVE"
    assert CANARY not in repr(created)
    assert hook.ensure_webhook()["action"] == "unchanged"

    # drifted (another retry type, one event type): fixed in place, same webhook
    daily = httpx.Client(
        base_url=jobstatus_emulator.service_url("daily"),
        headers={"Authorization": f"Bearer {api_key}"},
        trust_env=False,
        timeout=15,
    )
    drift = daily.post(
        f"/webhooks/{created['uuid']}",
        json={"retryType": "circuit-breaker", "eventTypes": ["batch-processor.error"]},
    )
    assert drift.status_code == 200, drift.text
    fixed = hook.ensure_webhook()
    assert fixed["action"] == "updated" and fixed["uuid"] == created["uuid"]
    (listed,) = daily.get("/webhooks").json()
    assert listed["retryType"] == "exponential"
    assert set(listed["eventTypes"]) == {"batch-processor.job-finished", "batch-processor.error"}

    # the emulator's signed event passes the receiver's checks and is published
    job_id = hook.submit_job("transcript", uri="https://media.example/a.mp4?emu_duration=0.2")
    event = json.loads(push.wait_for(event_key("daily", conn_id, job_id)))
    assert event["job_id"] == job_id and event["service"] == "daily"

    # a webhook with another URL is not taken over without replace
    with Endpoint() as other:
        assert daily.post(f"/webhooks/{created['uuid']}", json={"url": other.url}).status_code == 200
    with pytest.raises(InvalidParameterError, match="another URL"):
        hook.ensure_webhook()
    assert push_setup.main(["daily", "--conn-id", conn_id, "--replace"]) == 0
    assert daily.get("/webhooks").json()[0]["url"] == url
    daily.close()


def test_daily_ensure_webhook_says_what_is_missing(
    make_connection: Callable[..., tuple[str, str]], monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.delenv("AIRFLOW__JOBSTATUS__WEBHOOK_BASE_URL", raising=False)
    with_secret, _ = make_connection("daily", webhook_secret=daily_hmac_secret())
    with pytest.raises(InvalidParameterError, match="webhook_base_url"):
        DailyHook(with_secret).ensure_webhook()
    without, _ = make_connection("daily")
    with pytest.raises(InvalidParameterError, match="has no webhook_secret"):
        DailyHook(without).ensure_webhook("http://127.0.0.1:9/jobstatus")
    assert push_setup.main(["daily", "--conn-id", without, "--base-url", "http://127.0.0.1:9/x"]) == 2
    assert "webhook_secret" in capsys.readouterr().err


def test_symbl_and_deepaffects_operators_pass_the_receiver_webhook(
    push: Push,
    write_dag: Any,  # noqa: F811
    make_connection: Callable[..., tuple[str, str]],
    jobstatus_emulator: Any,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    tokens = {name: webhook_token(f"submit-{name}") for name in ("symbl", "deepaffects", "explicit")}
    symbl, symbl_app = make_connection("symbl", webhook_token=tokens["symbl"])
    deepaffects, da_key = make_connection("deepaffects", webhook_token=tokens["deepaffects"])
    explicit, explicit_key = make_connection("deepaffects", webhook_token=tokens["explicit"])
    plain, plain_app = make_connection("symbl")  # no token: nothing is passed
    mine = f"http://127.0.0.1:9/mine-{uuid.uuid4().hex[:6]}"
    wait = {"deferrable": True, "poll_interval": 1}
    cases = [
        ("symbl", "symbl", "symbl", None, {"audio_url": "https://media.example/a.mp3?emu_duration=0.5", **wait}),
        ("da", "deepaffects", "deepaffects", None, {"api": "asr", "url": "https://media.example/a.wav", **wait}),
        ("da_explicit", "deepaffects", "explicit", None, {"api": "asr", "url": "https://m.example/b.wav", "webhook": mine, "wait_for_completion": False}),
        ("symbl_plain", "symbl", "plain", None, {"audio_url": "https://media.example/c.mp3", "wait_for_completion": False}),
    ]  # fmt: skip
    conns = {"symbl": symbl, "deepaffects": deepaffects, "explicit": explicit, "plain": plain}
    dag_id = f"push_submit_{uuid.uuid4().hex[:6]}"
    dag = write_dag(dag_id, conns=repr(conns), cases=repr(cases), params=repr({}))
    _, tis = run_dag(dag)
    assert {task: state(ti) for task, ti in tis.items()} == dict.fromkeys(tis, "success")

    def job(service: str, credential: str) -> dict[str, Any]:
        (found,) = jobstatus_emulator.admin(
            "GET", "jobs", params={"service": service, "credential": credential}
        )["jobs"]
        return dict(found)

    assert job("symbl", symbl_app)["webhook"] and job("deepaffects", da_key)["webhook"]
    assert not job("symbl", plain_app)["webhook"]
    # the receiver verified the services' webhooks (token in the URL) and published them
    assert push.keys("symbl", symbl) and push.keys("deepaffects", deepaffects)
    assert not push.keys("deepaffects", explicit)
    sent = jobstatus_emulator.admin("GET", "webhooks", params={"service": "deepaffects"})["deliveries"]
    # the user's webhook was sent as given (it wins over the receiver's)
    assert job("deepaffects", explicit_key)["request"]["query"]["webhook"] == mine
    routes = {d["url"] for d in sent}
    assert f"{push.base}/webhooks/deepaffects/{deepaffects}" in routes
    seen = output(capfd, caplog)
    for token in tokens.values():
        assert token not in seen
