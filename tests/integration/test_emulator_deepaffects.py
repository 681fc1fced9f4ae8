"""DeepAffects async API contract (docs/contracts.md rows A1-A8) against the emulator."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from jobstatus_emulator.server import EmulatorServer
from tests.helpers.emulator_http import Endpoint, statuses_until

pytestmark = pytest.mark.integration

INVALID_KEY = {"fault": {"faultstring": "Invalid ApiKey", "detail": {"errorcode": "oauth.v2.InvalidApiKey"}}}
ASR = "/audio/generic/api/v1/async/asr"
DIARIZE = "/audio/generic/api/v2/async/diarize"
STATUS = "/transaction/generic/api/v1/async/status"
WEBHOOK = "https://hooks.example/deepaffects"


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(trust_env=False, timeout=10) as c:
        yield c


def _body(**extra: Any) -> dict[str, Any]:
    return {
        "encoding": "MP3",
        "sampleRate": 8000,
        "languageCode": "en-US",
        "url": "https://m.example/a.mp3",
        **extra,
    }


def _submit(
    emulator: EmulatorServer, client: httpx.Client, apikey: str, body: dict[str, Any], path: str = ASR
) -> httpx.Response:
    """Submit ``body`` with the webhook an async request requires (A2)."""
    return client.post(
        emulator.service_url("deepaffects") + path, params={"apikey": apikey, "webhook": WEBHOOK}, json=body
    )


def _poll_job(
    emulator: EmulatorServer, client: httpx.Client, apikey: str, request_id: str
) -> tuple[list[str], dict[str, Any]]:
    status = emulator.service_url("deepaffects") + STATUS
    return _poll(client, status, {"apikey": apikey, "request_id": request_id})


def _poll(client: httpx.Client, url: str, params: dict[str, str]) -> tuple[list[str], dict[str, Any]]:
    return statuses_until(client, url, {"Completed", "Failed"}, params=params)


def test_asr_job_matches_seed_shape(
    emulator: EmulatorServer, client: httpx.Client, jobstatus_credential: str
) -> None:
    base = emulator.service_url("deepaffects")
    r = client.post(
        base + ASR,
        params={"apikey": jobstatus_credential, "webhook": WEBHOOK},
        json=_body(url="https://m.example/a.mp3?emu_duration=0.8", enableSpeakerDiarization=True),
    )
    assert r.status_code == 202
    created = r.json()
    assert set(created) == {"request_id", "api"} and created["api"] == "asr"
    params = {"apikey": jobstatus_credential, "request_id": created["request_id"]}
    running = client.get(base + STATUS, params=params).json()
    assert running == {
        "response": {"request_id": created["request_id"], "response": None},
        "status": "Running",
    }
    seen, done = _poll(client, base + STATUS, params)
    assert seen == ["Running", "Completed"]
    assert set(done) == {"response", "status"}
    assert done["response"]["request_id"] == created["request_id"]
    result = done["response"]["response"]
    assert isinstance(result["num_speakers"], int) and result["num_speakers"] >= 1
    assert isinstance(result["transcript"], str) and result["transcript"]
    assert isinstance(result["confidence"], float)
    word = result["words"][0]
    assert set(word) == {"word", "start", "end", "confidence", "speaker_id"}
    assert isinstance(word["word"], str) and isinstance(word["speaker_id"], str)
    assert all(isinstance(word[k], (int, float)) for k in ("start", "end", "confidence"))
    assert [w["start"] for w in result["words"]] == sorted(w["start"] for w in result["words"])
    # the same job gives the same result
    assert client.get(base + STATUS, params=params).json() == done


def test_diarize_with_content(
    emulator: EmulatorServer, client: httpx.Client, jobstatus_credential: str
) -> None:
    base = emulator.service_url("deepaffects")
    audio = base64.b64encode(b"RIFF....WAVEfmt fake audio").decode()
    body = {
        "encoding": "LINEAR16",
        "sampleRate": 16000,
        "languageCode": "en-US",
        "content": audio,
        "speakers": 2,
    }
    r = client.post(
        base + DIARIZE,
        params={"apikey": jobstatus_credential, "request_id": "my-req-1", "webhook": WEBHOOK},
        json=body,
    )
    assert r.status_code == 202 and r.json() == {"request_id": "my-req-1", "api": "diarize"}
    emulator.patch_job("deepaffects", "my-req-1", duration=0.2)
    _, done = _poll_job(emulator, client, jobstatus_credential, "my-req-1")
    result = done["response"]["response"]
    assert isinstance(result["num_speakers"], int)
    assert result["segments"] and set(result["segments"][0]) == {"speaker_id", "start", "end"}
    # the admin view does not keep the audio, and never the api key
    view = emulator.job("deepaffects", "my-req-1")
    assert audio not in json.dumps(view) and jobstatus_credential not in json.dumps(view["request"])


def test_client_request_id_makes_submission_idempotent(
    emulator: EmulatorServer, client: httpx.Client, jobstatus_credential: str
) -> None:
    base = emulator.service_url("deepaffects")
    rid = f"req-{uuid.uuid4().hex[:8]}"
    params = {"apikey": jobstatus_credential, "request_id": rid, "webhook": WEBHOOK}
    first = client.post(base + ASR, params=params, json=_body())
    second = client.post(base + ASR, params=params, json=_body(url="https://m.example/other.mp3"))
    assert first.status_code == second.status_code == 202
    assert first.json() == second.json() == {"request_id": rid, "api": "asr"}
    assert len(emulator.jobs("deepaffects", jobstatus_credential)) == 1
    # another account may use the same request_id for its own job
    assert (
        client.post(
            base + ASR,
            params={"apikey": jobstatus_credential + "-b", "request_id": rid, "webhook": WEBHOOK},
            json=_body(),
        ).status_code
        == 202
    )
    assert len(emulator.jobs("deepaffects")) == 2


def test_failed_job_carries_message(
    emulator: EmulatorServer, client: httpx.Client, jobstatus_credential: str
) -> None:
    body = _body(url="https://m.example/a.mp3?emu_outcome=fail&emu_duration=0.3")
    rid = _submit(emulator, client, jobstatus_credential, body).json()["request_id"]
    seen, done = _poll_job(emulator, client, jobstatus_credential, rid)
    assert seen == ["Running", "Failed"]
    assert isinstance(done["response"]["response"]["error"], str) and done["response"]["response"]["error"]


def test_auth_errors_and_unknown_request(
    emulator: EmulatorServer, client: httpx.Client, jobstatus_credential: str
) -> None:
    base = emulator.service_url("deepaffects")
    for params in ({}, {"apikey": ""}, {"apikey": "invalid-key"}):
        r = client.get(base + STATUS, params={**params, "request_id": "x"})
        assert r.status_code == 401 and r.json() == INVALID_KEY
        r = client.post(base + ASR, params=params, json=_body())
        assert r.status_code == 401 and r.json() == INVALID_KEY
    r = client.get(base + STATUS, params={"apikey": jobstatus_credential, "request_id": "nope"})
    assert r.status_code == 404
    assert client.get(base + STATUS, params={"apikey": jobstatus_credential}).status_code == 400


@pytest.mark.parametrize(
    "body",
    [
        {"url": "https://m.example/a.mp3", "content": "UklGRg=="},
        {"encoding": "MP3"},
        {"content": "not base64 !!"},
        {"url": "file:///etc/passwd"},
        {"url": "https://m.example/a.mp3", "sampleRate": "8000"},
        {"url": "https://m.example/a.mp3", "sampleRate": 8000},  # A3/A4: encoding is required
        {"url": "https://m.example/a.mp3", "encoding": "MP3"},  # ... and sampleRate
        {**_body(), "audioType": "phone"},  # A4: documented values only
    ],
)
def test_submit_validation(
    emulator: EmulatorServer, client: httpx.Client, jobstatus_credential: str, body: dict[str, Any]
) -> None:
    r = _submit(emulator, client, jobstatus_credential, body)
    # A7: errors are {"type", "message"}; a refused parameter is params_invalid
    assert r.status_code == 400 and r.json()["type"] == "params_invalid"
    assert isinstance(r.json()["message"], str)


@pytest.mark.parametrize("path", [ASR, DIARIZE])
def test_async_submit_without_webhook_is_refused(
    emulator: EmulatorServer, client: httpx.Client, jobstatus_credential: str, path: str
) -> None:
    """A2: ``webhook`` is "Required for async requests"; nothing is created without it."""
    r = client.post(
        emulator.service_url("deepaffects") + path, params={"apikey": jobstatus_credential}, json=_body()
    )
    assert r.status_code == 400 and r.json()["type"] == "params_invalid" and "webhook" in r.json()["message"]
    assert emulator.jobs("deepaffects", jobstatus_credential) == []


@pytest.mark.parametrize("speakers", [-1, 3])
def test_diarize_speakers_accepts_unknown_and_a_count(
    emulator: EmulatorServer, client: httpx.Client, jobstatus_credential: str, speakers: int
) -> None:
    """A3: ``speakers`` is the diarize speaker count, -1 for unknown (its default)."""
    body = _body(speakers=speakers, audioType="meeting", doVad=True, speakerIds=["alice"])
    r = _submit(emulator, client, jobstatus_credential, body, path=DIARIZE)
    assert r.status_code == 202, r.text
    bad = _submit(emulator, client, jobstatus_credential, _body(speakers=0), path=DIARIZE)
    assert bad.status_code == 400 and bad.json()["type"] == "params_invalid"


def test_asr_speaker_diarization_defaults_to_off(
    emulator: EmulatorServer, client: httpx.Client, jobstatus_credential: str
) -> None:
    """A4: ``enableSpeakerDiarization`` defaults to false: words carry no speaker_id."""
    r = _submit(emulator, client, jobstatus_credential, _body(url="https://m.example/a.mp3?emu_duration=0.2"))
    _, done = _poll_job(emulator, client, jobstatus_credential, r.json()["request_id"])
    words = done["response"]["response"]["words"]
    assert words and all("speaker_id" not in w for w in words)


def test_documented_rate_limits_per_key(
    emulator: EmulatorServer, client: httpx.Client, jobstatus_credential: str
) -> None:
    """A8: 5 requests per minute to each API and 100 per day per key; over either, rate_limit."""
    emulator.configure(deepaffects_requests_per_minute=5, deepaffects_requests_per_day=100)
    base = emulator.service_url("deepaffects")
    submit = {"apikey": jobstatus_credential, "webhook": WEBHOOK}
    codes = [client.post(base + DIARIZE, params=submit, json=_body()).status_code for _ in range(6)]
    assert codes == [202] * 5 + [429]
    over = client.post(base + DIARIZE, params=submit, json=_body())
    assert over.status_code == 429 and over.json()["type"] == "rate_limit"
    # another API has its own per-minute allowance; another key its own limits
    assert client.post(base + ASR, params=submit, json=_body()).status_code == 202
    other = {**submit, "apikey": jobstatus_credential + "-b"}
    assert client.post(base + DIARIZE, params=other, json=_body()).status_code == 202
    # the day: 100 requests per key over every API
    emulator.configure(deepaffects_requests_per_minute=0)
    rid = client.post(base + ASR, params=submit, json=_body()).json()["request_id"]
    status = {"apikey": jobstatus_credential, "request_id": rid}
    # counted so far: 5 diarize + 1 asr + this asr (refused requests do not count)
    codes = [client.get(base + STATUS, params=status).status_code for _ in range(95)]
    assert codes == [200] * 93 + [429] * 2
    body = client.get(base + STATUS, params=status).json()
    assert body["type"] == "rate_limit" and "per day" in body["message"]


def test_webhook_gets_result(
    emulator: EmulatorServer, client: httpx.Client, jobstatus_credential: str
) -> None:
    with Endpoint() as endpoint:
        base = emulator.service_url("deepaffects")
        r = client.post(
            base + DIARIZE,
            params={"apikey": jobstatus_credential, "webhook": endpoint.url},
            json=_body(url="https://m.example/a.mp3?emu_duration=0.3"),
        )
        rid = r.json()["request_id"]
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not endpoint.received:
            time.sleep(0.05)
        received = endpoint.bodies()
        assert len(received) == 1
        assert received[0]["request_id"] == rid and received[0]["response"]["segments"]


def test_api_keys_never_reach_the_emulator_log(emulator: EmulatorServer, client: httpx.Client) -> None:
    secret = f"secret-apikey-{uuid.uuid4().hex}"
    base = emulator.service_url("deepaffects")
    client.post(base + ASR, params={"apikey": secret}, json=_body())
    client.get(base + STATUS, params={"apikey": secret, "request_id": "x"})
    client.get(base + "/no/such/route", params={"apikey": secret})
    time.sleep(0.2)
    assert secret not in emulator.log_path.read_text()
