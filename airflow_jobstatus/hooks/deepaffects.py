"""DeepAffects async API: submit to ``/audio/generic/api/...``, poll the transaction status.

The API key travels in the query string (``apikey``), as the service requires; the HTTP core
redacts it from every URL it prints.
"""

from __future__ import annotations

from typing import Any, Literal

from airflow_jobstatus.exceptions import InvalidParameterError
from airflow_jobstatus.hooks.base import JobServiceHook, Plan
from airflow_jobstatus.http.auth import QueryParamAuth
from airflow_jobstatus.http.client import Call
from airflow_jobstatus.models import JobStatus
from airflow_jobstatus.models.deepaffects import (
    DeepAffectsStatusResponse,
    DeepAffectsSubmitResponse,
    deepaffects_job_status,
)
from airflow_jobstatus.services import DEEPAFFECTS

DeepAffectsApi = Literal["asr", "diarize"]
SUBMIT_PATHS: dict[str, str] = {
    "asr": "/audio/generic/api/v1/async/asr",
    "diarize": "/audio/generic/api/v2/async/diarize",
}
STATUS_PATH = "/transaction/generic/api/v1/async/status"


AUDIO_TYPES: dict[str, tuple[str, ...]] = {
    # Speaker Diarization API and Speech-to-Text API pages, audioType values (contracts A5).
    "asr": ("callcenter", "meeting", "earningscalls", "interview", "media-broadcast"),
    "diarize": ("callcenter", "meeting", "earningscalls", "interview", "media-broadcast"),
}
ERROR_TYPES: dict[str, int] = {
    # Errors page, "Error types" (contracts A7): the body's type decides, as this HTTP status would.
    "params_invalid": 400,  # permanent: fix the parameters
    "unknown_route": 404,
    "queued": 429,  # "try this request again in a few minutes": wait and retry
    "rate_limit": 429,
    "api_error": 503,  # transient
}


