"""Writing an output under its final name atomically: local folders, S3 buckets, other object stores.

No sink ever exposes a partial object under a final name:

* **Local folder** (`LocalSink`): the bytes go to a hidden temporary file in the same folder
  (``.<file name>.<random>.jobstatus-part``), are verified, flushed to disk (``fsync``), then
  renamed over the final name (``os.replace``, atomic on POSIX) and the folder is synced. Dirty
  pages are handed to the kernel's writeback as the file grows, so the final ``fsync`` is short.
* **S3** (`S3Sink`): the commit is one request S3 applies atomically: ``PutObject`` for an object
  that fits in one part, else ``CompleteMultipartUpload`` after parts uploaded as the source is
  read (aborted on any failure); ``CopyObject`` for a server-side copy (boto3's managed ``copy``
  above the 5 GiB copy limit). Parts are held within one memory budget for all uploads
  (``upload_buffer_bytes``) and grow with the object (`part_size_for`) so S3's 10,000-part limit
  is never reached. Streamed uploads are written here, not with boto3's ``upload_fileobj``, for
  two guarantees it cannot give: the checksum is verified before ``CompleteMultipartUpload`` (it
  completes first, exposing unverified bytes), and each upload's id is recorded beside its object
  (``.<name>.<owner>.jobstatus-part``; the owner is the task instance, `delivery_owner`) so the
  next try of the same task aborts what a killed try left, and nobody else's. That costs speed:
  ``benchmarks/transfer_memory.py`` (1 GiB of unknown size, median of 3 interleaved runs) moved
  92.6 MiB/s against ``upload_fileobj``'s 157.2 MiB/s, with 51 MB of RSS growth against its 136.
* **Any other scheme Airflow's object storage reaches** (`FsspecSink`): a temporary name in the
  same folder, then ``mv`` to the final name; the temporary is removed on failure.

Every write calls ``before_commit(bytes written)`` after the last byte and before the commit: the
engine verifies size and checksum there, and raising aborts the write.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airflow_jobstatus.exceptions import InvalidParameterError, JobStatusError
from airflow_jobstatus.transfer.checksums import text_digest
from airflow_jobstatus.transfer.s3 import NOT_FOUND, S3Access, error_code, etag_can_be_md5
from airflow_jobstatus.transfer.sources import CHUNK, Chunk, S3Source, Source

__all__ = [
    "COPY_LIMIT",
    "Existing",
    "FsspecSink",
    "LocalSink",
    "S3Sink",
    "Sink",
    "SinkError",
    "delivery_owner",
    "parse_destination",
    "part_size_for",
]

COPY_LIMIT = 5 * 1024**3
"""Largest object one CopyObject may copy (S3's limit); larger ones are copied part by part."""
MIB = 1024**2
MIN_PART = 5 * MIB
"""S3's smallest part (all but the last)."""
MAX_PART = 5 * 1024**3
"""S3's largest part."""
MAX_PARTS = 10_000
"""S3's most parts in one upload."""
PART_SIZE = 8 * MIB
"""The default size of an upload's parts (their size grows for large objects: `part_size_for`)."""
UPLOAD_BUFFER_BYTES = 160 * MIB
"""The default memory one S3 destination may hold in parts, for all its uploads together."""
TEMP_SUFFIX = ".jobstatus-part"
STALE_TEMP_SECONDS = 15 * 60
"""A temporary file untouched this long is left over from a killed run (a live one grows all the time)."""
_WRITEBACK = 32 * MIB
"""A local write hands what it wrote to the kernel's writeback every this many bytes."""
_TEMP_NAME = re.compile(r"^\..+\.[0-9a-f]{12}" + re.escape(TEMP_SUFFIX) + "$")

BeforeCommit = Callable[[int], None]
log = logging.getLogger(__name__)


class SinkError(JobStatusError):
    """The destination refused or failed a write; nothing was left under the final name."""

    hint = "Check the destination and its connection; run the task again to retry"


@dataclass
class Existing:
    """What is already at a destination name."""

    size: int
    etag: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    checksums: dict[str, str] = field(default_factory=dict)
    checksum_type: str | None = None
    etag_is_md5: bool = False
    """True when ``etag`` is known to be the MD5 of the content (an unencrypted single-part S3 object)."""
    complete: bool = True
    """False for what a listing told (size and ETag only): `Sink.stat` with ``full=True`` reads the rest."""


class Sink:
    """A destination root; names below it are relative keys (``service/job/file``)."""

    scheme: str = ""
    remote = False
    """Reading it back passes bytes through the worker (they are counted as such)."""
    keeps_metadata = False
    """It keeps each object's metadata and checksums, which can prove an object identical unread."""
    copy_limit = 0
    """The largest object `copy` copies in one request."""

    def can_copy(self, source: Source) -> bool:
        """True when ``source`` can be copied here by the store itself (no byte through the worker)."""
        return False

    def copy(
        self,
        source: Source,
        rel: str,
        *,
        content_type: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Copy ``source`` (only where `can_copy`) in one request up to `copy_limit`, else part by
        part; ``metadata=None`` keeps the source's. Returns what the store said of a one-request copy."""
        raise NotImplementedError

    def uri(self, rel: str) -> str:
        raise NotImplementedError

    def lineage(self, rel: str) -> tuple[str, str]:
        """OpenLineage (namespace, name) of the dataset at ``rel``."""
        raise NotImplementedError

    def stat(self, rel: str, *, full: bool = False) -> Existing | None:
        """What is at ``rel`` (None: nothing). ``full``: with metadata and checksums, not just a listing's view."""
        raise NotImplementedError

    def read_chunks(self, rel: str) -> Iterator[bytes]:
        raise NotImplementedError

    def read_small(self, rel: str, limit: int) -> bytes | None:
        """The whole object if it exists and is at most ``limit`` bytes, else None."""
        found = self.stat(rel)
        if found is None or found.size > limit:
            return None
        return b"".join(self.read_chunks(rel))

    def write(
        self,
        rel: str,
        chunks: Iterable[Chunk],
        *,
        size_hint: int | None,
        content_type: str | None,
        metadata: dict[str, str],
        before_commit: BeforeCommit,
    ) -> int:
        raise NotImplementedError

    def delete(self, rel: str) -> None:
        raise NotImplementedError

    def prepare_folder(self, rel_folder: str) -> None:
        """Called once per job folder before writing (clean-up after a killed worker: see each sink)."""


# ------------------------------------------------------------------------------------------ local


class LocalSink(Sink):
    """A folder on the worker's file system (``file://`` or an absolute path)."""

    scheme = "file"

    def __init__(self, root: str | os.PathLike[str], *, fsync: bool = True) -> None:
        self.root = Path(os.path.abspath(os.fspath(root)))
        self.fsync = fsync
        self._host = socket.gethostname()

    def __repr__(self) -> str:
        return f"LocalSink({str(self.root)!r})"

    def path(self, rel: str) -> Path:
        return self.root.joinpath(*rel.split("/"))

    def uri(self, rel: str) -> str:
        return self.path(rel).as_uri()

    def lineage(self, rel: str) -> tuple[str, str]:
        return f"file://{self._host}", str(self.path(rel))

    def _inside(self, path: Path) -> None:
        real_root = os.path.realpath(self.root)
        real = os.path.realpath(path)
        if real != real_root and not real.startswith(real_root.rstrip(os.sep) + os.sep):
            raise InvalidParameterError(
                f"{path} resolves to {real}, outside the destination folder {real_root}",
                operation="transfer outputs",
                hint="A symbolic link inside the destination points elsewhere; nothing was written",
            )

    def stat(self, rel: str, *, full: bool = False) -> Existing | None:
        path = self.path(rel)
        try:
            st = path.stat()
        except FileNotFoundError:
            return None
        if not path.is_file():
            raise SinkError(f"{path} exists and is not a file", operation="transfer outputs")
        return Existing(size=st.st_size)

    def read_chunks(self, rel: str) -> Iterator[bytes]:
        with open(self.path(rel), "rb") as f:
            yield from iter(lambda: f.read(CHUNK), b"")

    def prepare_folder(self, rel_folder: str) -> None:
        folder = self.path(rel_folder)
        if not folder.is_dir():
            return
        self._inside(folder)
        now = time.time()
        for entry in os.scandir(folder):
            if _TEMP_NAME.match(entry.name) and entry.is_file(follow_symlinks=False):
                with contextlib.suppress(OSError):
                    if now - entry.stat(follow_symlinks=False).st_mtime > STALE_TEMP_SECONDS:
                        os.unlink(entry.path)

    def write(
        self,
        rel: str,
        chunks: Iterable[Chunk],
        *,
        size_hint: int | None,
        content_type: str | None,
        metadata: dict[str, str],
        before_commit: BeforeCommit,
    ) -> int:
        final = self.path(rel)
        parent = final.parent
        parent.mkdir(parents=True, exist_ok=True)
        self._inside(parent)
        if final.is_symlink() or (final.exists() and not final.is_file()):
            raise SinkError(f"{final} exists and is not a regular file", operation="transfer outputs")
        temp = parent / _temp_name(final.name)
        written = flushed = 0
        advise = self.fsync and hasattr(os, "posix_fadvise")
        try:
            with open(temp, "xb") as f:
                for chunk in chunks:
                    f.write(chunk)
                    written += len(chunk)
                    if advise and written - flushed >= _WRITEBACK:
                        # start writeback of what is written so far: the final fsync then has little
                        # left (1 GiB from moto, median of 4 interleaved runs: 685 MB/s, 529 without)
                        f.flush()
                        os.posix_fadvise(f.fileno(), flushed, written - flushed, os.POSIX_FADV_DONTNEED)
                        flushed = written
                before_commit(written)
                f.flush()
                if self.fsync:
                    os.fsync(f.fileno())
            os.replace(temp, final)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise
        if self.fsync:
            _fsync_dir(parent)
        return written

    def delete(self, rel: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path(rel))


def _temp_name(name: str) -> str:
    """A hidden, unique temporary name beside ``name`` (matched by ``_TEMP_NAME`` for clean-up)."""
    return f".{name}.{uuid.uuid4().hex[:12]}{TEMP_SUFFIX}"


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # some file systems refuse it; the rename is still atomic
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# ------------------------------------------------------------------------------------------ S3


def _code(exc: BaseException) -> str:
    return error_code(exc)[0]


def part_size_for(
    number: int, size_hint: int | None, *, base: int = PART_SIZE, max_parts: int = MAX_PARTS
) -> int:
    """The size of part ``number`` (1-based) of a multipart upload.

    Size known: one size for every part, ``base`` or larger so that ``max_parts`` parts hold the
    object. Size unknown: ``base``, doubled after every tenth of ``max_parts`` parts (capped at
    S3's 5 GiB part), so a stream never runs out of parts: with the default 8 MiB, 10,000 parts
    hold 8 TiB (S3's largest object is 5 TiB), and parts stay 8 MiB up to 7.8 GiB, 16 MiB up to
    23 GiB, 64 MiB up to 117 GiB, and so on.
    """
    base = max(MIN_PART, base)
    if size_hint is not None:
        needed = math.ceil(size_hint / max_parts / MIB) * MIB
        return min(MAX_PART, max(base, needed))
    step = max(1, max_parts // 10)
    return min(MAX_PART, base << min(10, (number - 1) // step))


class _BufferBudget:
    """Bytes of parts an S3 sink holds at once (being filled, queued or uploading), for all its uploads.

    A reservation larger than the whole budget takes the whole budget, so at most one such part
    exists at a time: memory never exceeds ``max(limit, the largest part)``.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._free = limit
        self._changed = threading.Condition()

    def acquire(self, size: int) -> int:
        size = min(size, self.limit)
        with self._changed:
            while self._free < size:
                self._changed.wait()
            self._free -= size
        return size

    @property
    def in_use(self) -> int:
        return self.limit - self._free

    def release(self, size: int) -> None:
        if size:
            with self._changed:
                self._free += size
                self._changed.notify_all()


class _PartReader:
    """Cuts a stream of chunks into parts of exact sizes, each one buffer (no copy of a whole part)."""

    def __init__(self, chunks: Iterable[Chunk]) -> None:
        self._chunks = iter(chunks)
        self._rest = memoryview(b"")
        self.done = False
        """True once the stream has ended (known as soon as a part ends with it)."""

    def _next(self) -> bool:
        chunk = next(self._chunks, None)
        if chunk is None:
            self.done = True
            return False
        # a source may reuse its chunk's buffer: what is left of it is consumed before the next read
        self._rest = memoryview(chunk).cast("B")
        return True

    def fill(self, size: int, expected: int | None = None) -> bytearray:
        """The next part: ``size`` bytes, or fewer at the end. ``expected``: the bytes left, if known
        (a small object then costs its own size, not a whole part)."""
        capacity = size if expected is None else max(1, min(size, expected))
        part = bytearray(capacity)
        view = memoryview(part)
        filled = 0
        while filled < size and not self.done:
            if not self._rest and not self._next():
                break
            if filled == capacity:  # more than announced: room for the whole part
                view.release()
                part.extend(bytes(size - capacity))
                capacity = size
                view = memoryview(part)
            n = min(capacity - filled, len(self._rest))
            view[filled : filled + n] = self._rest[:n]
            self._rest = self._rest[n:]
            filled += n
        if not self._rest and not self.done:
            self._next()  # look ahead, so that a part ending with the stream is known to be the last
        view.release()
        if filled < capacity:
            del part[filled:]
        return part


def delivery_owner(dag_id: str, task_id: str, run_id: str, map_index: int | None = -1) -> str:
    """What every try of one task instance shares, and no other delivery: the owner of its uploads."""
    return text_digest(f"{dag_id}\0{task_id}\0{run_id}\0{-1 if map_index is None else map_index}")


def _owner_tag(owner: str | None) -> str:
    """12 hex digits naming the delivery in its upload records (random when no owner is given)."""
    return text_digest(owner)[:12] if owner else uuid.uuid4().hex[:12]


class S3Sink(Sink):
    """A bucket and key prefix, written with the destination AWS connection.

    :param part_size: the first parts' size (`part_size_for` grows it for large objects).
    :param upload_concurrency: parts of one upload queued or uploading at a time.
    :param upload_buffer_bytes: the memory all uploads to this sink may hold in parts together
        (being filled, queued or uploading); a part larger than this (objects of known size above
        ~1.5 TiB, streams of unknown size beyond ~250 GiB) is held alone. Peak memory is
        ``max(upload_buffer_bytes, largest part)`` plus the sources' 1 MiB chunks, whatever the
        objects' sizes and the number of outputs moved at the same time.
    :param owner: what identifies this delivery across the tries of one task (`delivery_owner`):
        the next try aborts the multipart uploads a killed try left, and no one else's.
    :param max_parts: S3's part limit (lower only to test).
    """

    scheme = "s3"
    remote = True
    keeps_metadata = True

    def __init__(
        self,
        access: S3Access,
        bucket: str,
        prefix: str,
        *,
        part_size: int = PART_SIZE,
        upload_concurrency: int = 4,
        upload_buffer_bytes: int = UPLOAD_BUFFER_BYTES,
        copy_limit: int = COPY_LIMIT,
        copy_part_size: int = 512 * 1024**2,
        copy_concurrency: int = 8,
        owner: str | None = None,
        max_parts: int = MAX_PARTS,
    ) -> None:
        self.access = access
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.part_size = max(MIN_PART, part_size)
        self.upload_concurrency = max(1, upload_concurrency)
        self.copy_limit = copy_limit
        self.copy_part_size = max(MIN_PART, copy_part_size)
        self.copy_concurrency = max(1, copy_concurrency)
        self.buffers = _BufferBudget(max(self.part_size, upload_buffer_bytes))
        self.owner = _owner_tag(owner)
        self.max_parts = max(1, min(MAX_PARTS, max_parts))
        self.client = access.client()
        self._listed: dict[str, dict[str, Existing]] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"S3Sink(s3://{self.bucket}/{self.prefix}, conn_id={self.access.conn_id!r})"

    def key(self, rel: str) -> str:
        return f"{self.prefix}/{rel}" if self.prefix else rel

    def uri(self, rel: str) -> str:
        return f"s3://{self.bucket}/{self.key(rel)}"

    def lineage(self, rel: str) -> tuple[str, str]:
        return f"s3://{self.bucket}", self.key(rel)

    def _fail(self, exc: BaseException, what: str, rel: str) -> SinkError:
        return SinkError(
            f"{what} {self.uri(rel)} failed: {_code(exc)}",
            operation="transfer outputs",
            hint=f"Check the destination bucket and that the AWS connection {self.access.conn_id!r} may write it",
        )

    def prepare_folder(self, rel_folder: str) -> None:
        """List the job folder once (names not there need no request of their own), and abort the
        uploads this task's killed earlier tries recorded there."""
        prefix = self.key(rel_folder) + "/"
        found: dict[str, Existing] = {}
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
            for page in pages:
                for item in page.get("Contents", []):
                    rel = f"{rel_folder}/{item['Key'][len(prefix) :]}"
                    etag = item.get("ETag")
                    found[rel] = Existing(size=int(item["Size"]), etag=etag, complete=False)
        except Exception as exc:
            log.debug("listing %s failed (%s): checking names one by one", self.uri(rel_folder), exc)
            return
        with self._lock:
            self._listed[rel_folder] = found
        self._abort_own_leftovers(rel_folder, list(found))

    # -- multipart uploads this delivery started

    def _marker_rel(self, rel: str) -> str:
        """The hidden object that records an upload to ``rel`` by this delivery (see `delivery_owner`)."""
        folder, _, name = rel.rpartition("/")
        marker = f".{name}.{self.owner}{TEMP_SUFFIX}"
        return f"{folder}/{marker}" if folder else marker

    def _track(self, rel: str, key: str, upload_id: str) -> None:
        """Record the upload beside its object, so the next try of this task can abort it if killed."""
        body = json.dumps({"key": key, "upload_id": upload_id}).encode()
        try:
            self.client.put_object(Bucket=self.bucket, Key=self.key(self._marker_rel(rel)), Body=body)
        except Exception as exc:  # best effort: without it, only a lifecycle rule cleans up after a kill
            log.warning("could not record the multipart upload of %s: %s", self.uri(rel), _code(exc))

    def _untrack(self, rel: str) -> None:
        with contextlib.suppress(Exception):
            self.client.delete_object(Bucket=self.bucket, Key=self.key(self._marker_rel(rel)))

    def _abort_own_leftovers(self, rel_folder: str, listed: Iterable[str]) -> None:
        """Abort the uploads an earlier, killed try of this same task left in ``rel_folder``.

        Only uploads recorded under this delivery's owner are touched: another run's uploads under
        the same prefix, live or not, are never aborted (a lifecycle rule covers abandoned ones).
        """
        suffix = f".{self.owner}{TEMP_SUFFIX}"
        for rel in listed:
            folder, _, name = rel.rpartition("/")
            inside = folder == rel_folder or folder.startswith(rel_folder + "/")
            if not inside or not name.startswith(".") or not name.endswith(suffix):
                continue
            target = f"{folder}/{name[1 : -len(suffix)]}"
            try:
                body = self.client.get_object(Bucket=self.bucket, Key=self.key(rel))["Body"].read(64 * 1024)
                record = json.loads(body)
                if record.get("key") == self.key(target):
                    self.client.abort_multipart_upload(
                        Bucket=self.bucket, Key=record["key"], UploadId=str(record["upload_id"])
                    )
                    log.info("aborted the multipart upload of %s left by an earlier try", self.uri(target))
            except Exception as exc:  # gone already (NoSuchUpload) or unreadable: drop the record
                log.debug("multipart upload recorded for %s: %s", self.uri(target), _code(exc))
            with contextlib.suppress(Exception):
                self.client.delete_object(Bucket=self.bucket, Key=self.key(rel))

    def stat(self, rel: str, *, full: bool = False) -> Existing | None:
        folder = rel.rsplit("/", 1)[0] if "/" in rel else ""
        listing = self._listed.get(folder)
        if listing is not None and not full:
            return listing.get(rel)
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self.key(rel), ChecksumMode="ENABLED")
        except Exception as exc:
            if _code(exc) in NOT_FOUND:
                return None
            raise self._fail(exc, "reading", rel) from None
        return _existing(head)

    def read_chunks(self, rel: str) -> Iterator[bytes]:
        body = self.client.get_object(Bucket=self.bucket, Key=self.key(rel))["Body"]
        try:
            yield from body.iter_chunks(CHUNK)
        finally:
            body.close()

    def part_size_for(self, number: int, size_hint: int | None) -> int:
        """The size of part ``number`` (1-based) of an upload; see `part_size_for`."""
        return part_size_for(number, size_hint, base=self.part_size, max_parts=self.max_parts)

    def write(
        self,
        rel: str,
        chunks: Iterable[Chunk],
        *,
        size_hint: int | None,
        content_type: str | None,
        metadata: dict[str, str],
        before_commit: BeforeCommit,
    ) -> int:
        key = self.key(rel)
        extra: dict[str, Any] = {"Metadata": metadata}
        if content_type:
            extra["ContentType"] = content_type
        parts = _PartReader(chunks)
        size = self.part_size_for(1, size_hint)
        reserved = self.buffers.acquire(size)
        try:
            first = parts.fill(size, size_hint)
        except BaseException:
            self.buffers.release(reserved)
            raise
        if not parts.done:  # the multipart upload takes the part and its reservation over
            box = [first]
            del first  # no reference may outlive the part's upload
            held = [reserved]  # the reservation of the part being filled, until its upload takes it over
            try:
                return self._upload_parts(rel, key, size_hint, box, held, parts, extra, before_commit)
            finally:
                self.buffers.release(held[0])
        try:
            # the whole object fits in one part: verified first, then one atomic PutObject
            before_commit(len(first))
            try:
                self.client.put_object(Bucket=self.bucket, Key=key, Body=first, **extra)
            except Exception as exc:
                raise self._fail(exc, "writing", rel) from None
            return len(first)
        finally:
            self.buffers.release(reserved)

    def _upload_parts(
        self,
        rel: str,
        key: str,
        size_hint: int | None,
        box: list[bytearray],
        held: list[int],
        parts: _PartReader,
        extra: dict[str, Any],
        before_commit: BeforeCommit,
    ) -> int:
        try:
            upload_id = self.client.create_multipart_upload(Bucket=self.bucket, Key=key, **extra)["UploadId"]
        except Exception as exc:
            raise self._fail(exc, "starting a multipart upload of", rel) from None
        self._track(rel, key, upload_id)
        pending: list[Future[dict[str, Any]]] = []
        sizes: list[int] = []  # each pending part's reservation
        total = 0
        pool = ThreadPoolExecutor(self.upload_concurrency, thread_name_prefix="jobstatus-upload")
        # parts of this upload queued or uploading; the sink's buffer budget bounds all uploads together
        slots = threading.BoundedSemaphore(self.upload_concurrency)

        def upload(number: int, data: bytearray, size: int) -> dict[str, Any]:
            try:
                result = self.client.upload_part(
                    Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data
                )
                return {"PartNumber": number, "ETag": result["ETag"]}
            finally:
                self.buffers.release(size)
                slots.release()

        def raise_failed() -> None:
            failed = [f for f in pending if f.done() and f.exception() is not None]
            if failed:
                raise failed[0].exception()  # type: ignore[misc]

        try:
            part: bytearray | None = box.pop()
            number = 1
            while part:
                if number > self.max_parts:
                    raise SinkError(
                        f"{self.uri(rel)}: the source sent more than {self.max_parts} parts "
                        f"({total} bytes, {size_hint} announced)",
                        operation="transfer outputs",
                    )
                slots.acquire()
                try:
                    raise_failed()
                except BaseException:
                    slots.release()
                    raise
                total += len(part)
                pending.append(pool.submit(upload, number, part, held[0]))
                sizes.append(held[0])
                held[0] = 0
                part = None
                if parts.done:
                    break
                number += 1
                size = self.part_size_for(number, size_hint)
                held[0] = self.buffers.acquire(size)
                part = parts.fill(size)
            wait(pending, return_when=FIRST_EXCEPTION)
            raise_failed()
            done = [f.result() for f in pending]
            before_commit(total)
            self.client.complete_multipart_upload(
                Bucket=self.bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": done}
            )
        except BaseException as exc:
            for f, size in zip(pending, sizes, strict=True):
                if f.cancel():  # never run: its part's reservation is returned here
                    self.buffers.release(size)
            pool.shutdown(wait=True)
            with contextlib.suppress(Exception):
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
            self._untrack(rel)
            if isinstance(exc, JobStatusError) or not isinstance(exc, Exception):
                raise
            if _is_client_error(exc):
                raise self._fail(exc, "writing", rel) from None
            raise
        pool.shutdown(wait=True)
        self._untrack(rel)
        return total

    # -- server-side copy

    def can_copy(self, source: Source) -> bool:
        """An S3 object on this store (same endpoint, same credentials)."""
        return isinstance(source, S3Source) and self.access.same_store(
            source.access, endpoint_url=source.location.endpoint_url
        )

    def copy(
        self,
        source: Source,
        rel: str,
        *,
        content_type: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """One CopyObject up to `copy_limit` (returns its ``CopyObjectResult``), else `_multipart_copy`.

        ``metadata=None`` keeps the source's content type and metadata (``MetadataDirective=COPY``);
        otherwise they are replaced. ``CopySourceIfMatch`` pins the copy to the ETag already known.
        """
        if metadata is not None and (source.size or 0) > self.copy_limit:
            self._multipart_copy(source, rel, content_type=content_type, metadata=metadata)
            return {}
        extra: dict[str, Any] = {}
        if source.etag:
            extra["CopySourceIfMatch"] = source.etag
        if metadata is not None:
            extra.update(MetadataDirective="REPLACE", Metadata=metadata)
            if content_type:
                extra["ContentType"] = content_type
        try:
            response = self.client.copy_object(
                Bucket=self.bucket, Key=self.key(rel), CopySource=self._copy_source(source), **extra
            )
        except Exception as exc:
            raise self._fail(exc, f"server-side copy of {source.display} to", rel) from None
        return dict(response.get("CopyObjectResult") or {})

    @staticmethod
    def _copy_source(source: Source) -> dict[str, str]:
        assert isinstance(source, S3Source), "only called where can_copy(source)"
        copy_source = {"Bucket": source.location.bucket, "Key": source.location.key}
        if source.version_id:
            copy_source["VersionId"] = source.version_id
        return copy_source

    def _multipart_copy(
        self, source: Source, rel: str, *, content_type: str | None, metadata: dict[str, str]
    ) -> None:
        """boto3's managed copy: ``UploadPartCopy`` in parallel, then ``CompleteMultipartUpload`` (the
        commit; aborted on failure). boto3 hides its upload id, so unlike a streamed upload it is not
        recorded: a killed worker's copy is left to the bucket's ``AbortIncompleteMultipartUpload``."""
        from boto3.s3.transfer import TransferConfig

        extra: dict[str, Any] = {"Metadata": metadata, "MetadataDirective": "REPLACE"}
        if content_type:
            extra["ContentType"] = content_type
        if source.etag:
            extra["CopySourceIfMatch"] = source.etag
        size = source.size or 0
        config = TransferConfig(
            multipart_threshold=self.copy_limit,
            multipart_chunksize=max(self.copy_part_size, math.ceil(size / self.max_parts)),
            max_concurrency=self.copy_concurrency,
        )
        try:
            self.client.copy(
                self._copy_source(source), self.bucket, self.key(rel), ExtraArgs=extra, Config=config
            )
        except Exception as exc:
            raise self._fail(exc, "multipart copy to", rel) from None

    def delete(self, rel: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self.key(rel))
        except Exception as exc:
            if _code(exc) not in NOT_FOUND:
                raise self._fail(exc, "deleting", rel) from None


def _existing(head: dict[str, Any]) -> Existing:
    checksums = {
        name: str(head[k])
        for name, k in (("crc32", "ChecksumCRC32"), ("sha1", "ChecksumSHA1"), ("sha256", "ChecksumSHA256"))
        if head.get(k)
    }
    etag = head.get("ETag")
    return Existing(
        size=int(head["ContentLength"]),
        etag=etag,
        metadata=dict(head.get("Metadata") or {}),
        checksums=checksums,
        checksum_type=head.get("ChecksumType"),
        etag_is_md5=bool(etag) and "-" not in str(etag) and etag_can_be_md5(head),
    )


def _is_client_error(exc: BaseException) -> bool:
    try:
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:  # pragma: no cover - botocore ships with the Amazon provider
        return False
    return isinstance(exc, ClientError | BotoCoreError)


# ------------------------------------------------------------------------------------------ fsspec


class FsspecSink(Sink):
    """Any scheme Airflow's ``ObjectStoragePath`` reaches (gs://, abfs://, memory://...)."""

    def __init__(self, root: Any) -> None:
        self.root = root
        self.scheme = str(root.protocol or "file")
        self.remote = self.scheme not in ("file", "local", "memory")
        self.fs = root.fs

    def __repr__(self) -> str:
        return f"FsspecSink({self.uri('')!r})"

    def _path(self, rel: str) -> Any:
        return self.root.joinpath(*rel.split("/")) if rel else self.root

    def uri(self, rel: str) -> str:
        path = self._path(rel)
        bucket = getattr(path, "bucket", "") or ""
        key = str(getattr(path, "key", "") or "").lstrip("/")
        return f"{self.scheme}://{bucket}/{key}" if bucket else f"{self.scheme}:///{key}"

    def lineage(self, rel: str) -> tuple[str, str]:
        path = self._path(rel)
        bucket = getattr(path, "bucket", "") or ""
        namespace = f"{self.scheme}://{bucket}" if bucket else self.scheme
        return namespace, str(getattr(path, "key", "") or "").lstrip("/")

    def stat(self, rel: str, *, full: bool = False) -> Existing | None:
        path = self._path(rel)
        try:
            info = self.fs.info(path.path)
        except FileNotFoundError:
            return None
        if info.get("type") == "directory":
            raise SinkError(f"{self.uri(rel)} exists and is a folder", operation="transfer outputs")
        return Existing(size=int(info.get("size") or 0))

    def read_chunks(self, rel: str) -> Iterator[bytes]:
        with self.fs.open(self._path(rel).path, "rb") as f:
            yield from iter(lambda: f.read(CHUNK), b"")

    def write(
        self,
        rel: str,
        chunks: Iterable[Chunk],
        *,
        size_hint: int | None,
        content_type: str | None,
        metadata: dict[str, str],
        before_commit: BeforeCommit,
    ) -> int:
        final = self._path(rel)
        parent = final.parent
        temp = parent / _temp_name(final.name)
        written = 0
        try:
            with contextlib.suppress(Exception):
                self.fs.makedirs(parent.path, exist_ok=True)
            with self.fs.open(temp.path, "wb") as f:
                for chunk in chunks:
                    f.write(chunk)
                    written += len(chunk)
            stored = int(self.fs.info(temp.path).get("size") or 0)
            if stored != written:
                raise SinkError(
                    f"{self.uri(rel)}: the store kept {stored} of {written} bytes",
                    operation="transfer outputs",
                )
            before_commit(written)
            self.fs.mv(temp.path, final.path)
        except BaseException:
            with contextlib.suppress(Exception):
                self.fs.rm(temp.path)
            raise
        return written

    def delete(self, rel: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm(self._path(rel).path)


# ------------------------------------------------------------------------------------------ parsing


@dataclass(frozen=True)
class Destination:
    """A parsed destination root."""

    scheme: str
    bucket: str
    prefix: str
    conn_id: str | None
    path: Any = None
    """The ObjectStoragePath given, kept for schemes handled through fsspec."""

    @property
    def uri(self) -> str:
        if self.scheme == "file":
            return Path(self.prefix).as_uri()
        return f"{self.scheme}://{self.bucket}/{self.prefix}".rstrip("/")


def _refuse_dots(value: str, original: Any) -> None:
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        # a NUL would fail deep in the OS layer with an untyped error; other controls are never meant
        raise InvalidParameterError(
            f"destination {original!r} contains a control character", operation="transfer outputs"
        )
    if any(part == ".." for part in value.replace("\\", "/").split("/")):
        raise InvalidParameterError(
            f"destination {original!r} contains a '..' segment",
            operation="transfer outputs",
            hint="Give the destination as a plain URI or absolute path",
        )


def parse_destination(destination: Any, conn_id: str | None = None) -> Destination:
    """``s3://[conn@]bucket/prefix``, ``file:///abs``, an absolute path, or an ObjectStoragePath."""
    if destination is None or (isinstance(destination, str) and not destination.strip()):
        raise InvalidParameterError("destination is required", operation="transfer outputs")
    if not isinstance(destination, str | os.PathLike):
        if not (hasattr(destination, "protocol") and hasattr(destination, "key")):
            # a number, list or dict would otherwise read as "no key": the file system root
            raise InvalidParameterError(
                f"destination must be a URI, an absolute path or an ObjectStoragePath, "
                f"got {type(destination).__name__} {destination!r:.80}",
                operation="transfer outputs",
            )
        # ObjectStoragePath (or anything shaped like it)
        protocol = str(getattr(destination, "protocol", "") or "file")
        bucket = str(getattr(destination, "bucket", "") or "")
        key = str(getattr(destination, "key", "") or "")
        path_conn = getattr(destination, "conn_id", None)
        _refuse_dots(key, destination)
        if protocol in ("file", "local"):
            return Destination("file", "", "/" + key.lstrip("/"), None)
        return Destination(protocol, bucket, key.strip("/"), path_conn or conn_id, destination)
    text = os.fspath(destination).strip()
    if "://" not in text:
        if not os.path.isabs(text):
            raise InvalidParameterError(
                f"destination {text!r} is neither a URI nor an absolute path",
                operation="transfer outputs",
                hint="Use s3://bucket/prefix, file:///absolute/folder or an absolute folder path",
            )
        _refuse_dots(text, destination)
        return Destination("file", "", os.path.normpath(text), None)
    scheme, _, rest = text.partition("://")
    scheme = scheme.lower()
    if scheme in ("file", "local"):
        path = "/" + rest.split("/", 1)[1] if not rest.startswith("/") and "/" in rest else rest
        _refuse_dots(path, destination)
        return Destination("file", "", os.path.normpath(path or "/"), None)
    netloc, _, key = rest.partition("/")
    url_conn = None
    if "@" in netloc:
        url_conn, _, netloc = netloc.rpartition("@")
    if not netloc:
        raise InvalidParameterError(
            f"destination {text!r} has no bucket", operation="transfer outputs", hint="Use s3://bucket/prefix"
        )
    _refuse_dots(key, destination)
    return Destination(scheme, netloc, key.strip("/"), url_conn or conn_id)


def open_sink(
    destination: Destination, *, s3_access: Callable[[str | None], S3Access], **s3_options: Any
) -> Sink:
    """The sink for a parsed destination."""
    if destination.scheme == "file":
        return LocalSink(destination.prefix)
    if destination.scheme in ("s3", "s3a"):
        return S3Sink(s3_access(destination.conn_id), destination.bucket, destination.prefix, **s3_options)
    path = destination.path
    if path is None:
        from airflow.sdk import ObjectStoragePath

        path = ObjectStoragePath(destination.uri, conn_id=destination.conn_id)
    return FsspecSink(path)
