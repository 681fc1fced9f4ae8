"""DeepAffects async API (``/deepaffects``). The API key travels in the ``apikey`` query parameter.

* Submit: ``POST /audio/generic/api/v2/async/diarize`` and ``POST /audio/generic/api/v1/async/asr``
  -> ``202 {"request_id", "api"}``. Exactly one of ``content`` (base64) or ``url`` is required;
  ``encoding``, ``sampleRate``, ``languageCode``, ``speakerCount``, ``audioType`` (and for asr
  ``enablePunctuation``, ``enableSpeakerDiarization``) are type-checked when present.
* Idempotent submission: a client-supplied ``request_id`` that the account already used returns
  that same job (``202``, same body, no new job), whatever the endpoint or body of the repeat.
* Status: ``GET /transaction/generic/api/v1/async/status?apikey=&request_id=`` ->
  ``{"response": {"request_id", "response"}, "status"}``; ``response.response`` is ``null`` while
  ``Running``, the result when ``Completed`` and ``{"error": "..."}`` when ``Failed``. Unknown
  ``request_id`` -> 404 ``{"message": "..."}``.
* ``webhook`` gets ``{"request_id", "response"}`` POSTed once the job is final (loopback only).
"""

from __future__ import annotations

import base64
import binascii
import uuid
from typing import Any

from jobstatus_emulator import content
from jobstatus_emulator.base import Request, Response, Route, Service
from jobstatus_emulator.state import Job

INVALID_KEY = {"fault": {"faultstring": "Invalid ApiKey", "detail": {"errorcode": "oauth.v2.InvalidApiKey"}}}
FAILURE = "Audio decoding failed: unsupported encoding or corrupt audio content"


def _bad(message: str) -> Response:
    return Response(400, {"message": message})


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

    # -- auth and errors --------------------------------------------------------------------------
    def identity(self, req: Request) -> str:
        return req.query.get("apikey", "")

    def job_id(self, req: Request) -> str | None:
        return req.query.get("request_id") or None

    def authenticate(self, req: Request) -> Response | None:
        key = req.query.get("apikey", "")
        if not key or key.startswith("invalid"):
            return self.err_unauthorized()
        acc = self.emu.store.account("deepaffects", key)
        if acc.revoked_by is not None:
            return self.err_unauthorized()
        req.account = acc
        return None

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
        for key in ("encoding", "languageCode", "audioType"):
            if body.get(key) is not None and not isinstance(body[key], str):
                return _bad(f"'{key}' must be a string")
        for key in ("sampleRate", "speakerCount"):
            value = body.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                return _bad(f"'{key}' must be a non-negative integer")
        for key in ("enablePunctuation", "enableSpeakerDiarization"):
            if body.get(key) is not None and not isinstance(body[key], bool):
                return _bad(f"'{key}' must be a boolean")

        request_id = request_id or str(uuid.uuid4())
        query = {k: ("***" if k == "apikey" else v) for k, v in req.query.items()}
        shown = dict(body)
        if has_content:
            shown["content"] = f"<{len(body['content'])} base64 characters>"
        webhook = req.query.get("webhook") or None
        loopback = webhook is not None and self.emu.webhooks.is_loopback(webhook)
        self.emu.store.add_job(
            acc,
            request_id,
            request={"body": shown, "query": query},
            data={
                "api": api,
                "languageCode": body.get("languageCode") or "en-US",
                "punctuation": body.get("enablePunctuation", True) is not False,
                "diarization": body.get("enableSpeakerDiarization", True) is not False,
                "webhook_ignored": bool(webhook) and not loopback,
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
