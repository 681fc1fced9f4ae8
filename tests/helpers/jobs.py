"""Jobs submitted to the emulator through the hooks, as several tests need them."""

from __future__ import annotations

from typing import Any


def wasabi_job(
    hook: Any,
    s3_endpoint: str,
    name: str,
    object_key: str,
    *,
    bucket: str | None,
    media: str = "media",
    services: dict[str, Any] | None = None,
) -> str:
    """Submit a Wasabi AiR job on ``object_key`` of the ``media`` bucket, its results into ``bucket``."""
    return str(
        hook.submit_job(
            name,
            services=services if services is not None else {"s2t": ""},
            source={"Endpoint": s3_endpoint, "Bucket": media, "Region": "us-east-1", "ObjectKey": object_key},
            destination={"Bucket": bucket, "Region": "us-east-1"},
        )
    )
