"""The admin API under ``/_admin`` (JSON in, JSON out; no authentication: loopback only).

* ``GET /_admin/health`` -> ``{"ok": true}``
* ``POST /_admin/reset`` -> ``{"ok": true}``: clears jobs, accounts (settings, revocations, Symbl
  tokens), Daily storage, faults (start-up ``--fault`` rules come back), counters; config back to
  its start-up values; the fault RNG is re-seeded.
* ``GET /_admin/config``; ``PATCH /_admin/config`` with any of ``job_duration``,
  ``symbl_token_lifetime``, ``symbl_max_concurrent_jobs``, ``wasabi_metadata_lag``, ``link_ttl``, ``seed``,
  ``daily_bucket`` -> the new config. (``s3_endpoint`` and ``public_url`` are shown, read-only.)
* ``GET|PUT /_admin/accounts/{service}/{credential}``: settings ``daily_bucket`` (object or null)
  and ``revoked`` (bool) -> ``{"service", "credential", "settings", "revoked", "jobs"}``.
* ``POST /_admin/faults`` -> ``201 {"id", ...rule}``; ``GET /_admin/faults`` ->
  ``{"faults": [...]}`` (with ``remaining`` and ``hits``); ``DELETE /_admin/faults/{id}``;
  ``DELETE /_admin/faults`` (all).
* ``GET /_admin/stats?service=&credential=`` -> ``{"requests": [...], "total": N}``.
* ``GET /_admin/requests?service=&credential=&since=`` -> ``{"requests": [{"at", "service",
  "method", "route", "credential", "status"}], "total": N, "dropped": M}``: each request one by one,
  oldest first, with its arrival time ``at`` (epoch seconds, taken before any ``slow`` delay);
  ``since`` (epoch seconds) keeps the later ones. The last 100,000 requests are kept; ``dropped``
  counts older ones. This is how a test checks a client's request rate against its limit.
* ``GET /_admin/webhooks?service=`` -> ``{"deliveries": [{"id", "service", "kind", "url", "retries",
  "state", "attempts": [{"at", "status", "error"}]}], "total": N}``: the webhooks the emulator sent
  (``webhooks.py``), oldest first, URLs without their query string.
* ``GET /_admin/jobs?service=&credential=`` -> ``{"jobs": [...], "total": N}``;
  ``GET /_admin/jobs/{service}/{job_id}``; ``PATCH /_admin/jobs/{service}/{job_id}`` with
  ``{"duration", "outcome"}``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Protocol

from jobstatus_emulator.base import BadJson, Request, Response, Route, Router
from jobstatus_emulator.content import SYMBL_DOCUMENTS
from jobstatus_emulator.state import (
    OUTCOMES,
    SERVICES,
    TIMELINES,
    Job,
    validate_bucket_setting,
)

if TYPE_CHECKING:
    from jobstatus_emulator.faults import FaultEngine
    from jobstatus_emulator.state import EmulatorConfig, Stats, Store
    from jobstatus_emulator.webhooks import WebhookSender


class AdminHost(Protocol):
    """What the admin API reads and changes of the emulator (`jobstatus_emulator.app.Emulator`)."""

    config: EmulatorConfig
    store: Store
    faults: FaultEngine
    stats: Stats
    webhooks: WebhookSender

    def reset(self) -> None: ...

    def unrevoke(self, rule_id: str) -> None: ...


def _bad(message: str) -> Response:
    return Response(400, {"error": message})


def _not_found(message: str) -> Response:
    return Response(404, {"error": message})


class Admin:
    prefix = "/_admin"

    def __init__(self, emu: AdminHost) -> None:
        self.emu = emu
        self.router = Router(
            [
                Route("GET", "/health", self.health),
                Route("POST", "/reset", self.reset),
                Route("GET", "/config", self.get_config),
                Route("PATCH", "/config", self.patch_config),
                Route("GET", "/accounts/{service}/{credential:path}", self.get_account),
                Route("PUT", "/accounts/{service}/{credential:path}", self.put_account),
                Route("GET", "/faults", self.list_faults),
                Route("POST", "/faults", self.add_fault),
                Route("DELETE", "/faults", self.clear_faults),
                Route("DELETE", "/faults/{id}", self.delete_fault),
                Route("GET", "/stats", self.stats),
                Route("GET", "/requests", self.requests),
                Route("GET", "/webhooks", self.webhooks),
                Route("GET", "/jobs", self.list_jobs),
                Route("GET", "/jobs/{service}/{job_id:path}", self.get_job),
                Route("PATCH", "/jobs/{service}/{job_id:path}", self.patch_job),
            ]
        )

    async def handle(self, req: Request) -> Response:
        route, params, other = self.router.match(req.method, req.sub_path)
        if route is None:
            return Response(405 if other else 404, {"error": "method not allowed" if other else "not found"})
        req.params = params
        try:
            return await route.handler(req)
        except BadJson as exc:
            return _bad(f"invalid JSON body: {exc}")
        except ValueError as exc:
            return _bad(str(exc))

    # -- basics -----------------------------------------------------------------------------------
    async def health(self, req: Request) -> Response:
        return Response(200, {"ok": True})

    async def reset(self, req: Request) -> Response:
        self.emu.reset()
        return Response(200, {"ok": True})

    async def get_config(self, req: Request) -> Response:
        return Response(200, self.emu.config.runtime_view())

    async def patch_config(self, req: Request) -> Response:
        body = await req.json()
        self.emu.config.apply_patch(body)
        if isinstance(body, dict) and "seed" in body:
            self.emu.faults.reseed(self.emu.config.seed)
        return Response(200, self.emu.config.runtime_view())

    # -- accounts ---------------------------------------------------------------------------------
    def _account_view(self, service: str, credential: str) -> dict[str, Any]:
        acc = self.emu.store.find_account(service, credential)
        return {
            "service": service,
            "credential": credential,
            "settings": dict(acc.settings) if acc else {},
            "revoked": bool(acc and acc.revoked_by),
            "jobs": acc.live if acc else 0,
        }

    async def get_account(self, req: Request) -> Response:
        service = req.params["service"]
        if service not in SERVICES:
            return _not_found(f"unknown service {service!r}")
        return Response(200, self._account_view(service, req.params["credential"]))

    async def put_account(self, req: Request) -> Response:
        service = req.params["service"]
        if service not in SERVICES:
            return _not_found(f"unknown service {service!r}")
        body = await req.json()
        if not isinstance(body, dict):
            return _bad("body must be a JSON object")
        unknown = set(body) - {"daily_bucket", "revoked"}
        if unknown:
            return _bad(f"unknown account settings: {', '.join(sorted(unknown))}")
        settings: dict[str, Any] = {}
        if "daily_bucket" in body:
            settings["daily_bucket"] = validate_bucket_setting(body["daily_bucket"])
        revoked = body.get("revoked")
        if revoked is not None and not isinstance(revoked, bool):
            return _bad("revoked must be a boolean")
        acc = self.emu.store.account(service, req.params["credential"])
        acc.settings.update(settings)
        if revoked is not None:
            acc.revoked_by = "admin" if revoked else None
        self.emu.store.save_account(acc)
        return Response(200, self._account_view(service, acc.identity))

    # -- faults -----------------------------------------------------------------------------------
    async def list_faults(self, req: Request) -> Response:
        return Response(200, {"faults": [r.view() for r in self.emu.faults.rules]})

    async def add_fault(self, req: Request) -> Response:
        rule = self.emu.faults.add(await req.json())
        return Response(201, rule.view())

    async def delete_fault(self, req: Request) -> Response:
        rule = self.emu.faults.remove(req.params["id"])
        if rule is None:
            return _not_found(f"no fault with id {req.params['id']!r}")
        self.emu.unrevoke(rule.id)
        return Response(200, {"deleted": rule.id})

    async def clear_faults(self, req: Request) -> Response:
        ids = [r.id for r in self.emu.faults.rules]
        self.emu.faults.clear()
        for rule_id in ids:
            self.emu.unrevoke(rule_id)
        return Response(200, {"deleted": ids})

    # -- observability ----------------------------------------------------------------------------
    async def stats(self, req: Request) -> Response:
        q = req.query
        return Response(200, self.emu.stats.view(q.get("service") or None, q.get("credential")))

    async def requests(self, req: Request) -> Response:
        q = req.query
        try:
            since = float(q.get("since") or 0.0)
        except ValueError:
            return _bad("since must be epoch seconds")
        return Response(200, self.emu.stats.requests(q.get("service") or None, q.get("credential"), since))

    async def webhooks(self, req: Request) -> Response:
        return Response(200, self.emu.webhooks.view(req.query.get("service") or None))

    def job_view(self, job: Job) -> dict[str, Any]:
        store = self.emu.store
        now = time.time()
        status = store.status(job, now)
        return {
            "service": job.service,
            "job_id": job.job_id,
            "credential": job.account.identity,
            "request": job.request,
            "status": status,
            "timeline": store.timeline(job, now),
            "outcome": job.outcome,
            "duration": job.duration,
            "created": job.created,
            "due_at": job.due_at,
            "error": job.error,
            "outputs": list(job.outputs) or self._inline_outputs(job, status),
            "webhook": job.webhook is not None,
        }

    @staticmethod
    def _inline_outputs(job: Job, status: str) -> list[dict[str, Any]]:
        """Symbl and DeepAffects keep results at the service: describe where they are read."""
        if status != TIMELINES[job.service].success:
            return []
        if job.service == "symbl":
            return [
                {
                    "location": "conversation-api",
                    "conversationId": job.data["conversationId"],
                    "documents": list(SYMBL_DOCUMENTS),
                }
            ]
        if job.service == "deepaffects":
            return [{"location": "inline", "api": job.data["api"]}]
        return []

    async def list_jobs(self, req: Request) -> Response:
        q = req.query
        service = q.get("service") or None
        if service is not None and service not in SERVICES:
            return _bad(f"unknown service {service!r}")
        jobs = self.emu.store.all_jobs(service, q.get("credential"))
        return Response(200, {"jobs": [self.job_view(j) for j in jobs], "total": len(jobs)})

    def _find(self, req: Request) -> Job | None:
        service = req.params["service"]
        if service not in SERVICES:
            return None
        return self.emu.store.find_job(service, req.params["job_id"])

    async def get_job(self, req: Request) -> Response:
        job = self._find(req)
        if job is None:
            return _not_found(f"no {req.params['service']} job {req.params['job_id']!r}")
        return Response(200, self.job_view(job))

    async def patch_job(self, req: Request) -> Response:
        job = self._find(req)
        if job is None:
            return _not_found(f"no {req.params['service']} job {req.params['job_id']!r}")
        body = await req.json()
        if not isinstance(body, dict) or set(body) - {"duration", "outcome"}:
            return _bad('body must be an object with "duration" and/or "outcome"')
        duration = body.get("duration")
        if duration is not None and (
            isinstance(duration, bool) or not isinstance(duration, (int, float)) or duration < 0
        ):
            return _bad("duration must be a non-negative number of seconds")
        outcome = body.get("outcome")
        if outcome is not None:
            if outcome not in OUTCOMES:
                return _bad(f"outcome must be one of {', '.join(OUTCOMES)}")
            if outcome == "cancel" and TIMELINES[job.service].cancelled is None:
                return _bad(f"outcome 'cancel' is not possible for {job.service}")
            job.outcome = outcome
        if duration is not None:
            job.duration = float(duration)
        if job.final_status is not None:
            self.emu.store.reopen(job)
        else:
            self.emu.store.arm(job)
            self.emu.store.save_job(job)
        return Response(200, self.job_view(job))
