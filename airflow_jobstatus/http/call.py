"""`Call`: one HTTP request as a hook or a service description states it (imports no Airflow)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pydantic


@dataclass(frozen=True)
class Call:
    """One HTTP request as a hook describes it; `ServiceClient.execute` / `aexecute` send it."""

    operation: str
    method: str
    path: str
    model: type[pydantic.BaseModel] | None = None
    """Validate the JSON body into this model; None returns the `httpx.Response`."""
    params: Mapping[str, Any] | None = None
    json: Any = None
    job_id: str | None = None
    hints: Mapping[int, str] | None = None
    idempotent: bool | None = None
    no_auth: bool = False
