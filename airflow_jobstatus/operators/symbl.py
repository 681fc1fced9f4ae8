"""`SymblSubmitJobOperator`: submit audio, video or text to Symbl.ai's Async API and wait for it."""

from __future__ import annotations

from typing import Any

from airflow_jobstatus.exceptions import InvalidParameterError
from airflow_jobstatus.hooks.symbl import SymblHook, symbl_submit_request
from airflow_jobstatus.operators.base import JobSubmitOperator, as_bool, as_int, need_structure
from airflow_jobstatus.services import SYMBL

AUDIO_ONLY = ("language_code", "enable_speaker_diarization", "diarization_speaker_count")


class SymblSubmitJobOperator(JobSubmitOperator):
    """Submit to Symbl.ai's Async API and, by default, wait for the job.

    See `JobSubmitOperator` for waiting, retries (a retry resumes the recorded job) and what it returns.
    The job id is ``"<jobId>:<conversationId>"`` (the conversation holds the outputs).

    :param audio_url: an audio file URL (``POST /v1/process/audio/url``) (templated).
    :param video_url: a video file URL (``POST /v1/process/video/url``) (templated).
    :param messages: text messages (``POST /v1/process/text``), each
        ``{"payload": {"content": "...", "contentType": "text/plain"}, ...}`` (templated).
        Exactly one of ``audio_url``, ``video_url`` and ``messages``.
    :param name: the conversation's name (templated).
    :param language_code: e.g. ``en-US`` (audio and video only) (templated).
    :param enable_speaker_diarization: separate the speakers (audio and video only) (templated).
    :param diarization_speaker_count: how many speakers, with ``enable_speaker_diarization=True``
        (templated).
    :param webhook_url: a URL Symbl.ai calls when the job ends (templated).
    :param symbl_conn_id: a ``symbl`` connection. Default ``symbl_default``.
    """

    spec = SYMBL
    hook_class = SymblHook
    template_fields = (
        "audio_url",
        "video_url",
        "messages",
        "name",
        "language_code",
        "enable_speaker_diarization",
        "diarization_speaker_count",
        "webhook_url",
    )

    def __init__(
        self,
        *,
        audio_url: str | None = None,
        video_url: str | None = None,
        messages: list[dict[str, Any]] | None = None,
        name: str | None = None,
        language_code: str | None = None,
        enable_speaker_diarization: bool | None = None,
        diarization_speaker_count: int | None = None,
        webhook_url: str | None = None,
        symbl_conn_id: str = SYMBL.default_conn_id,
        **kwargs: Any,
    ) -> None:
        super().__init__(conn_id=symbl_conn_id, **kwargs)
        self.audio_url = audio_url
        self.video_url = video_url
        self.messages = messages
        self.name = name
        self.language_code = language_code
        self.enable_speaker_diarization = enable_speaker_diarization
        self.diarization_speaker_count = diarization_speaker_count
        self.webhook_url = webhook_url
        self.symbl_conn_id = symbl_conn_id
        self._check_literal_parameters()

    def _submission(self) -> tuple[dict[str, Any], Any]:
        kwargs: dict[str, Any] = {
            "audio_url": self.audio_url or None,
            "video_url": self.video_url or None,
            "messages": need_structure(self.messages, "messages", list, "Symbl.ai") or None,
            "name": self.name or None,
            "language_code": self.language_code or None,
            "enable_speaker_diarization": as_bool(self.enable_speaker_diarization),
            "diarization_speaker_count": as_int(self.diarization_speaker_count),
            "webhook_url": self.webhook_url or None,
        }

        def bad(message: str, hint: str) -> InvalidParameterError:
            return InvalidParameterError(message, service="Symbl.ai", operation="submit_job", hint=hint)

        if kwargs["messages"] and not (kwargs["audio_url"] or kwargs["video_url"]):
            given = [k for k in AUDIO_ONLY if kwargs[k] is not None]
            if given:
                raise bad(
                    f"{', '.join(given)} {'applies' if len(given) == 1 else 'apply'} to audio_url or video_url only, not to messages",
                    f"Remove {', '.join(given)}, or submit audio or video instead of text",
                )
        if (
            kwargs["diarization_speaker_count"] is not None
            and kwargs["enable_speaker_diarization"] is not True
        ):
            raise bad(
                "diarization_speaker_count needs speaker diarization",
                "Pass enable_speaker_diarization=True with diarization_speaker_count",
            )
        return kwargs, symbl_submit_request(**kwargs)
