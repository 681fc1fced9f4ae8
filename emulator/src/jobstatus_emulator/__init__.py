"""The four job APIs (Daily, Wasabi AiR, Symbl.ai, DeepAffects) as one local ASGI app.

``create_app()`` builds the ASGI application; ``EmulatorServer`` runs it as a real subprocess on a
free loopback port. See ``docs/design.md`` for the contract and ``admin.py`` for the admin API.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["SERVICE_PREFIXES", "EmulatorConfig", "EmulatorServer", "create_app"]

SERVICE_PREFIXES = {
    "daily": "/daily/v1",
    "wasabi": "/wasabi",
    "symbl": "/symbl",
    "deepaffects": "/deepaffects",
}

if TYPE_CHECKING:
    from jobstatus_emulator.app import create_app
    from jobstatus_emulator.server import EmulatorServer
    from jobstatus_emulator.state import EmulatorConfig


def __getattr__(name: str) -> Any:
    # Lazy: importing the package (e.g. for EmulatorServer) must not import uvicorn or boto3.
    if name == "create_app":
        from jobstatus_emulator.app import create_app

        return create_app
    if name == "EmulatorServer":
        from jobstatus_emulator.server import EmulatorServer

        return EmulatorServer
    if name == "EmulatorConfig":
        from jobstatus_emulator.state import EmulatorConfig

        return EmulatorConfig
    raise AttributeError(name)
