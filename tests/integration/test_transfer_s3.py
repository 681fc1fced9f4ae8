"""The transfer machinery against the S3 server: multipart objects, copies and uploads, verified, atomic."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tracemalloc
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from boto3.s3.transfer import TransferConfig

from airflow_jobstatus.models import JobOutput, S3Object
from airflow_jobstatus.testing.s3 import S3Server
from airflow_jobstatus.transfer import TransferError, deliver_outputs, plan_outputs
from airflow_jobstatus.transfer.engine import VerificationError
from airflow_jobstatus.transfer.s3 import S3Access
from airflow_jobstatus.transfer.sinks import TEMP_SUFFIX, LocalSink, S3Sink, delivery_owner
from airflow_jobstatus.transfer.sources import Opened, S3Source, Source, SourceError

pytestmark = pytest.mark.integration

MIB = 1024 * 1024
PART = 5 * MIB


@pytest.fixture
def s3_env(jobstatus_s3: S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, Any]:
    """A source bucket with a 12 MiB multipart object and a small one; two connections to the server."""
    conns = {}
    for name, endpoint in (
        ("same", jobstatus_s3.endpoint_url),
        ("other", jobstatus_s3.endpoint_url.replace("127.0.0.1", "localhost")),  # another endpoint, same data
    ):
        conn_id = f"t_s3_{name}_{uuid.uuid4().hex[:6]}"
        extra = {"endpoint_url": endpoint, "region_name": "us-east-1"}
        conn = {"conn_type": "aws", "login": "testing", "password": "testing", "extra": extra}
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))
        conns[name] = conn_id
    client = jobstatus_s3.client()
    source = jobstatus_s3.create_bucket(f"xfer-src-{uuid.uuid4().hex[:8]}")
    dest = jobstatus_s3.create_bucket(f"xfer-dst-{uuid.uuid4().hex[:8]}")
    big = os.urandom(12 * MIB + 12345)
    path = tmp_path / "big.bin"
    path.write_bytes(big)
    client.upload_file(
        str(path),
        source,
        "out/big",
        Config=TransferConfig(multipart_threshold=PART, multipart_chunksize=PART),
    )
    small = b'{"note": "S: sore throat"}\n'
    client.put_object(Bucket=source, Key="out/soap", Body=small)
    return {"conns": conns, "source": source, "dest": dest, "big": big, "small": small, "client": client}


def run(env: dict[str, Any], sink: Any, *, source_conn: str = "same", **kwargs: Any) -> dict[str, Any]:
    access = S3Access(env["conns"][source_conn])
    outputs = [
        JobOutput(name="recording", format="bin", location=S3Object(bucket=env["source"], key="out/big")),
        JobOutput(name="soap", format="json", location=S3Object(bucket=env["source"], key="out/soap")),
    ]
    sources = [S3Source(o, o.location, access) for o in outputs]  # type: ignore[arg-type]
    return deliver("wasabi_air", "job-9", sink, outputs, sources, **kwargs)


def deliver(
    service: str, job_id: str, sink: Any, outputs: list[Any], sources: list[Any], **kwargs: Any
) -> Any:
    """Plan ``outputs``' names, deliver them from ``sources`` into ``sink``; the manifest."""
    planned, manifest_rel = plan_outputs(service, job_id, outputs)
    return deliver_outputs(
        service=service,
        job_id=job_id,
        sink=sink,
        planned=list(zip(planned, sources, strict=True)),
        manifest_rel=manifest_rel,
        **kwargs,
    ).manifest


def bucket_sink(env: dict[str, Any], conn: str = "same", **options: Any) -> S3Sink:
    return S3Sink(S3Access(env["conns"][conn]), env["dest"], "in", **options)


def read(env: dict[str, Any], key: str) -> bytes:
    return bytes(env["client"].get_object(Bucket=env["dest"], Key=key)["Body"].read())


def test_multipart_object_to_a_folder_is_verified_by_its_composite_checksum(s3_env, tmp_path: Path) -> None:
    manifest = run(s3_env, LocalSink(tmp_path / "out"))
    folder = tmp_path / "out" / "wasabi_air" / "job-9"
    assert (folder / "recording.bin").read_bytes() == s3_env["big"]
    assert (folder / "soap.json").read_bytes() == s3_env["small"]
    big, small = manifest["outputs"]
    assert big["verified"].startswith("size+crc32") and big["checksum"].startswith("crc32")
    assert small["verified"] == "size+crc32 (ChecksumCRC32)"
    assert manifest["summary"]["bytes_through_worker"] == len(s3_env["big"]) + len(s3_env["small"])
    again = run(s3_env, LocalSink(tmp_path / "out"))
    assert [e["status"] for e in again["outputs"]] == ["skipped", "skipped"]


