"""DeepAffects' published contract as the hook, client and waits follow it (docs/contracts.md A2, A7, A8).

Against the emulator in its strict default limits where the rule is the emulator's to enforce,
and against a scripted server for the documented error types the emulator never produces by itself.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from typing import Any

import pytest

from airflow_jobstatus.exceptions import (
    BadRequestError,
    InvalidParameterError,
    RateLimitedError,
    RequestBudgetExhaustedError,
    ServiceError,
)
from airflow_jobstatus.get_provider_info import get_provider_info
from airflow_jobstatus.hooks.deepaffects import DeepAffectsHook
from airflow_jobstatus.http.client import close_async_clients
from airflow_jobstatus.sensors.daily import DailyJobSensor
from airflow_jobstatus.sensors.deepaffects import DeepAffectsJobSensor
from airflow_jobstatus.triggers.events import parse_event
from airflow_jobstatus.triggers.hub import is_permanent
from airflow_jobstatus.triggers.job import JobStatusTrigger
from tests.helpers.canary import secret
from tests.helpers.scripted_server import Reply, ScriptedServer

pytestmark = pytest.mark.integration

WEBHOOK = "https://hooks.example/deepaffects"
MEDIA = "https://media.example/call.wav"


def test_no_webhook_fails_before_anything_is_sent(make_connection, jobstatus_emulator) -> None:
    conn_id, key = make_connection("deepaffects")
    hook = DeepAffectsHook(deepaffects_conn_id=conn_id)
    for webhook in (None, "", "hooks.example/no-scheme"):
        with pytest.raises(InvalidParameterError, match="webhook is required") as info:
            hook.submit_job("diarize", url=MEDIA, webhook=webhook)
        assert "Pass webhook=" in str(info.value)
    assert jobstatus_emulator.requests(service="deepaffects", credential=key) == []


def test_the_async_submit_is_the_same_request(make_connection, jobstatus_emulator) -> None:
    from airflow_jobstatus.services.deepaffects import DeepAffectsSubmitRequest

    conn_id, key = make_connection("deepaffects")
    hook = DeepAffectsHook(deepaffects_conn_id=conn_id)
    request = DeepAffectsSubmitRequest.of(
        "DeepAffects", {"api": "asr", "url": MEDIA, "webhook": WEBHOOK, "request_id": "async-1"}
    )

    async def scenario() -> str:
        try:
            with pytest.raises(InvalidParameterError, match="webhook is required"):
                await hook.asubmit_job("asr", url=MEDIA)  # checked when sent, nothing sent
            assert jobstatus_emulator.requests(service="deepaffects", credential=key) == []
            return await hook.asubmit_job(request)
        finally:
            await close_async_clients()

    rid = asyncio.run(scenario())
    sent = jobstatus_emulator.job("deepaffects", rid)["request"]
    assert sent["query"]["webhook"] == WEBHOOK and sent["query"]["request_id"] == "async-1"
    assert sent["body"] == request.call().json


def test_speaker_count_is_sent_as_speakers_and_minus_one_means_unknown(
    make_connection, jobstatus_emulator
) -> None:
    conn_id, _ = make_connection("deepaffects")
    hook = DeepAffectsHook(deepaffects_conn_id=conn_id)
    rid = hook.submit_job(
        "diarize",
        url=MEDIA,
        speaker_count=-1,
        audio_type="meeting",
        source="zoom",
        do_vad=True,
        speaker_ids=["alice", "bob"],
        webhook=WEBHOOK,
    )
    request = jobstatus_emulator.job("deepaffects", rid)["request"]
    assert request["body"]["speakers"] == -1 and "speakerCount" not in request["body"]
    assert request["body"]["source"] == "zoom" and request["body"]["doVad"] is True
    assert request["body"]["speakerIds"] == ["alice", "bob"]
    assert request["query"]["webhook"] == WEBHOOK
    with pytest.raises(InvalidParameterError, match="asr API takes no speaker count"):
        hook.submit_job("asr", url=MEDIA, speaker_count=2, webhook=WEBHOOK)


def test_params_invalid_from_the_emulator_is_permanent(make_connection, jobstatus_emulator) -> None:
    conn_id, _ = make_connection("deepaffects", max_retries=3)
    hook = DeepAffectsHook(deepaffects_conn_id=conn_id)
    with pytest.raises(BadRequestError, match="params_invalid") as info:
        hook.submit_job("asr", content="not base64 !!", webhook=WEBHOOK)
    assert is_permanent(info.value)


def test_rate_limit_from_the_emulator_is_wait_and_retry(make_connection, jobstatus_emulator) -> None:
    """With the documented 5/min on at the emulator and off in the client, the 6th status call is refused."""
    jobstatus_emulator.configure(deepaffects_requests_per_minute=5)
    try:
        conn_id, _ = make_connection("deepaffects", max_retries=0)
        hook = DeepAffectsHook(deepaffects_conn_id=conn_id)
        rid = hook.submit_job("asr", url=MEDIA + "?emu_duration=60", webhook=WEBHOOK)
        for _ in range(5):
            hook.get_job(rid)
        with pytest.raises(RateLimitedError, match="rate_limit") as info:
            hook.get_job(rid)
        assert not is_permanent(info.value)
    finally:
        jobstatus_emulator.configure(deepaffects_requests_per_minute=0)


@pytest.mark.parametrize(
    ("status", "kind", "error", "attempts"),
    [
        (400, "params_invalid", BadRequestError, 1),
        (500, "params_invalid", BadRequestError, 1),  # the type decides, not the status
        (400, "queued", RateLimitedError, 2),  # "try this request again in a few minutes"
        (400, "rate_limit", RateLimitedError, 2),
        (400, "api_error", ServiceError, 2),  # internal error: transient
    ],
)
def test_documented_error_types_decide_the_handling(
    monkeypatch, status: int, kind: str, error: type[Exception], attempts: int
) -> None:
    with ScriptedServer() as server:
        server.default = Reply(status, {"type": kind, "message": f"scripted {kind}"}, {"Retry-After": "0"})
        conn_id = f"da_types_{uuid.uuid4().hex[:8]}"
        conn = {
            "conn_type": "deepaffects",
            "host": server.url,
            "password": secret("da-types"),
            "extra": {"max_retries": 1, "max_requests_per_second": 0, "max_requests_per_minute": 0},
        }
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))
        with pytest.raises(error, match=f"{kind}: scripted {kind}") as info:
            DeepAffectsHook(deepaffects_conn_id=conn_id).get_job("req-1")
        assert type(info.value) is error
        assert f"HTTP {status}" in str(info.value)  # the real status is still reported
        assert len(server.seen) == attempts


def test_day_budget_refuses_without_sending_and_logs_once(
    make_connection, jobstatus_emulator, caplog
) -> None:
    caplog.set_level(logging.WARNING)
    conn_id, key = make_connection("deepaffects", max_requests_per_day=3)
    hook = DeepAffectsHook(deepaffects_conn_id=conn_id)
    rid = hook.submit_job("asr", url=MEDIA + "?emu_duration=60", webhook=WEBHOOK)
    hook.get_job(rid)
    hook.get_job(rid)
    sent = len(jobstatus_emulator.requests(service="deepaffects", credential=key))
    for _ in range(2):
        with pytest.raises(RequestBudgetExhaustedError, match="budget of 3 per 24 h is spent") as info:
            hook.get_job(rid)
        assert info.value.retry_after is not None and 86000 < info.value.retry_after <= 86400
        assert not is_permanent(info.value)
    assert len(jobstatus_emulator.requests(service="deepaffects", credential=key)) == sent == 3
    spent = [r for r in caplog.records if "max_requests_per_day" in r.getMessage()]
    assert len(spent) == 1 and "waits hold" in spent[0].getMessage()


def test_a_wait_holds_while_the_budget_is_spent_instead_of_failing(
    make_connection, jobstatus_emulator
) -> None:
    """One poll allowed a day, one error allowed: the wait ends at its deadline, not with an error."""
    conn_id, key = make_connection("deepaffects")
    rid = DeepAffectsHook(deepaffects_conn_id=conn_id).submit_job(
        "asr", url=MEDIA + "?emu_duration=60", webhook=WEBHOOK
    )
    # the same account: the budget connection reads the job submitted above
    budget_conn, _ = make_connection("deepaffects", credential=key, max_requests_per_day=1)
    trigger = JobStatusTrigger(
        service="deepaffects",
        conn_id=budget_conn,
        job_id=rid,
        deadline=time.time() + 8,
        poll_interval=1,
        max_consecutive_errors=1,
    )

    async def scenario() -> dict[str, Any]:
        try:
            async for event in trigger.run():
                return parse_event(event.payload, job_id=rid).to_payload()
        finally:
            await close_async_clients()
        raise AssertionError("no event")

    payload = asyncio.run(scenario())
    assert payload["event"] == "timeout", payload
    assert len(jobstatus_emulator.requests(service="deepaffects", credential=key)) == 2  # submit + 1 poll


def test_deepaffects_defaults_fit_its_documented_limits() -> None:
    [conn_type] = [
        c for c in get_provider_info()["connection-types"] if c["connection-type"] == "deepaffects"
    ]
    fields = conn_type["conn-fields"]
    assert fields["max_requests_per_minute"]["schema"]["default"] == 5
    assert fields["max_requests_per_day"]["schema"]["default"] == 100
    sensor = DeepAffectsJobSensor(task_id="w", job_id="r")
    # one job waited on for 24 h: at most 12 status requests, 12% of the day's 100
    assert sensor.poll_interval == 7200 and 86400 / sensor.poll_interval <= 12
    assert DailyJobSensor(task_id="d", job_id="j").poll_interval == 30
