"""DeepAffects async API (``/deepaffects``). The API key travels in the ``apikey`` query parameter.

Rows ``A1``... are the ones in ``docs/contracts.md``; by default the emulator enforces them.

* Submit: ``POST /audio/generic/api/v2/async/diarize`` and ``POST /audio/generic/api/v1/async/asr``
  -> ``202 {"request_id", "api"}`` (A1). The ``webhook`` query parameter is required (A2).
  ``encoding`` and ``sampleRate`` are required; exactly one of ``content`` (base64) or ``url``;
  diarize takes ``speakers`` (-1 = unknown), ``audioType``, ``doVad``/``vad``, ``speakerIds``,
  ``source``; asr takes ``audioType``, ``source``, ``enableSpeakerDiarization`` (default false)
  (A3, A4); ``audioType`` is one of the documented values (A5). Other body fields are ignored (open: the docs do not say).
* Errors are ``{"type", "message"}`` (A7): a refused parameter is ``400 params_invalid``.
* Limits per API key (A8): ``deepaffects_requests_per_minute`` (5) per API (endpoint) and
  ``deepaffects_requests_per_day`` (100) over all of them; over either, ``429 rate_limit``.
* Idempotent submission: a client-supplied ``request_id`` that the account already used returns
  that same job (``202``, same body, no new job), whatever the endpoint or body of the repeat.
* Status: ``GET /transaction/generic/api/v1/async/status?apikey=&request_id=`` ->
  ``{"response": {"request_id", "response"}, "status"}`` (A6, A9); ``response.response`` is
  ``null`` while ``Running``, the result when ``Completed`` and ``{"error": "..."}`` when
  ``Failed``. Unknown ``request_id`` -> 404 ``{"message": "..."}``.
* ``webhook`` is recorded with the job; a loopback one gets ``{"request_id", "response"}`` POSTed
  once the job is final, any other is accepted and not called.
"""

from __future__ import annotations

import base64
import binascii
import time
import uuid
from collections import deque
from typing import Any

from jobstatus_emulator import content
from jobstatus_emulator.base import Request, Response, Route, Service
from jobstatus_emulator.state import Job

INVALID_KEY = {"fault": {"faultstring": "Invalid ApiKey", "detail": {"errorcode": "oauth.v2.InvalidApiKey"}}}
FAILURE = "Audio decoding failed: unsupported encoding or corrupt audio content"


AUDIO_TYPES = ("callcenter", "meeting", "earningscalls", "interview", "media-broadcast")
"""Documented ``audioType`` values (A5), plus ``default``: what the official client sends unset."""
MINUTE = 60.0
DAY = 86400.0


def _bad(message: str) -> Response:
    return Response(400, {"type": "params_invalid", "message": message})


def _rate_limited(message: str) -> Response:
    return Response(429, {"type": "rate_limit", "message": message})


