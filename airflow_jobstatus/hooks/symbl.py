"""Symbl.ai: an appId/appSecret token exchange, then Bearer calls to the Job and Conversation APIs.

Job references: Symbl's job status answers only ``{id, status}``, while the outputs live under the
conversation. `SymblHook.submit_job` therefore returns ``"<jobId>:<conversationId>"``, and every
method accepts that form or a bare ``jobId`` (then no outputs can be listed).
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
import weakref
from typing import Any

from airflow_jobstatus.exceptions import (
    ConcurrencyLimitError,
    InvalidParameterError,
    MalformedResponseError,
    RateLimitedError,
)
from airflow_jobstatus.hooks.base import JobServiceHook, Plan, await_shared, segment, start_shared
from airflow_jobstatus.http.auth import RefreshableTokenAuth
from airflow_jobstatus.http.client import Call, ServiceClient
from airflow_jobstatus.models import JobStatus
from airflow_jobstatus.models.symbl import (
    SymblJob,
    SymblSubmitRequest,
    SymblSubmitResponse,
    SymblToken,
    symbl_job_status,
)
from airflow_jobstatus.services import SYMBL

TOKEN_PATH = "/oauth2/token:generate"


def split_job_ref(ref: str) -> tuple[str, str | None]:
    """``"jobId:conversationId"`` or ``"jobId"`` -> (jobId, conversationId or None)."""
    job_id, _, conversation_id = ref.partition(":")
    return job_id, (conversation_id or None)


def _bad(message: str, hint: str | None = None) -> InvalidParameterError:
    return InvalidParameterError(message, service="Symbl.ai", operation="submit_job", hint=hint)


def _check_bool(name: str, value: Any) -> None:
    if value is not None and not isinstance(value, bool):
        raise _bad(f"{name} must be true or false, got {value!r}")


def _check_channel_metadata(channel_metadata: Any) -> None:
    """Contracts S3: ``[{"channel": <int>, "speaker": {"name"?: str, "email"?: str}}, ...]``."""
    example = '[{"channel": 1, "speaker": {"name": "Robert", "email": "robert@example.com"}}]'
    if not isinstance(channel_metadata, list) or not channel_metadata:
        raise _bad(
            f"channel_metadata must be a non-empty list, got {channel_metadata!r:.80}",
            f"Give it as {example}",
        )
    for i, entry in enumerate(channel_metadata):
        channel = entry.get("channel") if isinstance(entry, dict) else None
        speaker = entry.get("speaker") if isinstance(entry, dict) else None
        if isinstance(channel, bool) or not isinstance(channel, int) or channel < 1:
            raise _bad(f"channel_metadata[{i}] needs channel (a positive integer)", f"Give it as {example}")
        if not isinstance(speaker, dict) or not all(
            isinstance(speaker.get(k), str) for k in ("name", "email") if k in speaker
        ):
            raise _bad(
                f"channel_metadata[{i}] needs speaker, an object with optional name and email strings",
                f"Give it as {example}",
            )


def symbl_submit_request(
    *,
    audio_url: str | None,
    video_url: str | None,
    messages: list[dict[str, Any]] | None,
    name: str | None,
    language_code: str | None,
    enable_speaker_diarization: bool | None,
    diarization_speaker_count: int | None,
    webhook_url: str | None,
    detect_entities: bool | None = None,
    enable_separate_recognition_per_channel: bool | None = None,
    channel_metadata: list[dict[str, Any]] | None = None,
) -> SymblSubmitRequest:
    """The Async API submission (path, query, body), validated before anything is sent.

    ``detect_entities`` applies to every source; speaker diarization and separate recognition per
    channel to audio and video URLs only. ``enable_speaker_diarization`` and
    ``diarization_speaker_count`` go in the query string (contracts S4).
    """
    given = [k for k, v in (("audio_url", audio_url), ("video_url", video_url), ("messages", messages)) if v]
    if len(given) != 1:
        raise _bad(
            f"exactly one source is needed, got {len(given)} ({', '.join(given) or 'none'})",
            "Pass exactly one of audio_url, video_url or messages",
        )
    _check_bool("detect_entities", detect_entities)
    body: dict[str, Any] = {}
    if name:
        body["name"] = name
    if webhook_url:
        body["webhookUrl"] = webhook_url
    if detect_entities is not None:
        body["detectEntities"] = detect_entities
    if messages:
        for i, message in enumerate(messages):
            payload = message.get("payload") if isinstance(message, dict) else None
            if not isinstance(payload, dict) or not isinstance(payload.get("content"), str):
                raise _bad(
                    f"messages[{i}] needs payload.content (a string)",
                    'Give each message as {"payload": {"content": "...", "contentType": "text/plain"}}',
                )
        body["messages"] = messages
        return SymblSubmitRequest("/v1/process/text", {}, body)
    _check_bool("enable_speaker_diarization", enable_speaker_diarization)
    _check_bool("enable_separate_recognition_per_channel", enable_separate_recognition_per_channel)
    if diarization_speaker_count is not None and (
        isinstance(diarization_speaker_count, bool)
        or not isinstance(diarization_speaker_count, int)
        or diarization_speaker_count < 1
    ):
        raise _bad(f"diarization_speaker_count must be a positive integer, got {diarization_speaker_count!r}")
    if channel_metadata is not None:
        _check_channel_metadata(channel_metadata)
        if enable_separate_recognition_per_channel is not True:
            raise _bad(
                "channel_metadata needs separate recognition per channel (Symbl ignores it otherwise)",
                "Pass enable_separate_recognition_per_channel=True with channel_metadata",
            )
    body["url"] = audio_url or video_url
    if language_code:
        body["languageCode"] = language_code
    if enable_separate_recognition_per_channel is not None:
        body["enableSeparateRecognitionPerChannel"] = enable_separate_recognition_per_channel
    if channel_metadata is not None:
        body["channelMetadata"] = channel_metadata
    params: dict[str, str] = {}
    if enable_speaker_diarization is not None:
        params["enableSpeakerDiarization"] = "true" if enable_speaker_diarization else "false"
    if diarization_speaker_count is not None:
        params["diarizationSpeakerCount"] = str(diarization_speaker_count)
    path = "/v1/process/audio/url" if audio_url else "/v1/process/video/url"
    return SymblSubmitRequest(path, params, body)


class SymblTokenSource:
    """One cached token per (API, appId, secret) in this process; concurrent callers share one exchange.

    The token is refreshed shortly before it expires and at once when a call gets a 401.
    """

    def __init__(self, client: ServiceClient, app_id: str, app_secret: str) -> None:
        self.client = client
        self._body = {"type": "application", "appId": app_id, "appSecret": app_secret}
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = threading.Lock()
        self._inflight: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task[str]] = (
            weakref.WeakKeyDictionary()
        )
        self.exchanges = 0

    def __repr__(self) -> str:
        return f"SymblTokenSource(appId={self._body['appId']!r}, appSecret=***)"

    def _valid(self) -> str | None:
        return self._token if self._token and time.monotonic() < self._expires_at else None

    def _store(self, token: SymblToken) -> str:
        value = token.accessToken
        if not value or not value.isascii() or not value.isprintable() or value != value.strip():
            # it goes into an Authorization header as is: refuse what no header can carry
            raise MalformedResponseError(
                "the token response holds no usable accessToken",
                service=SYMBL.display_name,
                operation="get_token",
            )
        # clamped to a year: an absurd expiresIn (beyond float range) must not overflow
        lifetime = float(max(0, min(token.expiresIn, 365 * 86400)))
        margin = min(60.0, lifetime * 0.1)
        self._token = token.accessToken
        self._expires_at = time.monotonic() + lifetime - margin
        self.exchanges += 1
        return token.accessToken

    def _call(self) -> Call:
        return Call(
            "get_token", "POST", TOKEN_PATH, SymblToken, json=self._body, idempotent=True, no_auth=True
        )

    def get(self) -> str:
        with self._lock:
            token = self._valid()
            if token is None:
                token = self._store(self.client.execute(self._call()))
            return token

    async def aget(self) -> str:
        token = self._valid()
        if token is not None:
            return token
        loop = asyncio.get_running_loop()
        pending = self._inflight.get(loop)
        if pending is None:
            # A task of its own: a caller cancelled mid-exchange cancels only its own wait.
            pending = self._inflight[loop] = start_shared(self._exchange(loop), "symbl-token")
        return await await_shared(pending, service=SYMBL.display_name, operation="get_token")

    async def _exchange(self, loop: asyncio.AbstractEventLoop) -> str:
        try:
            return self._store(await self.client.aexecute(self._call()))
        finally:
            self._inflight.pop(loop, None)

    def invalidate(self, token: str) -> None:
        if token == self._token:
            self._token = None
            self._expires_at = 0.0


_token_sources: dict[tuple[str, str, str], SymblTokenSource] = {}
_token_sources_lock = threading.Lock()


class SymblHook(JobServiceHook):
    """Symbl.ai Async, Job and Conversation APIs.

    :param symbl_conn_id: a ``symbl`` connection (login = App ID, password = App secret).
    """

    spec = SYMBL
    conn_name_attr = "symbl_conn_id"
    default_conn_name = SYMBL.default_conn_id
    conn_type = SYMBL.conn_type
    hook_name = SYMBL.display_name

    def __init__(self, symbl_conn_id: str = SYMBL.default_conn_id, **kwargs: Any) -> None:
        super().__init__(symbl_conn_id, **kwargs)

    def _auth(self, conn: Any, extra: dict[str, Any]) -> tuple[Any, list[str]]:
        self._app_id = self._require(conn.login, "login")
        self._app_secret = self._require(conn.password, "password")
        self._token_auth = RefreshableTokenAuth(_PendingSource())
        return self._token_auth, [self._app_secret]

    def _configure(self, client: ServiceClient, conn: Any, extra: dict[str, Any]) -> None:
        digest = hashlib.sha256(self._app_secret.encode()).hexdigest()
        key = (client.base_url, self._app_id, digest)
        with _token_sources_lock:
            source = _token_sources.get(key)
            if source is None:
                source = _token_sources[key] = SymblTokenSource(client, self._app_id, self._app_secret)
        self._token_auth.source = source
        client.options["token_source"] = source
        del self._app_secret

    @property
    def token_source(self) -> SymblTokenSource:
        source: SymblTokenSource = self.get_client().options["token_source"]
        return source

    def _get_job(self, job_id: str) -> Plan[JobStatus]:
        symbl_job_id, conversation_id = split_job_ref(job_id)
        job = yield Call("get_job", "GET", f"/v1/job/{segment(symbl_job_id)}", SymblJob, job_id=job_id)
        status = symbl_job_status(job, conversation_id)
        if conversation_id:
            status = status.model_copy(
                update={"job_id": job_id, "raw": {**status.raw, "conversationId": conversation_id}}
            )
        return status

    def _submit(self, request: SymblSubmitRequest) -> Plan[str]:  # type: ignore[override]  # until a SubmitRequest describes it
        try:
            created = yield Call(
                "submit_job",
                "POST",
                request.path,
                SymblSubmitResponse,
                params=request.params or None,
                json=request.body,
                hints={429: ConcurrencyLimitError.hint},
            )
        except RateLimitedError as exc:
            # contracts S8: a 429 on submit is the account's concurrent-job limit, not a request
            # rate: the same error (message, status, URL), typed so that a submit loop can wait
            limited = ConcurrencyLimitError.__new__(ConcurrencyLimitError)
            limited.__dict__.update(exc.__dict__)
            limited.args = exc.args
            raise limited from None
        # the reference is "jobId:conversationId": a ':' in the job id would split it elsewhere
        job_id = self.usable_id("submit_job", created.jobId, forbidden=":")
        conversation_id = self.usable_id("submit_job", created.conversationId, what="conversation id")
        return f"{job_id}:{conversation_id}"

    def submit_job(  # type: ignore[override]  # until a SubmitRequest describes it
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
    ) -> str:
        """Submit audio, video or text; return ``"<jobId>:<conversationId>"``.

        Options as in `symbl_submit_request`. A 429 (the account's concurrent-job limit) raises
        `ConcurrencyLimitError`; `SymblSubmitJobOperator` waits and submits again.
        """
        return self.run(
            self._submit(
                symbl_submit_request(
                    audio_url=audio_url,
                    video_url=video_url,
                    messages=messages,
                    name=name,
                    language_code=language_code,
                    enable_speaker_diarization=enable_speaker_diarization,
                    diarization_speaker_count=diarization_speaker_count,
                    webhook_url=webhook_url,
                    detect_entities=detect_entities,
                    enable_separate_recognition_per_channel=enable_separate_recognition_per_channel,
                    channel_metadata=channel_metadata,
                )
            )
        )

    async def asubmit_job(  # type: ignore[override]  # until a SubmitRequest describes it
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
    ) -> str:
        return await self.arun(
            self._submit(
                symbl_submit_request(
                    audio_url=audio_url,
                    video_url=video_url,
                    messages=messages,
                    name=name,
                    language_code=language_code,
                    enable_speaker_diarization=enable_speaker_diarization,
                    diarization_speaker_count=diarization_speaker_count,
                    webhook_url=webhook_url,
                    detect_entities=detect_entities,
                    enable_separate_recognition_per_channel=enable_separate_recognition_per_channel,
                    channel_metadata=channel_metadata,
                )
            )
        )

    def _test_connection(self) -> Plan[str]:
        yield Call(
            "test_connection", "POST", TOKEN_PATH, SymblToken, json=self.token_source._body, no_auth=True
        )
        return "Connected to Symbl.ai: the App ID and secret were exchanged for a token"


class _PendingSource:
    """Placeholder until `_configure` attaches the shared token source."""

    def get(self) -> str:
        raise RuntimeError("token source not configured")

    async def aget(self) -> str:
        raise RuntimeError("token source not configured")

    def invalidate(self, token: str) -> None:
        return None
