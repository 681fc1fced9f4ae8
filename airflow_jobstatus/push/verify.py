"""Checks of a webhook's authenticity: a `SignedWebhook`'s HMAC signature, a `TokenInUrl` token.

Pure functions, no I/O: the receiver calls them and answers every failure the same way.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import secrets

_MILLIS_THRESHOLD = 1e11
"""A timestamp above this is read as milliseconds (1e11 s is the year 5138)."""


def hmac_signature(secret_b64: str, timestamp: str, body: bytes) -> str:
    """base64(HMAC-SHA256(base64decode(secret), "{timestamp}.{body}")), as a `SignedWebhook` is signed."""
    key = base64.b64decode(secret_b64, validate=True)
    digest = hmac.new(key, timestamp.encode("ascii") + b"." + body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def timestamp_seconds(timestamp: str) -> float | None:
    """The header's time in epoch seconds, or None if it is not a plain number.

    Daily's page does not say whether it sends seconds or milliseconds (*assumed*: either, contracts).
    """
    text = timestamp.strip()
    if not text or len(text) > 20 or not text.replace(".", "", 1).isdigit():
        return None
    value = float(text)
    return value / 1000.0 if value > _MILLIS_THRESHOLD else value


def verify_signature(
    secret_b64: str | None,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    *,
    now: float,
    window: float,
) -> bool:
    """True only for a fresh webhook signed with this secret (constant-time comparison).

    Without a secret (unknown connection) the HMAC is still computed, with a dummy key, so that
    the answer takes as long as for a wrong signature.
    """
    if not secret_b64:
        with contextlib.suppress(UnicodeEncodeError):
            hmac_signature(_DUMMY_SECRET, timestamp or "0", body)
        return False
    if not timestamp or not signature:
        return False
    when = timestamp_seconds(timestamp)
    if when is None or abs(now - when) > window:
        return False
    try:
        expected = hmac_signature(secret_b64, timestamp.strip(), body)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        return False
    return hmac.compare_digest(expected.encode("ascii"), signature.strip().encode("ascii", "replace"))


_DUMMY_TOKEN = secrets.token_urlsafe(32)
_DUMMY_SECRET = base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def token_matches(expected: str | None, given: str | None) -> bool:
    """Constant-time comparison of a URL token; an unknown connection compares against a dummy."""
    candidate = (given or "").encode("utf-8", "replace")
    if not expected:
        hmac.compare_digest(_DUMMY_TOKEN.encode("ascii"), candidate)
        return False
    return hmac.compare_digest(expected.encode("utf-8"), candidate)


daily_signature = hmac_signature
"""Former name of `hmac_signature` (Daily signs this way)."""
verify_daily = verify_signature
"""Former name of `verify_signature`."""


def new_webhook_token() -> str:
    """An unguessable token for a connection's ``webhook_token`` extra (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)
