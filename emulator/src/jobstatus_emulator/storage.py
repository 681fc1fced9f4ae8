"""Where outputs go: the S3 server (boto3 in a worker thread) and Daily's own in-memory storage.

Daily-storage objects are served by the emulator itself through presigned-style links:
``{public_url}/_storage/daily/<token>?X-Expires=<epoch>&X-Signature=<hmac>``. The signature is an
HMAC-SHA256 of ``<token>:<expires>`` with a per-process secret; an expired or altered link gets
403, a deleted object 404, both with S3-style XML bodies.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import math
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

from jobstatus_emulator.base import Response, ServiceHost
from jobstatus_emulator.state import OutputError


@dataclass
class S3Object:
    bucket: str
    key: str
    body: bytes
    content_type: str


class S3Writer:
    """Writes objects to the configured S3 server. All boto3 calls run in worker threads."""

    def __init__(self, endpoint: str | None, access_key: str, secret_key: str, region: str) -> None:
        self.endpoint = endpoint
        self.access_key = access_key
        self.secret_key = secret_key
        self.region = region
        self._client: Any = None
        self._lock = threading.Lock()

    @property
    def configured(self) -> bool:
        return bool(self.endpoint)

    def _get_client(self) -> Any:
        with self._lock:
            if self._client is None:
                import boto3
                from botocore.config import Config

                self._client = boto3.client(
                    "s3",
                    endpoint_url=self.endpoint,
                    aws_access_key_id=self.access_key,
                    aws_secret_access_key=self.secret_key,
                    region_name=self.region,
                    config=Config(
                        s3={"addressing_style": "path"},
                        retries={"max_attempts": 2, "mode": "standard"},
                        connect_timeout=5,
                        read_timeout=30,
                    ),
                )
            return self._client

    def _put_all(self, objects: list[S3Object]) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        client = self._get_client()
        for obj in objects:
            try:
                client.put_object(Bucket=obj.bucket, Key=obj.key, Body=obj.body, ContentType=obj.content_type)
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                if code == "NoSuchBucket":
                    raise OutputError(
                        f"Error: Failed to write output to s3://{obj.bucket}/{obj.key}: "
                        f"NoSuchBucket: The specified bucket does not exist"
                    ) from None
                if code in ("AccessDenied", "403"):
                    raise OutputError(
                        f"Error: Failed to write output to s3://{obj.bucket}/{obj.key}: AccessDenied: Access Denied"
                    ) from None
                raise OutputError(
                    f"Error: Failed to write output to s3://{obj.bucket}/{obj.key}: {code}"
                ) from None
            except BotoCoreError as exc:
                raise OutputError(
                    f"Error: Failed to write output to s3://{obj.bucket}/{obj.key}: {type(exc).__name__}"
                ) from None

    async def put_all(self, objects: list[S3Object]) -> None:
        if not self.configured:
            bucket = objects[0].bucket if objects else "?"
            raise OutputError(f"Error: Failed to write output to s3://{bucket}: storage endpoint unreachable")
        await asyncio.to_thread(self._put_all, objects)

    def _presign(self, bucket: str, key: str, ttl: int) -> str:
        return str(
            self._get_client().generate_presigned_url(
                "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=max(1, ttl)
            )
        )

    async def presign(self, bucket: str, key: str, ttl: int) -> str:
        return await asyncio.to_thread(self._presign, bucket, key, ttl)


class DailyStorage:
    """Daily's own bucket, in memory. Objects are addressed by an unguessable token."""

    BUCKET = "daily-batch-processor-storage"
    REGION = "us-west-2"

    def __init__(self) -> None:
        self.secret = secrets.token_bytes(32)
        self.objects: dict[str, S3Object] = {}  # token -> object
        self.by_key: dict[str, str] = {}  # key -> token

    def put(self, key: str, body: bytes, content_type: str) -> str:
        # derived from the secret: unguessable, and the same after a restart with a state file
        token = (
            self.by_key.get(key)
            or hmac.new(self.secret, b"token:" + key.encode(), hashlib.sha256).hexdigest()[:24]
        )
        self.objects[token] = S3Object(self.BUCKET, key, body, content_type)
        self.by_key[key] = token
        return token

    def delete(self, key: str) -> None:
        token = self.by_key.pop(key, None)
        if token is not None:
            self.objects.pop(token, None)

    def _sign(self, token: str, expires: int) -> str:
        return hmac.new(self.secret, f"{token}:{expires}".encode(), hashlib.sha256).hexdigest()

    def link(self, base_url: str, key: str, ttl: float) -> str | None:
        token = self.by_key.get(key)
        if token is None:
            return None
        expires = math.ceil(time.time() + ttl)  # valid for at least ttl seconds
        return (
            f"{base_url}/_storage/daily/{token}?X-Expires={expires}&X-Signature={self._sign(token, expires)}"
        )

    def serve(self, token: str, query: dict[str, str]) -> Response:
        expires_raw = query.get("X-Expires", "")
        signature = query.get("X-Signature", "")
        if not expires_raw.isdigit() or not signature:
            return _xml_error(
                403, "AccessDenied", "Query-string authentication requires X-Expires and X-Signature"
            )
        expires = int(expires_raw)
        if not hmac.compare_digest(self._sign(token, expires), signature):
            return _xml_error(
                403, "SignatureDoesNotMatch", "The request signature we calculated does not match"
            )
        if time.time() > expires:
            return _xml_error(403, "AccessDenied", "Request has expired")
        obj = self.objects.get(token)
        if obj is None:
            return _xml_error(404, "NoSuchKey", "The specified key does not exist.")
        return Response(200, body=obj.body, content_type=obj.content_type.encode())

    def reset(self) -> None:
        self.objects.clear()
        self.by_key.clear()


def _xml_error(status: int, code: str, message: str) -> Response:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    ).encode()
    return Response(status, body=body, content_type=b"application/xml")


class StorageHost(ServiceHost, Protocol):
    """What a service that writes outputs (Daily, Wasabi AiR) uses of the emulator."""

    daily_storage: DailyStorage
    s3: S3Writer
