"""Symbl.ai contract (seed page 003 and shared/providers.md) against the emulator."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from jobstatus_emulator.server import EmulatorServer
from tests.helpers.emulator_http import Endpoint, statuses_until

pytestmark = pytest.mark.integration

TOKEN_FAILED = {"message": "Token validation failed for provided token."}


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(trust_env=False, timeout=10) as c:
        yield c


@pytest.fixture
def hooks() -> Iterator[Endpoint]:
    with Endpoint() as endpoint:
        yield endpoint


def _token(client: httpx.Client, base: str, app_id: str, secret: str = "app-secret") -> str:
    r = client.post(
        f"{base}/oauth2/token:generate", json={"type": "application", "appId": app_id, "appSecret": secret}
    )
    assert r.status_code == 200, r.text
    return str(r.json()["accessToken"])


def _signed_in(emulator: EmulatorServer, client: httpx.Client, app_id: str) -> tuple[str, dict[str, str]]:
    """Symbl's base URL and the headers with a fresh access token for ``app_id``."""
    base = emulator.service_url("symbl")
    return base, {"Authorization": f"Bearer {_token(client, base, app_id)}"}


def _poll(client: httpx.Client, url: str, headers: dict[str, str]) -> list[str]:
    return statuses_until(client, url, {"completed", "failed"}, headers=headers)[0]


def test_token_exchange(emulator: EmulatorServer, client: httpx.Client, jobstatus_credential: str) -> None:
    base = emulator.service_url("symbl")
    url = f"{base}/oauth2/token:generate"
    r = client.post(url, json={"type": "application", "appId": jobstatus_credential, "appSecret": "s"})
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"accessToken", "expiresIn"} and body["expiresIn"] == 86400
    again = client.post(
        url, json={"type": "application", "appId": jobstatus_credential, "appSecret": "s"}
    ).json()
    assert again["accessToken"] == body["accessToken"] and again["expiresIn"] <= 86400
    for bad in (
        {"type": "application", "appId": "invalid-app", "appSecret": "s"},
        {"type": "application", "appId": jobstatus_credential, "appSecret": ""},
        {"type": "application", "appId": jobstatus_credential},
    ):
        assert client.post(url, json=bad).status_code == 401
    assert client.post(url, json={"type": "user", "appId": "a", "appSecret": "b"}).status_code == 400


def test_tokens_expire(emulator: EmulatorServer, client: httpx.Client, jobstatus_credential: str) -> None:
    base = emulator.service_url("symbl")
    emulator.configure(symbl_token_lifetime=1)
    r = client.post(
        f"{base}/oauth2/token:generate",
        json={"type": "application", "appId": jobstatus_credential, "appSecret": "s"},
    )
    assert r.json()["expiresIn"] == 1
    token = r.json()["accessToken"]
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get(f"{base}/v1/job/nope", headers=headers).status_code == 404
    time.sleep(1.1)
    r = client.get(f"{base}/v1/job/nope", headers=headers)
    assert r.status_code == 401 and r.json() == TOKEN_FAILED
    assert _token(client, base, jobstatus_credential) != token


def test_bad_tokens(emulator: EmulatorServer, client: httpx.Client) -> None:
    base = emulator.service_url("symbl")
    for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"x-api-key": "nope"}):
        r = client.get(f"{base}/v1/job/abc", headers=headers)
        assert r.status_code == 401 and r.json() == TOKEN_FAILED


