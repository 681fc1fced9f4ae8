"""``_manifest.json``: what was delivered for one job, written last, as the job folder's commit marker.

The manifest lists every output (source, destination, bytes, checksum, ``written`` or ``skipped``
in this run) and is written atomically after every output has been delivered and verified. Its
presence under ``<destination>/<service>/<job>/`` therefore means the folder is complete; a run
that is about to replace outputs removes the old manifest first, so a folder without a manifest
may be incomplete. The same document is the operator's XCom return value.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal

__all__ = ["MANIFEST_VERSION", "Manifest", "ManifestEntry", "read_manifest"]

MANIFEST_VERSION = 1
MAX_MANIFEST_BYTES = 16 * 1024 * 1024

Status = Literal["written", "skipped"]


@dataclass
class ManifestEntry:
    """One output as delivered."""

    name: str
    format: str
    file_name: str
    media_type: str | None
    source: str
    """Where it was read: ``s3://bucket/key``, a link without its query string, an API path."""
    source_kind: str
    """``s3``, ``link``, ``api`` or ``inline``."""
    destination: str
    """The full URI of the delivered object."""
    bytes: int
    checksum: str | None
    """``<algorithm>:<hex>`` (``crc32-composite:<hex>-<parts>`` for composite checksums)."""
    verified: str
    """What was checked before the commit: ``size``, ``size+<algorithm> (<origin>)``, or
    ``server-side copy`` details."""
    status: Status
    method: str
    """``stream``, ``document``, ``server_side_copy``, ``multipart_copy`` or ``none`` (skipped)."""
    bytes_through_worker: int
    source_etag: str | None = None
    source_identity: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Manifest:
    service: str
    job_id: str
    destination: str
    """The job folder's URI."""
    manifest: str
    """This manifest's own URI."""
    if_exists: str
    entries: list[ManifestEntry] = field(default_factory=list)
    generated_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat())

    def to_json(self) -> dict[str, Any]:
        outputs = [e.to_json() for e in self.entries]
        written = [e for e in self.entries if e.status == "written"]
        return {
            "version": MANIFEST_VERSION,
            "service": self.service,
            "job_id": self.job_id,
            "destination": self.destination,
            "manifest": self.manifest,
            "if_exists": self.if_exists,
            "generated_at": self.generated_at,
            "outputs": outputs,
            "summary": {
                "outputs": len(self.entries),
                "written": len(written),
                "skipped": len(self.entries) - len(written),
                "bytes": sum(e.bytes for e in self.entries),
                "bytes_written": sum(e.bytes for e in written),
                "bytes_through_worker": sum(e.bytes_through_worker for e in self.entries),
            },
        }

    def render(self) -> bytes:
        return (json.dumps(self.to_json(), indent=2, ensure_ascii=False) + "\n").encode()


def read_manifest(data: bytes | None) -> dict[str, dict[str, Any]]:
    """A previous manifest's entries by destination URI; empty when absent or unreadable."""
    if not data:
        return {}
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return {}
    if not isinstance(document, dict) or document.get("version") != MANIFEST_VERSION:
        return {}
    entries: dict[str, dict[str, Any]] = {}
    for entry in document.get("outputs") or []:
        if isinstance(entry, dict) and isinstance(entry.get("destination"), str):
            entries[entry["destination"]] = entry
    return entries
