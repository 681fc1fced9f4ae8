"""The emulator's ASGI application: the four services, the admin API and Daily's storage links.

Prefixes: ``/daily/v1``, ``/wasabi``, ``/symbl``, ``/deepaffects``, ``/_admin``,
``/_storage/daily``. The app is a small hand-written ASGI router (no framework on the hot path).
:func:`run` serves it with uvicorn (uvloop + httptools, access log off) and a protocol class that
exposes each connection's transport in the ASGI scope so that ``drop`` faults can abort it.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from jobstatus_emulator.admin import Admin
from jobstatus_emulator.base import (
    TRANSPORT_KEY,
    Receive,
    Request,
    Response,
    Scope,
    Send,
    send_response,
)
from jobstatus_emulator.daily import DailyService
from jobstatus_emulator.deepaffects import DeepAffectsService
from jobstatus_emulator.faults import FaultEngine, dispatch, dispatch_download
from jobstatus_emulator.state import EmulatorConfig, Stats, Store
from jobstatus_emulator.storage import DailyStorage, S3Writer
from jobstatus_emulator.symbl import SymblService
from jobstatus_emulator.wasabi import WasabiService
from jobstatus_emulator.webhooks import WebhookSender

log = logging.getLogger("jobstatus.emulator")
# httpx logs every request URL at INFO: webhook URLs are the user's and may carry secrets.
logging.getLogger("httpx").setLevel(logging.WARNING)

STORAGE_PREFIX = "/_storage/daily/"


class Emulator:
    """The ASGI application. One instance holds all state for the process."""

    def __init__(self, config: EmulatorConfig | None = None) -> None:
        self.config = config or EmulatorConfig()
        self.initial_config = copy.deepcopy(self.config)
        self.store = Store(self.config)
        self.faults = FaultEngine(self.config.seed)
        self.stats = Stats()
        self.s3 = S3Writer(
            self.config.s3_endpoint,
            self.config.s3_access_key,
            self.config.s3_secret_key,
            self.config.s3_region,
        )
        self.daily_storage = DailyStorage()
        self.webhooks = WebhookSender(self.config, self.store)
        self.daily = DailyService(self)
        self.wasabi = WasabiService(self)
        self.symbl = SymblService(self)
        self.deepaffects = DeepAffectsService(self)
        self.services = {s.name: s for s in (self.daily, self.wasabi, self.symbl, self.deepaffects)}
        for service in self.services.values():
            service.setup()
        self._prefixes = [(s.prefix, len(s.prefix), s) for s in self.services.values()]
        self.admin = Admin(self)
        for spec in self.config.faults:
            self.faults.add(spec)
        if self.store.journal is not None:
            self._load_state()

    def _load_state(self) -> None:
        """Jobs and accounts from the state file (``--state-file``); Daily links keep their secret."""
        self.store.load()
        secret = self.store.meta.get("daily_link_secret")
        if isinstance(secret, str):
            self.daily_storage.secret = bytes.fromhex(secret)
        else:
            self.store.save_meta(daily_link_secret=self.daily_storage.secret.hex())
        for job in self.store.all_jobs("symbl"):
            self.symbl.conversations[(job.account.identity, job.data["conversationId"])] = job

    async def _restore(self) -> None:
        """Inside the server loop, after a load: timers again, and Daily-storage outputs rewritten."""
        self.store.rearm()
        for job in self.store.all_jobs("daily"):
            if job.materialized and not job.data["customer_bucket"]:
                job.outputs = await self.daily.materialize(job)

    # -- state ------------------------------------------------------------------------------------
    def reset(self) -> None:
        fresh = copy.deepcopy(self.initial_config)
        for key in EmulatorConfig.RUNTIME_KEYS:
            setattr(self.config, key, getattr(fresh, key))
        self.store.reset()
        self.faults.clear()
        self.faults.reseed(self.config.seed)
        for spec in self.config.faults:
            self.faults.add(spec)
        self.stats.reset()
        self.daily_storage.reset()
        self.symbl.reset()
        self.deepaffects.reset()
        self.daily.reset()
        self.webhooks.reset()

    def unrevoke(self, rule_id: str) -> None:
        for acc in self.store.accounts.values():
            if acc.revoked_by == rule_id:
                acc.revoked_by = None

    # -- ASGI -------------------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http":
            if kind == "lifespan":
                await self._lifespan(receive, send)
            return
        path: str = scope["path"]
        for prefix, n, service in self._prefixes:
            if path.startswith(prefix) and (len(path) == n or path[n] == "/"):
                await dispatch(self, service, path[n:], scope, receive, send)
                return
        if path.startswith("/_admin/"):
            await send_response(send, await self.admin.handle(Request(scope, receive, path[7:])))
            return
        if path.startswith(STORAGE_PREFIX) and scope["method"] in ("GET", "HEAD"):
            await dispatch_download(self, path, scope, receive, send)  # faults apply to downloads too
            return
        await send_response(send, Response(404, {"error": "not found", "path": path}))

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                if self.store.journal is not None:
                    await self._restore()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def aclose(self) -> None:
        self.store.shutdown()  # not reset(): a state file outlives the process
        await self.webhooks.aclose()


def create_app(config: EmulatorConfig | None = None, **overrides: Any) -> Emulator:
    """Build the ASGI app. ``overrides`` set :class:`EmulatorConfig` fields."""
    config = copy.deepcopy(config) if config is not None else EmulatorConfig()
    for key, value in overrides.items():
        if not hasattr(config, key):
            raise TypeError(f"unknown emulator setting {key!r}")
        setattr(config, key, value)
    return Emulator(config)


def _protocol_class() -> type:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class EmulatorHttpProtocol(HttpToolsProtocol):
        """uvicorn's httptools protocol, with the connection's transport in ``scope["extensions"]``."""

        def on_message_begin(self) -> None:
            super().on_message_begin()
            extensions: dict[str, Any] = self.scope.setdefault("extensions", {})
            extensions[TRANSPORT_KEY] = self.transport

    return EmulatorHttpProtocol


def run(config: EmulatorConfig, log_level: str = "info") -> None:
    """Serve the emulator until SIGTERM/SIGINT (uvicorn with uvloop + httptools, no access log)."""
    import uvicorn

    app = create_app(config)
    uv_config = uvicorn.Config(
        app,
        host=config.host,
        port=config.port,
        loop="uvloop",
        http=_protocol_class(),
        lifespan="on",
        access_log=False,
        log_level=log_level,
        server_header=False,
        timeout_keep_alive=30,
        backlog=4096,
    )
    server = uvicorn.Server(uv_config)
    server.run()