def test_audio_job_and_conversation_documents(
    emulator: EmulatorServer, client: httpx.Client, jobstatus_credential: str
) -> None:
    base, headers = _signed_in(emulator, client, jobstatus_credential)
    r = client.post(
        f"{base}/v1/process/audio/url",
        headers=headers,
        params={"enableSpeakerDiarization": "true", "diarizationSpeakerCount": "3"},  # S4: query
        json={
            "url": "https://media.example/call.mp3?emu_duration=1",
            "name": "Weekly",
            "detectEntities": True,
        },
    )
    assert r.status_code == 201
    created = r.json()
    assert set(created) == {"conversationId", "jobId"}
    conv = created["conversationId"]
    job = client.get(f"{base}/v1/job/{created['jobId']}", headers=headers).json()
    assert job == {"id": created["jobId"], "status": "scheduled"}
    r = client.get(f"{base}/v1/conversations/{conv}/messages", headers=headers)
    assert r.status_code == 404 and isinstance(r.json()["message"], str)
    assert _poll(client, f"{base}/v1/job/{created['jobId']}", headers) == [
        "scheduled",
        "in_progress",
        "completed",
    ]

    msgs = client.get(f"{base}/v1/conversations/{conv}/messages", headers=headers).json()["messages"]
    assert msgs and {"id", "text", "from", "startTime", "endTime", "conversationId"} <= set(msgs[0])
    assert msgs[0]["conversationId"] == conv and "words" not in msgs[0]
    verbose = client.get(
        f"{base}/v1/conversations/{conv}/messages", headers=headers, params={"verbose": "true"}
    ).json()
    words = verbose["messages"][0]["words"]
    assert words and {"word", "startTime", "endTime"} <= set(words[0])
    documents = {
        "topics": "topics",
        "action-items": "actionItems",
        "follow-ups": "followUps",
        "questions": "questions",
        "entities": "entities",
        "summary": "summary",
    }
    for path, key in documents.items():
        r = client.get(f"{base}/v1/conversations/{conv}/{path}", headers=headers)
        assert r.status_code == 200, path
        assert isinstance(r.json()[key], list), path
    assert client.get(f"{base}/v1/conversations/{conv}/topics", headers=headers).json()["topics"]
    assert client.get(f"{base}/v1/conversations/{conv}/summary", headers=headers).json()["summary"][0]["text"]
    analytics = client.get(f"{base}/v1/conversations/{conv}/analytics", headers=headers).json()
    assert {m["type"] for m in analytics["metrics"]} >= {"total_silence", "total_talk_time"}
    assert analytics["members"]
    conversation = client.get(f"{base}/v1/conversations/{conv}", headers=headers).json()
    assert conversation["members"] and all(set(m) == {"id", "name", "email"} for m in conversation["members"])
    assert all("@" in m["email"] for m in conversation["members"])  # S10: members carry email
    # another app sees neither the job nor the conversation
    other = {"Authorization": f"Bearer {_token(client, base, jobstatus_credential + '-other')}"}
    assert client.get(f"{base}/v1/job/{created['jobId']}", headers=other).status_code == 404
    assert client.get(f"{base}/v1/conversations/{conv}/messages", headers=other).status_code == 404


def test_text_job_uses_submitted_messages(
    emulator: EmulatorServer, client: httpx.Client, jobstatus_credential: str
) -> None:
    base, headers = _signed_in(emulator, client, jobstatus_credential)
    messages = [
        {
            "payload": {"content": "Can we ship the release on Friday?", "contentType": "text/plain"},
            "from": {"name": "Ana", "userId": "ana@example.com"},
        },
        {
            "payload": {"content": "Yes, I will update the checklist today.", "contentType": "text/plain"},
            "from": {"name": "Bo", "userId": "bo@example.com"},
        },
    ]
    r = client.post(
        f"{base}/v1/process/text?emu_duration=0.3",
        headers=headers,
        json={"messages": messages, "name": "chat"},
    )
    assert r.status_code == 201
    created = r.json()
    _poll(client, f"{base}/v1/job/{created['jobId']}", headers)
    msgs = client.get(
        f"{base}/v1/conversations/{created['conversationId']}/messages", headers=headers
    ).json()["messages"]
    assert [m["text"] for m in msgs] == [m["payload"]["content"] for m in messages]
    assert [m["from"]["name"] for m in msgs] == ["Ana", "Bo"]
    questions = client.get(
        f"{base}/v1/conversations/{created['conversationId']}/questions", headers=headers
    ).json()
    assert [q["text"] for q in questions["questions"]] == ["Can we ship the release on Friday?"]
    actions = client.get(
        f"{base}/v1/conversations/{created['conversationId']}/action-items", headers=headers
    ).json()
    assert [a["text"] for a in actions["actionItems"]] == ["Yes, I will update the checklist today."]


def test_failed_job(emulator: EmulatorServer, client: httpx.Client, jobstatus_credential: str) -> None:
    base, headers = _signed_in(emulator, client, jobstatus_credential)
    r = client.post(
        f"{base}/v1/process/video/url",
        headers=headers,
        json={"url": "https://m.example/v.mp4?emu_duration=0.3&emu_outcome=fail"},
    )
    created = r.json()
    assert _poll(client, f"{base}/v1/job/{created['jobId']}", headers)[-1] == "failed"
    assert (
        client.get(
            f"{base}/v1/conversations/{created['conversationId']}/messages", headers=headers
        ).status_code
        == 404
    )


