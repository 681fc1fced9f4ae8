"""Symbl.ai Async, Job and Conversation APIs (``/symbl``).

Documented rules it enforces (rows of docs/contracts.md):

* S1 ``POST /oauth2/token:generate`` -> ``{"accessToken", "expiresIn"}``. While the account's last
  token has at least one second left it is returned again with its remaining lifetime (Symbl's
  cached-token behaviour); tokens expire after ``symbl_token_lifetime`` seconds. Bad credentials
  (empty, ``invalid...``, revoked) -> 401 ``{"message": "Unauthorized"}``; a body that is not
  ``{"type": "application", ...}`` -> 400.
* S5 other routes take ``Authorization: Bearer <token>`` (or the deprecated ``x-api-key: <token>``,
  which the official client sends); unknown or expired -> 401 ``{"message": "Token validation
  failed for provided token."}``.
* S3 body options of the audio/video URL submissions (``url`` required; ``name``, ``webhookUrl``,
  ``languageCode`` strings; ``detectEntities``, ``enableSeparateRecognitionPerChannel`` booleans;
  ``channelMetadata`` a list of ``{"channel": int, "speaker": {"name"?, "email"?}}``) and of text
  (``messages`` with ``payload.content``; ``detectEntities``).
* S4 ``enableSpeakerDiarization`` (``true``/``false``) and ``diarizationSpeakerCount`` (a positive
  integer) are read from the **query string** of the audio/video URL submissions.
* S8 submissions over the account's ``symbl_max_concurrent_jobs`` in-flight jobs -> the documented
  429 ``{"statusCode": 429, "message": "This API has a limit of maximum of X number of concurrent
  jobs per account..."}``; S9 request bodies over 1 MB -> 413.
* S7 conversation documents: 404 ``{"message": "..."}`` until the job completed (also for a failed
  job). Text submissions produce documents built from the submitted messages.
  ``GET /v1/conversations/{id}`` and ``.../members`` list members as ``{"id", "name", "email"}``
  (S10).
* S11 ``webhookUrl`` gets ``{"jobId", "status"}`` POSTed on every status change, loopback hosts
  only (others are accepted and ignored).

Where the docs are silent (contracts "Behaviours the docs leave open", Symbl.ai): diarization
fields sent in the body instead of the query are ignored; ``channelMetadata`` without
``enableSeparateRecognitionPerChannel`` is accepted.
"""

from __future__ import annotations

import secrets
import time
import uuid
from datetime import datetime, timezone
from typing import Any

from jobstatus_emulator import content
from jobstatus_emulator.base import Request, Response, Route, Service, ServiceHost
from jobstatus_emulator.state import Job, ceil_seconds

TOKEN_FAILED = {"message": "Token validation failed for provided token."}
ONE_MB = 1024 * 1024
FAILURE = "Failed to process the media: the file at the provided url could not be downloaded or decoded"


def _bad(message: str) -> Response:
    return Response(400, {"message": message})


