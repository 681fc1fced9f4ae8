"""The generic webhook registration (push/registration.py) driven by hand: what it sends and decides."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from airflow_jobstatus.exceptions import InvalidParameterError, MalformedResponseError
from airflow_jobstatus.push.registration import _plan, ensure_webhook
from airflow_jobstatus.services import DAILY, WASABI_AIR

pytestmark = pytest.mark.unit

DAILY_REG: Any = DAILY.webhook.registration  # type: ignore[union-attr]
URL = "https://af.example/jobstatus/webhooks/daily/c"
EVENTS = ["batch-processor.job-finished", "batch-processor.error"]


class Answer:
    def __init__(self, body: Any) -> None:
        self.body = body

    def json(self) -> Any:
        if isinstance(self.body, Exception):
            raise self.body
        return self.body


def drive(plan: Any, answers: list[Any]) -> tuple[list[Any], Any]:
    calls: list[Any] = []
    try:
        while True:
            calls.append(plan.send(Answer(answers[len(calls) - 1])) if calls else next(plan))
    except StopIteration as stop:
        return calls, stop.value


def ours(**changes: Any) -> dict[str, Any]:
    hook = {"uuid": "u1", "url": URL, "hmac": "s", "retryType": "exponential", "eventTypes": EVENTS}
    return {**hook, "state": "ACTIVE", **changes}


def test_creates_when_the_account_has_none_and_never_returns_the_secret() -> None:
    calls, result = drive(_plan(DAILY_REG, "Daily", URL, "s", False), [{"data": []}, ours()])
    assert [(c.method, c.path) for c in calls] == [("GET", "/webhooks"), ("POST", "/webhooks")]
    assert calls[1].json == {"url": URL, "hmac": "s", "retryType": "exponential", "eventTypes": EVENTS}
    assert result == {"uuid": "u1", "url": URL, "state": "ACTIVE", "action": "created"}


def test_unchanged_updated_and_another_url() -> None:
    calls, result = drive(_plan(DAILY_REG, "Daily", URL, "s", False), [[ours()]])
    assert len(calls) == 1 and result["action"] == "unchanged"
    failed = ours(state="FAILED", eventTypes=["other.event"])
    calls, result = drive(_plan(DAILY_REG, "Daily", URL, "s", False), [[failed], ours()])
    assert (calls[1].method, calls[1].path, result["action"]) == ("POST", "/webhooks/u1", "updated")
    assert calls[1].json["eventTypes"] == ["other.event", *EVENTS]  # other subscriptions stay
    elsewhere = ours(url="https://other.example/hook")
    with pytest.raises(InvalidParameterError, match="one webhook per domain"):
        drive(_plan(DAILY_REG, "Daily", URL, "s", False), [[elsewhere]])
    calls, result = drive(_plan(DAILY_REG, "Daily", URL, "s", True), [[elsewhere], ours()])
    assert calls[1].json["url"] == URL and result["action"] == "updated"
    several = dataclasses.replace(DAILY_REG, one_per_account=False)
    calls, result = drive(_plan(several, "Daily", URL, "s", False), [[elsewhere], ours()])
    assert calls[1].path == "/webhooks" and result["action"] == "created"  # a second one, ours


def test_malformed_answers_and_services_without_a_registration() -> None:
    with pytest.raises(MalformedResponseError, match="not JSON"):
        drive(_plan(DAILY_REG, "Daily", URL, "s", False), [ValueError("x")])
    with pytest.raises(MalformedResponseError, match="a list of webhooks"):
        drive(_plan(DAILY_REG, "Daily", URL, "s", False), [{"data": "x"}])

    class Hook:
        spec = WASABI_AIR

    with pytest.raises(InvalidParameterError, match="Wasabi AiR has no webhook to set up"):
        ensure_webhook(Hook(), "https://af.example")