def deepaffects_submit_request(
    api: str,
    *,
    url: str | None,
    content: str | None,
    encoding: str,
    sample_rate: int,
    language_code: str,
    speaker_count: int | None = None,
    audio_type: str | None = None,
    enable_punctuation: bool | None = None,
    enable_speaker_diarization: bool | None = None,
    webhook: str | None = None,
    source: str | None = None,
    do_vad: bool | None = None,
    speaker_ids: list[str] | None = None,
    webhook_at_send: bool = False,
) -> tuple[str, dict[str, Any]]:
    """(path, body) of a submission, validated before anything is sent.

    ``webhook`` is checked here too (it travels in the query string, not the body): DeepAffects
    requires it on every async request (contracts A2). ``webhook_at_send`` defers only the
    "required" check, for a caller that adds the webhook when it sends (push completion).
    """

    def bad(message: str, hint: str | None = None) -> InvalidParameterError:
        return InvalidParameterError(message, service="DeepAffects", operation="submit_job", hint=hint)

    if not isinstance(api, str) or api not in SUBMIT_PATHS:  # a list or dict is not even hashable
        raise bad(f"api must be one of {', '.join(SUBMIT_PATHS)}, got {api!r}")
    if webhook is None and webhook_at_send:
        pass  # the sender adds it (and refuses to send without one)
    elif not webhook or not isinstance(webhook, str) or not webhook.startswith(("https://", "http://")):
        raise bad(
            f"webhook is required for DeepAffects async requests, got {webhook!r}",
            hint="Pass webhook= with the http(s) URL DeepAffects should POST the result to; "
            "the task still polls for the result, so any URL you control will do",
        )
    if bool(url) == bool(content):
        raise bad(
            "exactly one of url or content (base64 audio) is needed",
            hint="Pass url= for audio the service can download, or content= with base64-encoded audio",
        )
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or sample_rate <= 0:
        raise bad(f"sample_rate must be a positive integer (Hz), got {sample_rate!r}")
    if not encoding:
        raise bad("encoding is required (e.g. 'wav', 'mp3', 'FLAC', 'LINEAR16')")
    if audio_type is not None and audio_type not in AUDIO_TYPES[api]:
        raise bad(f"audio_type for {api} must be one of {', '.join(AUDIO_TYPES[api])}, got {audio_type!r}")
    if speaker_count is not None:
        if api != "diarize":
            raise bad(
                "speaker_count is a diarize parameter; the asr API takes no speaker count",
                hint="Drop speaker_count=, or pass enable_speaker_diarization=True to tag words by speaker",
            )
        if (
            isinstance(speaker_count, bool)
            or not isinstance(speaker_count, int)
            or (speaker_count < 1 and speaker_count != -1)
        ):
            raise bad(f"speaker_count must be a positive integer or -1 (unknown), got {speaker_count!r}")
    if api == "diarize" and (enable_punctuation is not None or enable_speaker_diarization is not None):
        raise bad("enable_punctuation and enable_speaker_diarization are asr parameters, not diarize ones")
    if api != "diarize" and (do_vad is not None or speaker_ids is not None):
        raise bad("do_vad and speaker_ids are diarize parameters, not asr ones")
    if do_vad is not None and not isinstance(do_vad, bool):
        raise bad(f"do_vad must be true or false, got {do_vad!r}")
    if source is not None and (not isinstance(source, str) or not source):
        raise bad(f"source must be a non-empty string (e.g. 'zoom', 'webex', 'phone'), got {source!r}")
    if speaker_ids is not None and (
        not isinstance(speaker_ids, list | tuple) or not all(isinstance(i, str) and i for i in speaker_ids)
    ):
        raise bad(f"speaker_ids must be a list of speaker id strings, got {speaker_ids!r}")
    body: dict[str, Any] = {"encoding": encoding, "sampleRate": sample_rate, "languageCode": language_code}
    body["url" if url else "content"] = url or content
    optional = {
        "speakers": speaker_count,  # the documented name (contracts A3), -1 = unknown
        "audioType": audio_type,
        "enablePunctuation": enable_punctuation,
        "enableSpeakerDiarization": enable_speaker_diarization,
        "source": source,
        "doVad": do_vad,
        "speakerIds": list(speaker_ids) if speaker_ids is not None else None,
    }
    body.update({k: v for k, v in optional.items() if v is not None})
    return SUBMIT_PATHS[api], body


