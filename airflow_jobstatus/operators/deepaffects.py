"""`DeepAffectsSubmitJobOperator`: submit a DeepAffects async ASR or diarization request and wait for it."""

from __future__ import annotations

import base64
import uuid
from typing import Any, cast

from airflow.sdk import Context

from airflow_jobstatus.hooks.deepaffects import DeepAffectsHook, deepaffects_submit_request
from airflow_jobstatus.operators.base import (
    InvalidSubmissionError,
    JobSubmitOperator,
    as_bool,
    as_int,
    as_structure,
)
from airflow_jobstatus.push.submit import with_push_webhook
from airflow_jobstatus.services import DEEPAFFECTS


def new_request_id() -> str:
    """A ``request_id`` for one submission: new every time, never derived from the task instance.

    The DeepAffects docs show ``request_id`` as an optional query parameter and do not say what
    re-sending one does, so an id is never sent twice: a rerun gets a new job, not an earlier
    result. It is logged before the request, so a job whose id never reached the task state store
    (the worker died in between) can still be found.
    """
    return str(uuid.uuid4())


class DeepAffectsSubmitJobOperator(JobSubmitOperator):
    """Submit a DeepAffects async request (``asr`` or ``diarize``) and, by default, wait for it.

    See `JobSubmitOperator` for waiting, retries (a retry resumes the recorded job), clears (a new
    job) and what it returns. Every submission sends a new ``request_id`` (logged before the request).

    :param api: ``asr`` (speech to text) or ``diarize`` (who spoke when) (templated).
    :param url: an audio file URL the service downloads (templated).
    :param content: the audio itself, base64-encoded (bytes are encoded for you) (templated).
        Exactly one of ``url`` and ``content``.
    :param encoding: the audio encoding, e.g. ``wav``, ``mp3``, ``FLAC``, ``LINEAR16``. Default
        ``wav`` (templated).
    :param sample_rate: in Hz. Default 16000 (templated).
    :param language_code: Default ``en-US`` (templated).
    :param speaker_count: how many speakers, -1 for unknown (the service's default); ``diarize``
        only, sent as ``speakers`` (templated).
    :param audio_type: ``callcenter``, ``meeting``, ``earningscalls``, ``interview`` or
        ``media-broadcast`` (templated).
    :param enable_punctuation: ``asr`` only (templated).
    :param enable_speaker_diarization: ``asr`` only; the service's default is off (templated).
    :param source: where the audio comes from (``webex``, ``zoom``, ``gotomeeting``, ``phone``),
        for a model built for it (templated).
    :param do_vad: ``diarize`` only: remove silence and noise segments (templated).
    :param speaker_ids: ``diarize`` only: speakers to identify (templated).
    :param webhook: the http(s) URL DeepAffects POSTs the result to; the service refuses async
        requests without one (templated). Unset, with ``[jobstatus] webhook_base_url`` configured
        and a ``webhook_token`` in the connection, the push-completion receiver's URL is passed
        (README "Push completion"); otherwise it is required. A value given here wins. The task
        still polls for the result, so without push any URL you control will do.
    :param deepaffects_conn_id: a ``deepaffects`` connection. Default ``deepaffects_default``.
    """

    spec = DEEPAFFECTS
    hook_class = DeepAffectsHook
    template_fields = (
        "api",
        "url",
        "content",
        "encoding",
        "sample_rate",
        "language_code",
        "speaker_count",
        "audio_type",
        "enable_punctuation",
        "enable_speaker_diarization",
        "webhook",
        "source",
        "do_vad",
        "speaker_ids",
    )

    def __init__(
        self,
        *,
        api: str,
        url: str | None = None,
        content: str | bytes | None = None,
        encoding: str = "wav",
        sample_rate: int = 16000,
        language_code: str = "en-US",
        speaker_count: int | None = None,
        audio_type: str | None = None,
        enable_punctuation: bool | None = None,
        enable_speaker_diarization: bool | None = None,
        webhook: str | None = None,
        source: str | None = None,
        do_vad: bool | None = None,
        speaker_ids: list[str] | None = None,
        deepaffects_conn_id: str = DEEPAFFECTS.default_conn_id,
        **kwargs: Any,
    ) -> None:
        super().__init__(conn_id=deepaffects_conn_id, **kwargs)
        self.api = api
        self.url = url
        self.content = content
        self.encoding = encoding
        self.sample_rate = sample_rate
        self.language_code = language_code
        self.speaker_count = speaker_count
        self.audio_type = audio_type
        self.enable_punctuation = enable_punctuation
        self.enable_speaker_diarization = enable_speaker_diarization
        self.webhook = webhook
        self.source = source
        self.do_vad = do_vad
        self.speaker_ids = speaker_ids
        self.deepaffects_conn_id = deepaffects_conn_id
        self._check_literal_parameters()

    def _submission(self) -> tuple[dict[str, Any], Any]:
        content = self.content
        if isinstance(content, bytes | bytearray):
            content = base64.b64encode(content).decode("ascii")
        kwargs: dict[str, Any] = {
            "api": self.api,
            "url": self.url or None,
            "content": content or None,
            "encoding": self.encoding,
            "sample_rate": as_int(self.sample_rate),
            "language_code": self.language_code,
            "speaker_count": as_int(self.speaker_count),
            "audio_type": self.audio_type or None,
            "enable_punctuation": as_bool(self.enable_punctuation),
            "enable_speaker_diarization": as_bool(self.enable_speaker_diarization),
            "webhook": self.webhook or None,
            "source": self.source or None,
            "do_vad": as_bool(self.do_vad),
            "speaker_ids": as_structure(self.speaker_ids),
        }
        # without a webhook, push completion may supply one when the job is sent (`_send`)
        path, body = deepaffects_submit_request(**kwargs, webhook_at_send=True)
        return kwargs, [path, body, kwargs["webhook"]]

    def _send(self, submit_kwargs: dict[str, Any], context: Context) -> str:
        request_id = new_request_id()
        self.log.info("Submitting DeepAffects request_id %s", request_id)
        submit_kwargs = with_push_webhook(submit_kwargs, "webhook", self.hook)  # push completion
        if not submit_kwargs.get("webhook"):
            raise InvalidSubmissionError(
                "webhook is required for DeepAffects async requests: pass webhook= with the http(s) URL "
                "DeepAffects should POST the result to, or configure push completion ([jobstatus] "
                "webhook_base_url and the connection's webhook_token; README 'Push completion')"
            )
        return cast(DeepAffectsHook, self.hook).submit_job(**submit_kwargs, request_id=request_id)
