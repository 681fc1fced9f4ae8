"""Reading an output: S3 objects, download links and API documents, each as a stream of chunks.

Every source is prepared first (metadata only: size, ETag, the checksum it offers), then opened
once and read in chunks of `CHUNK` bytes, so memory stays bounded whatever the object's size.
Documents (Symbl's conversation documents, DeepAffects' inline result) are small and come whole
from the service's API; they are fetched in `prepare`.

Nothing here logs or keeps a download link's query string: it is a bearer credential.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from airflow_jobstatus.exceptions import InvalidParameterError, JobStatusError, NotFoundError
from airflow_jobstatus.http.redaction import redact_url
from airflow_jobstatus.models import JobOutput, S3Object
from airflow_jobstatus.transfer.checksums import Checksum, Expectation, plan_expectation
from airflow_jobstatus.transfer.naming import check_source_key
from airflow_jobstatus.transfer.s3 import S3Access, error_code, etag_can_be_md5

__all__ = [
    "CHUNK",
    "Chunk",
    "DocumentSource",
    "LinkSource",
    "Opened",
    "S3Source",
    "Source",
    "SourceError",
    "list_sources",
    "strip_query",
]

log = logging.getLogger(__name__)

CHUNK = 256 * 1024
"""Bytes per read. Small enough that a chunk stays in the CPU's cache from the socket read through
the hash to the write: 512 MiB from moto to a folder (benchmarks/transfer.py, median of 5
interleaved runs in one session) moved 714 MB/s with 0.35-0.45 CPU-seconds, against 515 MB/s and
0.44-0.65 CPU-seconds with 1 MiB chunks (boto3 get_object + fsync: 548 MB/s)."""

Chunk = bytes | bytearray | memoryview
"""What a stream yields. A memoryview may point into a buffer reused by the next chunk: consume
(hash, write, copy) each chunk before asking for the next one."""


class SourceError(JobStatusError):
    """An output could not be read from where the service keeps it."""

    hint = "Nothing was written under the output's final name; run the task again to retry"


def strip_query(url: str) -> str:
    """A link without its query string and fragment (where presigned credentials live)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc.rsplit("@", 1)[-1], parts.path, "", ""))


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}"


@dataclass
class Opened:
    """An open stream: its chunks, its size if known, and the checksum its response promised."""

    chunks: Iterator[Chunk]
    size: int | None
    expectation: Expectation | None
    close: Callable[[], None] = lambda: None


@dataclass
class Source:
    """What every source tells the engine before and while it is read."""

    output: JobOutput
    kind: str
    display: str
    """Where the output comes from, safe to print (no presigned query string)."""
    lineage: tuple[str, str]
    """OpenLineage (namespace, name) of the source dataset."""
    size: int | None = None
    etag: str | None = None
    version_id: str | None = None
    content_type: str | None = None
    expectation: Expectation | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    etag_is_md5: bool = False
    """True when ``etag`` is the MD5 of the content (unencrypted single-part S3 object)."""
    document = False
    """A small document fetched whole from the service's API (in `prepare`, on the caller's thread)."""

    prepared = False
    """Metadata was read from the object itself, not only from a listing."""

    @property
    def identity(self) -> str:
        """What makes this source the same source on a rerun (compared with the manifest)."""
        return f"{self.kind}:{self.display}#{self.etag or ''}"

    def prepare(self) -> None:
        """Read metadata (size, ETag, offered checksum). No content."""

    def open(self) -> Opened:
        raise NotImplementedError

    def confirm_parts(self, expectation: Expectation) -> Expectation | None:
        """``expectation`` with the part size the store reports, if its guessed one was wrong; else None."""
        return None


# ------------------------------------------------------------------------------------------ S3


