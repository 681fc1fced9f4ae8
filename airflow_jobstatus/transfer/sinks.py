"""Writing an output under its final name atomically: local folders, S3 buckets, other object stores.

No sink ever exposes a partial object under a final name:

* **Local folder** (`LocalSink`): the bytes go to a hidden temporary file in the same folder
  (``.<file name>.<random>.jobstatus-part``), are verified, flushed to disk (``fsync``), then
  renamed over the final name (``os.replace``, atomic on POSIX) and the folder is synced. Dirty
  pages are handed to the kernel's writeback as the file grows, so the final ``fsync`` is short.
* **S3** (`S3Sink`): boto3's managed transfer writes it, and the commit is one request S3 applies
  atomically: ``PutObject`` for an object below one part, else ``CompleteMultipartUpload`` (boto3
  aborts the multipart upload on any failure); ``CopyObject`` for a server-side copy (boto3's
  managed ``copy`` above the 5 GiB copy limit). The source is read through a file object that
  calls ``before_commit`` at the end of the stream, before boto3 can complete the upload, so an
  unverified object is never committed. Each multipart upload's id (read from boto3's
  ``CreateMultipartUpload`` response) is recorded beside its object while it runs
  (``.<name>.<owner>.jobstatus-part``; the owner is the task instance, `delivery_owner`) so the
  next try of the same task aborts what a killed try left, and nobody else's.
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
]

COPY_LIMIT = 5 * 1024**3
"""Largest object one CopyObject may copy (S3's limit); larger ones are copied part by part."""
MIB = 1024**2
MIN_PART = 5 * MIB
"""S3's smallest part (all but the last)."""
MAX_PARTS = 10_000
"""S3's most parts in one upload."""
PART_SIZE = 8 * MIB
"""The default size of an upload's parts (boto3 grows it for objects of known size above 78 GiB)."""
UPLOAD_CONCURRENCY = 8
"""The default number of parts one S3 destination uploads at a time, for all its uploads together."""
UPLOAD_BUFFER_BYTES = 64 * MIB
"""The default memory parts queued or uploading may hold in one S3 destination, for all its uploads."""
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


class _RenamingSink(Sink):
    """A store written under a temporary name beside the final one, then renamed over it.

    Subclasses say how their store names (`_location`), opens, fills, renames and removes a file.
    """

    def _location(self, rel: str) -> Any:
        raise NotImplementedError

    def _open(self, location: Any, mode: str) -> Any:
        raise NotImplementedError

    def _remove(self, location: Any) -> None:
        raise NotImplementedError

    def _ready(self, final: Any) -> None:
        """Before a write: the folder of ``final`` exists and ``final`` may be replaced."""

    def _fill(self, rel: str, temp: Any, chunks: Iterable[Chunk], before_commit: BeforeCommit) -> int:
        """Write ``chunks`` to ``temp`` (for ``rel``), then call ``before_commit``; return the bytes written."""
        raise NotImplementedError

    def _rename(self, temp: Any, final: Any) -> None:
        raise NotImplementedError

    def read_chunks(self, rel: str) -> Iterator[bytes]:
        with self._open(self._location(rel), "rb") as f:
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
        final = self._location(rel)
        self._ready(final)
        temp = final.parent / _temp_name(final.name)
        try:
            written = self._fill(rel, temp, chunks, before_commit)
            self._rename(temp, final)
        except BaseException:
            with contextlib.suppress(Exception):
                self._remove(temp)
            raise
        return written

    def delete(self, rel: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._remove(self._location(rel))


# ------------------------------------------------------------------------------------------ local


class LocalSink(_RenamingSink):
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

    def _location(self, rel: str) -> Path:
        return self.path(rel)

    def _open(self, location: Path, mode: str) -> Any:
        return open(location, mode)

    def _remove(self, location: Path) -> None:
        os.unlink(location)

    def _ready(self, final: Path) -> None:
        final.parent.mkdir(parents=True, exist_ok=True)
        self._inside(final.parent)
        if final.is_symlink() or (final.exists() and not final.is_file()):
            raise SinkError(f"{final} exists and is not a regular file", operation="transfer outputs")

    def _fill(self, rel: str, temp: Path, chunks: Iterable[Chunk], before_commit: BeforeCommit) -> int:
        written = flushed = 0
        advise = self.fsync and hasattr(os, "posix_fadvise")
        with self._open(temp, "xb") as f:
            for chunk in chunks:
                f.write(chunk)
                written += len(chunk)
                if advise and written - flushed >= _WRITEBACK:
                    # start writeback of what is written so far: the final fsync then has little
                    # left (1 GiB from moto, benchmarks/transfer.py, median of 5 interleaved
                    # rounds in one run: 621 MB/s, 452 without; boto3 get_object + fsync 400)
                    f.flush()
                    os.posix_fadvise(f.fileno(), flushed, written - flushed, os.POSIX_FADV_DONTNEED)
                    flushed = written
            before_commit(written)
            f.flush()
            if self.fsync:
                os.fsync(f.fileno())
        return written

    def _rename(self, temp: Path, final: Path) -> None:
        os.replace(temp, final)
        if self.fsync:
            _fsync_dir(final.parent)


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


class _StreamFile:
    """A non-seekable file over a stream of chunks, for boto3's managed upload to read.

    When the stream ends (the read that returns short, always before boto3 can complete the upload)
    it calls ``before_commit``: an error there or from the stream fails the upload, and boto3 aborts
    its multipart upload. ``parts``: (most parts, part size) when the upload's part size cannot
    grow (a stream of unknown size): more bytes than they hold fail the upload.
    """

    def __init__(
        self, chunks: Iterable[Chunk], before_commit: BeforeCommit, *, parts: tuple[int, int] | None, uri: str
    ) -> None:
        self._chunks = iter(chunks)
        self._rest: Chunk = b""
        self._before_commit = before_commit
        self._parts = parts
        self._limit = parts[0] * parts[1] if parts is not None else None
        self._uri = uri
        self.read_bytes = 0
        self.ended = False
        self.stopped = False
        """Set when the upload is given up: the next read fails instead of reading the source on."""

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def read(self, size: int = -1) -> bytes:
        if self.stopped:
            raise SinkError(f"{self._uri}: the upload was stopped", operation="transfer outputs")
        pieces: list[Chunk] = []
        have = 0
        while size < 0 or have < size:
            if not self._rest:
                if self.ended:
                    break
                chunk = next(self._chunks, None)
                if chunk is None:
                    self.ended = True
                    self._before_commit(self.read_bytes + have)
                    break
                self._rest = chunk
            take = len(self._rest) if size < 0 else min(len(self._rest), size - have)
            if take == len(self._rest) and isinstance(self._rest, bytes):
                pieces.append(self._rest)  # a whole immutable chunk: no copy
                self._rest = b""
            else:
                view = memoryview(self._rest)
                pieces.append(bytes(view[:take]))  # a copy: the source may reuse its chunk's buffer
                self._rest = view[take:]
            have += take
        self.read_bytes += have
        if self._parts is not None and self._limit is not None and self.read_bytes > self._limit:
            raise SinkError(
                f"{self._uri}: a stream of unknown size is limited to {self._limit} bytes "
                f"({self._parts[0]} parts of {self._parts[1]} bytes), and the source sent more",
                operation="transfer outputs",
                hint="Pass a larger part_size to S3Sink (the limit is 10,000 parts)",
            )
        return b"".join(pieces)


class _KnownSize:
    """Tells boto3 a stream's size, so its parts grow to fit S3's 10,000 (a non-seekable file cannot say)."""

    def __init__(self, size: int) -> None:
        self.size = size

    def on_queued(self, future: Any, **kwargs: Any) -> None:
        future.meta.provide_transfer_size(self.size)

    def on_progress(self, **kwargs: Any) -> None:
        pass

    def on_done(self, **kwargs: Any) -> None:
        pass


def delivery_owner(dag_id: str, task_id: str, run_id: str, map_index: int | None = -1) -> str:
    """What every try of one task instance shares, and no other delivery: the owner of its uploads."""
    return text_digest(f"{dag_id}\0{task_id}\0{run_id}\0{-1 if map_index is None else map_index}")


def _owner_tag(owner: str | None) -> str:
    """12 hex digits naming the delivery in its upload records (random when no owner is given)."""
    return text_digest(owner)[:12] if owner else uuid.uuid4().hex[:12]


class S3Sink(Sink):
    """A bucket and key prefix, written with the destination AWS connection.

    Streams are uploaded by boto3's managed transfer (one ``TransferManager`` shared by the uploads
    running at the same time, so they share its threads and its memory budget).

    :param part_size: the parts' size (boto3 grows it for objects of known size above 10,000
        parts); a stream of unknown size may be up to 10,000 parts of it (78 GiB at 8 MiB).
    :param upload_concurrency: parts uploading at a time, for all uploads together.
    :param upload_buffer_bytes: the memory parts queued or uploading may hold, for all uploads
        together (``upload_buffer_bytes // part_size`` parts). Each output being read holds up to
        two more parts while its next part is cut.
    :param owner: what identifies this delivery across the tries of one task (`delivery_owner`):
        the next try aborts the multipart uploads a killed try left, and no one else's.
    :param max_parts: S3's part limit for a stream of unknown size (lower only to test).
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
        upload_concurrency: int = UPLOAD_CONCURRENCY,
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
        self.upload_buffer_bytes = max(self.part_size, upload_buffer_bytes)
        self.copy_limit = copy_limit
        self.copy_part_size = max(MIN_PART, copy_part_size)
        self.copy_concurrency = max(1, copy_concurrency)
        self.owner = _owner_tag(owner)
        self.max_parts = max(1, min(MAX_PARTS, max_parts))
        self.client = access.client()
        self._listed: dict[str, dict[str, Existing]] = {}
        self._lock = threading.Lock()
        self._uploading: dict[str, str] = {}
        """Keys being written, and their ``rel`` until their multipart upload is recorded ("" then)."""
        self._manager: Any = None
        self._manager_users = 0
        # boto3's managed transfers hide their upload ids: they are read from the responses
        self.client.meta.events.register("after-call.s3.CreateMultipartUpload", self._record_upload)

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

    def _record_upload(self, parsed: dict[str, Any] | None = None, **kwargs: Any) -> None:
        """botocore calls this after every CreateMultipartUpload of the client: record ours."""
        if not parsed or parsed.get("Bucket") != self.bucket or not parsed.get("UploadId"):
            return
        key = str(parsed.get("Key"))
        with self._lock:
            rel = self._uploading.get(key)
            if rel is None:
                return
            self._uploading[key] = ""  # recorded: removed when the upload ends
        self._track(rel, key, str(parsed["UploadId"]))

    @contextlib.contextmanager
    def _recorded(self, rel: str, key: str) -> Iterator[None]:
        """While inside, a multipart upload to ``key`` is recorded (`_track`) as it starts."""
        with self._lock:
            self._uploading[key] = rel
        try:
            yield
        finally:
            with self._lock:
                recorded = self._uploading.pop(key, None) == ""
            if recorded:
                self._untrack(rel)

    @contextlib.contextmanager
    def _transfers(self) -> Iterator[Any]:
        """boto3's transfer manager, shared by the uploads running at once (shut down after the last)."""
        from boto3.s3.transfer import TransferConfig, create_transfer_manager

        with self._lock:
            if self._manager is None:
                config = TransferConfig(
                    multipart_threshold=self.part_size,
                    multipart_chunksize=self.part_size,
                    max_concurrency=self.upload_concurrency,
                    preferred_transfer_client="classic",
                )
                # s3transfer's bound on parts held in memory (boto3's TransferConfig does not take it)
                config.max_in_memory_upload_chunks = max(1, self.upload_buffer_bytes // self.part_size)
                self._manager = create_transfer_manager(self.client, config)
            self._manager_users += 1
            manager = self._manager
        try:
            yield manager
        finally:
            with self._lock:
                self._manager_users -= 1
                idle = self._manager_users == 0 and self._manager is manager
                if idle:
                    self._manager = None
            if idle:
                manager.shutdown()

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
        """boto3's managed upload: ``PutObject`` below one part, else a multipart upload (aborted on failure)."""
        key = self.key(rel)
        extra: dict[str, Any] = {"Metadata": metadata}
        if content_type:
            extra["ContentType"] = content_type
        parts = None if size_hint is not None else (self.max_parts, self.part_size)
        stream = _StreamFile(chunks, before_commit, parts=parts, uri=self.uri(rel))
        known = [_KnownSize(size_hint)] if size_hint is not None and size_hint >= self.part_size else []
        with self._transfers() as manager, self._recorded(rel, key):
            future = manager.upload(stream, self.bucket, key, extra_args=extra, subscribers=known)
            try:
                future.result()
            except BaseException as exc:
                # the task is stopping, or the upload failed: stop reading, wait for boto3's abort
                stream.stopped = True
                future.cancel()
                with contextlib.suppress(BaseException):
                    future.result()
                if isinstance(exc, JobStatusError) or not isinstance(exc, Exception):
                    raise
                if _is_client_error(exc):
                    raise self._fail(exc, "writing", rel) from None
                raise
        if not stream.ended:  # boto3 completed without reading to the end (not expected): unverified
            self.delete(rel)
            raise SinkError(
                f"{self.uri(rel)}: the upload ended before the stream", operation="transfer outputs"
            )
        return stream.read_bytes

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
        commit; aborted on failure), recorded like an upload while it runs."""
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
            with self._recorded(rel, self.key(rel)):
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


class FsspecSink(_RenamingSink):
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

    def _location(self, rel: str) -> Any:
        return self._path(rel)

    def _open(self, location: Any, mode: str) -> Any:
        return self.fs.open(location.path, mode)

    def _remove(self, location: Any) -> None:
        self.fs.rm(location.path)

    def _ready(self, final: Any) -> None:
        with contextlib.suppress(Exception):
            self.fs.makedirs(final.parent.path, exist_ok=True)

    def _fill(self, rel: str, temp: Any, chunks: Iterable[Chunk], before_commit: BeforeCommit) -> int:
        written = 0
        with self._open(temp, "wb") as f:
            for chunk in chunks:
                f.write(chunk)
                written += len(chunk)
        stored = int(self.fs.info(temp.path).get("size") or 0)
        if stored != written:
            raise SinkError(
                f"{self.uri(rel)}: the store kept {stored} of {written} bytes", operation="transfer outputs"
            )
        before_commit(written)
        return written

    def _rename(self, temp: Any, final: Any) -> None:
        self.fs.mv(temp.path, final.path)


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
