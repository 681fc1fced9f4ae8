"""Symbl.ai submissions: where each documented option goes (contracts S3, S4), and the submit loop
at the concurrent-job limit (S8)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from airflow_jobstatus.exceptions import ConcurrencyLimitError, InvalidParameterError
from airflow_jobstatus.operators.resubmit import submit_while_limited
from airflow_jobstatus.services.symbl import SymblSubmitRequest

AUDIO = {"audio_url": "https://m.example/a.wav"}
CHANNELS = [
    {"channel": 1, "speaker": {"name": "Robert", "email": "robert@example.com"}},
    {"channel": 2, "speaker": {"name": "Arya"}},
]


def request(**fields: Any) -> SymblSubmitRequest:
    return SymblSubmitRequest.of("Symbl.ai", fields)


def test_diarization_goes_in_the_query_and_the_other_options_in_the_body() -> None:
    call = request(
        **AUDIO,
        enable_speaker_diarization=True,
        diarization_speaker_count=3,
        detect_entities=True,
        enable_separate_recognition_per_channel=True,
        channel_metadata=CHANNELS,
    ).call()
    assert (call.method, call.path) == ("POST", "/v1/process/audio/url")
    assert call.params == {"enableSpeakerDiarization": "true", "diarizationSpeakerCount": "3"}
    assert call.json == {
        "url": "https://m.example/a.wav",
        "detectEntities": True,
        "enableSeparateRecognitionPerChannel": True,
        "channelMetadata": CHANNELS,
    }
    video = request(video_url="https://m.example/v.mp4", name="", webhook_url="").call()
    assert (video.path, video.params, video.json) == (
        "/v1/process/video/url",
        None,
        {"url": "https://m.example/v.mp4"},
    )
    text = request(messages=[{"payload": {"content": "hi"}}], detect_entities=False, name="n").call()
    assert text.path == "/v1/process/text" and text.params is None
    assert text.json == {"name": "n", "detectEntities": False, "messages": [{"payload": {"content": "hi"}}]}
    rendered = request(**AUDIO, enable_speaker_diarization="false", diarization_speaker_count=None).call()
    assert rendered.params == {"enableSpeakerDiarization": "false"}  # template text -> bool


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"detect_entities": "yes"}, "detect_entities"),
        ({"enable_separate_recognition_per_channel": 1}, "enable_separate_recognition_per_channel"),
        ({"channel_metadata": CHANNELS}, "channel_metadata needs separate recognition per channel"),
        (
            {
                "enable_separate_recognition_per_channel": True,
                "channel_metadata": [{"channel": 0, "speaker": {}}],
            },
            r"channel_metadata\[0\]\.channel should be greater than or equal to 1, got 0",
        ),
        (
            {
                "enable_separate_recognition_per_channel": True,
                "channel_metadata": [{"channel": 1, "speaker": "x"}],
            },
            r"channel_metadata\[0\]\.speaker should be a valid dictionary, got 'x'",
        ),
        (
            {
                "enable_separate_recognition_per_channel": True,
                "channel_metadata": [{"channel": True, "speaker": {"name": 5}}],
            },
            r"channel_metadata\[0\]\.channel should be a valid integer, got True; "
            r"channel_metadata\[0\]\.speaker\.name should be a valid string, got 5",
        ),
        (
            {"enable_separate_recognition_per_channel": True, "channel_metadata": []},
            r"channel_metadata should have at least 1 item after validation, not 0, got \[\]",
        ),
        (
            {"diarization_speaker_count": 0, "enable_speaker_diarization": True},
            "diarization_speaker_count should be greater than or equal to 1, got 0",
        ),
        (
            {"diarization_speaker_count": True, "enable_speaker_diarization": True},
            "diarization_speaker_count",
        ),
        ({"diarization_speaker_count": 2}, "needs speaker diarization"),
        ({"video_url": "https://m.example/v.mp4"}, "exactly one source is needed, got 2"),
    ],
)
def test_bad_options_are_named(options: dict[str, Any], named: str) -> None:
    with pytest.raises(InvalidParameterError, match=named) as info:
        request(**AUDIO, **options)
    if "channel_metadata[" in str(info.value):  # a wrong shape: the hint shows the right one
        assert '[{"channel": 1, "speaker": {"name": ' in (info.value.hint or "")


def test_text_refuses_the_audio_only_options_and_needs_message_content() -> None:
    text = {"messages": [{"payload": {"content": "hi"}}]}
    with pytest.raises(InvalidParameterError, match="language_code applies only to audio or video") as info:
        request(**text, language_code="en-US")
    assert "Remove language_code" in info.value.hint
    with pytest.raises(
        InvalidParameterError, match=r"messages\[0\]\.payload\.content should be a valid string, got 1"
    ) as info:
        request(messages=[{"payload": {"content": 1}}])
    assert info.value.hint is not None and '{"payload": {"content": "..."' in info.value.hint
    with pytest.raises(InvalidParameterError, match=r"messages\[1\]\.payload: Field required"):
        request(messages=[{"payload": {"content": "hi"}}, {"content": "hi"}])
    # keys Symbl documents besides the checked ones go out as given
    sent = [
        {"payload": {"content": "hi", "contentType": "text/plain"}, "from": {"name": "Ann"}, "duration": {}}
    ]
    assert request(messages=sent).call().json == {"messages": sent}
    with pytest.raises(InvalidParameterError, match="exactly one source is needed, got 0"):
        request(messages=[], audio_url="")


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