class SymblService(Service):
    name = "symbl"
    prefix = "/symbl"
    status_keys = ("status",)
    body_limit = ONE_MB

    def __init__(self, emulator: ServiceHost) -> None:
        super().__init__(emulator)
        self.tokens: dict[str, tuple[str, float]] = {}  # token -> (appId, expires_at)
        self.app_tokens: dict[str, str] = {}  # appId -> latest token
        self.conversations: dict[tuple[str, str], Job] = {}  # (appId, conversationId) -> job

    def routes(self) -> list[Route]:
        return [
            Route("GET", "/v1/job/{jobId}", self.get_job, job_param="jobId"),
            Route("POST", "/oauth2/token:generate", self.token, auth=False),
            Route("POST", "/v1/process/audio/url", self.submit_audio),
            Route("POST", "/v1/process/video/url", self.submit_video),
            Route("POST", "/v1/process/text", self.submit_text),
            Route(
                "GET", "/v1/conversations/{conversationId}", self.get_conversation, job_param="conversationId"
            ),
            Route(
                "GET",
                "/v1/conversations/{conversationId}/{document}",
                self.get_document,
                job_param="conversationId",
            ),
        ]

    def setup(self) -> None:
        self.emu.store.failure_messages["symbl"] = lambda job: FAILURE
        self.emu.store.notifiers["symbl"] = self.notify

    def reset(self) -> None:
        self.tokens.clear()
        self.app_tokens.clear()
        self.conversations.clear()

    # -- auth and errors --------------------------------------------------------------------------
    def _token(self, req: Request) -> str:
        ok, token = req.bearer()
        if ok:
            return token
        return (req.header(b"x-api-key") or "").strip()

    def identity(self, req: Request) -> str:
        entry = self.tokens.get(self._token(req))
        return entry[0] if entry is not None else ""

    async def identity_async(self, req: Request) -> str:
        body = await req.json(self.body_limit)
        app_id = body.get("appId") if isinstance(body, dict) else None
        return app_id if isinstance(app_id, str) else ""

    def authenticate(self, req: Request) -> Response | None:
        entry = self.tokens.get(self._token(req))
        if entry is None or entry[1] <= time.time():
            return self.err_unauthorized()
        return self.admit(req, entry[0])

    def err_unauthorized(self) -> Response:
        return Response(401, dict(TOKEN_FAILED))

    def err_not_found(self, job_id: str | None) -> Response:
        if job_id:
            return Response(404, {"message": f"No job or conversation found with id {job_id}"})
        return Response(404, {"message": "Not Found"})

    def err_server(self, status: int) -> Response:
        text = {502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}.get(
            status, "Internal Server Error"
        )
        return Response(status, {"message": text})

    def err_rate_limited(self) -> Response:
        return Response(429, {"statusCode": 429, "message": "Too Many Requests: the rate limit was exceeded"})

    def err_bad_json(self, detail: str) -> Response:
        return _bad(f"Invalid JSON payload: {detail}")

    def err_too_large(self) -> Response:
        return Response(413, {"message": "Request Entity Too Large: the request body is larger than 1 MB"})

    # -- token ------------------------------------------------------------------------------------
    async def token(self, req: Request) -> Response:
        body = await req.json(self.body_limit)
        if not isinstance(body, dict) or body.get("type") != "application":
            return _bad('Body must be {"type": "application", "appId": ..., "appSecret": ...}')
        app_id, app_secret = body.get("appId"), body.get("appSecret")
        if not isinstance(app_id, str) or not isinstance(app_secret, str) or not app_id or not app_secret:
            return Response(401, {"message": "Unauthorized"})
        if app_id.startswith("invalid") or app_secret.startswith("invalid"):
            return Response(401, {"message": "Unauthorized"})
        acc = self.emu.store.account("symbl", app_id)
        if acc.revoked_by is not None:
            return Response(401, {"message": "Unauthorized"})
        now = time.time()
        current = self.app_tokens.get(app_id)
        if current is not None:
            _, expires = self.tokens.get(current, ("", 0.0))
            if expires - now >= 1.0:
                return Response(200, {"accessToken": current, "expiresIn": int(expires - now)})
        lifetime = self.emu.config.symbl_token_lifetime
        token = "eyJ" + secrets.token_urlsafe(48)
        self.tokens[token] = (app_id, now + lifetime)
        self.app_tokens[app_id] = token
        return Response(200, {"accessToken": token, "expiresIn": ceil_seconds(lifetime)})

    # -- submissions ------------------------------------------------------------------------------
    def _too_many(self, req: Request) -> Response | None:
        assert req.account is not None
        limit = self.emu.config.symbl_max_concurrent_jobs
        if self.emu.store.in_flight_count(req.account) >= limit:
            return Response(  # S8: the documented "API Limit Error" body
                429,
                {
                    "statusCode": 429,
                    "message": f"This API has a limit of maximum of {limit} number of concurrent jobs per "
                    "account. If you are looking to scale, and need more concurrent jobs than this limit, "
                    "please contact us at support@symbl.ai",
                },
            )
        return None

    def _common(self, body: dict[str, Any]) -> Response | None:
        for key in ("name", "webhookUrl", "languageCode"):  # S3
            if body.get(key) is not None and not isinstance(body[key], str):
                return _bad(f'"{key}" must be a string')
        if body.get("detectEntities") is not None and not isinstance(body["detectEntities"], bool):
            return _bad('"detectEntities" must be a boolean')
        return None

    def _media_options(self, req: Request, body: dict[str, Any]) -> Response | None:
        """S3 channel options (body) and S4 diarization options (query) of audio/video URLs."""
        separate = body.get("enableSeparateRecognitionPerChannel")
        if separate is not None and not isinstance(separate, bool):
            return _bad('"enableSeparateRecognitionPerChannel" must be a boolean')
        channels = body.get("channelMetadata")
        if channels is not None:
            if not isinstance(channels, list):
                return _bad('"channelMetadata" must be an array')
            for i, entry in enumerate(channels):
                channel = entry.get("channel") if isinstance(entry, dict) else None
                speaker = entry.get("speaker") if isinstance(entry, dict) else None
                if isinstance(channel, bool) or not isinstance(channel, int):
                    return _bad(f'"channelMetadata[{i}].channel" is required and must be an integer')
                if not isinstance(speaker, dict) or not all(
                    isinstance(speaker[k], str) for k in ("name", "email") if k in speaker
                ):
                    return _bad(f'"channelMetadata[{i}].speaker" is required: an object with name and email')
        diarize = req.query.get("enableSpeakerDiarization")
        if diarize is not None and diarize.lower() not in ("true", "false"):
            return _bad('"enableSpeakerDiarization" must be true or false')
        count = req.query.get("diarizationSpeakerCount")
        if count is not None:
            try:
                number = float(count)
            except ValueError:
                number = 0.0
            if not (number >= 1 and number.is_integer()):
                return _bad('"diarizationSpeakerCount" must be a positive integer')
        return None

    def _create(self, req: Request, body: dict[str, Any], kind: str) -> Response:
        assert req.account is not None
        acc = req.account
        job_id = str(uuid.uuid4())
        conversation_id = content.numeric_id(f"{acc.identity}:{job_id}")
        webhook = body.get("webhookUrl") or None
        loopback = webhook is not None and self.emu.webhooks.is_loopback(webhook)
        job = self.emu.store.add_job(
            acc,
            job_id,
            request={"body": body, "query": dict(req.query)},
            data={
                "kind": kind,
                "conversationId": conversation_id,
                "name": body.get("name") or f"{kind} conversation",
                "languageCode": body.get("languageCode") or "en-US",
                "webhook_ignored": bool(webhook) and not loopback,
            },
            markers_from=(body, req.query_string),
            webhook=webhook if loopback else None,
        )
        self.conversations[(acc.identity, conversation_id)] = job
        if job.webhook is not None:
            self.emu.store.notify(job, self.emu.store.status(job))
        return Response(201, {"conversationId": conversation_id, "jobId": job_id})

    async def _submit_media(self, req: Request, kind: str) -> Response:
        body = await req.json(self.body_limit)
        if not isinstance(body, dict):
            return _bad("Request body must be a JSON object")
        url = body.get("url")
        if not isinstance(url, str) or not url:
            return _bad('"url" is required')
        if not url.startswith(("http://", "https://")):
            return _bad('"url" must be a valid http(s) URL')
        err = self._common(body) or self._media_options(req, body) or self._too_many(req)
        if err is not None:
            return err
        return self._create(req, body, kind)

    async def submit_audio(self, req: Request) -> Response:
        return await self._submit_media(req, "audio")

    async def submit_video(self, req: Request) -> Response:
        return await self._submit_media(req, "video")

    async def submit_text(self, req: Request) -> Response:
        body = await req.json(self.body_limit)
        if not isinstance(body, dict):
            return _bad("Request body must be a JSON object")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return _bad('"messages" is required and must be a non-empty array')
        for i, msg in enumerate(messages):
            payload = msg.get("payload") if isinstance(msg, dict) else None
            if not isinstance(payload, dict) or not isinstance(payload.get("content"), str):
                return _bad(f'"messages[{i}].payload.content" is required and must be a string')
        err = self._common(body) or self._too_many(req)
        if err is not None:
            return err
        return self._create(req, body, "text")

    # -- reading ----------------------------------------------------------------------------------
    async def get_job(self, req: Request) -> Response:
        assert req.account is not None
        job = req.account.jobs.get(req.params["jobId"])
        if job is None:
            return Response(404, {"message": f"Job with jobId {req.params['jobId']} not found"})
        return Response(200, {"id": job.job_id, "status": self.emu.store.status(job)})

    def _conversation(self, req: Request) -> tuple[Job | None, Response | None]:
        assert req.account is not None
        cid = req.params["conversationId"]
        job = self.conversations.get((req.account.identity, cid))
        if job is None or job.deleted:
            return None, Response(404, {"message": f"Conversation {cid} not found"})
        status = self.emu.store.status(job)
        if status != "completed":
            return None, Response(404, {"message": f"Conversation {cid} not found: its job is {status}"})
        return job, None

    def _doc(self, job: Job) -> content.SymblConversation:
        conv = job.cache.get("conversation")
        if conv is None:
            seed = self.emu.config.seed
            if job.data["kind"] == "text":
                lines, names = content.lines_from_symbl_messages(job.request["body"]["messages"])
                tr = content.make_transcript(job.job_id, seed, lines=lines)
                tr.speaker_names = names + tr.speaker_names[len(names) :]
            else:
                tr = content.make_transcript(job.job_id, seed, language=job.data["languageCode"])
            started = datetime.fromtimestamp(job.created, timezone.utc)
            conv = job.cache["conversation"] = content.SymblConversation(
                job.data["conversationId"], tr, started
            )
        return conv

    async def get_conversation(self, req: Request) -> Response:
        job, err = self._conversation(req)
        if job is None:
            assert err is not None
            return err
        messages = self._doc(job).messages()["messages"]
        return Response(
            200,
            {
                "id": job.data["conversationId"],
                "type": "meeting",
                "name": job.data["name"],
                "startTime": messages[0]["startTime"] if messages else None,
                "endTime": messages[-1]["endTime"] if messages else None,
                "members": self._members(job),
                "metadata": {},
            },
        )

    def _members(self, job: Job) -> list[dict[str, Any]]:
        """S10: the conversation's members, ``{id, name, email}`` each."""
        members = {
            m["from"]["id"]: {"id": m["from"]["id"], "name": m["from"]["name"], "email": m["from"]["userId"]}
            for m in self._doc(job).messages()["messages"]
        }
        return list(members.values())

    async def get_document(self, req: Request) -> Response:
        document = req.params["document"]
        if document == "members":
            job, err = self._conversation(req)
            if job is None:
                assert err is not None
                return err
            return Response(200, {"members": self._members(job)})
        if document not in content.SYMBL_DOCUMENTS:
            return Response(404, {"message": "Not Found"})
        job, err = self._conversation(req)
        if job is None:
            assert err is not None
            return err
        verbose = req.query.get("verbose", "").lower() == "true"
        return Response(200, self._doc(job).document(document, verbose))

    # -- webhooks ---------------------------------------------------------------------------------
    def notify(self, job: Job, status: str) -> None:
        if job.webhook:
            self.emu.webhooks.post(job.webhook, {"jobId": job.job_id, "status": status}, service="symbl")