def test_same_store_copies_server_side_and_multipart_above_the_copy_limit(s3_env) -> None:
    sink = bucket_sink(s3_env, copy_limit=6 * MIB, copy_part_size=PART)
    manifest = run(s3_env, sink)
    big, small = manifest["outputs"]
    assert big["method"] == "multipart_copy" and small["method"] == "server_side_copy"
    assert small["verified"].startswith("size+md5")
    assert manifest["summary"]["bytes_through_worker"] == 0
    assert read(s3_env, "in/wasabi_air/job-9/recording.bin") == s3_env["big"]
    assert read(s3_env, "in/wasabi_air/job-9/soap.json") == s3_env["small"]
    again = run(s3_env, bucket_sink(s3_env, copy_limit=6 * MIB, copy_part_size=PART))
    assert [e["status"] for e in again["outputs"]] == ["skipped", "skipped"]
    assert again["summary"]["bytes_through_worker"] == 0
    assert not s3_env["client"].list_multipart_uploads(Bucket=s3_env["dest"]).get("Uploads")


def test_another_endpoint_streams_through_a_multipart_upload(s3_env) -> None:
    manifest = run(s3_env, bucket_sink(s3_env, "same", part_size=PART), source_conn="other")
    big, small = manifest["outputs"]
    assert big["method"] == small["method"] == "stream"
    assert read(s3_env, "in/wasabi_air/job-9/recording.bin") == s3_env["big"]
    head = s3_env["client"].head_object(Bucket=s3_env["dest"], Key="in/wasabi_air/job-9/recording.bin")
    assert head["ETag"].endswith('-3"') and head["Metadata"]["jobstatus-source"]
    again = run(s3_env, bucket_sink(s3_env, "same", part_size=PART), source_conn="other")
    assert [e["status"] for e in again["outputs"]] == ["skipped", "skipped"]
    assert again["summary"]["bytes_through_worker"] == 0


def test_a_failed_or_corrupt_upload_leaves_nothing_and_no_pending_upload(s3_env, monkeypatch) -> None:
    original = S3Source.open

    def failing(self: S3Source) -> Opened:
        opened = original(self)
        if self.location.key != "out/big":
            return opened

        def chunks() -> Iterator[bytes]:
            sent = 0
            for chunk in opened.chunks:
                sent += len(chunk)
                if sent > 7 * MIB:
                    raise ConnectionResetError("connection reset by peer")
                yield bytes(chunk)

        return Opened(chunks(), opened.size, opened.expectation, opened.close)

    monkeypatch.setattr(S3Source, "open", failing)
    sink = bucket_sink(s3_env, part_size=PART)
    with pytest.raises(TransferError) as info:
        run(s3_env, sink, source_conn="other")
    assert isinstance(info.value.__cause__, SourceError) and "failed after" in str(info.value)
    client = s3_env["client"]
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=s3_env["dest"]).get("Contents", [])]
    assert keys == ["in/wasabi_air/job-9/soap.json"]  # the other output is delivered, the cut one absent
    assert not client.list_multipart_uploads(Bucket=s3_env["dest"]).get("Uploads")  # aborted

    def corrupt(self: S3Source) -> Opened:
        opened = original(self)

        def chunks() -> Iterator[bytes]:
            for i, chunk in enumerate(opened.chunks):
                data = bytearray(chunk)
                if i == 3:
                    data[100] ^= 0x20
                yield bytes(data)

        return Opened(chunks(), opened.size, opened.expectation, opened.close)

    monkeypatch.setattr(S3Source, "open", corrupt)
    sink = bucket_sink(s3_env, part_size=PART)
    with pytest.raises(TransferError) as info:
        run(s3_env, sink, source_conn="other", if_exists="overwrite")
    assert isinstance(info.value.__cause__, VerificationError) and "checksum mismatch" in str(info.value)
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=s3_env["dest"]).get("Contents", [])]
    assert "in/wasabi_air/job-9/recording.bin" not in keys
    assert not client.list_multipart_uploads(Bucket=s3_env["dest"]).get("Uploads")


def test_a_corrupt_stream_to_a_folder_keeps_the_previous_file(s3_env, monkeypatch, tmp_path: Path) -> None:
    run(s3_env, LocalSink(tmp_path))
    target = tmp_path / "wasabi_air" / "job-9" / "recording.bin"
    original = S3Source.open

    def corrupt(self: S3Source) -> Opened:
        opened = original(self)
        return Opened(
            (bytes(c).replace(b"\x00", b"\x01") for c in opened.chunks), opened.size, opened.expectation
        )

    monkeypatch.setattr(S3Source, "open", corrupt)
    with pytest.raises(TransferError, match="checksum mismatch"):
        run(s3_env, LocalSink(tmp_path), if_exists="overwrite")
    assert target.read_bytes() == s3_env["big"]
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(TEMP_SUFFIX)]


