"""The webhook URL the submit operators pass: the receiver's route, the token URL-encoded in the
query string and registered as a secret; nothing without a base URL or a token."""

from __future__ import annotations

import pytest

from airflow_jobstatus.exceptions import InvalidParameterError
from airflow_jobstatus.http.redaction import scrub
from airflow_jobstatus.push.submit import receiver_url, webhook_url, with_push_webhook
from tests.helpers.canary import secret


def test_receiver_url_per_service() -> None:
    token = secret("url") + "/+="
    url = receiver_url("https://af.example/jobstatus/", "symbl", "my conn", token)
    assert url.startswith("https://af.example/jobstatus/webhooks/symbl/my%20conn?token=")
    assert token not in url and "%2F%2B%3D" in url  # encoded, so the query string stays one value
    assert scrub(f"calling {url}").count("***") >= 1 and "%2F%2B%3D" not in scrub(url)
    assert receiver_url("https://af.example/j", "daily", "d") == "https://af.example/j/webhooks/daily/d"


def test_receiver_url_refuses_what_cannot_work() -> None:
    with pytest.raises(InvalidParameterError, match="sends no webhooks"):
        receiver_url("https://af.example", "wasabi_air", "w")
    with pytest.raises(InvalidParameterError, match="no webhook_token"):
        receiver_url("https://af.example", "deepaffects", "d", None)


def test_webhook_url_needs_a_base_url_and_a_token(monkeypatch: pytest.MonkeyPatch) -> None:
    token = secret("wh")
    monkeypatch.delenv("AIRFLOW__JOBSTATUS__WEBHOOK_BASE_URL", raising=False)
    assert webhook_url("symbl", "s", {"webhook_token": token}) is None
    monkeypatch.setenv("AIRFLOW__JOBSTATUS__WEBHOOK_BASE_URL", "https://af.example/jobstatus")
    assert webhook_url("symbl", "s", {}) is None
    assert webhook_url("daily", "d", {"webhook_secret": "c2VjcmV0"}) is None  # Daily: per domain
    assert webhook_url("symbl", "s", {"webhook_token": token}) == receiver_url(
        "https://af.example/jobstatus", "symbl", "s", token
    )
    # an explicit value wins, and the connection is not even read
    assert with_push_webhook({"webhook": "https://mine"}, "webhook", object()) == {"webhook": "https://mine"}