class S3Source(Source):
    """An object in an S3-compatible store (Daily's customer bucket, Wasabi's destination bucket)."""

    def __init__(self, output: JobOutput, location: S3Object, access: S3Access) -> None:
        check_source_key(location.key, output=output)
        super().__init__(
            output=output,
            kind="s3",
            display=location.uri,
            lineage=(f"s3://{location.bucket}", location.key),
        )
        self.location = location
        self.access = access
        self.endpoint_url = location.endpoint_url or access.endpoint_url
        self.client = access.client(endpoint_url=location.endpoint_url, region=location.region)

    def _error(self, exc: Exception, operation: str) -> JobStatusError:
        code, status = error_code(exc)
        where = f"{self.location.uri} (endpoint {self.endpoint_url or 'AWS'})"
        if status == 404 or code in ("404", "NoSuchKey", "NoSuchBucket", "NotFound"):
            return NotFoundError(
                f"source object {where} does not exist ({code})",
                operation=operation,
                status_code=status,
                hint="The job's output is no longer in the bucket; check the bucket's lifecycle rules",
            )
        if status == 403 or code in (
            "403",
            "AccessDenied",
            "Forbidden",
            "InvalidAccessKeyId",
            "SignatureDoesNotMatch",
        ):
            return SourceError(
                f"access to source object {where} was refused ({code})",
                operation=operation,
                status_code=status,
                hint=f"Check that the AWS connection {self.access.conn_id!r} (source_aws_conn_id) can read the bucket",
            )
        if status == 412 or code == "PreconditionFailed":
            return SourceError(
                f"source object {where} changed while it was being read ({code})",
                operation=operation,
                status_code=status,
            )
        return SourceError(f"reading {where} failed: {code}", operation=operation, status_code=status)

    def _absorb(self, response: dict[str, Any]) -> None:
        """Metadata from a HEAD or GET response; the expectation from the checksums it carries."""
        bucket, key = self.location.bucket, self.location.key
        self.size = int(response["ContentLength"])
        self.etag = response.get("ETag") or self.etag
        self.version_id = response.get("VersionId")
        self.content_type = response.get("ContentType")
        self.metadata = dict(response.get("Metadata") or {})
        etag_is_md5 = etag_can_be_md5(response)
        self.etag_is_md5 = etag_is_md5 and bool(self.etag) and "-" not in str(self.etag)

        def part_size() -> int | None:
            try:
                part = self.client.head_object(Bucket=bucket, Key=key, PartNumber=1)
            except Exception:
                return None
            return int(part["ContentLength"])

        self.expectation = plan_expectation(
            size=self.size,
            etag=self.etag,
            checksums={
                "crc32": response.get("ChecksumCRC32"),
                "sha1": response.get("ChecksumSHA1"),
                "sha256": response.get("ChecksumSHA256"),
            },
            checksum_type=response.get("ChecksumType"),
            etag_is_md5=etag_is_md5,
            part_size=part_size,
        )

    def prepare(self) -> None:
        """HEAD the object: size, ETag, content type, metadata, and the checksum it offers."""
        if self.prepared:
            return
        try:
            head = self.client.head_object(ChecksumMode="ENABLED", **self._pinned())
        except Exception as exc:
            raise self._error(exc, "head source") from None
        self._absorb(head)
        self.prepared = True

    def _pinned(self) -> dict[str, Any]:
        """The object's address, pinned to the ETag known (listed or measured) where there is one."""
        kwargs: dict[str, Any] = {"Bucket": self.location.bucket, "Key": self.location.key}
        if self.etag:
            kwargs["IfMatch"] = self.etag
        return kwargs

    def confirm_parts(self, expectation: Expectation) -> Expectation | None:
        try:
            head = self.client.head_object(Bucket=self.location.bucket, Key=self.location.key, PartNumber=1)
            real = int(head["ContentLength"])
        except Exception:
            return None
        if real == expectation.part_size:
            return None
        return dataclasses.replace(expectation, part_size=real, guessed=False)

    def listed(self, size: int, etag: str | None) -> None:
        """Size and ETag from a bucket listing (saves a HEAD per object)."""
        self.size = size
        # some stores list ETags without the quotes HEAD and GET show; If-Match wants them quoted
        self.etag = f'"{etag.strip(chr(34))}"' if etag else None

    def open(self) -> Opened:
        kwargs = self._pinned()
        if self.version_id:
            kwargs["VersionId"] = self.version_id
        try:
            # ChecksumMode: the response carries the object's checksums (and whether they are composite)
            response = self.client.get_object(ChecksumMode="ENABLED", **kwargs)
        except Exception as exc:
            raise self._error(exc, "read source") from None
        if not self.prepared:
            self._absorb(response)
        body = response["Body"]
        size = int(response.get("ContentLength", self.size or 0))

        def chunks() -> Iterator[Chunk]:
            reader = _raw_reader(body)
            if reader is None:
                yield from body.iter_chunks(CHUNK)
                return
            # the fast path: straight from the HTTP response into one reused buffer
            buffer = bytearray(CHUNK)
            view = memoryview(buffer)
            while True:
                n = reader.readinto(buffer)
                if not n:
                    return
                yield view[:n]

        return Opened(chunks(), size, self.expectation, body.close)


def _raw_reader(body: Any) -> Any:
    """The ``http.client`` response under a botocore body, when it can be read directly.

    Reading it with ``readinto`` skips two layers of buffering and an allocation per chunk (about
    a third of the CPU per byte on a fast link). The body's own length check is bypassed, which is
    fine: every stream's size is verified before commit. Falls back to None (use the body) when the
    layers are not the expected ones or the response is content-encoded.
    """
    raw = getattr(body, "_raw_stream", None)
    reader = getattr(raw, "_fp", None)
    if raw is None or reader is None or not callable(getattr(reader, "readinto", None)):
        return None
    headers = getattr(raw, "headers", None) or {}
    if headers.get("content-encoding") not in (None, "", "identity") or headers.get("transfer-encoding"):
        return None
    return reader


