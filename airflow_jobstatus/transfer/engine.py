"""Delivering one job's outputs: decide, copy or stream, verify, commit, then write the manifest.

A run has three phases:

1. **Check** (in parallel): each source's metadata is read and the destination name is looked at.
   An output already there and identical is *skipped*; under ``if_exists="fail"`` one that differs
   stops the run before anything is written.
2. **Deliver** (in parallel, ``max_concurrency`` at a time): S3 to S3 within one store is a
   server-side copy; everything else streams through the worker in 256 KiB chunks, hashed as it
   passes (an S3 destination gathers them into parts within one memory budget for all outputs),
   and is committed only after its size and checksum are verified (see `sinks`).
   An output that fails leaves nothing under its final name; the others still complete.
3. **Manifest**: written last, only when every output was delivered.

"Identical" means: same size, and
* an equal ETag (S3 to S3; both read from listings, so a rerun costs no request per object), or
* for an S3 destination, the object carries this provider's metadata naming the same source
  (S3 objects cannot change in place, so the metadata cannot outlive the content), or its
  whole-object checksum / MD5 ETag equals the source's;
* otherwise, the destination's bytes hash to the checksum the source offers, or, for a download
  link (which offers none), to the checksum the previous manifest recorded for the same job
  output; without a previous manifest the link is read once more and hashed, and nothing is
  written if it matches.

If the task is stopped (SIGTERM, timeout) while outputs stream, the streams stop at their next
chunk and clean up (temporary files removed, multipart uploads aborted) before the task ends.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from airflow_jobstatus.exceptions import InvalidParameterError, JobStatusError
from airflow_jobstatus.transfer.checksums import Checksum, Expectation, Hasher, s3_value_to_hex, text_digest
from airflow_jobstatus.transfer.lineage import LineageRecord
from airflow_jobstatus.transfer.manifest import MAX_MANIFEST_BYTES, Manifest, ManifestEntry, read_manifest
from airflow_jobstatus.transfer.naming import PlannedOutput
from airflow_jobstatus.transfer.sinks import Existing, Sink
from airflow_jobstatus.transfer.sources import Chunk, Source, SourceError, list_sources

__all__ = [
    "IF_EXISTS",
    "ConflictError",
    "TransferCancelled",
    "TransferError",
    "TransferResult",
    "VerificationError",
    "deliver_outputs",
]

IF_EXISTS = ("skip_identical", "overwrite", "fail")
_MD5_HEX = re.compile(r"^[0-9a-f]{32}$")
META_SOURCE = "jobstatus-source"
META_CHECKSUM = "jobstatus-checksum"

log = logging.getLogger(__name__)


class TransferError(JobStatusError):
    """One or more outputs could not be delivered."""

    hint = (
        "Nothing was left under the final name of a failed output. Run the task again: outputs "
        "already delivered are skipped and the rest are transferred"
    )


class VerificationError(TransferError):
    """The bytes read do not match the size or checksum the source promised."""


class ConflictError(TransferError):
    """``if_exists="fail"`` and a different object is already at a destination name."""

    hint = "Nothing was written. Remove the object, choose another destination, or use if_exists='overwrite'"


@dataclass
class TransferResult:
    manifest: dict[str, Any]
    lineage: LineageRecord
    written: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


@dataclass
class _Item:
    plan: PlannedOutput
    source: Source
    rel: str
    uri: str
    entry: ManifestEntry | None = None
    """Set once the output is skipped or delivered."""
    worker_bytes: int = 0


def _short(exc: BaseException) -> str:
    """An error's text without its hint (the summary error carries one hint for all)."""
    text = str(exc)
    hint = getattr(exc, "hint", "")
    if hint and text.endswith(f". {hint}"):
        text = text[: -len(hint) - 2]
    prefix = "transfer outputs: "
    return text[len(prefix) :] if text.startswith(prefix) else text or type(exc).__name__


def _etag(value: Any) -> str:
    return str(value or "").strip().strip('"').lower()


def _stored(existing: Existing, option: Checksum) -> str | None:
    """The whole-object value (hex) a store reports for ``option``'s algorithm, if any."""
    value = existing.checksums.get(option.algorithm)
    if option.parts or not value or existing.checksum_type == "COMPOSITE":
        return None
    parsed = s3_value_to_hex(value)
    return parsed[0] if parsed is not None and not parsed[1] else None


class TransferCancelled(TransferError):
    """The task is stopping: streams in progress were abandoned and cleaned up."""


