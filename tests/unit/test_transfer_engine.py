"""The delivery engine with in-memory sources and a local folder: atomic, verified, idempotent."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_jobstatus.exceptions import InvalidParameterError
from airflow_jobstatus.models import DownloadLink, JobOutput
from airflow_jobstatus.transfer import TransferError, deliver_outputs, plan_outputs
from airflow_jobstatus.transfer.checksums import Checksum, Expectation
from airflow_jobstatus.transfer.engine import ConflictError, VerificationError
from airflow_jobstatus.transfer.sinks import (
    STALE_TEMP_SECONDS,
    TEMP_SUFFIX,
    FsspecSink,
    LocalSink,
    parse_destination,
)
from airflow_jobstatus.transfer.sources import Opened, Source, SourceError

pytestmark = pytest.mark.unit

JOB = "job-1"


class Dropped(ConnectionError):
    pass


class FakeSource(Source):
    """A link-like source: bytes in chunks, optionally cut short or dropped mid-stream."""

    def __init__(
        self,
        name: str,
        data: bytes,
        *,
        fmt: str = "txt",
        drop_after: int | None = None,
        announce: int | None = None,
        promise: Expectation | None = None,
    ) -> None:
        output = JobOutput(name=name, format=fmt, location=DownloadLink())
        super().__init__(
            output=output,
            kind="link",
            display=f"https://files.example/{name}",
            lineage=("https://files.example", f"/{name}"),
        )
        self.data = data
        self.drop_after = drop_after
        self.announce = len(data) if announce is None else announce
        self.promise = promise
        self.opened = 0

    @property
    def identity(self) -> str:
        return f"link:{JOB}:{self.output.name}.{self.output.format}"

    def open(self) -> Opened:
        self.opened += 1

        def chunks() -> Iterator[bytes]:
            for i in range(0, len(self.data), 1000):
                if self.drop_after is not None and i >= self.drop_after:
                    raise Dropped("connection reset by peer")
                yield self.data[i : i + 1000]

        return Opened(chunks(), self.announce, self.promise)


def run(root: Path | Any, sources: list[FakeSource], **kwargs: Any) -> dict[str, Any]:
    planned, manifest_rel = plan_outputs("daily", JOB, [s.output for s in sources])
    sink = root if not isinstance(root, Path) else LocalSink(root)
    result = deliver_outputs(
        service="daily",
        job_id=JOB,
        sink=sink,
        planned=list(zip(planned, sources, strict=True)),
        manifest_rel=manifest_rel,
        **kwargs,
    )
    return result.manifest


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def sources() -> list[FakeSource]:
    return [
        FakeSource("transcript", os.urandom(5000)),
        FakeSource("transcript", b"WEBVTT\n" * 300, fmt="vtt"),
        FakeSource("summary", "Zusammenfassung: ok — übersicht\n".encode() * 100),
    ]


def test_delivers_byte_identical_with_manifest_then_rerun_skips(tmp_path: Path) -> None:
    srcs = sources()
    manifest = run(tmp_path, srcs, max_concurrency=2)
    folder = tmp_path / "daily" / JOB
    got = files(tmp_path)
    assert got == {
        f"daily/{JOB}/transcript.txt": srcs[0].data,
        f"daily/{JOB}/transcript.vtt": srcs[1].data,
        f"daily/{JOB}/summary.txt": srcs[2].data,
        f"daily/{JOB}/_manifest.json": (folder / "_manifest.json").read_bytes(),
    }
    assert json.loads((folder / "_manifest.json").read_bytes()) == manifest
    assert manifest["summary"] == {
        "outputs": 3,
        "written": 3,
        "skipped": 0,
        "bytes": sum(len(s.data) for s in srcs),
        "bytes_written": sum(len(s.data) for s in srcs),
        "bytes_through_worker": sum(len(s.data) for s in srcs),
    }
    entry = manifest["outputs"][0]
    assert entry["destination"] == (folder / "transcript.txt").as_uri()
    assert entry["checksum"] == f"sha256:{hashlib.sha256(srcs[0].data).hexdigest()}"
    assert entry["status"] == "written" and entry["method"] == "stream" and entry["verified"] == "size"
    assert "?" not in entry["source"]
    mtimes = {p: p.stat().st_mtime_ns for p in folder.iterdir() if p.name != "_manifest.json"}

    again = [FakeSource(s.output.name, s.data, fmt=s.output.format) for s in srcs]
    second = run(tmp_path, again)
    assert [e["status"] for e in second["outputs"]] == ["skipped"] * 3
    assert second["summary"]["bytes_through_worker"] == 0 and all(s.opened == 0 for s in again)
    assert {p: p.stat().st_mtime_ns for p in mtimes} == mtimes
    assert json.loads((folder / "_manifest.json").read_bytes())["summary"]["skipped"] == 3


def test_without_a_manifest_a_link_is_read_again_but_nothing_is_written(tmp_path: Path) -> None:
    srcs = sources()
    run(tmp_path, srcs)
    (tmp_path / "daily" / JOB / "_manifest.json").unlink()
    before = (tmp_path / "daily" / JOB / "summary.txt").stat().st_mtime_ns
    again = [FakeSource(s.output.name, s.data, fmt=s.output.format) for s in srcs]
    manifest = run(tmp_path, again)
    assert [e["status"] for e in manifest["outputs"]] == ["skipped"] * 3
    assert manifest["summary"]["bytes_through_worker"] == sum(len(s.data) for s in srcs)
    assert (tmp_path / "daily" / JOB / "summary.txt").stat().st_mtime_ns == before


def test_a_changed_file_is_rewritten_under_skip_identical(tmp_path: Path) -> None:
    run(tmp_path, sources())
    target = tmp_path / "daily" / JOB / "summary.txt"
    target.write_bytes(b"tampered")
    srcs = sources()
    manifest = run(tmp_path, srcs)
    statuses = {e["file_name"]: e["status"] for e in manifest["outputs"]}
    assert statuses["summary.txt"] == "written" and target.read_bytes() == srcs[2].data


def test_drop_mid_stream_leaves_nothing_under_the_final_name_and_rerun_completes(tmp_path: Path) -> None:
    srcs = sources()
    srcs[0] = FakeSource("transcript", os.urandom(50_000), drop_after=20_000)
    with pytest.raises(TransferError) as info:
        run(tmp_path, srcs, max_concurrency=3)
    assert "transcript.txt" in str(info.value) and "1 of 3 outputs failed" in str(info.value)
    cause = info.value.__cause__
    assert isinstance(cause, SourceError) and isinstance(cause.__cause__, Dropped)
    assert "https://files.example/transcript failed after 20000 bytes: Dropped" in str(info.value)
    left = files(tmp_path)
    assert f"daily/{JOB}/transcript.txt" not in left and f"daily/{JOB}/_manifest.json" not in left
    assert set(left) == {f"daily/{JOB}/transcript.vtt", f"daily/{JOB}/summary.txt"}  # others delivered
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(TEMP_SUFFIX)]

    fixed = [FakeSource(s.output.name, s.data, fmt=s.output.format) for s in srcs]
    manifest = run(tmp_path, fixed)
    assert {e["file_name"]: e["status"] for e in manifest["outputs"]} == {
        "transcript.txt": "written",
        "transcript.vtt": "skipped",
        "summary.txt": "skipped",
    }
    assert (tmp_path / "daily" / JOB / "transcript.txt").read_bytes() == srcs[0].data


def test_short_body_and_checksum_mismatch_are_refused_and_keep_the_old_file(tmp_path: Path) -> None:
    old = b"the previous, good delivery\n"
    target = tmp_path / "daily" / JOB / "transcript.txt"
    target.parent.mkdir(parents=True)
    target.write_bytes(old)
    data = os.urandom(4000)
    short = FakeSource("transcript", data[:3000], announce=4000)  # the server closed early
    with pytest.raises(TransferError) as info:
        run(tmp_path, [short], if_exists="overwrite")
    assert isinstance(info.value.__cause__, VerificationError) and "cut short" in str(info.value)
    assert target.read_bytes() == old

    wrong = Expectation(
        (Checksum("sha256", hashlib.sha256(b"something else").hexdigest()),), "x-amz-checksum"
    )
    corrupt = FakeSource("transcript", data, promise=wrong)
    with pytest.raises(TransferError, match="checksum mismatch"):
        run(tmp_path, [corrupt], if_exists="overwrite")
    assert target.read_bytes() == old
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(TEMP_SUFFIX)]

    right = Expectation((Checksum("sha256", hashlib.sha256(data).hexdigest()),), "x-amz-checksum")
    manifest = run(tmp_path, [FakeSource("transcript", data, promise=right)], if_exists="overwrite")
    assert manifest["outputs"][0]["verified"] == "size+sha256 (x-amz-checksum)"
    assert target.read_bytes() == data


def test_if_exists_fail_checks_everything_before_writing(tmp_path: Path) -> None:
    srcs = sources()
    run(tmp_path, srcs[:2])
    (tmp_path / "daily" / JOB / "transcript.vtt").write_bytes(b"someone else's file")
    with pytest.raises(ConflictError) as info:
        run(
            tmp_path, [FakeSource(s.output.name, s.data, fmt=s.output.format) for s in srcs], if_exists="fail"
        )
    assert "already exists with different content" in str(info.value)
    assert not (tmp_path / "daily" / JOB / "summary.txt").exists()  # nothing was written
    # identical outputs are skipped under "fail", so a retry of a finished task succeeds
    (tmp_path / "daily" / JOB / "transcript.vtt").write_bytes(srcs[1].data)
    manifest = run(
        tmp_path, [FakeSource(s.output.name, s.data, fmt=s.output.format) for s in srcs], if_exists="fail"
    )
    assert [e["status"] for e in manifest["outputs"]] == ["skipped", "skipped", "written"]


def test_overwrite_rewrites_identical_outputs(tmp_path: Path) -> None:
    srcs = sources()
    run(tmp_path, srcs)
    manifest = run(
        tmp_path,
        [FakeSource(s.output.name, s.data, fmt=s.output.format) for s in srcs],
        if_exists="overwrite",
    )
    assert [e["status"] for e in manifest["outputs"]] == ["written"] * 3


def test_unknown_policy_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidParameterError, match="if_exists"):
        run(tmp_path, sources(), if_exists="replace")


def test_symlink_out_of_the_destination_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "dest"
    (root / "daily").mkdir(parents=True)
    (root / "daily" / JOB).symlink_to(outside, target_is_directory=True)
    with pytest.raises(InvalidParameterError, match="outside the destination"):
        run(root, sources())
    assert list(outside.iterdir()) == []


def test_stale_temporaries_are_removed_fresh_ones_kept(tmp_path: Path) -> None:
    folder = tmp_path / "daily" / JOB
    folder.mkdir(parents=True)
    stale = folder / f".summary.txt.{'a' * 12}{TEMP_SUFFIX}"
    fresh = folder / f".summary.txt.{'b' * 12}{TEMP_SUFFIX}"
    other = folder / "notes.part"
    for p in (stale, fresh, other):
        p.write_bytes(b"x")
    old = os.path.getmtime(stale) - STALE_TEMP_SECONDS - 10
    os.utime(stale, (old, old))
    run(tmp_path, sources())
    assert not stale.exists() and fresh.exists() and other.exists()


def test_other_object_stores_through_fsspec(tmp_path: Path) -> None:
    import fsspec
    from airflow.sdk import ObjectStoragePath
    from airflow.sdk.io import attach

    attach("memory", fs=fsspec.filesystem("memory"))  # no provider registers memory://
    root = ObjectStoragePath(f"memory://jobstatus-unit-{os.getpid()}/deliveries")
    sink = FsspecSink(root)
    srcs = sources()
    manifest = run(sink, srcs)
    fs = root.fs
    base = f"/jobstatus-unit-{os.getpid()}/deliveries/daily/{JOB}"
    assert fs.cat_file(f"{base}/transcript.txt") == srcs[0].data
    assert (
        manifest["outputs"][0]["destination"]
        == f"memory://jobstatus-unit-{os.getpid()}/deliveries/daily/{JOB}/transcript.txt"
    )
    bad = [FakeSource("soap", os.urandom(9000), fmt="json", drop_after=3000)]
    with pytest.raises(TransferError):
        run(sink, bad)
    assert not fs.exists(f"{base}/soap.json")
    assert not [p for p in fs.ls(base, detail=False) if p.endswith(TEMP_SUFFIX)]


@pytest.mark.parametrize(
    ("given", "conn", "expected"),
    [
        ("s3://bucket/pre/fix/", None, ("s3", "bucket", "pre/fix", None, "s3://bucket/pre/fix")),
        ("s3://my_conn@bucket/x", "other", ("s3", "bucket", "x", "my_conn", "s3://bucket/x")),
        ("s3://bucket", "c", ("s3", "bucket", "", "c", "s3://bucket")),
        ("file:///srv/out/", None, ("file", "", "/srv/out", None, "file:///srv/out")),
        ("/srv/out", None, ("file", "", "/srv/out", None, "file:///srv/out")),
        ("gs://b/k", "g", ("gs", "b", "k", "g", "gs://b/k")),
    ],
)
def test_parse_destination(given: str, conn: str | None, expected: tuple[Any, ...]) -> None:
    d = parse_destination(given, conn)
    assert (d.scheme, d.bucket, d.prefix, d.conn_id, d.uri) == expected


@pytest.mark.parametrize("bad", ["relative/folder", "s3://bucket/../x", "/srv/../etc", "", "s3:///key"])
def test_parse_destination_refuses(bad: str) -> None:
    with pytest.raises(InvalidParameterError):
        parse_destination(bad)


class Stopping(BaseException):
    """What Airflow's SIGTERM handler raises in the task's main thread."""


def test_a_stopping_task_abandons_streams_and_cleans_up(tmp_path: Path) -> None:
    import signal
    import threading
    import time

    def on_signal(signum: int, frame: Any) -> None:
        raise Stopping()

    previous = signal.signal(signal.SIGUSR1, on_signal)

    class Slow(FakeSource):
        def open(self) -> Opened:
            def chunks() -> Iterator[bytes]:
                for i in range(200):
                    if i == 1:
                        os.kill(os.getpid(), signal.SIGUSR1)
                    time.sleep(0.01)
                    yield b"x" * 1000

            return Opened(chunks(), 200_000, None)

    slow = Slow("transcript", b"")
    try:
        with pytest.raises(Stopping):
            run(tmp_path, [slow, FakeSource("summary", b"ok\n")], max_concurrency=2)
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert not (tmp_path / "daily" / JOB / "transcript.txt").exists()
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(TEMP_SUFFIX)]
    assert not [t for t in threading.enumerate() if t.name.startswith("jobstatus-xfer")]


class CopyingSink(LocalSink):
    """A sink that says it can copy some sources itself: the engine asks it, never tests its type."""

    copy_limit = 1 << 30

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.copied: list[str] = []

    def can_copy(self, source: Source) -> bool:
        return source.output.format == "vtt"

    def copy(self, source: Source, rel: str, **_: Any) -> dict[str, Any]:
        assert isinstance(source, FakeSource)
        self.copied.append(rel)
        self.path(rel).parent.mkdir(parents=True, exist_ok=True)
        self.path(rel).write_bytes(source.data)
        return {"ETag": f'"{hashlib.md5(source.data).hexdigest()}"'}


def test_a_sink_that_can_copy_a_source_copies_it_and_the_rest_stream(tmp_path: Path) -> None:
    srcs = sources()
    srcs[1].etag = f'"{hashlib.md5(srcs[1].data).hexdigest()}"'
    srcs[1].size = len(srcs[1].data)
    sink = CopyingSink(tmp_path)
    manifest = run(sink, srcs)
    assert sink.copied == [f"daily/{JOB}/transcript.vtt"] and srcs[1].opened == 0
    methods = {e["file_name"]: e["method"] for e in manifest["outputs"]}
    assert methods == {
        "transcript.txt": "stream",
        "transcript.vtt": "server_side_copy",
        "summary.txt": "stream",
    }
    assert manifest["outputs"][1]["verified"].startswith("size+md5")
    assert manifest["summary"]["bytes_through_worker"] == len(srcs[0].data) + len(srcs[2].data)
    assert (tmp_path / "daily" / JOB / "transcript.vtt").read_bytes() == srcs[1].data


def test_the_engine_asks_sinks_and_sources_what_they_can_do() -> None:
    import inspect

    from airflow_jobstatus.transfer import engine

    text = inspect.getsource(engine)
    for needle in (
        "S3Sink",
        "S3Source",
        "LocalSink",
        "FsspecSink",
        "isinstance(self.sink",
        "isinstance(source",
    ):
        assert needle not in text, needle


def test_bytes_that_fail_a_check_with_an_inferred_part_size_are_refused(tmp_path: Path) -> None:
    """The store confirms the inferred part size (the default `confirm_parts`): the bytes differ."""
    data = os.urandom(3000)
    promised = hashlib.md5(b"".join(hashlib.md5(data[i : i + 1024]).digest() for i in (0, 1024, 2048)))
    guess = Expectation((Checksum("md5", promised.hexdigest(), 3),), "ETag", 1024, guessed=True)
    good = FakeSource("ok", data, promise=guess)
    bad = FakeSource("bad", data[:-1] + bytes([data[-1] ^ 0xFF]), promise=guess)
    with pytest.raises(TransferError, match="bad.txt: .*checksum mismatch") as err:
        run(tmp_path, [good, bad])
    assert "ok.txt" not in str(err.value)
    assert (tmp_path / "daily" / JOB / "ok.txt").read_bytes() == data
    assert not (tmp_path / "daily" / JOB / "bad.txt").exists() and bad.opened == 1
