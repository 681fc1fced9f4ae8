"""DeepAffects' official Python client (PyPI ``deepaffects`` 1.4.1) against the emulator, strict default mode.

The client is generated from the vendor's API spec: what it sends is what real users send. The
emulator must accept it (submit, status, result) and refuse what the docs forbid: an async submit
without ``webhook`` (contracts A2) and requests past 5/min per API or 100/day per key (A8), with
the documented ``rate_limit`` body (A7). The emulator here is a process of its own with every
default (the suite's shared one runs without the DeepAffects limits).
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from jobstatus_emulator.server import EmulatorServer

deepaffects = pytest.importorskip(
    "deepaffects", reason="install it: make install (deepaffects 1.4.1, --no-deps)"
)
from deepaffects.rest import ApiException  # noqa: E402

pytestmark = pytest.mark.integration

STATUS = "/transaction/generic/api/v1/async/status"
WEBHOOK = "https://hooks.example/deepaffects"
AUDIO = base64.b64encode(b"RIFF\x24\x00\x00\x00WAVEfmt conformance audio").decode()


@pytest.fixture(scope="module")
def strict_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorServer]:
    logs = tmp_path_factory.mktemp("conformance-deepaffects")
    with EmulatorServer(job_duration=0.5, log_path=logs / "emulator.log") as server:
        yield server


def client(emulator: EmulatorServer, key: str) -> Any:
    """An official client for ``key`` (its configuration is a process-wide singleton)."""
    deepaffects.configuration.api_key["apikey"] = key
    return deepaffects.ApiClient(host=emulator.service_url("deepaffects"))


def status(api_client: Any, request_id: str) -> dict[str, Any]:
    """The status call, made the client's way (it has no method of its own for it)."""
    response = api_client.call_api(
        STATUS,
        "GET",
        {},
        {"request_id": request_id},
        {"Accept": "application/json"},
        auth_settings=["UserSecurity"],
        _preload_content=False,
        _return_http_data_only=True,
    )
    return json.loads(response.data)


def diarize(api_client: Any, webhook: str | None, **kwargs: Any) -> Any:
    audio = deepaffects.DiarizeAudio(encoding="Wave", sample_rate=8000, content=AUDIO, **kwargs)
    return deepaffects.DiarizeApiV2(api_client=api_client).async_diarize_audio(body=audio, webhook=webhook)


def test_diarize_submit_status_and_result(strict_emulator: EmulatorServer) -> None:
    key = f"conformance-{uuid.uuid4().hex[:10]}"
    api_client = client(strict_emulator, key)
    created = diarize(api_client, WEBHOOK)  # speakers=-1 and audioType "default" as the client sends them
    assert created.request_id and created.api == "diarize"
    sent = strict_emulator.job("deepaffects", created.request_id)["request"]
    assert sent["body"]["speakers"] == -1 and sent["query"]["webhook"] == WEBHOOK
    for _ in range(4):  # within the 5 status requests a minute the docs allow
        time.sleep(1.0)  # the job takes 0.5 s
        body = status(api_client, created.request_id)
        if body["status"] != "Running":
            break
    assert body["status"] == "Completed", body
    result = body["response"]["response"]
    assert body["response"]["request_id"] == created.request_id
    assert result["segments"] and set(result["segments"][0]) == {"speaker_id", "start", "end"}


def test_the_client_cannot_submit_without_a_webhook_and_the_emulator_refuses_it(
    strict_emulator: EmulatorServer,
) -> None:
    key = f"conformance-{uuid.uuid4().hex[:10]}"
    api_client = client(strict_emulator, key)
    with pytest.raises(ValueError, match="webhook"):
        diarize(api_client, None)
    # sent anyway (an empty webhook passes the client's check): refused as params_invalid
    with pytest.raises(ApiException) as refused:
        diarize(api_client, "")
    assert refused.value.status == 400
    assert json.loads(refused.value.body)["type"] == "params_invalid"
    assert strict_emulator.jobs("deepaffects", key) == []


def test_over_five_a_minute_is_a_rate_limit_error(strict_emulator: EmulatorServer) -> None:
    key = f"conformance-{uuid.uuid4().hex[:10]}"
    api_client = client(strict_emulator, key)
    for _ in range(5):
        assert diarize(api_client, WEBHOOK, speakers=2).api == "diarize"
    with pytest.raises(ApiException) as limited:
        diarize(api_client, WEBHOOK)
    assert limited.value.status == 429
    assert json.loads(limited.value.body)["type"] == "rate_limit"
    assert len(strict_emulator.jobs("deepaffects", key)) == 5


def test_over_a_hundred_a_day_is_a_rate_limit_error(strict_emulator: EmulatorServer) -> None:
    key = f"conformance-{uuid.uuid4().hex[:10]}"
    api_client = client(strict_emulator, key)
    request_id = diarize(api_client, WEBHOOK).request_id
    # the per-minute limit off, the day's 100 on: 1 submit + 99 status calls are allowed
    strict_emulator.configure(deepaffects_requests_per_minute=0)
    try:
        for _ in range(99):
            assert status(api_client, request_id)["response"]["request_id"] == request_id
        with pytest.raises(ApiException) as limited:
            status(api_client, request_id)
    finally:
        strict_emulator.configure(deepaffects_requests_per_minute=5)
    assert limited.value.status == 429
    body = json.loads(limited.value.body)
    assert body["type"] == "rate_limit" and "per day" in body["message"]
