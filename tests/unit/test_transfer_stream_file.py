"""The file object boto3's managed upload reads: exact reads, the end of the stream verified before the commit."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from airflow_jobstatus.transfer.sinks import MIB, SinkError, _StreamFile


def reused(data: bytes, size: int) -> Iterator[memoryview]:
    """Chunks in one buffer the next chunk overwrites, like `S3Source`'s."""
    buffer = bytearray(size)
    for start in range(0, len(data), size):
        piece = data[start : start + size]
        buffer[: len(piece)] = piece
        yield memoryview(buffer)[: len(piece)]


def test_reads_are_cut_exactly_and_copied_out_of_a_reused_buffer() -> None:
    data = bytes(range(256)) * 4096 * 3  # 3 MiB
    ends: list[int] = []
    stream = _StreamFile(reused(data, MIB), ends.append, parts=None, uri="s3://b/k")
    first, second = stream.read(MIB + 500), stream.read(MIB + 500)
    assert first == data[: MIB + 500] and second == data[MIB + 500 : 2 * MIB + 1000]
    assert ends == [] and not stream.ended
    assert stream.read(2 * MIB) == data[2 * MIB + 1000 :]  # the short read is the last one
    assert ends == [len(data)] and stream.ended
    assert stream.read(MIB) == b"" and ends == [len(data)]  # before_commit is called once


def test_the_end_is_verified_before_the_read_that_reveals_it_returns() -> None:
    def refuse(written: int) -> None:
        raise ValueError(f"checksum mismatch after {written} bytes")

    stream = _StreamFile([b"x" * 1000, b"y" * 1000], refuse, parts=None, uri="s3://b/k")
    assert stream.read(1500) == b"x" * 1000 + b"y" * 500
    with pytest.raises(ValueError, match="after 2000 bytes"):
        stream.read(1500)  # boto3 never gets the last bytes, so it cannot complete the upload


def test_a_stream_of_unknown_size_beyond_its_parts_fails_with_the_fix() -> None:
    stream = _StreamFile([b"z" * 100] * 5, lambda n: None, parts=(5, 50), uri="s3://b/k")
    assert len(stream.read(200)) == 200
    with pytest.raises(SinkError, match="limited to 250 bytes \\(5 parts of 50 bytes\\)") as info:
        stream.read(200)
    assert "part_size" in str(info.value)


def test_a_stopped_upload_reads_nothing_more() -> None:
    read: list[int] = []

    def chunks() -> Iterator[bytes]:
        for i in range(10):
            read.append(i)
            yield b"c" * 10

    stream = _StreamFile(chunks(), lambda n: None, parts=None, uri="s3://b/k")
    stream.read(10)
    stream.stopped = True
    with pytest.raises(SinkError, match="stopped"):
        stream.read(10)
    assert read == [0]


def test_the_owner_of_uploads_is_the_task_instance_whatever_the_try() -> None:
    from airflow_jobstatus.transfer.sinks import delivery_owner

    owner = delivery_owner("dag", "deliver", "manual__1", -1)
    assert owner == delivery_owner("dag", "deliver", "manual__1", None)  # every try, mapped or not
    others = {
        delivery_owner("dag", "deliver", "manual__2", -1),  # another run
        delivery_owner("dag", "deliver", "manual__1", 0),  # another mapped instance
        delivery_owner("dag", "deliver_b", "manual__1", -1),  # another task
        delivery_owner("dag2", "deliver", "manual__1", -1),  # another DAG
    }
    assert owner not in others and len(others) == 4