KILLED_TRY = """
import os, sys, time
from airflow_jobstatus.transfer.s3 import S3Access
from airflow_jobstatus.transfer.sinks import TEMP_SUFFIX, S3Sink

conn_id, bucket, rel, owner = sys.argv[1:5]
sink = S3Sink(S3Access(conn_id), bucket, "in", part_size=5 * 1024**2, owner=owner)
sink.prepare_folder(rel.rsplit("/", 1)[0])

def recorded():
    listed = sink.client.list_objects_v2(Bucket=bucket, Prefix="in/")
    return any(o["Key"].endswith(TEMP_SUFFIX) for o in listed.get("Contents", []))

def chunks():
    for i in range(40):
        yield bytes([i]) * (1024**2)
        if i == 12:
            deadline = time.monotonic() + 30
            while not recorded() and time.monotonic() < deadline:
                time.sleep(0.05)
            os._exit(9)  # the worker dies mid-upload: no clean-up runs

sink.write(rel, chunks(), size_hint=None, content_type=None, metadata={}, before_commit=lambda n: None)
"""


def test_a_killed_try_s_upload_is_aborted_by_the_next_try_and_no_one_else_s(s3_env) -> None:
    """The next try of the same task aborts what its killed try left; a concurrent run's live upload survives."""
    client = s3_env["client"]
    key = "in/wasabi_air/job-9/recording.bin"
    this_task = delivery_owner("dag", "deliver", "run-1")
    result = subprocess.run(
        [sys.executable, "-c", KILLED_TRY, s3_env["conns"]["same"], s3_env["dest"], key[3:], this_task],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 9, result.stderr[-2000:]

    def open_uploads() -> set[str]:
        listed = client.list_multipart_uploads(Bucket=s3_env["dest"])
        return {u["UploadId"] for u in listed.get("Uploads", [])}

    left = open_uploads()
    assert len(left) == 1, left
    # another run of the same DAG (another run_id) is uploading the same key right now
    other = S3Sink(
        S3Access(s3_env["conns"]["same"]),
        s3_env["dest"],
        "in",
        owner=delivery_owner("dag", "deliver", "run-2"),
    )
    live = client.create_multipart_upload(Bucket=s3_env["dest"], Key=key)["UploadId"]
    other._track("wasabi_air/job-9/recording.bin", key, live)
    client.upload_part(Bucket=s3_env["dest"], Key=key, UploadId=live, PartNumber=1, Body=b"x" * MIB)
    untracked = client.create_multipart_upload(Bucket=s3_env["dest"], Key=key)["UploadId"]
    elsewhere = client.create_multipart_upload(Bucket=s3_env["dest"], Key="in/other-job/x")["UploadId"]
    assert open_uploads() == left | {live, untracked, elsewhere}

    manifest = run(s3_env, bucket_sink(s3_env, owner=this_task))
    assert [e["status"] for e in manifest["outputs"]] == ["written", "written"]
    assert open_uploads() == {live, untracked, elsewhere}  # only what this task's killed try started
    # the other run's upload is intact: it completes
    done = client.complete_multipart_upload(
        Bucket=s3_env["dest"],
        Key=key,
        UploadId=live,
        MultipartUpload={
            "Parts": [
                {
                    "PartNumber": 1,
                    "ETag": client.list_parts(Bucket=s3_env["dest"], Key=key, UploadId=live)["Parts"][0][
                        "ETag"
                    ],
                }
            ]
        },
    )
    assert done["Key"] == key
    # this task's record is gone; the other run's is still there for its own retries
    names = [
        o["Key"] for o in client.list_objects_v2(Bucket=s3_env["dest"], Prefix="in/").get("Contents", [])
    ]
    assert [n for n in names if n.endswith(TEMP_SUFFIX)] == [
        f"in/wasabi_air/job-9/.recording.bin.{other.owner}{TEMP_SUFFIX}"
    ]


class GeneratedSource(Source):
    """A stream of unknown size (like a download link without Content-Length), generated on the fly."""

    def __init__(self, name: str, size: int) -> None:
        output = JobOutput(name=name, format="bin", location=S3Object(bucket="generated", key=name))
        super().__init__(output=output, kind="link", display=f"generated:{name}", lineage=("gen", name))
        self.total = size

    def open(self) -> Opened:
        block = os.urandom(MIB)

        def chunks() -> Iterator[bytes]:
            sent = 0
            while sent < self.total:
                n = min(MIB, self.total - sent)
                yield block[:n]
                sent += n

        return Opened(chunks(), None, None)


def deliver_generated(sink: S3Sink, sizes: list[int], **kwargs: Any) -> dict[str, Any]:
    sources = [GeneratedSource(f"stream{i}", size) for i, size in enumerate(sizes)]
    outputs = [s.output for s in sources]
    return deliver("daily", "job-u", sink, outputs, sources, max_concurrency=len(sizes), **kwargs)


def test_a_stream_of_unknown_size_fits_its_parts_or_fails_with_the_fix(s3_env) -> None:
    """With the part limit lowered to 10 and 5 MiB parts, 45 MiB of unknown size fits; 60 MiB fails
    cleanly, naming the limit and the fix, with no object and no unfinished upload left."""
    sink = bucket_sink(s3_env, part_size=PART, max_parts=10)
    manifest = deliver_generated(sink, [45 * MIB])
    assert manifest["outputs"][0]["bytes"] == 45 * MIB
    head = s3_env["client"].head_object(Bucket=s3_env["dest"], Key="in/daily/job-u/stream0.bin")
    assert head["ContentLength"] == 45 * MIB and head["ETag"].endswith('-9"')
    with pytest.raises(TransferError, match="limited to 52428800 bytes") as info:
        deliver_generated(
            bucket_sink(s3_env, part_size=PART, max_parts=10), [60 * MIB], if_exists="overwrite"
        )
    assert "part_size" in str(info.value.__cause__)
    again = s3_env["client"].head_object(Bucket=s3_env["dest"], Key="in/daily/job-u/stream0.bin")
    assert again["ETag"] == head["ETag"]  # the object delivered before is still there, untouched
    keys = [o["Key"] for o in s3_env["client"].list_objects_v2(Bucket=s3_env["dest"]).get("Contents", [])]
    assert not [k for k in keys if k.endswith(TEMP_SUFFIX)]
    assert not s3_env["client"].list_multipart_uploads(Bucket=s3_env["dest"]).get("Uploads")


def test_memory_for_s3_uploads_is_bounded_whatever_the_sizes_and_the_outputs(s3_env) -> None:
    """Peak memory (Python allocations) of four streams moving at once stays within the sink's budget
    plus what each stream holds while its next part is cut."""
    budget = 24 * MIB
    sink = bucket_sink(s3_env, part_size=PART, upload_buffer_bytes=budget)
    sizes = [40 * MIB + 123, 40 * MIB, 33 * MIB, 27 * MIB]
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base, _ = tracemalloc.get_traced_memory()
        manifest = deliver_generated(sink, sizes)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sorted(e["bytes"] for e in manifest["outputs"]) == sorted(sizes)
    # the budget (parts queued or uploading), plus per stream: its next part twice while it is joined
    # from chunks, the source's 1 MiB block and a chunk in flight
    bound = budget + len(sizes) * (2 * PART + 2 * MIB)
    assert peak - base <= bound, f"peak {(peak - base) / MIB:.1f} MiB > {bound / MIB:.1f} MiB"


def test_a_wrongly_inferred_part_size_is_confirmed_and_the_source_read_again(s3_env, tmp_path: Path) -> None:
    """Parts of 6,000,000 bytes: 6 MiB is the one whole-MiB size giving 10 parts for 59 MB, and wrong."""
    client, bucket = s3_env["client"], s3_env["source"]
    data = os.urandom(59_000_000)
    upload = client.create_multipart_upload(Bucket=bucket, Key="odd/parts")["UploadId"]
    parts = [
        {
            "PartNumber": n + 1,
            "ETag": client.upload_part(
                Bucket=bucket,
                Key="odd/parts",
                UploadId=upload,
                PartNumber=n + 1,
                Body=data[a : a + 6_000_000],
            )["ETag"],
        }
        for n, a in enumerate(range(0, len(data), 6_000_000))
    ]
    client.complete_multipart_upload(
        Bucket=bucket, Key="odd/parts", UploadId=upload, MultipartUpload={"Parts": parts}
    )
    access = S3Access(s3_env["conns"]["same"])
    output = JobOutput(name="odd", format="bin", location=S3Object(bucket=bucket, key="odd/parts"))
    source = S3Source(output, output.location, access)  # type: ignore[arg-type]
    source.prepare()
    assert source.expectation is not None and source.expectation.guessed
    assert source.expectation.part_size == 6 * MIB
    planned, manifest_rel = plan_outputs("wasabi_air", "job-odd", [output])
    manifest = deliver_outputs(
        service="wasabi_air",
        job_id="job-odd",
        sink=LocalSink(tmp_path / "out"),
        planned=[(planned[0], source)],
        manifest_rel=manifest_rel,
    ).manifest
    assert (tmp_path / "out" / "wasabi_air" / "job-odd" / "odd.bin").read_bytes() == data
    entry = manifest["outputs"][0]
    assert entry["verified"].startswith("size+") and "composite" in entry["verified"], entry
    assert entry["bytes_through_worker"] == 2 * len(data)  # the second reading, with the store's part size