class DeepAffectsService(Service):
    name = "deepaffects"
    prefix = "/deepaffects"
    status_keys = ("status",)

    def routes(self) -> list[Route]:
        return [
            Route("GET", "/transaction/generic/api/v1/async/status", self.status),
            Route("POST", "/audio/generic/api/v2/async/diarize", self.submit_diarize),
            Route("POST", "/audio/generic/api/v1/async/asr", self.submit_asr),
        ]

    def setup(self) -> None:
        self.emu.store.failure_messages["deepaffects"] = lambda job: FAILURE
        self.emu.store.notifiers["deepaffects"] = self.notify
        self.reset()

    def reset(self) -> None:
        #: request times of the last minute per (API key, API) and of the last day per API key (A8)
        self.minute: dict[tuple[str, str], deque[float]] = {}
        self.day: dict[str, deque[float]] = {}

    def over_limit(self, key: str, api: str) -> Response | None:
        """Count one request of ``key`` to ``api``; the documented ``rate_limit`` error past a limit (A8)."""
        now = time.monotonic()
        checks = (
            (
                self.minute.setdefault((key, api), deque()),
                MINUTE,
                self.emu.config.deepaffects_requests_per_minute,
            ),
            (self.day.setdefault(key, deque()), DAY, self.emu.config.deepaffects_requests_per_day),
        )
        for times, window, limit in checks:
            while times and times[0] <= now - window:
                times.popleft()
            if limit > 0 and len(times) >= limit:
                per = "minute to this API" if window == MINUTE else "day"
                return _rate_limited(f"Rate limit exceeded: {limit} requests per {per}")
        for times, _, _ in checks:
            times.append(now)
        return None

    # -- auth and errors --------------------------------------------------------------------------
    def identity(self, req: Request) -> str:
        return req.query.get("apikey", "")

    def job_id(self, req: Request) -> str | None:
        return req.query.get("request_id") or None

    def authenticate(self, req: Request) -> Response | None:
        key = req.query.get("apikey", "")
        if not key or key.startswith("invalid"):
            return self.err_unauthorized()
        return self.admit(req, key)

    def err_unauthorized(self) -> Response:
        return Response(401, {"fault": {**INVALID_KEY["fault"]}})

    def err_not_found(self, job_id: str | None) -> Response:
        if job_id:
            return Response(404, {"message": f"No request found with request_id {job_id}"})
        return Response(404, {"message": "Resource not found"})

    def err_server(self, status: int) -> Response:
        return Response(
            status,
            {
                "fault": {
                    "faultstring": "The service is temporarily unavailable"
                    if status != 500
                    else "Internal Server Error",
                    "detail": {"errorcode": "messaging.adaptors.http.flow.ServiceUnavailable"},
                }
            },
        )

    def err_rate_limited(self) -> Response:
        return Response(
            429,
            {
                "fault": {
                    "faultstring": "Spike arrest violation. Allowed rate : MessageRate{messagesPerPeriod=10, periodInMicroseconds=1000000}",
                    "detail": {"errorcode": "policies.ratelimit.SpikeArrestViolation"},
                }
            },
        )

    def err_bad_json(self, detail: str) -> Response:
        return _bad(f"Invalid JSON body: {detail}")

    # -- submit -----------------------------------------------------------------------------------
    async def submit_diarize(self, req: Request) -> Response:
        return await self._submit(req, "diarize")

    async def submit_asr(self, req: Request) -> Response:
        return await self._submit(req, "asr")

    async def _submit(self, req: Request, api: str) -> Response:
        assert req.account is not None
        acc = req.account
        limited = self.over_limit(acc.identity, api)
        if limited is not None:
            return limited
        webhook = req.query.get("webhook") or None
        if webhook is None:  # A2: "Required for async requests"
            return _bad("The 'webhook' query parameter is required for async requests")
        request_id = req.query.get("request_id") or None
        if request_id is not None:
            existing = acc.jobs.get(request_id)
            if existing is not None:
                return Response(202, {"request_id": request_id, "api": existing.data["api"]})
            if len(request_id) > 256:
                return _bad("request_id must be at most 256 characters")
        body = await req.json(self.body_limit)
        if not isinstance(body, dict):
            return _bad("Request body must be a JSON object")
        has_content = body.get("content") not in (None, "")
        has_url = body.get("url") not in (None, "")
        if has_content == has_url:
            return _bad("Exactly one of 'content' (base64 audio) or 'url' is required")
        if has_content:
            if not isinstance(body["content"], str):
                return _bad("'content' must be a base64 string")
            try:
                base64.b64decode(body["content"], validate=True)
            except (binascii.Error, ValueError):
                return _bad("'content' is not valid base64")
        elif not isinstance(body["url"], str) or not body["url"].startswith(("http://", "https://")):
            return _bad("'url' must be an http(s) URL")
        for key in ("encoding", "sampleRate"):  # A3, A4: required by the official client's model
            if body.get(key) in (None, ""):
                return _bad(f"'{key}' is required")
        for key in ("encoding", "languageCode", "audioType", "source"):
            if body.get(key) is not None and not isinstance(body[key], str):
                return _bad(f"'{key}' must be a string")
        rate = body["sampleRate"]
        if isinstance(rate, bool) or not isinstance(rate, int) or rate <= 0:
            return _bad("'sampleRate' must be a positive integer")
        audio_type = body.get("audioType")
        if audio_type is not None and audio_type not in (*AUDIO_TYPES, "default"):  # A5
            return _bad(f"'audioType' must be one of {', '.join(AUDIO_TYPES)}")
        if api == "diarize":
            speakers = body.get("speakers")
            if speakers is not None and (
                isinstance(speakers, bool)
                or not isinstance(speakers, int)
                or speakers in (0,)
                or speakers < -1
            ):
                return _bad("'speakers' must be a positive integer, or -1 for unknown")
            ids = body.get("speakerIds")
            if ids is not None and (not isinstance(ids, list) or not all(isinstance(i, str) for i in ids)):
                return _bad("'speakerIds' must be a list of strings")
            flags: tuple[str, ...] = ("doVad", "vad")
        else:
            flags = ("enablePunctuation", "enableSpeakerDiarization")
        for key in flags:
            if body.get(key) is not None and not isinstance(body[key], bool):
                return _bad(f"'{key}' must be a boolean")

        request_id = request_id or str(uuid.uuid4())
        query = {k: ("***" if k == "apikey" else v) for k, v in req.query.items()}
        shown = dict(body)
        if has_content:
            shown["content"] = f"<{len(body['content'])} base64 characters>"
        loopback = self.emu.webhooks.is_loopback(webhook)
        self.emu.store.add_job(
            acc,
            request_id,
            request={"body": shown, "query": query},
            data={
                "api": api,
                "languageCode": body.get("languageCode") or "en-US",
                "punctuation": body.get("enablePunctuation", True) is not False,
                # A4: enableSpeakerDiarization defaults to false
                "diarization": body.get("enableSpeakerDiarization") is True,
                "webhook": webhook,
                "webhook_ignored": not loopback,
            },
            markers_from=(shown, body.get("url"), req.query_string),
            webhook=webhook if loopback else None,
        )
        return Response(202, {"request_id": request_id, "api": api})

    # -- status -----------------------------------------------------------------------------------
    def result(self, job: Job) -> Any:
        cached = job.cache.get("result")
        if cached is None:
            tr = content.make_transcript(job.job_id, self.emu.config.seed, language=job.data["languageCode"])
            if job.data["api"] == "diarize":
                cached = content.deepaffects_diarize(tr)
            else:
                cached = content.deepaffects_asr(tr, job.data["punctuation"], job.data["diarization"])
            job.cache["result"] = cached
        return cached

    def _inner(self, job: Job, status: str) -> Any:
        if status == "Completed":
            return self.result(job)
        if status == "Failed":
            return {"error": job.error or FAILURE}
        return None

    async def status(self, req: Request) -> Response:
        assert req.account is not None
        limited = self.over_limit(req.account.identity, "status")
        if limited is not None:
            return limited
        request_id = req.query.get("request_id")
        if not request_id:
            return _bad("request_id is required")
        job = req.account.jobs.get(request_id)
        if job is None:
            return self.err_not_found(request_id)
        status = self.emu.store.status(job)
        return Response(
            200,
            {"response": {"request_id": request_id, "response": self._inner(job, status)}, "status": status},
        )

    def notify(self, job: Job, status: str) -> None:
        if job.webhook and status in ("Completed", "Failed"):
            self.emu.webhooks.post(
                job.webhook,
                {"request_id": job.job_id, "response": self._inner(job, status)},
                service="deepaffects",
            )
