"""Per-connection HTTP settings, read from the connection's extra."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from airflow_jobstatus.exceptions import InvalidParameterError


@dataclass(frozen=True)
class HttpSettings:
    """How one connection talks HTTP. Defaults are safe for the public services."""

    request_timeout: float = 30.0
    max_retries: int = 5
    max_requests_per_second: float = 10.0
    """0 means no client-side limit."""
    verify_tls: bool = True
    allow_http_links: bool = False
    max_response_bytes: int = 32 * 1024 * 1024
    """API responses larger than this are refused as malformed (outputs are streamed, not read whole)."""

    @classmethod
    def from_extra(
        cls, extra: Mapping[str, Any], *, conn_type: str, default_max_rps: float | None = None
    ) -> HttpSettings:
        """Read settings from a connection extra, accepting plain and ``extra__<type>__`` names."""

        def get(name: str) -> Any:
            for key in (name, f"extra__{conn_type}__{name}"):
                value = extra.get(key)
                if value not in (None, ""):
                    return value
            return None

        base = cls() if default_max_rps is None else cls(max_requests_per_second=default_max_rps)
        values: dict[str, Any] = {}
        for name, kind in (
            ("request_timeout", float),
            ("max_retries", int),
            ("max_requests_per_second", float),
            ("max_response_bytes", int),
        ):
            raw = get(name)
            if raw is None:
                continue
            try:
                value = kind(raw)
                if not math.isfinite(value):  # NaN or infinity ("nan", "1e999"): no usable setting
                    raise ValueError(name)
            except (TypeError, ValueError, OverflowError):
                raise InvalidParameterError(
                    f"connection extra '{name}' must be a number, got {raw!r}",
                    hint=f"Set '{name}' in the connection's extra to a number",
                ) from None
            if value < 0 or (name == "request_timeout" and value == 0):
                raise InvalidParameterError(
                    f"connection extra '{name}' must be positive, got {raw!r}",
                    hint=f"Set '{name}' in the connection's extra to a positive number",
                )
            values[name] = value
        for name in ("verify_tls", "allow_http_links"):
            raw = get(name)
            if raw is not None:
                values[name] = _as_bool(name, raw)
        return cls(**{**base.__dict__, **values})


def _as_bool(name: str, raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise InvalidParameterError(
        f"connection extra '{name}' must be true or false, got {raw!r}",
        hint=f"Set '{name}' in the connection's extra to true or false",
    )
