"""Download links a service hands out: which ones may be fetched."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

# host name labels or a bracketed IPv6 address, then an optional numeric port
_NETLOC = re.compile(r"(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?")


def link_problem(url: str, *, allow_http: bool) -> str | None:
    """Why a download link from the service is refused, or None when it may be fetched.

    Presigned links are plain ASCII ``https://host/...`` URLs. Anything else (another scheme,
    ``http`` unless the connection allows it, no host, user-info, blanks or control characters that
    parsers disagree on) is refused rather than interpreted. The link itself is never quoted: its
    query string is a credential.
    """
    if not url.isascii() or not url.isprintable() or any(ch.isspace() for ch in url):
        return "it contains blanks, control or non-ASCII characters"
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        return "it is not a valid URL"
    scheme = parts.scheme.lower()
    allowed = ("https", "http") if allow_http else ("https",)
    if scheme not in allowed or not url.lower().startswith(f"{scheme}://"):
        return f"its scheme is {scheme or 'missing'!r}"
    if not host or "\\" in parts.netloc:
        return "it names no host"
    if "@" in parts.netloc:
        return "it carries user-info before the host"
    if not _NETLOC.fullmatch(parts.netloc):
        return "its host is not a host name or IP address"
    return None
