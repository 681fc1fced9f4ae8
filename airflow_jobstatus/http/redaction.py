"""Keep credentials out of logs, exception messages and reprs.

Three services put secrets where generic tools print them: DeepAffects in the URL's query string,
Wasabi in request headers, Symbl in the token request's body. Everything the HTTP core prints or
raises passes through these functions, and every secret value read from a connection is
registered here and with Airflow's secrets masker (which scrubs task and triggerer logs).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

REDACTED = "***"

SENSITIVE_QUERY_PARAMS = frozenset(
    {
        "apikey",
        "api_key",
        "key",
        "token",
        "access_token",
        "secret",
        "password",
        "signature",
        "x-signature",
        "x-amz-signature",
        "x-amz-credential",
        "x-amz-security-token",
    }
)
SENSITIVE_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-amz-access-key", "x-amz-secret-key"}
)
SENSITIVE_BODY_KEYS = frozenset(
    {
        "appsecret",
        "secret",
        "secretkey",
        "accesskey",
        "password",
        "apikey",
        "api_key",
        "accesstoken",
        "access_token",
        "token",
    }
)

_secrets: set[str] = set()
_secrets_lock = threading.Lock()
_longest_first: tuple[str, ...] = ()
"""The registered secrets, longest first (a secret inside a longer one is replaced with it)."""
_MIN_SECRET_LEN = 4  # shorter values would redact ordinary words


def register_secret(value: str | None) -> None:
    """Remember a secret so it is scrubbed from every message; also tell Airflow's masker."""
    global _longest_first
    if not value or len(value) < _MIN_SECRET_LEN:
        return
    with _secrets_lock:
        if value in _secrets:
            return
        _secrets.add(value)
        # No regex of all secrets: compiling one grew to 20-140 ms at 500-2,000 secrets, run inside a
        # triggerer's event loop whenever a new connection is read.
        at = next((i for i, s in enumerate(_longest_first) if len(s) < len(value)), len(_longest_first))
        _longest_first = (*_longest_first[:at], value, *_longest_first[at:])
    try:
        from airflow.sdk.log import mask_secret
    except Exception:  # pragma: no cover - Airflow missing or not configured: our own scrub still holds
        return
    mask_secret(value)


def scrub(text: str) -> str:
    """Replace every registered secret in ``text``."""
    if not text:
        return text
    for secret in _longest_first:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def redact_url(url: object) -> str:
    """A URL safe to print: sensitive query values and user-info replaced."""
    text = str(url)
    try:
        parts = urlsplit(text)
    except ValueError:
        return scrub(text)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{REDACTED}@{netloc.rsplit('@', 1)[1]}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode(
            [(k, REDACTED if k.lower() in SENSITIVE_QUERY_PARAMS else v) for k, v in pairs], safe="*"
        )
    return scrub(urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment)))


def redact_headers(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> dict[str, str]:
    items = headers.items() if isinstance(headers, Mapping) else headers
    return {k: (REDACTED if k.lower() in SENSITIVE_HEADERS else scrub(v)) for k, v in items}


def redact_body(body: Any) -> Any:
    """A JSON-like body with sensitive keys' values replaced (recursively)."""
    if isinstance(body, Mapping):
        return {
            k: (REDACTED if str(k).lower() in SENSITIVE_BODY_KEYS else redact_body(v))
            for k, v in body.items()
        }
    if isinstance(body, list):
        return [redact_body(v) for v in body]
    if isinstance(body, str):
        return scrub(body)
    return body


def excerpt(content: bytes, limit: int = 300) -> str:
    """A short, redacted excerpt of a response body for an error message."""
    text = content[:limit].decode("utf-8", errors="replace")
    try:
        parsed = json.loads(content)
    except (ValueError, UnicodeDecodeError, RecursionError):
        pass
    else:
        text = json.dumps(redact_body(parsed))[:limit]
    text = " ".join(text.split())
    return scrub(text) + ("..." if len(content) > limit else "")


class RedactingFilter(logging.Filter):
    """Scrubs URLs and registered secrets from records of libraries that log request lines.

    httpx logs every request's full URL at INFO; with DeepAffects that URL holds the API key.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            args = record.args if isinstance(record.args, tuple) else (record.args,)
            record.args = tuple(redact_url(a) if _looks_like_url(a) else _scrub_arg(a) for a in args)
        if isinstance(record.msg, str):
            record.msg = scrub(record.msg)
        return True


def _looks_like_url(value: object) -> bool:
    text = str(value) if value.__class__.__name__ == "URL" else value
    return isinstance(text, str) and "://" in text


def _scrub_arg(value: object) -> object:
    return scrub(value) if isinstance(value, str) else value


_FILTER = RedactingFilter()


def install_log_filters() -> None:
    """Attach the redacting filter to the HTTP libraries' loggers (idempotent)."""
    for name in ("httpx", "httpcore", "aiohttp.client", "aiohttp.internal"):
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
