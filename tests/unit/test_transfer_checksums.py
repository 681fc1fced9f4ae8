"""Which checksum a source offers, and recomputing it (whole-object and composite) while streaming."""

from __future__ import annotations

import base64
import hashlib
import os
import zlib

import pytest

from airflow_jobstatus.transfer.checksums import (
    Checksum,
    Expectation,
    Hasher,
    plan_expectation,
    s3_value_to_hex,
)

pytestmark = pytest.mark.unit

DATA = os.urandom(11 * 1024 + 17)
PART = 4 * 1024


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def crc(data: bytes) -> bytes:
    return zlib.crc32(data).to_bytes(4, "big")


def parts(data: bytes) -> list[bytes]:
    return [data[i : i + PART] for i in range(0, len(data), PART)]


def feed(hasher: Hasher, data: bytes, step: int = 1000) -> Hasher:
    for i in range(0, len(data), step):
        hasher.update(memoryview(data)[i : i + step])
    return hasher


def test_checksum_text_round_trips() -> None:
    for c in (Checksum("sha256", "a" * 64), Checksum("crc32", "0badf00d", 3), Checksum("md5", "f" * 32, 12)):
        assert Checksum.parse(str(c)) == c
    assert str(Checksum("crc32", "0badf00d", 3)) == "crc32-composite:0badf00d-3"
    with pytest.raises(ValueError):
        Checksum("crc32", "xyz")


def test_single_part_crc32_is_preferred_over_md5_and_sha256() -> None:
    exp = plan_expectation(
        size=len(DATA),
        etag=f'"{hashlib.md5(DATA).hexdigest()}"',
        checksums={"crc32": b64(crc(DATA)), "sha256": b64(hashlib.sha256(DATA).digest())},
    )
    assert exp is not None and exp.options == (Checksum("crc32", crc(DATA).hex()),)
    assert exp.origin == "ChecksumCRC32"
    assert exp.match(feed(Hasher.for_expectation(exp), DATA)) is not None


def test_md5_etag_is_used_when_nothing_else_is_offered_but_not_under_kms() -> None:
    etag = f'"{hashlib.md5(DATA).hexdigest()}"'
    exp = plan_expectation(size=len(DATA), etag=etag, checksums={})
    assert exp is not None and exp.options[0].algorithm == "md5" and exp.origin == "ETag"
    assert exp.match(feed(Hasher.for_expectation(exp), DATA))
    assert plan_expectation(size=len(DATA), etag=etag, checksums={}, etag_is_md5=False) is None


def test_composite_crc32_and_multipart_etag() -> None:
    chunks = parts(DATA)
    composite_crc = zlib.crc32(b"".join(crc(p) for p in chunks)).to_bytes(4, "big")
    composite_md5 = hashlib.md5(b"".join(hashlib.md5(p).digest() for p in chunks)).hexdigest()
    etag = f'"{composite_md5}-{len(chunks)}"'
    calls: list[int] = []

    def part_size() -> int:
        calls.append(1)
        return PART

    exp = plan_expectation(
        size=len(DATA),
        etag=etag,
        checksums={"crc32": b64(composite_crc) + f"-{len(chunks)}"},
        checksum_type="COMPOSITE",
        part_size=part_size,
    )
    assert exp is not None and exp.options == (Checksum("crc32", composite_crc.hex(), len(chunks)),)
    assert exp.match(feed(Hasher.for_expectation(exp), DATA, step=777))
    assert len(calls) == 1
    # the multipart ETag alone is enough, with the part size
    exp = plan_expectation(size=len(DATA), etag=etag, checksums={}, part_size=lambda: PART)
    assert exp is not None and exp.options == (Checksum("md5", composite_md5, len(chunks)),)
    assert exp.match(feed(Hasher.for_expectation(exp), DATA, step=4096))
    # parts that do not tile the object (unknown part size): no composite check rather than a false alarm
    assert plan_expectation(size=len(DATA), etag=etag, checksums={}, part_size=lambda: PART * 2) is None
    assert plan_expectation(size=len(DATA), etag=etag, checksums={}, part_size=None) is None


