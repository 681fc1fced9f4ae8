"""Retry decisions, Retry-After parsing, settings and redaction, without a network."""

from __future__ import annotations

import random
import time
from email.utils import formatdate

import httpx
import pytest

from airflow_jobstatus.exceptions import InvalidParameterError
from airflow_jobstatus.http.redaction import redact_body, redact_headers, redact_url, register_secret, scrub
from airflow_jobstatus.http.retry import RetryPolicy, parse_retry_after
from airflow_jobstatus.http.settings import HttpSettings

pytestmark = pytest.mark.unit


def test_retry_after_seconds_and_http_date():
    assert parse_retry_after("2") == 2.0
    now = time.time()
    assert 9 <= parse_retry_after(formatdate(now + 10, usegmt=True), now=now) <= 10
    assert parse_retry_after(formatdate(now - 10, usegmt=True), now=now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_full_jitter_backoff_is_bounded():
    policy = RetryPolicy(backoff_base=0.5, backoff_max=4, rng=random.Random(1))
    for attempt in range(10):
        for _ in range(50):
            assert 0 <= policy.backoff(attempt) <= min(4, 0.5 * 2**attempt)
    assert policy.delay(0, 2.0) >= 2.0


@pytest.mark.parametrize("status", [408, 425, 429, 500, 502, 503, 504])
def test_retryable_statuses(status):
    assert RetryPolicy().should_retry_status(status, idempotent=True)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422])
def test_never_retried_statuses(status):
    assert not RetryPolicy().should_retry_status(status, idempotent=True)


def test_non_idempotent_requests_retry_only_when_not_processed():
    policy = RetryPolicy()
    assert policy.should_retry_status(429, idempotent=False)
    assert not policy.should_retry_status(503, idempotent=False)
    assert policy.should_retry_error(httpx.ConnectError("x"), idempotent=False)
    assert not policy.should_retry_error(httpx.ReadTimeout("x"), idempotent=False)
    assert policy.should_retry_error(httpx.ReadTimeout("x"), idempotent=True)


def test_settings_from_extra_plain_and_prefixed():
    s = HttpSettings.from_extra(
        {"request_timeout": "12", "extra__daily__max_retries": 2, "verify_tls": "false"}, conn_type="daily"
    )
    assert (s.request_timeout, s.max_retries, s.verify_tls) == (12.0, 2, False)
    assert HttpSettings.from_extra({}, conn_type="daily").verify_tls is True


@pytest.mark.parametrize("extra", [{"request_timeout": "abc"}, {"max_retries": -1}, {"verify_tls": "maybe"}])
def test_bad_settings_are_typed_errors(extra):
    with pytest.raises(InvalidParameterError) as info:
        HttpSettings.from_extra(extra, conn_type="daily")
    assert next(iter(extra)) in str(info.value)


def test_redaction_of_urls_headers_and_bodies():
    canary = "CANARY-unit-7f3a9"
    url = f"https://proxy.example/x?apikey={canary}&request_id=r1"
    assert canary not in redact_url(url) and "request_id=r1" in redact_url(url)
    assert canary not in str(
        redact_headers({"x-amz-secret-key": canary, "Authorization": f"Bearer {canary}"})
    )
    assert canary not in str(redact_body({"type": "application", "appId": "a", "appSecret": canary}))
    register_secret(canary)
    assert canary not in scrub(f"oops {canary} oops")


def test_retry_follows_the_error_class_of_the_status():
    # one classification: the client retries exactly what the typed error says is not permanent
    from airflow_jobstatus.exceptions import error_class_for_status

    policy = RetryPolicy()
    for status in range(400, 600):
        kind = error_class_for_status(status)
        assert policy.should_retry_status(status, idempotent=True) is (not kind.permanent), status
        assert policy.should_retry_status(status, idempotent=False) is (
            not kind.permanent and kind.not_processed
        )
