"""Daily REST API, batch processor (``/daily/v1``).

Rows ``D<n>`` (documented) and ``O-D<n>`` (left open by the docs) are in ``docs/contracts.md``.
The emulator enforces the documented rules (D3, D4, D6: 400 ``invalid-request-error``) and picks
these where the docs are silent:

* ``output`` is ``{}`` until the job is ``finished``; it then holds exactly the outputs the preset
  makes: ``transcript`` -> ``transcription`` (txt, vtt, json); ``summarize`` -> ``transcription`` +
  ``summary`` (format ``txt``, key without extension); ``soap-notes`` -> ``transcription`` +
  ``soap`` (format ``json``). With ``sourceType`` ``transcriptUri`` (summarize / soap-notes only)
  there is no ``transcription`` output (O-D4).
* Keys (D5): ``<prefix>/<jobId>/transcript/<template>.<ext>``, ``<prefix>/<jobId>/summary/<template>``
  and ``<prefix>/<jobId>/soap/<template>.json`` (soap: O-D4); ``<template>`` is ``outParams.s3Config.
  s3KeyTemplate``, with ``{epoch_time}``, ``{domain_name}`` and ``{job_id}`` replaced when
  ``useReplacement`` is true (D4). Placeholders without ``useReplacement`` are a 400 (O-D1). The
  bucket is the account's ``daily_bucket`` setting, else the global one, else Daily storage (bucket
  ``daily-batch-processor-storage``, prefix ``jobstatus-emulator``), decided at submission.
* Access links (D11): ``transcription`` and ``summary`` only, as documented; never ``soap`` (O-D3).
* List (``GET /batch-processor``) is newest first. ``starting_after=<id>`` returns the jobs that
  come after that job in this order (older ones); ``ending_before=<id>`` returns the ``limit`` jobs
  that come just before it (newer ones), still newest first. An id the account never had is a 400.
  ``limit`` defaults to 100, must be 1..100. ``total_count`` counts every job matching the filter.
* ``DELETE /batch-processor/:id`` -> ``200`` with the job as ``GET`` shows it (D13); Daily-storage
  objects go too, customer-bucket objects stay.
* ``/webhooks`` and the signed ``batch-processor.*`` events: ``daily_webhooks.py`` (H1-H5).
"""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any

from jobstatus_emulator import content
from jobstatus_emulator.base import Request, Response, Route, Service
from jobstatus_emulator.daily_webhooks import DailyWebhooks
from jobstatus_emulator.state import Job, OutputError
from jobstatus_emulator.storage import DailyStorage, S3Object, StorageHost

PRESETS = ("transcript", "summarize", "soap-notes")
SOURCE_TYPES = ("recordingId", "uri", "transcriptUri")
TRANSCRIPT_FORMATS = ("txt", "vtt", "json")
# D4: s3KeyTemplate rules from the submit-job reference ("s3KeyReplacement")
PLACEHOLDERS = ("epoch_time", "domain_name", "job_id")
PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
TEMPLATE_CHARS = re.compile(r"[A-Za-z0-9./_-]*")
MAX_TEMPLATE = 1024
DAILY_DOMAIN = "jobstatus-emulator"
FAILURES = {
    "transcript": "Error: Failed to transcribe. May be invalid audio or silent file",
    "summarize": "Error: Failed to summarize. The transcript may be empty or too short",
    "soap-notes": "Error: Failed to generate SOAP notes. The transcript may be empty or too short",
}


def _template_problem(template: str, replace: bool) -> str | None:
    """What breaks Daily's key-template rules (D4), or None."""
    if len(template) > MAX_TEMPLATE:
        return f"must be at most {MAX_TEMPLATE} characters"
    names = PLACEHOLDER.findall(template)
    unknown = [n for n in names if n not in PLACEHOLDERS]
    if unknown:
        return f"has unsupported replacement(s) {unknown}; supported: {', '.join(PLACEHOLDERS)}"
    if names and not replace:  # open (O-D1): braces are not key characters without replacement
        return "has replacements but useReplacement is not true"
    if not TEMPLATE_CHARS.fullmatch(PLACEHOLDER.sub("", template)):
        return "may only contain alphanumeric characters and . / - _"
    return None


def _err(status: int, error: str, info: str) -> Response:
    """Daily's error body (D2)."""
    return Response(status, {"error": error, "info": info})


def _invalid(info: str) -> Response:
    return _err(400, "invalid-request-error", info)


