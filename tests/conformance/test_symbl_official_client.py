"""Symbl.ai's official Python client (PyPI ``symbl-rest`` 1.0.14, generated from Symbl's API spec)
drives the emulator in its strict default mode.

The emulator must keep accepting what a real client sends and answer in shapes the client can
read: the token exchange (contracts S1, S2), an audio URL submission with the diarization settings
as query parameters (S3, S4), the job status (S6), the Conversation API (S7, S10), and the
documented 429 at the concurrent-job limit (S8).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import symbl_rest  # the test extra installs it: the tier is never skipped
from symbl_rest.rest import ApiException

from jobstatus_emulator.server import EmulatorServer

pytestmark = pytest.mark.integration

MEDIA = "https://media.example/calls/official-client.mp3"


@pytest.fixture
def app_id() -> str:
    return f"official-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def client(emulator: EmulatorServer, app_id: str) -> Iterator[Any]:
    """An official ApiClient with a token from the emulator, as Symbl's docs set it up."""
    config = symbl_rest.Configuration()
    config.host = emulator.service_url("symbl")
    api_client = symbl_rest.ApiClient(config)
    grant = symbl_rest.Grant(type="application", app_id=app_id, app_secret="official-secret")
    token = symbl_rest.AuthenticationApi(api_client).generate_token(grant)
    assert token.access_token and isinstance(token.expires_in, int | float) and token.expires_in > 0
    config.api_key["x-api-key"] = token.access_token  # the client's one auth scheme (S5)
    yield api_client
    pool = getattr(api_client, "_pool", None)
    if pool is not None:
        pool.close()
        pool.join()


def _wait_completed(jobs: Any, job_id: str, timeout: float = 20) -> list[str]:
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = jobs.get_job_status(job_id).status
        if not seen or seen[-1] != status:
            seen.append(status)
        if status in ("completed", "failed"):
            return seen
        time.sleep(0.1)
    raise AssertionError(f"the job did not end: {seen}")


def test_submit_status_and_conversation_with_the_official_client(
    emulator: EmulatorServer, client: Any, app_id: str
) -> None:
    async_api = symbl_rest.AsyncApi(client)
    body = symbl_rest.AsyncAudioUrlParameters(url=f"{MEDIA}?emu_duration=0.5")
    created = async_api.add_audio_url(body=body, enable_speaker_diarization=True, diarization_speaker_count=2)
    assert created.job_id and created.conversation_id

    # the client sent the diarization settings as query parameters, and the emulator read them there
    request = emulator.job("symbl", created.job_id)["request"]
    assert request["query"] == {"enableSpeakerDiarization": "True", "diarizationSpeakerCount": "2"}
    assert request["body"] == {"url": f"{MEDIA}?emu_duration=0.5"}

    jobs = symbl_rest.JobsApi(client)
    assert _wait_completed(jobs, created.job_id)[-1] == "completed"

    conversations = symbl_rest.ConversationsApi(client)
    conversation = conversations.get_conversation_by_conversation_id(created.conversation_id)
    assert conversation.id == created.conversation_id and conversation.members
    assert all(m.id and m.name and m.email and "@" in m.email for m in conversation.members)
    members = conversations.get_members_by_conversation_id(created.conversation_id).members
    assert [m.email for m in members] == [m.email for m in conversation.members]
    messages = conversations.get_messages_by_conversation_id(created.conversation_id)
    assert messages.messages and all(m.text for m in messages.messages)


def test_the_emulator_rejects_what_the_docs_forbid(client: Any) -> None:
    """A diarization count that is no positive number is refused (400), as is a body without url."""
    async_api = symbl_rest.AsyncApi(client)
    with pytest.raises(ApiException) as err:
        async_api.add_audio_url(
            body=symbl_rest.AsyncAudioUrlParameters(url=MEDIA),
            enable_speaker_diarization=True,
            diarization_speaker_count=0,
        )
    assert err.value.status == 400 and "diarizationSpeakerCount" in json.loads(err.value.body)["message"]
    with pytest.raises(ApiException) as err:
        async_api.add_audio_url(body=symbl_rest.AsyncAudioUrlParameters())
    assert err.value.status == 400 and "url" in json.loads(err.value.body)["message"]


def test_the_documented_429_at_the_concurrency_limit(emulator: EmulatorServer, client: Any) -> None:
    emulator.configure(symbl_max_concurrent_jobs=1)
    async_api = symbl_rest.AsyncApi(client)
    first = async_api.add_audio_url(body=symbl_rest.AsyncAudioUrlParameters(url=f"{MEDIA}?emu_duration=30"))
    assert first.job_id
    with pytest.raises(ApiException) as err:
        async_api.add_audio_url(body=symbl_rest.AsyncAudioUrlParameters(url=MEDIA))
    assert err.value.status == 429
    body = json.loads(err.value.body)
    assert body["statusCode"] == 429
    assert "maximum of 1 number of concurrent jobs per account" in body["message"]