def list_sources(sources: Sequence[Source], *, max_pages: int = 2) -> None:
    """Fill size and ETag of many S3 sources from listings (one request per 1,000 keys); others are left alone.

    Sources are grouped by client and bucket and listed under their common key prefix, at most
    ``max_pages`` pages per group; sources not found that way (or a listing refused, e.g. without
    ``s3:ListBucket``) simply keep reading their metadata from their own GET or HEAD.
    """
    groups: dict[tuple[int, str], list[S3Source]] = {}
    for source in sources:
        if not isinstance(source, S3Source):
            continue
        groups.setdefault((id(source.client), source.location.bucket), []).append(source)
    for group in groups.values():
        if len(group) < 2:
            continue
        wanted: dict[str, S3Source | None] = {s.location.key: s for s in group}
        prefix = os.path.commonprefix(list(wanted))
        client = group[0].client
        try:
            pages = client.get_paginator("list_objects_v2").paginate(
                Bucket=group[0].location.bucket, Prefix=prefix, PaginationConfig={"PageSize": 1000}
            )
            for number, page in enumerate(pages):
                for item in page.get("Contents", []):
                    found = wanted.pop(item["Key"], None)
                    if found is not None:
                        found.listed(int(item["Size"]), item.get("ETag"))
                if not wanted or number + 1 >= max_pages:
                    break
        except Exception as exc:  # listing is an optimization only
            log.debug(
                "listing s3://%s/%s failed (%s): reading metadata object by object",
                group[0].location.bucket,
                prefix,
                exc,
            )


# ------------------------------------------------------------------------------------------ links


def _link_expectation(headers: Any) -> Expectation | None:
    checksums = {
        "crc32": headers.get("x-amz-checksum-crc32"),
        "sha1": headers.get("x-amz-checksum-sha1"),
        "sha256": headers.get("x-amz-checksum-sha256"),
    }
    s3_like = "x-amz-request-id" in headers or "x-amz-id-2" in headers
    sse = headers.get("x-amz-server-side-encryption", "")
    return plan_expectation(
        size=None,
        etag=headers.get("etag") if s3_like else None,
        checksums=checksums,
        checksum_type=headers.get("x-amz-checksum-type"),
        etag_is_md5=s3_like
        and not sse.startswith("aws:kms")
        and "x-amz-server-side-encryption-customer-algorithm" not in headers,
    )


class LinkSource(Source):
    """An output behind a presigned download link (Daily's own storage), fetched fresh by the hook."""

    def __init__(self, output: JobOutput, url: str, http: Any, *, job_id: str) -> None:
        super().__init__(
            output=output,
            kind="link",
            display=strip_query(url),
            lineage=(_origin(url), urlsplit(url).path or "/"),
        )
        self._url = url
        self._http = http
        self.job_id = job_id

    def __repr__(self) -> str:
        return f"LinkSource({self.output.name!r}, {redact_url(self._url)!r})"

    @property
    def identity(self) -> str:
        # a finished job's outputs do not change; the link itself is new on every run
        return f"link:{self.job_id}:{self.output.name}.{self.output.format}"

    def open(self) -> Opened:
        import httpx

        try:
            response = self._http.send(self._http.build_request("GET", self._url), stream=True)
        except httpx.HTTPError as exc:
            raise SourceError(
                f"download of output {self.output.name!r} ({self.output.format}) from {self.display} failed: "
                f"{type(exc).__name__}",
                operation="read source",
            ) from None
        if response.status_code != 200:
            status = response.status_code
            response.close()
            hint = (
                "The access link was refused; it may have expired. Run the task again: links are fetched fresh"
                if status in (401, 403)
                else None
            )
            raise SourceError(
                f"download of output {self.output.name!r} ({self.output.format}) answered HTTP {status}",
                operation="read source",
                status_code=status,
                url=self.display,
                hint=hint,
            )
        length = response.headers.get("content-length")
        self.size = int(length) if length and length.isdigit() else None
        self.etag = response.headers.get("etag")
        self.content_type = response.headers.get("content-type")
        self.expectation = _link_expectation(response.headers)

        def chunks() -> Iterator[bytes]:
            yield from response.iter_raw(CHUNK)

        return Opened(chunks(), self.size, self.expectation, response.close)


# ------------------------------------------------------------------------------------------ documents


class DocumentSource(Source):
    """A document the service's API serves or its status carries, written as a JSON file."""

    document = True

    def __init__(
        self,
        output: JobOutput,
        *,
        kind: str,
        display: str,
        lineage: tuple[str, str],
        fetch: Callable[[], bytes],
    ) -> None:
        super().__init__(output=output, kind=kind, display=display, lineage=lineage)
        self._fetch = fetch
        self._data: bytes | None = None

    def prepare(self) -> None:
        if self._data is not None:
            return
        data = self._fetch()
        if not isinstance(data, bytes | bytearray):
            raise InvalidParameterError(f"document {self.display} is not bytes", operation="read source")
        self._data = bytes(data)
        self.size = len(self._data)
        digest = hashlib.sha256(self._data).hexdigest()
        self.etag = f"sha256:{digest}"
        self.content_type = self.output.media_type or "application/json"
        # the bytes are in hand: what lands at the destination must hash to exactly them
        self.expectation = Expectation((Checksum("sha256", digest),), "fetched document")

    def open(self) -> Opened:
        if self._data is None:
            self.prepare()
        assert self._data is not None
        data = self._data
        return Opened(iter([data] if data else []), len(data), self.expectation)
