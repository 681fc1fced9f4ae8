"""Symbl.ai submissions: where each documented option goes (contracts S3, S4), and the submit loop
at the concurrent-job limit (S8)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from airflow_jobstatus.exceptions import ConcurrencyLimitError, InvalidParameterError
from airflow_jobstatus.hooks.symbl import symbl_submit_request
from airflow_jobstatus.models.symbl import SymblSubmitRequest
from airflow_jobstatus.operators.resubmit import submit_while_limited

NONE: dict[str, Any] = {
    "audio_url": None,
    "video_url": None,
    "messages": None,
    "name": None,
    "language_code": None,
    "enable_speaker_diarization": None,
    "diarization_speaker_count": None,
    "webhook_url": None,
}
CHANNELS = [
    {"channel": 1, "speaker": {"name": "Robert", "email": "robert@example.com"}},
    {"channel": 2, "speaker": {"name": "Arya"}},
]


def test_diarization_goes_in_the_query_and_the_other_options_in_the_body() -> None:
    request = symbl_submit_request(
        **{
            **NONE,
            "audio_url": "https://m.example/a.wav",
            "enable_speaker_diarization": True,
            "diarization_speaker_count": 3,
        },
        detect_entities=True,
        enable_separate_recognition_per_channel=True,
        channel_metadata=CHANNELS,
    )
    assert request == SymblSubmitRequest(
        "/v1/process/audio/url",
        {"enableSpeakerDiarization": "true", "diarizationSpeakerCount": "3"},
        {
            "url": "https://m.example/a.wav",
            "detectEntities": True,
            "enableSeparateRecognitionPerChannel": True,
            "channelMetadata": CHANNELS,
        },
    )
    video = symbl_submit_request(**{**NONE, "video_url": "https://m.example/v.mp4"})
    assert video == SymblSubmitRequest("/v1/process/video/url", {}, {"url": "https://m.example/v.mp4"})
    text = symbl_submit_request(
        **{**NONE, "messages": [{"payload": {"content": "hi"}}]}, detect_entities=False
    )
    assert text.path == "/v1/process/text" and text.params == {} and text.body["detectEntities"] is False


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"detect_entities": "yes"}, "detect_entities must be true or false"),
        ({"enable_separate_recognition_per_channel": 1}, "enable_separate_recognition_per_channel"),
        ({"channel_metadata": CHANNELS}, "channel_metadata needs separate recognition per channel"),
        (
            {
                "enable_separate_recognition_per_channel": True,
                "channel_metadata": [{"channel": 0, "speaker": {}}],
            },
            r"channel_metadata\[0\] needs channel",
        ),
        (
            {
                "enable_separate_recognition_per_channel": True,
                "channel_metadata": [{"channel": 1, "speaker": "x"}],
            },
            r"channel_metadata\[0\] needs speaker",
        ),
        ({"enable_separate_recognition_per_channel": True, "channel_metadata": []}, "non-empty list"),
    ],
)
def test_bad_options_are_named(options: dict[str, Any], named: str) -> None:
    with pytest.raises(InvalidParameterError, match=named):
        symbl_submit_request(**{**NONE, "audio_url": "https://m.example/a.wav"}, **options)


def _limited() -> ConcurrencyLimitError:
    return ConcurrencyLimitError(
        "This API has a limit of maximum of 2 number of concurrent jobs per account",
        service="Symbl.ai",
        operation="submit_job",
        status_code=429,
    )


def test_the_submit_loop_backs_off_up_to_minutes_and_logs_each_wait(caplog: pytest.LogCaptureFixture) -> None:
    answers: list[Any] = [_limited()] * 6 + ["job:conv"]
    slept: list[float] = []

    def send() -> str:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return str(answer)

    log = logging.getLogger("test.symbl.submit")
    with caplog.at_level(logging.WARNING, logger="test.symbl.submit"):
        result = submit_while_limited(
            send, limit_seconds=10_000, log=log, service="Symbl.ai", sleep=slept.append
        )
    assert result == "job:conv"
    assert slept == [15.0, 30.0, 60.0, 120.0, 240.0, 300.0]  # doubling, capped at 5 minutes
    waits = [r.getMessage() for r in caplog.records]
    assert len(waits) == 6 and all("concurrent-job limit is reached" in w for w in waits)
    assert "maximum of 2 number of concurrent jobs" in waits[0] and "Submitting again in 15 s" in waits[0]


def test_the_submit_loop_gives_up_at_its_bound() -> None:
    slept: list[float] = []

    def send() -> str:
        raise _limited()

    with pytest.raises(
        ConcurrencyLimitError, match="still at its limit of concurrent jobs after 1 submission"
    ):
        submit_while_limited(
            send, limit_seconds=10, log=logging.getLogger("t"), service="Symbl.ai", sleep=slept.append
        )
    assert slept == []  # the first wait (15 s) would already pass the 10 s bound


def test_other_errors_are_not_retried() -> None:
    calls = 0

    def send() -> str:
        nonlocal calls
        calls += 1
        raise InvalidParameterError("bad")

    with pytest.raises(InvalidParameterError):
        submit_while_limited(send, limit_seconds=1000, log=logging.getLogger("t"), service="Symbl.ai")
    assert calls == 1