def _counting(
    chunks: Iterator[Chunk], item: _Item, hasher: Hasher | None, cancel: threading.Event
) -> Iterator[Chunk]:
    """Count (and hash) what passes; a failure of the source mid-stream says where and when."""
    iterator = iter(chunks)
    while True:
        if cancel.is_set():
            raise TransferCancelled(
                f"{item.uri}: abandoned, the task is stopping", operation="transfer outputs"
            )
        try:
            chunk = next(iterator)
        except StopIteration:
            return
        except JobStatusError:
            raise
        except Exception as exc:
            raise SourceError(
                f"reading {item.source.display} failed after {item.worker_bytes} bytes: "
                f"{type(exc).__name__}: {exc}",
                operation="read source",
            ) from exc
        item.worker_bytes += len(chunk)
        if hasher is not None:
            hasher.update(chunk)
        yield chunk


class _Delivery:
    def __init__(
        self,
        *,
        service: str,
        service_label: str,
        job_id: str,
        sink: Sink,
        items: list[_Item],
        manifest_rel: str,
        if_exists: str,
        max_concurrency: int,
        logger: logging.Logger | Any,
    ) -> None:
        self.service = service
        self.service_label = service_label
        self.job_id = job_id
        self.sink = sink
        self.items = items
        self.manifest_rel = manifest_rel
        self.if_exists = if_exists
        self.max_concurrency = max(1, int(max_concurrency))
        self.log = logger
        self.previous: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._cancel = threading.Event()

    # ------------------------------------------------------------------ helpers

    def _metadata(self, item: _Item) -> dict[str, str]:
        meta = {META_SOURCE: text_digest(item.source.identity)}
        expectation = item.source.expectation
        if expectation is not None and len(expectation.options) == 1:
            meta[META_CHECKSUM] = str(expectation.options[0])
        return meta

    def _run(self, fn: Callable[[_Item], None], items: Sequence[_Item]) -> list[tuple[_Item, BaseException]]:
        """Run ``fn`` on every item (in parallel); return the failures, after all have finished."""
        failures: list[tuple[_Item, BaseException]] = []
        if not items:
            return failures

        def call(item: _Item) -> None:
            try:
                fn(item)
            except Exception as exc:
                with self._lock:
                    failures.append((item, exc))

        if self.max_concurrency == 1 or len(items) == 1:
            for item in items:
                call(item)
        else:
            pool = ThreadPoolExecutor(
                min(self.max_concurrency, len(items)), thread_name_prefix="jobstatus-xfer"
            )
            try:
                for future in [pool.submit(call, item) for item in items]:
                    future.result()
            except BaseException:
                # the task is stopping (SIGTERM raises in this thread): make the streams stop and clean up
                self._cancel.set()
                raise
            finally:
                pool.shutdown(wait=True, cancel_futures=True)
        order = {id(item): i for i, item in enumerate(self.items)}
        failures.sort(key=lambda pair: order.get(id(pair[0]), 0))
        return failures

    def _raise(self, failures: list[tuple[_Item, BaseException]], phase: str, done: int) -> None:
        if not failures:
            return
        first = failures[0][1]
        if len(failures) == 1 and isinstance(first, InvalidParameterError):
            raise first
        details = "; ".join(f"{item.plan.file_name}: {_short(exc)}" for item, exc in failures[:5])
        more = f" (and {len(failures) - 5} more)" if len(failures) > 5 else ""
        cls = ConflictError if all(isinstance(e, ConflictError) for _, e in failures) else TransferError
        raise cls(
            f"{len(failures)} of {len(self.items)} outputs failed while {phase} ({done} delivered): {details}{more}",
            service=self.service_label,
            operation="transfer outputs",
            job_id=self.job_id,
        ) from first

    # ------------------------------------------------------------------ phase 1: check

    def _hash_destination(self, item: _Item, expectation: Expectation) -> bool:
        hasher = Hasher.for_expectation(expectation)
        for chunk in self.sink.read_chunks(item.rel):
            hasher.update(chunk)
            if self.sink.remote:
                item.worker_bytes += len(chunk)
        return expectation.match(hasher) is not None

    def _identical(self, item: _Item, existing: Existing) -> Checksum | str | None:
        """What proves the destination identical (a checksum, or a reason), or None."""
        source = item.source
        if source.size is not None and existing.size != source.size:
            return None
        expectation = source.expectation
        if self.sink.keeps_metadata:
            if existing.metadata.get(META_SOURCE) == text_digest(source.identity) and source.size is not None:
                noted = existing.metadata.get(META_CHECKSUM)
                return Checksum.parse(noted) if noted else "size and source metadata"
            if source.etag_is_md5 and existing.etag_is_md5 and existing.etag == source.etag:
                return Checksum("md5", _etag(source.etag))
            if expectation is not None:
                for option in expectation.options:
                    if _stored(existing, option) == option.value:
                        return option
        if expectation is not None:
            return expectation.options[0] if self._hash_destination(item, expectation) else None
        previous = self.previous.get(item.uri)
        if previous and previous.get("source_identity") == source.identity and previous.get("checksum"):
            try:
                recorded = Checksum.parse(str(previous["checksum"]))
            except ValueError:
                recorded = None
            if (
                recorded is not None
                and not recorded.parts
                and int(previous.get("bytes", -1)) == existing.size
            ):
                if self.sink.keeps_metadata:
                    if existing.metadata.get(META_SOURCE) == text_digest(source.identity):
                        return recorded
                    return None
                check = Expectation((recorded,), "previous manifest")
                return recorded if self._hash_destination(item, check) else None
        return self._hash_source_against_destination(item, existing)

    def _hash_source_against_destination(self, item: _Item, existing: Existing) -> Checksum | None:
        """No checksum on record: read the source once more and compare (nothing is written)."""
        opened = item.source.open()
        try:
            if opened.size is not None and opened.size != existing.size:
                return None
            hasher = Hasher(["sha256"])
            for _chunk in _counting(opened.chunks, item, hasher, self._cancel):
                pass
        finally:
            opened.close()
        computed = hasher.result("sha256")
        assert computed is not None
        if hasher.size != existing.size:
            return None
        check = Expectation((computed,), "source")
        return computed if self._hash_destination(item, check) else None

    def check(self, item: _Item) -> None:
        existing = self.sink.stat(item.rel)
        if existing is None or self.if_exists == "overwrite":
            return
        source = item.source
        if source.etag is None:
            source.prepare()  # metadata only (an S3 object's HEAD; a document was fetched already)
        if source.size is not None and source.size != existing.size:
            proof: Checksum | str | None = None
        elif existing.etag and source.etag and _etag(existing.etag) == _etag(source.etag):
            # S3 to S3: an equal ETag (and size) means equal content; both come from listings
            proof = "ETag"
        else:
            if not existing.complete:
                existing = self.sink.stat(item.rel, full=True) or existing
            source.prepare()
            proof = self._identical(item, existing)
        if proof is None:
            if self.if_exists == "fail":
                raise ConflictError(
                    f"{item.uri} already exists with different content ({existing.size} bytes)",
                    operation="transfer outputs",
                )
            return
        checksum = str(proof) if isinstance(proof, Checksum) else None
        previous = self.previous.get(item.uri) or {}
        if checksum is None and previous.get("source_identity") == source.identity:
            checksum = previous.get("checksum")  # what the delivery that is still there recorded
        item.entry = self._entry(
            item,
            size=existing.size,
            checksum=checksum,
            verified=f"identical: {proof if isinstance(proof, str) else proof.label}",
            status="skipped",
            method="none",
        )

    # ------------------------------------------------------------------ phase 2: deliver

    def _entry(
        self, item: _Item, *, size: int, checksum: str | None, verified: str, status: str, method: str
    ) -> ManifestEntry:
        output = item.plan.output
        return ManifestEntry(
            name=output.name,
            format=output.format,
            file_name=item.plan.file_name,
            media_type=output.media_type,
            source=item.source.display,
            source_kind=item.source.kind,
            destination=item.uri,
            bytes=size,
            checksum=checksum,
            verified=verified,
            status=status,  # type: ignore[arg-type]
            method=method,
            bytes_through_worker=item.worker_bytes,
            source_etag=item.source.etag,
            source_identity=item.source.identity,
        )

    def _copy(self, item: _Item) -> ManifestEntry:
        sink, source = self.sink, item.source
        if source.size is None or source.etag is None:
            source.prepare()
        size = source.size or 0
        single_part = _MD5_HEX.match(_etag(source.etag))
        if size <= sink.copy_limit and single_part and (not source.prepared or source.etag_is_md5):
            # one request: copy the listed version, keep its metadata; the copy's ETag is the MD5 of
            # its content, so equal ETags prove equal bytes
            result = sink.copy(source, item.rel)
            if _etag(result.get("ETag")) == _etag(source.etag):
                checksum = Checksum("md5", _etag(source.etag))
                return self._entry(
                    item,
                    size=size,
                    checksum=str(checksum),
                    verified="size+md5 (the copy's ETag equals the source's), server-side copy",
                    status="written",
                    method="server_side_copy",
                )
            source.prepare()  # not an MD5 ETag after all (e.g. SSE-KMS): check what can be checked
            return self._verify_copy(item, "server_side_copy")
        source.prepare()
        metadata = {**source.metadata, **self._metadata(item)}
        content_type = source.content_type or item.plan.output.media_type
        sink.copy(source, item.rel, content_type=content_type, metadata=metadata)
        return self._verify_copy(item, "server_side_copy" if size <= sink.copy_limit else "multipart_copy")

    def _verify_copy(self, item: _Item, method: str) -> ManifestEntry:
        """Size (always) and any whole-object checksum both sides report; a mismatch removes the copy."""
        source = item.source
        copied = self.sink.stat(item.rel, full=True)
        problem = None
        verified = "size"
        checksum: str | None = None
        if copied is None:
            problem = "the copy is missing after the store accepted it"
        elif copied.size != source.size:
            problem = f"the copy has {copied.size} bytes, the source {source.size}"
        elif method == "server_side_copy" and source.etag_is_md5 and copied.etag_is_md5:
            if _etag(copied.etag) != _etag(source.etag):
                problem = f"the copy's MD5 ETag {copied.etag} differs from the source's {source.etag}"
            else:
                verified = "size+md5 (ETag)"
                checksum = str(Checksum("md5", _etag(source.etag)))
        expectation = source.expectation
        if problem is None and checksum is None and copied is not None and expectation is not None:
            for option in expectation.options:
                stored = _stored(copied, option)
                if stored is None:
                    continue
                if stored != option.value:
                    problem = (
                        f"the copy's {option.algorithm} {stored} differs from the source's {option.value}"
                    )
                else:
                    verified = f"size+{option.algorithm} (Checksum{option.algorithm.upper()})"
                    checksum = str(option)
                break
            if checksum is None and problem is None:
                checksum = str(expectation.options[0])
        if problem is not None:
            if copied is not None:
                self.sink.delete(item.rel)
            raise VerificationError(
                f"{item.uri}: {problem}; the copy was removed", operation="transfer outputs"
            )
        assert copied is not None
        return self._entry(
            item,
            size=copied.size,
            checksum=checksum,
            verified=f"{verified}, server-side copy of ETag {source.etag}",
            status="written",
            method=method,
        )

    def _stream(self, item: _Item) -> ManifestEntry:
        source = item.source
        opened = source.open()
        expectation = opened.expectation
        hasher = Hasher.for_expectation(expectation, also=() if expectation is not None else ("sha256",))
        size_hint = opened.size if opened.size is not None else source.size
        outcome: dict[str, Any] = {}

        def before_commit(written: int) -> None:
            if written != hasher.size:
                raise VerificationError(
                    f"{item.uri}: {written} bytes written but {hasher.size} read",
                    operation="transfer outputs",
                )
            expected = opened.size if opened.size is not None else source.size
            if expected is not None and written != expected:
                raise VerificationError(
                    f"{source.display}: {written} bytes received, {expected} expected (the transfer was cut short)",
                    operation="transfer outputs",
                )
            if expectation is not None:
                match = expectation.match(hasher)
                if match is None and expectation.guessed:
                    match = self._reverify(item, expectation, hasher)
                if match is None:
                    got = ", ".join(
                        str(hasher.result(o.algorithm, composite=bool(o.parts))) for o in expectation.options
                    )
                    raise VerificationError(
                        f"{source.display}: checksum mismatch: the source's {expectation.origin} promises "
                        f"{' or '.join(str(o) for o in expectation.options)}, the bytes read give {got}",
                        operation="transfer outputs",
                    )
                outcome["checksum"] = str(match)
                outcome["verified"] = f"size+{match.label} ({expectation.origin})"
            else:
                computed = hasher.result("sha256")
                outcome["checksum"] = str(computed) if computed is not None else None
                outcome["verified"] = (
                    "size" if expected is not None else "length read (no size or checksum offered)"
                )

        try:
            written = self.sink.write(
                item.rel,
                _counting(opened.chunks, item, hasher, self._cancel),
                size_hint=size_hint,
                content_type=source.content_type or item.plan.output.media_type,
                metadata=self._metadata(item),
                before_commit=before_commit,
            )
        finally:
            opened.close()
        return self._entry(
            item,
            size=written,
            checksum=outcome.get("checksum"),
            verified=str(outcome.get("verified")),
            status="written",
            method="document" if source.document else "stream",
        )

    def _reverify(self, item: _Item, guessed: Expectation, hasher: Hasher) -> Checksum | None:
        """A check with an inferred part size failed: if the guess was wrong, read again; both readings must agree."""
        real = item.source.confirm_parts(guessed)
        if real is None:
            return None  # the guess was right: the bytes differ
        again, true = Hasher.for_expectation(guessed), Hasher.for_expectation(real)
        opened = item.source.open()
        try:
            for chunk in _counting(opened.chunks, item, None, self._cancel):
                again.update(chunk)
                true.update(chunk)
        finally:
            opened.close()
        readings = [
            [h.result(o.algorithm, composite=bool(o.parts)) for o in guessed.options] for h in (again, hasher)
        ]
        return real.match(true) if readings[0] == readings[1] else None

    def deliver(self, item: _Item) -> None:
        entry = self._copy(item) if self.sink.can_copy(item.source) else self._stream(item)
        item.entry = entry
        self.log.info(
            "written %s: %d bytes, %s, %s (%d bytes through the worker)",
            entry.destination,
            entry.bytes,
            entry.method,
            entry.verified,
            entry.bytes_through_worker,
        )

    # ------------------------------------------------------------------ run

    def run(self) -> TransferResult:
        self.sink.prepare_folder(self.manifest_rel.rsplit("/", 1)[0])
        previous_bytes = self.sink.read_small(self.manifest_rel, MAX_MANIFEST_BYTES)
        self.previous = read_manifest(previous_bytes)
        # documents come from the service's API through the hook: fetch them on this thread
        for item in self.items:
            if item.source.document:
                item.source.prepare()
        list_sources([item.source for item in self.items])
        failures = self._run(self.check, self.items)
        self._raise(failures, "checking sources and destinations", 0)
        to_write = [item for item in self.items if item.entry is None]
        for item in self.items:
            if item.entry is not None:
                self.log.info("skipped %s: already delivered (%s)", item.uri, item.entry.verified)
        if to_write and previous_bytes is not None:
            # the manifest marks a complete folder; it comes back once this run completes
            self.sink.delete(self.manifest_rel)
        failures = self._run(self.deliver, to_write)
        self._raise(failures, "delivering", sum(1 for item in self.items if item.entry is not None))
        manifest = Manifest(
            service=self.service,
            job_id=self.job_id,
            destination=self.sink.uri(self.manifest_rel.rsplit("/", 1)[0]) + "/",
            manifest=self.sink.uri(self.manifest_rel),
            if_exists=self.if_exists,
            entries=[item.entry for item in self.items if item.entry is not None],
        )
        data = manifest.render()

        def exact(written: int) -> None:
            if written != len(data):
                raise VerificationError(f"manifest: {written} of {len(data)} bytes written")

        self.sink.write(
            self.manifest_rel,
            [data],
            size_hint=len(data),
            content_type="application/json",
            metadata={},
            before_commit=exact,
        )
        lineage = LineageRecord()
        for item in self.items:
            assert item.entry is not None
            lineage.add(item.source.lineage, self.sink.lineage(item.rel), item.entry.bytes)
        lineage.outputs.append((*self.sink.lineage(self.manifest_rel), len(data)))
        return TransferResult(
            manifest=manifest.to_json(),
            lineage=lineage,
            written=[i.uri for i in self.items if i.entry is not None and i.entry.status == "written"],
            skipped=[i.uri for i in self.items if i.entry is not None and i.entry.status == "skipped"],
        )


def deliver_outputs(
    *,
    service: str,
    job_id: str,
    sink: Sink,
    planned: Sequence[tuple[PlannedOutput, Source]],
    manifest_rel: str,
    if_exists: str = "skip_identical",
    max_concurrency: int = 4,
    logger: logging.Logger | Any = None,
    service_label: str | None = None,
) -> TransferResult:
    """Deliver every planned output to ``sink`` and write the manifest; see the module docstring."""
    if if_exists not in IF_EXISTS:
        raise InvalidParameterError(
            f"if_exists must be one of {', '.join(IF_EXISTS)}, got {if_exists!r}",
            operation="transfer outputs",
        )
    items = [_Item(plan, source, plan.relative_key, sink.uri(plan.relative_key)) for plan, source in planned]
    return _Delivery(
        service=service,
        service_label=service_label or service,
        job_id=job_id,
        sink=sink,
        items=items,
        manifest_rel=manifest_rel,
        if_exists=if_exists,
        max_concurrency=max_concurrency,
        logger=logger or log,
    ).run()