def test_submit_validation_and_limits(
    emulator: EmulatorServer, client: httpx.Client, jobstatus_credential: str
) -> None:
    base, headers = _signed_in(emulator, client, jobstatus_credential)
    assert client.post(f"{base}/v1/process/audio/url", headers=headers, json={}).status_code == 400
    assert (
        client.post(f"{base}/v1/process/audio/url", headers=headers, json={"url": "ftp://x"}).status_code
        == 400
    )
    assert client.post(f"{base}/v1/process/text", headers=headers, json={"messages": []}).status_code == 400
    assert (
        client.post(
            f"{base}/v1/process/text", headers=headers, json={"messages": [{"payload": {}}]}
        ).status_code
        == 400
    )
    big = {"url": "https://m.example/a.mp3", "name": "x" * (1024 * 1024 + 10)}
    r = client.post(f"{base}/v1/process/audio/url", headers=headers, json=big)
    assert r.status_code == 413 and "message" in r.json()

    emulator.configure(symbl_max_concurrent_jobs=2)
    for _ in range(2):
        assert (
            client.post(
                f"{base}/v1/process/audio/url",
                headers=headers,
                json={"url": "https://m.example/a.mp3?emu_duration=0.6"},
            ).status_code
            == 201
        )
    r = client.post(f"{base}/v1/process/audio/url", headers=headers, json={"url": "https://m.example/a.mp3"})
    assert r.status_code == 429
    assert r.json()["statusCode"] == 429 and "maximum of 2 number of concurrent jobs" in r.json()["message"]
    time.sleep(0.7)
    assert (
        client.post(
            f"{base}/v1/process/audio/url", headers=headers, json={"url": "https://m.example/a.mp3"}
        ).status_code
        == 201
    )


def test_webhook_gets_every_status(
    emulator: EmulatorServer, client: httpx.Client, jobstatus_credential: str, hooks: Endpoint
) -> None:
    base, headers = _signed_in(emulator, client, jobstatus_credential)
    r = client.post(
        f"{base}/v1/process/audio/url",
        headers=headers,
        json={"url": "https://m.example/a.mp3?emu_duration=0.6", "webhookUrl": hooks.url},
    )
    job_id = r.json()["jobId"]
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and len(hooks.received) < 3:
        time.sleep(0.05)
    assert hooks.bodies() == [
        {"jobId": job_id, "status": "scheduled"},
        {"jobId": job_id, "status": "in_progress"},
        {"jobId": job_id, "status": "completed"},
    ]


def test_submit_options_follow_the_docs(
    emulator: EmulatorServer, client: httpx.Client, jobstatus_credential: str
) -> None:
    """S3 body options and S4 query options are checked where the docs put them."""
    base, headers = _signed_in(emulator, client, jobstatus_credential)
    url = f"{base}/v1/process/audio/url"
    media = {"url": "https://m.example/a.mp3"}
    channels = [
        {"channel": 1, "speaker": {"name": "Robert", "email": "robert@example.com"}},
        {"channel": 2, "speaker": {}},
    ]
    ok = client.post(
        url,
        headers=headers,
        params={"enableSpeakerDiarization": "true", "diarizationSpeakerCount": "2"},
        json={
            **media,
            "detectEntities": True,
            "enableSeparateRecognitionPerChannel": True,
            "channelMetadata": channels,
        },
    )
    assert ok.status_code == 201, ok.text
    recorded = emulator.job("symbl", ok.json()["jobId"])["request"]
    assert recorded["query"] == {"enableSpeakerDiarization": "true", "diarizationSpeakerCount": "2"}
    bad = [
        ({"enableSpeakerDiarization": "yes"}, media, "enableSpeakerDiarization"),
        ({"diarizationSpeakerCount": "0"}, media, "diarizationSpeakerCount"),
        ({"diarizationSpeakerCount": "two"}, media, "diarizationSpeakerCount"),
        ({}, {**media, "detectEntities": "yes"}, "detectEntities"),
        ({}, {**media, "enableSeparateRecognitionPerChannel": 1}, "enableSeparateRecognitionPerChannel"),
        ({}, {**media, "channelMetadata": {"channel": 1}}, "channelMetadata"),
        ({}, {**media, "channelMetadata": [{"speaker": {"name": "x"}}]}, "channelMetadata[0].channel"),
        (
            {},
            {**media, "channelMetadata": [{"channel": 1, "speaker": {"email": 3}}]},
            "channelMetadata[0].speaker",
        ),
    ]
    for params, body, named in bad:
        r = client.post(url, headers=headers, params=params, json=body)
        assert r.status_code == 400 and named in r.json()["message"], (params, body, r.text)
    r = client.post(
        f"{base}/v1/process/text",
        headers=headers,
        json={"messages": [{"payload": {"content": "hi"}}], "detectEntities": "yes"},
    )
    assert r.status_code == 400 and "detectEntities" in r.json()["message"]