class DeepAffectsHook(JobServiceHook):
    """DeepAffects async ASR and diarization.

    :param deepaffects_conn_id: a ``deepaffects`` connection (password = API key).
    """

    spec = DEEPAFFECTS
    conn_name_attr = "deepaffects_conn_id"
    default_conn_name = DEEPAFFECTS.default_conn_id
    conn_type = DEEPAFFECTS.conn_type
    hook_name = DEEPAFFECTS.display_name

    def __init__(self, deepaffects_conn_id: str = DEEPAFFECTS.default_conn_id, **kwargs: Any) -> None:
        super().__init__(deepaffects_conn_id, **kwargs)

    def _auth(self, conn: Any, extra: dict[str, Any]) -> tuple[Any, list[str]]:
        key = self._require(conn.password, "password")
        return QueryParamAuth("apikey", key), [key]

    def _configure(self, client: Any, conn: Any, extra: dict[str, Any]) -> None:
        client.error_types = ERROR_TYPES

    def _get_job(self, job_id: str) -> Plan[JobStatus]:
        resp = yield Call(
            "get_job",
            "GET",
            STATUS_PATH,
            DeepAffectsStatusResponse,
            params={"request_id": job_id},
            job_id=job_id,
        )
        try:
            return deepaffects_job_status(resp, job_id)
        except ValueError as exc:
            raise self.malformed("get_job", str(exc), job_id=job_id) from None

    def _submit(  # type: ignore[override]  # until a SubmitRequest describes it
        self, path: str, body: dict[str, Any], webhook: str | None, request_id: str | None
    ) -> Plan[str]:
        created = yield Call(
            "submit_job",
            "POST",
            path,
            DeepAffectsSubmitResponse,
            params={"webhook": webhook, "request_id": request_id},
            json=body,
            # The docs do not promise that a resent request_id returns the same job: a POST that may
            # have been processed is never resent, request_id or not.
            idempotent=False,
        )
        return self.usable_id("submit_job", created.request_id, what="request_id")

    def submit_job(  # type: ignore[override]  # until a SubmitRequest describes it
        self,
        api: DeepAffectsApi,
        *,
        url: str | None = None,
        content: str | None = None,
        encoding: str = "wav",
        sample_rate: int = 16000,
        language_code: str = "en-US",
        speaker_count: int | None = None,
        audio_type: str | None = None,
        enable_punctuation: bool | None = None,
        enable_speaker_diarization: bool | None = None,
        webhook: str | None = None,
        request_id: str | None = None,
        source: str | None = None,
        do_vad: bool | None = None,
        speaker_ids: list[str] | None = None,
    ) -> str:
        """Submit an async ``asr`` or ``diarize`` request; return its ``request_id``.

        ``webhook`` is required (DeepAffects refuses async requests without one): the http(s) URL
        the service POSTs the result to. ``speaker_count`` (``diarize`` only; sent as ``speakers``)
        is the number of speakers, -1 for unknown (the service's default). ``enable_punctuation`` and
        ``enable_speaker_diarization`` are ``asr`` options (diarization defaults to off).
        ``audio_type`` is one of ``callcenter``, ``meeting``, ``earningscalls``, ``interview``,
        ``media-broadcast``. ``source`` (``webex``, ``zoom``, ``gotomeeting``, ``phone``) picks a
        model built for that source; ``do_vad`` and ``speaker_ids`` are ``diarize`` options
        (remove silence and noise; speakers to identify). Without a ``webhook`` or with a bad parameter,
        `InvalidParameterError` is raised before anything is sent.
        ``request_id`` is sent as given (the docs show it as optional); they do not say that resending
        one returns the same job, so do not rely on it to de-duplicate a submission.
        """
        path, body = deepaffects_submit_request(
            api,
            url=url,
            content=content,
            encoding=encoding,
            sample_rate=sample_rate,
            language_code=language_code,
            speaker_count=speaker_count,
            audio_type=audio_type,
            enable_punctuation=enable_punctuation,
            enable_speaker_diarization=enable_speaker_diarization,
            webhook=webhook,
            source=source,
            do_vad=do_vad,
            speaker_ids=speaker_ids,
        )
        return self.run(self._submit(path, body, webhook, request_id))

    async def asubmit_job(  # type: ignore[override]  # until a SubmitRequest describes it
        self,
        api: DeepAffectsApi,
        *,
        url: str | None = None,
        content: str | None = None,
        encoding: str = "wav",
        sample_rate: int = 16000,
        language_code: str = "en-US",
        speaker_count: int | None = None,
        audio_type: str | None = None,
        enable_punctuation: bool | None = None,
        enable_speaker_diarization: bool | None = None,
        webhook: str | None = None,
        request_id: str | None = None,
        source: str | None = None,
        do_vad: bool | None = None,
        speaker_ids: list[str] | None = None,
    ) -> str:
        path, body = deepaffects_submit_request(
            api,
            url=url,
            content=content,
            encoding=encoding,
            sample_rate=sample_rate,
            language_code=language_code,
            speaker_count=speaker_count,
            audio_type=audio_type,
            enable_punctuation=enable_punctuation,
            enable_speaker_diarization=enable_speaker_diarization,
            webhook=webhook,
            source=source,
            do_vad=do_vad,
            speaker_ids=speaker_ids,
        )
        return await self.arun(self._submit(path, body, webhook, request_id))

    def _test_connection(self) -> Plan[str]:
        from airflow_jobstatus.exceptions import NotFoundError

        try:
            yield Call(
                "test_connection", "GET", STATUS_PATH, params={"request_id": "airflow-connection-test"}
            )
        except NotFoundError:
            pass  # the key was accepted; the probe id simply does not exist
        return "Connected to DeepAffects: the API key was accepted"
