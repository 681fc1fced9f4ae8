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
    max_requests_per_minute: float = 0.0
    """A second, per-minute rate limit (0: none); the stricter of the two applies."""
    max_requests_per_day: int = 0
    """Requests the account may send in any ``request_budget_window`` (0: no budget): per process, or
    for the whole deployment with ``[jobstatus] redis_url`` (`shared.budget`)."""
    request_budget_window: float = 86400.0
    """Seconds of the sliding window ``max_requests_per_day`` counts in (a day; shorter for tests)."""
    verify_tls: bool = True
    allow_http_links: bool = False
    max_response_bytes: int = 32 * 1024 * 1024
    """API responses larger than this are refused as malformed (outputs are streamed, not read whole)."""

    @property
    def rate(self) -> float:
        """Requests per second the client may send: the stricter of the two rate limits (0: none)."""
        rates = [r for r in (self.max_requests_per_second, self.max_requests_per_minute / 60.0) if r > 0]
        return min(rates) if rates else 0.0

    @classmethod
    def from_extra(
        cls,
        extra: Mapping[str, Any],
        *,
        conn_type: str,
        default_max_rps: float | None = None,
        default_max_rpm: float = 0.0,
        default_max_per_day: int = 0,
    ) -> HttpSettings:
        """Read settings from a connection extra, accepting plain and ``extra__<type>__`` names.

        The ``default_*`` arguments are the service's defaults where the extra sets nothing.
        """

        def get(name: str) -> Any:
            for key in (name, f"extra__{conn_type}__{name}"):
                value = extra.get(key)
                if value not in (None, ""):
                    return value
            return None

        base = cls(max_requests_per_minute=default_max_rpm, max_requests_per_day=default_max_per_day)
        if default_max_rps is not None:
            base = cls(**{**base.__dict__, "max_requests_per_second": default_max_rps})
        values: dict[str, Any] = {}
        for name, kind in (
            ("request_timeout", float),
            ("max_retries", int),
            ("max_requests_per_second", float),
            ("max_requests_per_minute", float),
            ("max_requests_per_day", int),
            ("request_budget_window", float),
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
            if value < 0 or (name in ("request_timeout", "request_budget_window") and value == 0):
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
