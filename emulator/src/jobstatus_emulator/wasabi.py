"""Wasabi AiR job API (``/wasabi``).

Documented rules it enforces (docs/contracts.md): headers auth (W1), submit body (W2), job and
status shapes (W3, W4), statuses (W5), ``/metadata`` only for a completed job (W6; it answers 404
for ``wasabi_metadata_lag`` seconds after completion: the metadata may lag the status), list (W7),
the ``{"Error", "ErrorCode"}`` bodies (W9).

Behaviour chosen where the documentation is silent (contracts "Behaviours the docs leave open"):

* ``Priority`` is optional (default 5); ``Batch`` is ``null`` when not given; ``Source.Provider``
  defaults to ``wasabi``. ``Source.AccessKey`` / ``SecretKey`` are accepted and never returned.
* ``GET /jobs`` (W7: ``pageNumber`` >= 1, ``pageSize`` 1..100, ``sortBy`` only ``Created``,
  ``sortOrder`` ``Asc`` or ``Desc``, default ``Asc``): ``pageSize`` defaults to 25 (the page says
  25 in its text and 100 in its schema), ``status`` and ``batch`` match exactly, ``name`` is a
  case-insensitive substring match. A page past the end is ``{"Records": []}``.
* ``ErrorCount`` is 0, or 1 for a failed job. ``UserId`` is a number derived from the access key.
* On completion one metadata JSON object is written to the destination bucket on the S3 server at
  ``jobs/YYYY_MM_DD/<uuid>/<Name>_metadata.json`` (``/`` in the name becomes ``_``). A missing
  bucket fails the job.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from datetime import datetime, timezone
from typing import Any

from jobstatus_emulator import content
from jobstatus_emulator.base import Request, Response, Route, Service
from jobstatus_emulator.state import Job
from jobstatus_emulator.storage import S3Object, StorageHost

SERVICE_NAMES = ("ocr", "s2t", "nld", "audiotag", "face", "logo")
FAILURE = "Preflight check failed: the source object could not be read or its media format is not supported"


def iso(ts: float) -> str:
    dt = datetime.fromtimestamp(ts, timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def _bad(message: str) -> Response:
    return Response(400, {"Error": message, "ErrorCode": "BAD_REQUEST"})


def _nonempty_str(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


class WasabiService(Service):
    name = "wasabi"
    prefix = "/wasabi"
    status_keys = ("Status",)
    list_keys = ("Records",)

    emu: StorageHost

    def __init__(self, emulator: StorageHost) -> None:
        super().__init__(emulator)

    def routes(self) -> list[Route]:
        return [
            Route("GET", "/jobs/{Id}", self.get_job, job_param="Id"),
            Route("GET", "/jobs/{Id}/status", self.get_status, job_param="Id"),
            Route("GET", "/jobs", self.list_jobs),
            Route("POST", "/jobs", self.submit),
            Route("GET", "/jobs/{Id}/metadata", self.get_metadata, job_param="Id"),
        ]

    def setup(self) -> None:
        self.emu.store.materializers["wasabi"] = self.materialize
        self.emu.store.failure_messages["wasabi"] = lambda job: FAILURE

    # -- auth and errors --------------------------------------------------------------------------
    def identity(self, req: Request) -> str:
        return req.header(b"x-amz-access-key") or ""

    def authenticate(self, req: Request) -> Response | None:
        access = req.header(b"x-amz-access-key") or ""
        secret = req.header(b"x-amz-secret-key") or ""
        if not access or not secret or access.startswith("invalid") or secret.startswith("invalid"):
            return self.err_unauthorized()
        return self.admit(req, access)

    def err_unauthorized(self) -> Response:
        return Response(401, {"Error": "Unauthorized", "ErrorCode": "UNAUTHORIZED"})

    def err_not_found(self, job_id: str | None) -> Response:
        return Response(404, {"ErrorCode": "NOT_FOUND"})

    def err_route(self, req: Request, method_not_allowed: bool) -> Response:
        if method_not_allowed:
            return Response(405, {"Error": "Method not allowed", "ErrorCode": "METHOD_NOT_ALLOWED"})
        return Response(404, {"Error": "Resource not found", "ErrorCode": "NOT_FOUND"})

    def err_server(self, status: int) -> Response:
        if status == 500:
            return Response(
                500,
                {
                    "Error": "An unexpected error occurred while processing the job.",
                    "ErrorCode": "INTERNAL_ERROR",
                },
            )
        code = {502: "BAD_GATEWAY", 503: "SERVICE_UNAVAILABLE", 504: "GATEWAY_TIMEOUT"}.get(
            status, "INTERNAL_ERROR"
        )
        return Response(status, {"Error": "The service is temporarily unavailable.", "ErrorCode": code})

    def err_rate_limited(self) -> Response:
        return Response(429, {"Error": "Too many requests", "ErrorCode": "TOO_MANY_REQUESTS"})

    def err_bad_json(self, detail: str) -> Response:
        return _bad(f"Request body is not valid JSON: {detail}")

    def err_too_large(self) -> Response:
        return Response(413, {"Error": "Request body too large", "ErrorCode": "PAYLOAD_TOO_LARGE"})

    # -- views ------------------------------------------------------------------------------------
    def view(self, job: Job, status: str) -> dict[str, Any]:
        d = job.data
        return {
            "Id": job.job_id,
            "Name": d["Name"],
            "Source": d["Source"],
            "Services": d["Services"],
            "UserId": d["UserId"],
            "Created": d["Created"],
            "Completed": iso(job.final_at)
            if job.final_at is not None and job.final_status == status
            else None,
            "Priority": d["Priority"],
            "Batch": d["Batch"],
            "Status": status,
            "Destination": d["Destination"],
        }

    def _job(self, req: Request) -> Job | None:
        assert req.account is not None
        return req.account.jobs.get(req.params["Id"])

    # -- routes -----------------------------------------------------------------------------------
    async def get_job(self, req: Request) -> Response:
        job = self._job(req)
        if job is None:
            return self.err_not_found(req.params["Id"])
        return Response(200, self.view(job, self.emu.store.status(job)))

    async def get_status(self, req: Request) -> Response:
        job = self._job(req)
        if job is None:
            return self.err_not_found(req.params["Id"])
        status = self.emu.store.status(job)
        return Response(
            200, {"Id": job.job_id, "Status": status, "ErrorCount": 1 if status == "failed" else 0}
        )

    async def get_metadata(self, req: Request) -> Response:
        job = self._job(req)
        now = time.time()
        if (
            job is None
            or self.emu.store.status(job, now) != "completed"
            or job.final_at is None
            or now < job.final_at + self.emu.config.wasabi_metadata_lag  # W6: may lag the status
        ):
            return Response(404, {"Error": "Job not found or not completed", "ErrorCode": "NOT_FOUND"})
        d = job.data
        return Response(
            200,
            {
                "Id": job.job_id,
                "UserId": d["UserId"],
                "Destination": d["Destination"],
                "DestinationPath": d["DestinationPath"],
            },
        )

    async def submit(self, req: Request) -> Response:
        body = await req.json(self.body_limit)
        if not isinstance(body, dict):
            return _bad("Request body must be a JSON object")
        name = body.get("Name")
        if not isinstance(name, str) or not 1 <= len(name) <= 256 or not name.strip():  # W2
            return _bad("Name is required and must be 1-256 characters, not only blanks")
        priority = body.get("Priority", 5)
        if isinstance(priority, bool) or not isinstance(priority, int) or not 1 <= priority <= 10:
            return _bad("Priority must be an integer between 1 and 10")
        services = body.get("Services")
        if not isinstance(services, dict) or not services:
            return _bad(f"Services is required: a non-empty map of {', '.join(SERVICE_NAMES)}")
        for key, value in services.items():
            if key not in SERVICE_NAMES:
                return _bad(f"Unknown service '{key}'; valid services: {', '.join(SERVICE_NAMES)}")
            if not (value == "" or (isinstance(value, dict) and isinstance(value.get("config", {}), dict))):
                return _bad(f'Services.{key} must be "" or {{"config": {{...}}}}')
        batch = body.get("Batch")
        if batch is not None and (not isinstance(batch, str) or len(batch) > 256):
            return _bad("Batch must be a string of at most 256 characters")
        dest = body.get("Destination")
        if (
            not isinstance(dest, dict)
            or not _nonempty_str(dest.get("Bucket"))
            or not _nonempty_str(dest.get("Region"))
        ):
            return _bad("Destination is required with Bucket and Region")
        src = body.get("Source")
        if not isinstance(src, dict):
            return _bad("Source is required with Bucket and ObjectKey")
        for key in ("Bucket", "ObjectKey"):  # W2: Endpoint and Region are optional
            if not _nonempty_str(src.get(key)):
                return _bad(f"Source.{key} is required")
        for key in ("Endpoint", "Region", "Provider", "AccessKey", "SecretKey"):
            if src.get(key) is not None and not isinstance(src.get(key), str):
                return _bad(f"Source.{key} must be a string")
        if bool(src.get("AccessKey")) != bool(src.get("SecretKey")):
            return _bad("Source.AccessKey and Source.SecretKey must be given together")

        assert req.account is not None
        acc = req.account
        job_id = uuid.uuid4().hex
        now = time.time()
        user_id = str(10000 + int(hashlib.sha256(acc.identity.encode()).hexdigest(), 16) % 90000)
        source_view = {
            "Endpoint": src.get("Endpoint"),
            "Bucket": src["Bucket"],
            "Region": src.get("Region"),
            "ObjectKey": src["ObjectKey"],
            "Provider": src.get("Provider") or "wasabi",
        }
        redacted = dict(body)
        redacted["Source"] = {k: ("***" if k in ("AccessKey", "SecretKey") else v) for k, v in src.items()}
        job = self.emu.store.add_job(
            acc,
            job_id,
            request={"body": redacted, "query": dict(req.query)},
            data={
                "Name": name,
                "Source": source_view,
                "Services": services,
                "UserId": user_id,
                "Created": iso(now),
                "Priority": priority,
                "Batch": batch,
                "Destination": {"Bucket": dest["Bucket"], "Region": dest["Region"]},
                "DestinationPath": None,
            },
            markers_from=(body, req.query_string),
            now=now,
        )
        return Response(200, {"Job": self.view(job, self.emu.store.status(job, now))})

    async def list_jobs(self, req: Request) -> Response:
        q = req.query
        page_number_raw = q.get("pageNumber", "1")
        page_size_raw = q.get("pageSize", "25")
        if not page_number_raw.isdigit() or int(page_number_raw) < 1:
            return _bad("pageNumber must be an integer >= 1")
        if not page_size_raw.isdigit() or not 1 <= int(page_size_raw) <= 100:
            return _bad("pageSize must be an integer between 1 and 100")
        page_number, page_size = int(page_number_raw), int(page_size_raw)
        sort_by = q.get("sortBy", "Created") or "Created"
        if sort_by != "Created":
            return _bad("sortBy must be 'Created'")
        sort_order = (q.get("sortOrder", "Asc") or "Asc").lower()  # W7: default Asc
        if sort_order not in ("asc", "desc"):
            return _bad("sortOrder must be 'Asc' or 'Desc'")
        assert req.account is not None
        acc = req.account
        store = self.emu.store
        now = time.time()
        status_filter = q.get("status") or None
        batch = q.get("batch") or None
        name = (q.get("name") or "").lower() or None
        start = (page_number - 1) * page_size
        if status_filter is None and batch is None and name is None:
            order = acc.order
            n = len(order)
            if sort_order == "asc":
                page = order[start : start + page_size]
            else:
                hi = n - start
                page = order[max(0, hi - page_size) : max(0, hi)][::-1]
            records = [self.view(j, store.status(j, now)) for j in page]
        else:
            chosen = acc.order if sort_order == "asc" else acc.order[::-1]
            records = []
            skipped = 0
            for job in chosen:
                if batch is not None and job.data["Batch"] != batch:
                    continue
                if name is not None and name not in job.data["Name"].lower():
                    continue
                status = store.status(job, now)
                if status_filter is not None and status != status_filter:
                    continue
                if skipped < start:
                    skipped += 1
                    continue
                records.append(self.view(job, status))
                if len(records) >= page_size:
                    break
        return Response(200, {"Records": records})

    # -- outputs ----------------------------------------------------------------------------------
    async def materialize(self, job: Job) -> list[dict[str, Any]]:
        d = job.data
        seed = self.emu.config.seed
        now = time.time()
        tr = content.make_transcript(job.job_id, seed)
        day = datetime.fromtimestamp(now, timezone.utc).strftime("%Y_%m_%d")
        safe_name = d["Name"].replace("/", "_")
        key = f"jobs/{day}/{uuid.uuid4()}/{safe_name}_metadata.json"
        bucket = d["Destination"]["Bucket"]
        src = d["Source"]
        document = {
            "JobId": job.job_id,
            "JobName": d["Name"],
            "UserId": d["UserId"],
            "Created": d["Created"],
            "Completed": iso(now),
            "Source": {**src, "Uri": f"s3://{src['Bucket']}/{src['ObjectKey']}"},
            "SourceObject": f"s3://{src['Bucket']}/{src['ObjectKey']}",
            "MediaInfo": {
                "DurationSeconds": round(tr.duration, 2),
                "Container": src["ObjectKey"].rsplit(".", 1)[-1],
            },
            "Services": content.wasabi_results(d["Services"], tr, job.job_id, seed),
        }
        body = json.dumps(document, indent=2).encode()
        await self.emu.s3.put_all([S3Object(bucket, key, body, "application/json")])
        d["DestinationPath"] = f"s3://{bucket}/{key}"
        return [{"bucket": bucket, "key": key, "size": len(body), "location": "s3"}]