class DailyService(Service):
    name = "daily"
    prefix = "/daily/v1"
    status_keys = ("status",)
    list_keys = ("data",)

    emu: StorageHost

    def __init__(self, emulator: StorageHost) -> None:
        super().__init__(emulator)

    def routes(self) -> list[Route]:
        self.webhooks = DailyWebhooks(self.emu.webhooks, self.view)
        return [
            Route("POST", "/webhooks", self.webhooks.create),
            Route("GET", "/webhooks", self.webhooks.list),
            Route("GET", "/webhooks/{uuid}", self.webhooks.get),
            Route("POST", "/webhooks/{uuid}", self.webhooks.update),
            Route("DELETE", "/webhooks/{uuid}", self.webhooks.delete),
            Route("GET", "/batch-processor/{id}", self.get_job, job_param="id"),
            Route("GET", "/batch-processor", self.list_jobs),
            Route("POST", "/batch-processor", self.submit),
            Route("GET", "/batch-processor/{id}/access-link", self.access_link, job_param="id"),
            Route("DELETE", "/batch-processor/{id}", self.delete, job_param="id"),
        ]

    def setup(self) -> None:
        store = self.emu.store
        store.materializers["daily"] = self.materialize
        store.notifiers["daily"] = self.webhooks.notify
        store.account_webhooks.add("daily")  # H1: per-domain webhooks, for every job
        store.failure_messages["daily"] = lambda job: FAILURES.get(job.data["preset"], FAILURES["transcript"])

    # -- auth and errors --------------------------------------------------------------------------
    def reset(self) -> None:
        self.webhooks.reset()

    def identity(self, req: Request) -> str:
        ok, token = req.bearer()
        return token if ok else ""

    def authenticate(self, req: Request) -> Response | None:
        # D1: no/malformed header -> 400 authorization-header-error; a bad key -> 401
        ok, token = req.bearer()
        if not ok:
            if req.header(b"authorization") is None:
                return _err(400, "authorization-header-error", "Missing Authorization header")
            return _err(400, "authorization-header-error", "Authorization header must be 'Bearer <API key>'")
        if token.startswith("invalid"):
            return self.err_unauthorized()
        return self.admit(req, token)

    def err_unauthorized(self) -> Response:
        return _err(401, "authentication-error", "Invalid API key")

    def err_not_found(self, job_id: str | None) -> Response:
        if job_id:
            return _err(404, "not-found", f"batch processor job {job_id} not found")
        return _err(404, "not-found", "not found")

    def err_route(self, req: Request, method_not_allowed: bool) -> Response:
        if method_not_allowed:
            return _err(405, "invalid-request-error", f"method {req.method} not allowed")
        return self.err_not_found(None)

    def err_server(self, status: int) -> Response:
        return _err(status, "server-error", "An internal server error occurred, please try again later")

    def err_rate_limited(self) -> Response:
        return _err(
            429, "rate-limit-error", "Too many requests: the rate limit for this endpoint was exceeded"
        )

    def err_bad_json(self, detail: str) -> Response:
        return _err(400, "json-parsing-error", f"Could not parse request body as JSON: {detail}")

    def err_too_large(self) -> Response:
        return _invalid("request body too large")

    # -- views ------------------------------------------------------------------------------------
    def view(self, job: Job, status: str) -> dict[str, Any]:
        """The job as ``GET /batch-processor/:id`` shows it (D8)."""
        data = job.data
        return {
            "id": job.job_id,
            "preset": data["preset"],
            "status": status,
            "input": data["input"],
            "output": data["output"] if status == "finished" else {},
            "error": job.error if status == "error" else None,
        }

    def _job(self, req: Request) -> Job | None:
        assert req.account is not None
        return req.account.jobs.get(req.params["id"])

    # -- routes -----------------------------------------------------------------------------------
    async def get_job(self, req: Request) -> Response:
        job = self._job(req)
        if job is None:
            return self.err_not_found(req.params["id"])
        return Response(200, self.view(job, self.emu.store.status(job)))

    async def submit(self, req: Request) -> Response:
        body = await req.json(self.body_limit)
        if not isinstance(body, dict):
            return _invalid("request body must be a JSON object")
        preset = body.get("preset")
        if preset not in PRESETS:
            return _invalid(f"preset must be one of: {', '.join(PRESETS)}")
        in_params = body.get("inParams")
        if not isinstance(in_params, dict):
            return _invalid("inParams is required and must be an object")
        source_type = in_params.get("sourceType")
        if source_type not in SOURCE_TYPES:
            return _invalid(f"inParams.sourceType must be one of: {', '.join(SOURCE_TYPES)}")
        source = in_params.get(source_type)
        if not isinstance(source, str) or not source.strip():
            return _invalid(f"inParams.{source_type} is required when sourceType is '{source_type}'")
        if source_type in ("uri", "transcriptUri") and not source.startswith(("http://", "https://")):
            return _invalid(f"inParams.{source_type} must be an http(s) URL")
        if source_type == "transcriptUri" and preset == "transcript":
            return _invalid(
                "sourceType 'transcriptUri' is only supported by the summarize and soap-notes presets"
            )
        # D6: inParams.language is only for the transcript preset
        if "language" in in_params and preset != "transcript":
            return _invalid("inParams.language is only supported for the transcript preset")
        language = in_params.get("language", "en")
        if not isinstance(language, str) or not language:
            return _invalid("inParams.language must be a BCP-47 language tag such as 'en'")
        # D3: outParams and outParams.s3Config.s3KeyTemplate are required
        out_params = body.get("outParams")
        if not isinstance(out_params, dict):
            return _invalid("outParams is required and must be an object")
        s3c = out_params.get("s3Config")
        if not isinstance(s3c, dict):
            return _invalid("outParams.s3Config is required and must be an object")
        template = s3c.get("s3KeyTemplate")
        if not isinstance(template, str) or not template:
            return _invalid("outParams.s3Config.s3KeyTemplate is required and must be a non-empty string")
        replace = s3c.get("useReplacement", False)
        if replace is None:
            replace = False
        if not isinstance(replace, bool):
            return _invalid("outParams.s3Config.useReplacement must be a boolean")
        problem = _template_problem(template, replace)
        if problem is not None:
            return _invalid(f"outParams.s3Config.s3KeyTemplate {problem}")
        transform = body.get("transformParams")
        if transform is not None and not isinstance(transform, dict):
            return _invalid("transformParams must be an object")

        assert req.account is not None
        acc = req.account
        job_id = str(uuid.uuid4())
        now = time.time()
        if replace:  # D4: the three documented placeholders
            template = (
                template.replace("{epoch_time}", str(int(now)))
                .replace("{domain_name}", DAILY_DOMAIN)
                .replace("{job_id}", job_id)
            )
        dest = (
            acc.settings["daily_bucket"] if "daily_bucket" in acc.settings else self.emu.config.daily_bucket
        )
        if dest is not None:
            bucket, region, prefix, customer = dest["bucket"], dest["region"], dest["prefix"], True
        else:
            bucket, region, prefix, customer = DailyStorage.BUCKET, DailyStorage.REGION, DAILY_DOMAIN, False
        base = f"{prefix}/{job_id}" if prefix else job_id

        def cfg(key: str) -> dict[str, str]:
            return {"key": key, "bucket": bucket, "region": region}

        output: dict[str, Any] = {}
        if source_type != "transcriptUri":
            output["transcription"] = [
                {"format": fmt, "s3Config": cfg(f"{base}/transcript/{template}.{fmt}")}
                for fmt in TRANSCRIPT_FORMATS
            ]
        if preset == "summarize":
            output["summary"] = {"format": "txt", "s3Config": cfg(f"{base}/summary/{template}")}
        if preset == "soap-notes":
            output["soap"] = {"format": "json", "s3Config": cfg(f"{base}/soap/{template}.json")}
        input_view = {"sourceType": source_type, source_type: source, "language": language}
        self.emu.store.add_job(
            acc,
            job_id,
            request={"body": body, "query": dict(req.query)},
            data={
                "preset": preset,
                "input": input_view,
                "output": output,
                "customer_bucket": customer,
                "recording_id": source if source_type == "recordingId" else None,
                "pos": len(acc.order),
            },
            markers_from=(body, req.query_string),
            now=now,
        )
        return Response(200, {"id": job_id})

    async def list_jobs(self, req: Request) -> Response:
        # D12; the order and cursor rules the docs leave to "the same pagination" are in the module doc
        q = req.query
        raw_limit = q.get("limit", "100")
        if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= 100:
            return _invalid("limit must be an integer between 1 and 100")
        limit = int(raw_limit)
        after = q.get("starting_after") or None
        before = q.get("ending_before") or None
        if after and before:
            return _invalid("use only one of starting_after and ending_before")
        assert req.account is not None
        acc = req.account
        recording = q.get("recordingId") or None
        order: list[Job]
        if recording is not None:
            order = [j for j in acc.order if not j.deleted and j.data["recording_id"] == recording]
            positions = {j.job_id: i for i, j in enumerate(order)}
            total = len(order)
        else:
            order = acc.order
            positions = {}
            total = acc.live

        def pos_of(job_id: str) -> int | None:
            if recording is not None:
                return positions.get(job_id)
            job = acc.jobs.get(job_id)
            if job is not None:
                return int(job.data["pos"])
            # a deleted job keeps its place as a tombstone
            for j in acc.order:
                if j.job_id == job_id:
                    return int(j.data["pos"])
            return None

        page: list[Job] = []
        if before:
            p = pos_of(before)
            if p is None:
                return _invalid(f"ending_before: no job with id {before}")
            i = p + 1
            while i < len(order) and len(page) < limit:
                if not order[i].deleted:
                    page.append(order[i])
                i += 1
            page.reverse()
        else:
            if after:
                p = pos_of(after)
                if p is None:
                    return _invalid(f"starting_after: no job with id {after}")
                i = p - 1
            else:
                i = len(order) - 1
            while i >= 0 and len(page) < limit:
                if not order[i].deleted:
                    page.append(order[i])
                i -= 1
        status = self.emu.store.status
        now = time.time()
        return Response(200, {"total_count": total, "data": [self.view(j, status(j, now)) for j in page]})

    async def access_link(self, req: Request) -> Response:
        # D11: 404 for an unknown job, 400 until it is finished
        job = self._job(req)
        if job is None:
            return self.err_not_found(req.params["id"])
        status = self.emu.store.status(job)
        if status != "finished":
            return _invalid(
                f"job {job.job_id} is not finished (status: {status}); access links exist once it is"
            )
        ttl = self.emu.config.link_ttl
        out: dict[str, Any] = {"id": job.job_id, "preset": job.data["preset"], "status": status}

        async def link(entry: dict[str, Any]) -> dict[str, Any]:
            s3c = entry["s3Config"]
            if job.data["customer_bucket"]:
                url = await self.emu.s3.presign(s3c["bucket"], s3c["key"], int(ttl))
            else:
                url = self.emu.daily_storage.link(self.emu.config.base_url, s3c["key"], ttl) or ""
            return {"format": entry["format"], "link": url}

        output = job.data["output"]
        # D11: the documented links are transcription and summary; no soap link (O-D3)
        out["transcription"] = [await link(e) for e in output.get("transcription", [])]
        if "summary" in output:
            out["summary"] = await link(output["summary"])
        return Response(200, out)

    async def delete(self, req: Request) -> Response:
        job = self._job(req)
        if job is None:
            return self.err_not_found(req.params["id"])
        view = self.view(job, self.emu.store.status(job))  # D13: same response as get-job
        if not job.data["customer_bucket"]:
            for entry in _entries(job.data["output"]):
                self.emu.daily_storage.delete(entry["s3Config"]["key"])
        self.emu.store.delete_job(job)
        return Response(200, view)

    # -- outputs ----------------------------------------------------------------------------------
    async def materialize(self, job: Job) -> list[dict[str, Any]]:
        data = job.data
        seed = self.emu.config.seed
        scenario = "clinic" if data["preset"] == "soap-notes" else None
        tr = content.make_transcript(job.job_id, seed, scenario=scenario, language=data["input"]["language"])
        objects: list[S3Object] = []
        output = data["output"]
        txt_size = content.output_bytes_marker(job.request)  # emu_output_bytes=<n>: a big .txt
        for entry in output.get("transcription", []):
            fmt = entry["format"]
            s3c = entry["s3Config"]
            body = content.render_transcript(tr, fmt, job.job_id)
            objects.append(
                S3Object(
                    s3c["bucket"],
                    s3c["key"],
                    content.pad_to(body, txt_size) if fmt == "txt" else body,
                    content.CONTENT_TYPES[fmt],
                )
            )
        if "summary" in output:
            s3c = output["summary"]["s3Config"]
            objects.append(
                S3Object(
                    s3c["bucket"], s3c["key"], content.summary_text(tr).encode(), "text/plain; charset=utf-8"
                )
            )
        if "soap" in output:
            s3c = output["soap"]["s3Config"]
            body = json.dumps(content.soap_note(tr, job.job_id), indent=2).encode()
            objects.append(S3Object(s3c["bucket"], s3c["key"], body, "application/json"))
        if data["customer_bucket"]:
            await self.emu.s3.put_all(objects)
            where = "s3"
        else:
            for obj in objects:
                self.emu.daily_storage.put(obj.key, obj.body, obj.content_type)
            where = "daily-storage"
        if not objects:
            raise OutputError("Error: nothing to write")
        return [{"bucket": o.bucket, "key": o.key, "size": len(o.body), "location": where} for o in objects]


def _entries(output: dict[str, Any]) -> list[dict[str, Any]]:
    entries = list(output.get("transcription", []))
    entries += [output[name] for name in ("summary", "soap") if name in output]
    return entries
