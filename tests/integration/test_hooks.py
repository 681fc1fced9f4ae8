"""Every public method of every hook, sync and async, against the emulator over real HTTP."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid

import httpx
import pytest

from airflow_jobstatus.exceptions import (
    AuthenticationError,
    BadRequestError,
    InvalidParameterError,
    JobStatusError,
    MalformedResponseError,
    NotFoundError,
)
from airflow_jobstatus.hooks.daily import DailyHook
from airflow_jobstatus.hooks.deepaffects import DeepAffectsHook
from airflow_jobstatus.hooks.symbl import SymblHook
from airflow_jobstatus.hooks.wasabi import WasabiAirHook
from airflow_jobstatus.http.client import close_async_clients
from airflow_jobstatus.models import ApiDocument, DownloadLink, InlineDocument, JobState, S3Object
from tests.helpers.canary import secret
from tests.helpers.connections import daily_customer_storage
from tests.integration.conftest import await_terminal, wait_until_terminal

pytestmark = pytest.mark.integration

MEDIA = "https://media.example/meeting.mp4?emu_duration=1"


def token_exchanges(emulator, app_id: str) -> int:
    stats = emulator.stats(service="symbl", credential=app_id)
    return sum(r["count"] for r in stats["requests"] if r["route"].endswith("token:generate"))


def arun(coro):
    async def wrapper():
        try:
            return await coro
        finally:
            await close_async_clients()

    return asyncio.run(wrapper())


# ------------------------------------------------------------------------------------------ Daily


def test_daily_sync_lifecycle_with_daily_storage(make_connection, jobstatus_emulator):
    conn_id, key = make_connection("daily")
    hook = DailyHook(daily_conn_id=conn_id)
    assert hook.test_connection()[0]
    # Daily takes inParams.language only with the transcript preset (contracts D6)
    job_id = hook.submit_job("summarize", uri=MEDIA)
    recorded = jobstatus_emulator.job("daily", job_id)["request"]
    assert recorded["body"]["inParams"] == {"sourceType": "uri", "uri": MEDIA}
    # outParams.s3Config.s3KeyTemplate is required (D3): the default names the files after the job
    assert recorded["body"]["outParams"] == {
        "s3Config": {"s3KeyTemplate": "{job_id}", "useReplacement": True}
    }
    status = wait_until_terminal(hook.get_job, job_id)
    assert status.state is JobState.SUCCEEDED and status.raw_status == "finished"
    names = {(o.name, o.format) for o in status.outputs}
    assert ("summary", "txt") in names and any(n == "transcript" for n, _ in names)
    assert all(isinstance(o.location, DownloadLink) and o.location.url is None for o in status.outputs)
    outputs = hook.get_outputs(status)
    summary = next(o for o in outputs if o.name == "summary")
    assert summary.file_name == "summary.txt"
    assert isinstance(summary.location, DownloadLink) and summary.location.url
    body = httpx.get(summary.location.url).raise_for_status().text
    assert len(body) > 20
    hook.delete_job(job_id)
    with pytest.raises(NotFoundError) as info:
        hook.get_job(job_id)
    assert job_id in str(info.value) and "Check the job id" in str(info.value)


def test_daily_customer_bucket_outputs(make_connection, jobstatus_emulator, jobstatus_s3):
    bucket = f"daily-out-{uuid.uuid4().hex[:8]}"
    jobstatus_s3.create_bucket(bucket)
    conn_id, key = daily_customer_storage(make_connection, jobstatus_emulator, bucket)
    hook = DailyHook(daily_conn_id=conn_id)
    job_id = hook.submit_job("soap-notes", recording_id=f"rec-{uuid.uuid4().hex}?emu_duration=1")
    status = wait_until_terminal(hook.get_job, job_id)
    assert status.succeeded
    s3 = jobstatus_s3.client()
    for output in hook.get_outputs(status):
        assert isinstance(output.location, S3Object) and output.location.bucket == bucket
        s3.head_object(Bucket=bucket, Key=output.location.key)
    assert status.output("soap", "json") is not None


def test_daily_async_lifecycle_and_paging(make_connection, jobstatus_emulator):
    conn_id, key = make_connection("daily")
    hook = DailyHook(daily_conn_id=conn_id)

    async def scenario():
        ids = [await hook.asubmit_job("transcript", uri=MEDIA) for _ in range(5)]
        listed = [job.job_id async for job in hook.alist_jobs(page_size=2)]
        status = await await_terminal(hook.aget_job, ids[0])
        outputs = await hook.aget_outputs(status)
        await hook.adelete_job(ids[1])
        return ids, listed, status, outputs

    ids, listed, status, outputs = arun(scenario())
    assert sorted(listed) == sorted(ids) and len(listed) == 5  # every job exactly once
    assert status.succeeded and {o.format for o in outputs} >= {"txt", "vtt", "json"}
    stats = jobstatus_emulator.stats(service="daily", credential=key)
    list_calls = [r for r in stats["requests"] if r["route"] == "/batch-processor" and r["method"] == "GET"]
    assert sum(r["count"] for r in list_calls) == 3  # 2 + 2 + 1
    synced = list(hook.list_jobs(page_size=3))
    assert len(synced) == 4


def test_daily_access_links_before_finish_say_wait(make_connection):
    conn_id, _ = make_connection("daily")
    hook = DailyHook(daily_conn_id=conn_id)
    job_id = hook.submit_job("transcript", uri="https://media.example/a.mp4?emu_duration=30")
    running = hook.get_job(job_id)
    from airflow_jobstatus.models import JobOutput, JobStatus

    fake = JobStatus(
        **{
            **running.model_dump(),
            "outputs": [JobOutput(name="transcript", format="txt", location=DownloadLink())],
        }
    )
    with pytest.raises(BadRequestError) as info:
        hook.get_outputs(fake)
    assert "finished" in str(info.value)


def test_daily_submit_validation_fails_before_any_request(make_connection, jobstatus_emulator):
    conn_id, key = make_connection("daily")
    hook = DailyHook(daily_conn_id=conn_id)
    with pytest.raises(InvalidParameterError, match="exactly one"):
        hook.submit_job("transcript", uri=MEDIA, recording_id="r1")
    with pytest.raises(InvalidParameterError, match="preset"):
        hook.submit_job("translate", uri=MEDIA)  # type: ignore[arg-type]
    assert jobstatus_emulator.stats(service="daily", credential=key)["total"] == 0


def test_daily_invalid_key_fails_test_connection(make_connection):
    conn_id, _ = make_connection("daily", credential=secret("invalid"))  # "invalid...": 401
    ok, message = DailyHook(daily_conn_id=conn_id).test_connection()
    assert not ok and "HTTP 401" in message


# ------------------------------------------------------------------------------------------ Wasabi


def wasabi_job_args(jobstatus_s3, bucket: str, name: str) -> dict:
    return {
        "services": {"s2t": "", "ocr": {"config": {"lang": "en"}}},
        "source": {
            "Endpoint": jobstatus_s3.endpoint_url,
            "Bucket": "media",
            "Region": "us-east-1",
            "ObjectKey": "MP4/Commercial.mp4?emu_duration=1",
        },
        "destination": {"Bucket": bucket, "Region": "us-east-1"},
        "priority": 5,
        "batch": "batch_test",
    }


def test_wasabi_sync_lifecycle(make_connection, jobstatus_emulator, jobstatus_s3):
    bucket = f"air-out-{uuid.uuid4().hex[:8]}"
    jobstatus_s3.create_bucket(bucket)
    conn_id, access = make_connection("wasabi_air", s3_endpoint_url=jobstatus_s3.endpoint_url)
    hook = WasabiAirHook(wasabi_air_conn_id=conn_id)
    assert hook.test_connection()[0]
    job_id = hook.submit_job("MyJobName", **wasabi_job_args(jobstatus_s3, bucket, "MyJobName"))
    assert hook.get_status(job_id).state in (JobState.QUEUED, JobState.RUNNING)
    status = wait_until_terminal(hook.get_job, job_id)
    assert status.state is JobState.SUCCEEDED
    [output] = hook.get_outputs(status)
    assert isinstance(output.location, S3Object)
    assert output.location.bucket == bucket and output.location.key.endswith("MyJobName_metadata.json")
    assert output.location.endpoint_url == jobstatus_s3.endpoint_url
    jobstatus_s3.client().head_object(Bucket=bucket, Key=output.location.key)


def test_wasabi_async_paging_and_errors(make_connection, jobstatus_emulator, jobstatus_s3):
    bucket = f"air-out-{uuid.uuid4().hex[:8]}"
    jobstatus_s3.create_bucket(bucket)
    conn_id, access = make_connection("wasabi_air")
    hook = WasabiAirHook(wasabi_air_conn_id=conn_id)

    async def scenario():
        ids = [
            await hook.asubmit_job(f"job-{i}", **wasabi_job_args(jobstatus_s3, bucket, "x")) for i in range(5)
        ]
        listed = [j.job_id async for j in hook.alist_jobs(page_size=2)]
        status = await hook.aget_status(ids[0])
        with pytest.raises(NotFoundError):
            await hook.aget_job("0" * 32)
        return ids, listed, status

    ids, listed, status = arun(scenario())
    assert sorted(listed) == sorted(ids) and len(listed) == 5
    assert status.job_id == ids[0]
    assert [j.job_id for j in hook.list_jobs(page_size=100)] == ids  # ascending by creation
    with pytest.raises(InvalidParameterError, match="priority"):
        hook.submit_job("x", **{**wasabi_job_args(jobstatus_s3, bucket, "x"), "priority": 11})
    with pytest.raises(InvalidParameterError, match="unknown services"):
        hook.submit_job("x", **{**wasabi_job_args(jobstatus_s3, bucket, "x"), "services": {"translate": ""}})


def test_wasabi_wrong_base_url_is_a_clear_error(make_connection, monkeypatch, jobstatus_emulator):
    conn_id, _ = make_connection("wasabi_air")
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{conn_id.upper()}",
        json.dumps(
            {
                "conn_type": "wasabi_air",
                "host": f"{jobstatus_emulator.url}/nowhere",
                "login": "a",
                "password": secret("wasabi-secret"),
            }
        ),
    )
    ok, message = WasabiAirHook(wasabi_air_conn_id=conn_id).test_connection()
    assert not ok and "HTTP 404" in message and "base URL" in message


# ------------------------------------------------------------------------------------------ Symbl


def test_symbl_lifecycle_and_documents(make_connection, jobstatus_emulator):
    conn_id, app_id = make_connection("symbl")
    hook = SymblHook(symbl_conn_id=conn_id)
    assert hook.test_connection()[0]
    ref = hook.submit_job(
        messages=[
            {
                "payload": {
                    "content": "Let's ship on Friday. Can you send the notes?",
                    "contentType": "text/plain",
                },
                "from": {"name": "Ann"},
            }
        ],
        name="standup emu_duration=1",
    )
    job_id, conversation_id = ref.split(":")
    status = wait_until_terminal(hook.get_job, ref)
    assert status.succeeded and status.job_id == ref
    outputs = hook.get_outputs(status)
    assert {o.name for o in outputs} >= {"messages", "topics", "action-items", "questions", "summary"}
    messages = next(o for o in outputs if o.name == "messages")
    assert isinstance(messages.location, ApiDocument) and conversation_id in messages.location.path
    assert b"messages" in hook.get_document(messages)
    bare = hook.get_job(job_id)
    assert bare.succeeded and bare.outputs == []


def test_symbl_token_refresh_and_single_exchange(make_connection, jobstatus_emulator):
    jobstatus_emulator.configure(symbl_token_lifetime=2)
    try:
        conn_id, app_id = make_connection("symbl")
        hook = SymblHook(symbl_conn_id=conn_id)
        ref = hook.submit_job(audio_url="https://media.example/a.mp3?emu_duration=30")
        assert token_exchanges(jobstatus_emulator, app_id) == 1
        time.sleep(2.2)  # the token has expired at the service
        hook.get_job(ref)  # refreshed mid-test
        assert token_exchanges(jobstatus_emulator, app_id) == 2

        async def fifty():
            await hook.aget_job(ref)  # the async side's first call: the cached token is still valid
            before = token_exchanges(jobstatus_emulator, app_id)
            await asyncio.sleep(2.2)  # now expired
            results = await asyncio.gather(*(hook.aget_job(ref) for _ in range(50)))
            return before, results

        before, results = arun(fifty())
        assert len(results) == 50 and all(r.job_id == ref for r in results)
        assert token_exchanges(jobstatus_emulator, app_id) == before + 1
    finally:
        jobstatus_emulator.configure(symbl_token_lifetime=86400)


def test_symbl_revoked_token_refreshes_once_then_fails(make_connection, jobstatus_emulator):
    conn_id, app_id = make_connection("symbl")
    hook = SymblHook(symbl_conn_id=conn_id)
    ref = hook.submit_job(video_url="https://media.example/v.mp4?emu_duration=30")
    jobstatus_emulator.add_fault(service="symbl", credential=app_id, kind="revoke")
    with pytest.raises(AuthenticationError):
        hook.get_job(ref)
    with pytest.raises(InvalidParameterError, match="exactly one"):
        hook.submit_job(audio_url="a", video_url="b")


# ------------------------------------------------------------------------------------------ DeepAffects

CANARY_KEY = secret("deepaffects")  # the API key travels in the query string


def test_deepaffects_lifecycle_and_canary(make_connection, jobstatus_emulator, caplog):
    caplog.set_level(logging.DEBUG)
    conn_id, key = make_connection("deepaffects", credential=CANARY_KEY, max_retries=1)
    hook = DeepAffectsHook(deepaffects_conn_id=conn_id)
    texts: list[str] = []
    assert hook.test_connection()[0]
    request_id = hook.submit_job(
        "asr",
        url="https://media.example/call.wav?emu_duration=1",
        sample_rate=8000,
        enable_speaker_diarization=True,
        webhook="https://hooks.example/deepaffects",
    )
    status = wait_until_terminal(hook.get_job, request_id)
    assert status.succeeded
    [result] = hook.get_outputs(status)
    assert isinstance(result.location, InlineDocument)
    document = result.location.resolve(status.raw)
    assert "transcript" in document and document["words"]

    async def scenario():
        rid = await hook.asubmit_job(
            "diarize",
            url="https://media.example/c.wav?emu_duration=1",
            speaker_count=2,
            webhook="https://hooks.example/deepaffects",
        )
        return await await_terminal(hook.aget_job, rid)

    diarized = arun(scenario())
    assert diarized.succeeded and "segments" in diarized.outputs[0].location.resolve(diarized.raw)

    for error, fault in ((NotFoundError, None), (AuthenticationError, {"kind": "revoke"})):
        if fault:
            jobstatus_emulator.add_fault(service="deepaffects", credential=key, **fault)
        for get in (hook.get_job, lambda j: arun(hook.aget_job(j))):
            with pytest.raises(error) as info:
                get("no-such-request")
            texts.append(str(info.value))
            assert "apikey=***" in str(info.value)  # the URL is quoted, redacted
    texts += [r.getMessage() for r in caplog.records] + [repr(hook), repr(hook.get_client())]
    assert not [t for t in texts if CANARY_KEY in t]


def test_deepaffects_client_request_id_is_idempotent(make_connection, jobstatus_emulator):
    conn_id, key = make_connection("deepaffects")
    hook = DeepAffectsHook(deepaffects_conn_id=conn_id)
    first = hook.submit_job(
        "asr", url=MEDIA, request_id="dag.task.run1.try1", webhook="https://hooks.example/deepaffects"
    )
    second = hook.submit_job(
        "asr", url=MEDIA, request_id="dag.task.run1.try1", webhook="https://hooks.example/deepaffects"
    )
    assert first == second == "dag.task.run1.try1"
    assert len(jobstatus_emulator.jobs(service="deepaffects", credential=key)) == 1
    with pytest.raises(InvalidParameterError, match="Pass exactly one of url or content"):
        hook.submit_job("asr", webhook="https://hooks.example/deepaffects")


def test_every_error_is_a_jobstatus_error():
    for error in (
        AuthenticationError,
        NotFoundError,
        MalformedResponseError,
        BadRequestError,
        InvalidParameterError,
    ):
        assert issubclass(error, JobStatusError)
