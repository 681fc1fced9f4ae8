"""boto3 clients built from Airflow AWS connections, and "is this the same store?".

The Amazon provider's `S3Hook` reads the connection (keys, role, region, ``endpoint_url``,
``config_kwargs``, ``verify``); clients are then created from its session, so a source object on
another endpoint (Wasabi's, recorded on the output) is read with the same credentials.

Two locations are on the *same store* when their endpoints are equal (AWS, whatever the region,
counts as one) and the credentials are the same keys: then CopyObject works from one to the other
and no byte needs to pass through the worker.
"""

from __future__ import annotations

import hashlib
import threading
from typing import Any
from urllib.parse import urlsplit

from airflow_jobstatus.exceptions import InvalidParameterError

__all__ = ["S3Access", "error_code", "etag_can_be_md5", "normalize_endpoint"]

AWS = "aws"
NOT_FOUND = ("404", "NoSuchKey", "NotFound")


def error_code(exc: BaseException) -> tuple[str, int | None]:
    """A botocore error's code (e.g. ``NoSuchKey``) and HTTP status; the exception's type otherwise."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return type(exc).__name__, None
    status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
    return str((response.get("Error") or {}).get("Code") or type(exc).__name__), status


def etag_can_be_md5(head: dict[str, Any]) -> bool:
    """False when a HEAD or GET response's encryption rules out an MD5 ETag (SSE-KMS, SSE-C)."""
    sse = str(head.get("ServerSideEncryption") or "")
    return not sse.startswith("aws:kms") and not head.get("SSECustomerAlgorithm")


def normalize_endpoint(endpoint_url: str | None) -> str:
    """A comparable endpoint: ``aws`` for AWS itself, else ``scheme://host:port`` lower-cased."""
    if not endpoint_url:
        return AWS
    parts = urlsplit(endpoint_url.strip())
    host = (parts.hostname or "").lower()
    if host == "s3.amazonaws.com" or (host.endswith(".amazonaws.com") and host.startswith("s3")):
        return AWS
    scheme = (parts.scheme or "https").lower()
    port = parts.port or (443 if scheme == "https" else 80)
    path = parts.path.rstrip("/")
    return f"{scheme}://{host}:{port}{path}"


class S3Access:
    """One Airflow AWS connection: its clients (one per endpoint and region) and its identity."""

    def __init__(self, conn_id: str | None, *, max_pool_connections: int = 16) -> None:
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        self.conn_id = conn_id
        self.hook = S3Hook(aws_conn_id=conn_id)
        self.max_pool_connections = max_pool_connections
        self._clients: dict[tuple[str | None, str | None], Any] = {}
        self._lock = threading.Lock()
        self._identity: str | None = None

    def __repr__(self) -> str:
        return f"S3Access(conn_id={self.conn_id!r})"

    @property
    def endpoint_url(self) -> str | None:
        """The connection's own S3 endpoint (``endpoint_url`` in its extra), or None for AWS."""
        url = self.hook.conn_config.get_service_endpoint_url("s3")
        return str(url) if url else None

    @property
    def region(self) -> str | None:
        region = self.hook.conn_config.region_name
        return str(region) if region else None

    def client(self, *, endpoint_url: str | None = None, region: str | None = None) -> Any:
        """A thread-safe boto3 S3 client for ``endpoint_url`` (default: the connection's)."""
        from botocore.config import Config

        endpoint = endpoint_url or self.endpoint_url
        region = region or self.region
        key = (endpoint, region)
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                session = self.hook.get_session(region_name=region)
                base = self.hook.config
                extra = Config(
                    max_pool_connections=self.max_pool_connections,
                    retries={"mode": "standard", "max_attempts": 5},
                    tcp_keepalive=True,
                )
                config = base.merge(extra) if base is not None else extra
                client = session.client(
                    "s3", endpoint_url=endpoint, region_name=region, config=config, verify=self.hook.verify
                )
                self._clients[key] = client
            return client

    def identity(self) -> str:
        """A fingerprint of the credentials (never the keys themselves)."""
        if self._identity is None:
            try:
                credentials = self.hook.get_session(region_name=self.region).get_credentials()
            except Exception as exc:
                raise InvalidParameterError(
                    f"cannot read the credentials of AWS connection {self.conn_id!r}: {type(exc).__name__}",
                    operation="transfer outputs",
                ) from None
            if credentials is None:
                self._identity = "anonymous"
            else:
                frozen = credentials.get_frozen_credentials()
                material = f"{frozen.access_key}\0{frozen.secret_key}\0{frozen.token or ''}"
                self._identity = hashlib.sha256(material.encode()).hexdigest()
        return self._identity

    def same_store(self, other: S3Access, *, endpoint_url: str | None = None) -> bool:
        """True when an object ``other`` reads at ``endpoint_url`` can be copied server-side with this access."""
        mine = normalize_endpoint(self.endpoint_url)
        theirs = normalize_endpoint(endpoint_url or other.endpoint_url)
        if mine != theirs:
            return False
        return other is self or other.identity() == self.identity()
