"""`Call`: one HTTP request as a hook or a service description states it (imports no Airflow)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pydantic


def segment(value: str) -> str:
    """One URL path segment, percent-encoded (a job id can never change the path).

    ``.`` and ``..`` are encoded too: left as they are, URL normalization would drop them (a job id
    ``.`` would address the list endpoint).
    """
    encoded = quote(str(value), safe="")
    return encoded.replace(".", "%2E") if encoded in (".", "..") else encoded


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