def test_multipart_crc_of_unknown_kind_accepts_either_reading() -> None:
    chunks = parts(DATA)
    etag = f'"{"0" * 32}-{len(chunks)}"'
    full = plan_expectation(
        size=len(DATA), etag=etag, checksums={"crc32": b64(crc(DATA))}, part_size=lambda: PART
    )
    assert full is not None and len(full.options) == 2
    assert full.match(feed(Hasher.for_expectation(full), DATA)) == Checksum("crc32", crc(DATA).hex())
    composite = zlib.crc32(b"".join(crc(p) for p in chunks)).to_bytes(4, "big")
    either = plan_expectation(
        size=len(DATA), etag=etag, checksums={"crc32": b64(composite)}, part_size=lambda: PART
    )
    assert either is not None
    assert either.match(feed(Hasher.for_expectation(either), DATA)) == Checksum(
        "crc32", composite.hex(), len(chunks)
    )
    assert full.match(feed(Hasher.for_expectation(full), DATA[:-1] + bytes([DATA[-1] ^ 0xFF]))) is None


def test_full_object_type_wins_even_for_multipart() -> None:
    etag = f'"{"0" * 32}-3"'
    exp = plan_expectation(
        size=len(DATA), etag=etag, checksums={"crc32": b64(crc(DATA))}, checksum_type="FULL_OBJECT"
    )
    assert exp is not None and exp.options == (Checksum("crc32", crc(DATA).hex()),)


def test_nothing_offered_gives_no_expectation() -> None:
    assert plan_expectation(size=1, etag=None, checksums={}) is None
    assert plan_expectation(size=1, etag='"not-hex"', checksums={"crc32": "!!notbase64"}) is None
    assert s3_value_to_hex("AAAAAA==-4") == ("00000000", 4)


def test_a_one_byte_change_is_caught() -> None:
    exp = Expectation((Checksum("sha256", hashlib.sha256(DATA).hexdigest()),), "test")
    changed = bytearray(DATA)
    changed[len(DATA) // 2] ^= 1
    assert exp.match(feed(Hasher.for_expectation(exp), bytes(changed))) is None


def test_empty_object_composite() -> None:
    hasher = Hasher(composite=["crc32"], part_size=PART)
    result = hasher.result("crc32", composite=True)
    assert result is not None and result.parts == 1


def test_a_part_size_of_whole_mib_is_inferred_without_asking_the_store() -> None:
    mib = 1 << 20
    size, count = 64 * mib + 5, 9  # 8 MiB is the one whole-MiB size giving 9 parts
    etag = f'"{"0" * 32}-{count}"'
    asked: list[int] = []
    exp = plan_expectation(size=size, etag=etag, checksums={}, part_size=lambda: asked.append(1) or 8 * mib)
    assert exp is not None and exp.part_size == 8 * mib and exp.guessed and asked == []
    # 20 MiB in 4 parts: 5 or 6 MiB would both do, so the store is asked
    exp = plan_expectation(size=20 * mib, etag=f'"{"0" * 32}-4"', checksums={}, part_size=lambda: 5 * mib)
    assert exp is not None and exp.part_size == 5 * mib and not exp.guessed


@pytest.mark.parametrize("size", [0, 1, PART - 1, PART, PART + 1, 3 * PART, len(DATA)])
def test_the_whole_crc32_beside_a_composite_one_is_combined_from_the_parts(size: int) -> None:
    """Both readings of a multipart CRC-32 come from one pass over the bytes (half the CPU per byte)."""
    data = DATA[:size]
    hasher = feed(Hasher(["crc32"], composite=["crc32"], part_size=PART), data, step=777)
    assert "crc32" not in hasher._whole  # hashed once: per part only
    assert hasher.result("crc32") == Checksum("crc32", crc(data).hex())
    composite = zlib.crc32(b"".join(crc(p) for p in parts(data))).to_bytes(4, "big").hex()
    assert hasher.result("crc32", composite=True) == Checksum("crc32", composite, max(1, len(parts(data))))
