"""`SymblSubmitJobOperator`: submit audio, video or text to Symbl.ai's Async API and wait for it."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any, cast

from airflow.sdk import Context

from airflow_jobstatus.exceptions import InvalidParameterError
from airflow_jobstatus.hooks.symbl import SymblHook, symbl_submit_request
from airflow_jobstatus.operators.base import (
    JobSubmitOperator,
    as_bool,
    as_int,
    as_seconds,
    need_structure,
)
from airflow_jobstatus.operators.resubmit import BACKOFF_INITIAL, BACKOFF_MAX, submit_while_limited
from airflow_jobstatus.push.submit import with_push_webhook
from airflow_jobstatus.services import SYMBL

AUDIO_ONLY = (
    "language_code",
    "enable_speaker_diarization",
    "diarization_speaker_count",
    "enable_separate_recognition_per_channel",
    "channel_metadata",
)
DEFAULT_CONCURRENCY_WAIT = 3600.0
"""Seconds the operator keeps submitting again while the account is at its concurrent-job limit."""


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
    :param enable_speaker_diarization: separate the speakers (audio and video only; sent as the
        ``enableSpeakerDiarization`` query parameter) (templated).
    :param diarization_speaker_count: how many speakers, with ``enable_speaker_diarization=True``
        (the ``diarizationSpeakerCount`` query parameter) (templated).
    :param webhook_url: a URL Symbl.ai calls on every status change (templated). Unset, with
        ``[jobstatus] webhook_base_url`` configured and a ``webhook_token`` in the connection, the
        push-completion receiver's URL is passed (README "Push completion"); a value given here wins.
    :param detect_entities: detect entities, read with the Conversation API's ``/entities``
        (``detectEntities``; Symbl's default is false) (templated).
    :param enable_separate_recognition_per_channel: one speaker per audio channel (audio and video
        only; ``enableSeparateRecognitionPerChannel``) (templated).
    :param channel_metadata: who speaks on each channel, with
        ``enable_separate_recognition_per_channel=True``:
        ``[{"channel": 1, "speaker": {"name": "...", "email": "..."}}, ...]`` (templated).
    :param concurrency_wait_timeout: seconds (or a timedelta) to keep submitting again while Symbl.ai
        answers 429 because the account runs its maximum number of concurrent jobs. The operator
        waits 15 s, doubling up to 5 minutes between attempts, and logs each wait with the reason;
        past this bound (or the ``timeout``) the task fails with `ConcurrencyLimitError`. Default
        1 hour. With ``[jobstatus] redis_url`` set, a submission first waits (as long) for a free
        slot under the connection's ``max_concurrent_jobs``, shared by every worker (README).
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
        "detect_entities",
        "enable_separate_recognition_per_channel",
        "channel_metadata",
    )
    #: the backoff between submissions refused at the concurrency limit (seconds)
    concurrency_backoff_initial: float = BACKOFF_INITIAL
    concurrency_backoff_max: float = BACKOFF_MAX

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
        detect_entities: bool | None = None,
        enable_separate_recognition_per_channel: bool | None = None,
        channel_metadata: list[dict[str, Any]] | None = None,
        concurrency_wait_timeout: float | timedelta = DEFAULT_CONCURRENCY_WAIT,
        symbl_conn_id: str = SYMBL.default_conn_id,
        **kwargs: Any,
    ) -> None:
        super().__init__(conn_id=symbl_conn_id, **kwargs)
        self.concurrency_wait_timeout = as_seconds(concurrency_wait_timeout, "concurrency_wait_timeout")
        if self.concurrency_wait_timeout < 0:
            raise InvalidParameterError(
                f"concurrency_wait_timeout must not be negative, got {concurrency_wait_timeout!r}",
                service="Symbl.ai",
            )
        self.audio_url = audio_url
        self.video_url = video_url
        self.messages = messages
        self.name = name
        self.language_code = language_code
        self.enable_speaker_diarization = enable_speaker_diarization
        self.diarization_speaker_count = diarization_speaker_count
        self.webhook_url = webhook_url
        self.detect_entities = detect_entities
        self.enable_separate_recognition_per_channel = enable_separate_recognition_per_channel
        self.channel_metadata = channel_metadata
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
            "detect_entities": as_bool(self.detect_entities),
            "enable_separate_recognition_per_channel": as_bool(self.enable_separate_recognition_per_channel),
            "channel_metadata": need_structure(self.channel_metadata, "channel_metadata", list, "Symbl.ai"),
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

    def _send(self, submit_kwargs: dict[str, Any], context: Context) -> str:
        """Submit; while the account is at its concurrent-job limit, wait and submit again."""
        hook = cast(SymblHook, self.hook)
        submit_kwargs = with_push_webhook(submit_kwargs, "webhook_url", hook)  # push completion
        deadline = getattr(self, "_deadline", None)
        limit = self.concurrency_wait_timeout
        if deadline is not None:
            limit = min(limit, max(0.0, deadline - time.time()))
        return submit_while_limited(
            lambda: hook.submit_job(**submit_kwargs),
            limit_seconds=limit,
            log=self.log,
            service=self.spec.display_name,
            initial=self.concurrency_backoff_initial,
            maximum=self.concurrency_backoff_max,
        )
