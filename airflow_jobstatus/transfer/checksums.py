"""Checksums computed while bytes stream, and the checksum a source promises.

A source offers at most a few checksums (S3: ``ChecksumCRC32``/``ChecksumSHA256``/... and the
ETag; an HTTP link: ``x-amz-checksum-*`` headers or an S3 ETag). `plan_expectation` picks the one
that is cheapest to recompute (CRC32 at several GB/s before SHA-1/SHA-256, MD5 last) and says how
to recompute it; `Hasher` recomputes it over the bytes as they pass, so nothing is read twice.

Values are kept as lower-case hex. A multipart object's checksum is *composite*: the algorithm
applied to the concatenated per-part digests, suffixed ``-<parts>`` (the S3 multipart ETag is the
composite MD5). Recomputing one needs the part size, which the caller looks up once.

Nothing here imports Airflow or boto3.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

__all__ = [
    "Checksum",
    "Expectation",
    "Hasher",
    "plan_expectation",
    "s3_value_to_hex",
    "text_digest",
]

# CRC32C and CRC64NVME need native libraries not installed with Airflow: a source offering only
# those is verified by its ETag or by size.
_HEX = re.compile(r"^[0-9a-f]+$")
_DIGEST_HEX_LEN = {"crc32": 8, "sha1": 40, "sha256": 64, "md5": 32}


@dataclass(frozen=True)
class Checksum:
    """``algorithm`` over the whole object, or composite (``parts`` > 0) over its parts."""

    algorithm: str
    value: str
    parts: int = 0

    def __post_init__(self) -> None:
        if self.algorithm not in _DIGEST_HEX_LEN:
            raise ValueError(f"unknown checksum algorithm {self.algorithm!r}")
        if len(self.value) != _DIGEST_HEX_LEN[self.algorithm] or not _HEX.match(self.value):
            raise ValueError(f"not a {self.algorithm} hex digest: {self.value!r}")

    @property
    def label(self) -> str:
        """``crc32``, or ``crc32-composite`` for a multipart object's composite checksum."""
        return f"{self.algorithm}-composite" if self.parts else self.algorithm

    def __str__(self) -> str:
        suffix = f"-{self.parts}" if self.parts else ""
        return f"{self.label}:{self.value}{suffix}"

    @classmethod
    def parse(cls, text: str) -> Checksum:
        """The inverse of ``str()``: ``sha256:<hex>`` or ``crc32-composite:<hex>-<parts>``."""
        label, sep, rest = text.partition(":")
        if not sep:
            raise ValueError(f"not a checksum: {text!r}")
        algorithm, composite, _ = label.partition("-composite")
        parts = 0
        if composite:
            rest, _, count = rest.rpartition("-")
            parts = int(count)
        return cls(algorithm, rest, parts)


@dataclass(frozen=True)
class Expectation:
    """What the bytes of a source must hash to.

    ``options`` are alternative readings of the same promise: any one matching is success. There
    is more than one only when a store does not say whether a multipart object's CRC covers the
    whole object or is composite (moto, older S3-compatible stores): both are computed, and the
    one the store meant matches.
    """

    options: tuple[Checksum, ...]
    origin: str
    """Where the promise comes from, for the manifest and errors (e.g. ``ChecksumCRC32``, ``ETag``)."""
    part_size: int | None = None
    guessed: bool = False
    """``part_size`` was inferred, not read from the store: a mismatch may be a wrong guess (`Source.confirm_parts`)."""

    def __post_init__(self) -> None:
        if not self.options:
            raise ValueError("an expectation needs at least one checksum")
        if any(o.parts for o in self.options) and not self.part_size:
            raise ValueError("a composite checksum needs the part size")

    @property
    def algorithms(self) -> set[tuple[str, bool]]:
        return {(o.algorithm, bool(o.parts)) for o in self.options}

    def match(self, hasher: Hasher) -> Checksum | None:
        """The option the hasher's result equals, or None."""
        for option in self.options:
            if hasher.result(option.algorithm, composite=bool(option.parts)) == option:
                return option
        return None


def _new(algorithm: str) -> Any:
    if algorithm == "crc32":
        return _Crc32()
    return hashlib.new(algorithm)


class _Crc32:
    """``zlib.crc32`` behind the hashlib interface (zlib releases the GIL on large buffers)."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0

    def update(self, data: bytes | memoryview) -> None:
        self.value = zlib.crc32(data, self.value)

    def digest(self) -> bytes:
        return self.value.to_bytes(4, "big")

    def hexdigest(self) -> str:
        return f"{self.value:08x}"


def _apply(matrix: tuple[int, ...], vector: int) -> int:
    """A 32x32 matrix over GF(2) (its columns) times a 32-bit vector."""
    out = 0
    column = 0
    while vector:
        if vector & 1:
            out ^= matrix[column]
        vector >>= 1
        column += 1
    return out


@lru_cache(maxsize=8)
def _crc32_shift(length: int) -> tuple[int, ...]:
    """The linear map that moves a CRC-32 past ``length`` zero bytes (zlib's ``crc32_combine`` operator).

    One byte's map is read off zlib itself (``crc32(b"\0", c) ^ crc32(b"\0", 0)`` is linear in
    ``c``); ``length`` bytes' is its power, by repeated squaring (a few ms, cached per length).
    """
    base = tuple(zlib.crc32(b"\0", 1 << i) ^ zlib.crc32(b"\0", 0) for i in range(32))
    result = tuple(1 << i for i in range(32))
    while length:
        if length & 1:
            result = tuple(_apply(base, column) for column in result)
        base = tuple(_apply(base, column) for column in base)
        length >>= 1
    return result


def crc32_combine(crc1: int, crc2: int, length2: int) -> int:
    """The CRC-32 of ``a + b`` from ``crc32(a)``, ``crc32(b)`` and ``len(b)``, without the bytes."""
    return _apply(_crc32_shift(length2), crc1) ^ crc2


@dataclass
class _Composite:
    algorithm: str
    part_size: int
    part: Any = None
    in_part: int = 0
    digests: list[bytes] = field(default_factory=list)

    def update(self, data: memoryview) -> None:
        offset = 0
        size = len(data)
        while offset < size:
            if self.part is None:
                self.part = _new(self.algorithm)
                self.in_part = 0
            take = min(size - offset, self.part_size - self.in_part)
            self.part.update(data[offset : offset + take])
            self.in_part += take
            offset += take
            if self.in_part == self.part_size:
                self.digests.append(self.part.digest())
                self.part = None

    def whole_crc32(self) -> Checksum:
        """The whole object's CRC-32, combined from the parts' (so the bytes are hashed once for both)."""
        value = 0
        for digest in self.digests:
            value = crc32_combine(value, int.from_bytes(digest, "big"), self.part_size)
        if self.part is not None:
            value = crc32_combine(value, self.part.value, self.in_part)
        return Checksum("crc32", f"{value:08x}")

    def result(self) -> Checksum:
        digests = list(self.digests)
        if self.part is not None:
            digests.append(self.part.digest())
        outer = _new(self.algorithm)
        outer.update(b"".join(digests))
        return Checksum(self.algorithm, outer.hexdigest(), max(1, len(digests)))


class Hasher:
    """Computes whole-object and composite checksums in one pass over the streamed chunks."""

    def __init__(
        self, algorithms: Iterable[str] = (), *, composite: Iterable[str] = (), part_size: int | None = None
    ) -> None:
        composite = tuple(composite)
        if composite and not part_size:
            raise ValueError("composite checksums need the part size")
        self._composite = {name: _Composite(name, part_size or 0) for name in composite}
        # a whole-object CRC-32 beside a composite one is combined from its parts, not hashed again
        self._whole = {name: _new(name) for name in algorithms if name != "crc32" or name not in composite}
        self.size = 0

    @classmethod
    def for_expectation(cls, expectation: Expectation | None, *, also: Iterable[str] = ()) -> Hasher:
        whole = set(also)
        composite: set[str] = set()
        if expectation is not None:
            for algorithm, is_composite in expectation.algorithms:
                (composite if is_composite else whole).add(algorithm)
        part_size = expectation.part_size if expectation is not None else None
        return cls(sorted(whole), composite=sorted(composite), part_size=part_size)

    def update(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data)
        self.size += len(view)
        for h in self._whole.values():
            h.update(view)
        for c in self._composite.values():
            c.update(view)

    def result(self, algorithm: str, *, composite: bool = False) -> Checksum | None:
        if composite:
            comp = self._composite.get(algorithm)
            return comp.result() if comp is not None else None
        h = self._whole.get(algorithm)
        if h is None and algorithm == "crc32" and "crc32" in self._composite:
            return self._composite["crc32"].whole_crc32()
        return Checksum(algorithm, h.hexdigest()) if h is not None else None


def text_digest(text: str) -> str:
    """32 hex digits of SHA-256: a name for ``text`` that does not reveal it (metadata, record names)."""
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def s3_value_to_hex(value: str) -> tuple[str, int] | None:
    """An S3 checksum header value (base64, maybe ``-<parts>``) as (hex, parts); None if malformed."""
    text, _, count = value.strip().partition("-")
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    parts = int(count) if count.isdigit() else 0
    return raw.hex(), parts


_S3_CHECKSUM_KEYS = {"crc32": "ChecksumCRC32", "sha1": "ChecksumSHA1", "sha256": "ChecksumSHA256"}


def plan_expectation(
    *,
    size: int | None,
    etag: str | None,
    checksums: Mapping[str, str | None],
    checksum_type: str | None = None,
    etag_is_md5: bool = True,
    part_size: Callable[[], int | None] | None = None,
) -> Expectation | None:
    """The cheapest checksum a source offers that can be recomputed from its bytes, or None.

    :param checksums: S3-style values by algorithm (``{"crc32": "HueBQg==", "sha256": ...}``),
        base64 with an optional ``-<parts>`` suffix. Unknown algorithms are ignored.
    :param checksum_type: ``FULL_OBJECT`` or ``COMPOSITE`` when the store says (S3's
        ``ChecksumType``); None when it does not.
    :param etag_is_md5: False when the ETag cannot be an MD5 of the content (SSE-KMS, SSE-C).
    :param part_size: looks up the first part's size of a multipart object (one HEAD with
        ``PartNumber=1``); called at most once, only when a composite checksum is to be checked and
        no single whole number of MiB gives the part count (SDKs cut parts in whole MiB: 8 MiB for
        boto3 and the AWS CLI). The lookup costs a request, and on moto a read of the whole object.
    """
    clean_etag = (etag or "").strip().strip('"').lower()
    etag_hex, _, etag_parts_text = clean_etag.partition("-")
    etag_parts = int(etag_parts_text) if etag_parts_text.isdigit() else 0
    multipart = etag_parts > 0
    looked_up: list[int | None] = []
    guessed: list[bool] = []

    def parts_size(parts: int) -> int | None:
        guess = _whole_mib_part(size, parts)
        if guess is not None:
            guessed.append(True)
            return guess
        if part_size is None:
            return None
        if not looked_up:
            looked_up.append(part_size())
        found = looked_up[0]
        if not found or size is None or parts <= 0:
            return None
        # the parts must tile the object: every part but the last has the first part's size
        if -(-size // found) != parts:
            return None
        return found

    kind = (checksum_type or "").upper()
    for algorithm in ("crc32", "sha1", "sha256"):
        raw = checksums.get(algorithm) or checksums.get(_S3_CHECKSUM_KEYS[algorithm])
        if not raw:
            continue
        parsed = s3_value_to_hex(raw)
        if parsed is None or len(parsed[0]) != _DIGEST_HEX_LEN[algorithm]:
            continue
        value, value_parts = parsed
        origin = _S3_CHECKSUM_KEYS[algorithm]
        if kind == "FULL_OBJECT" or (not multipart and not value_parts and kind != "COMPOSITE"):
            return Expectation((Checksum(algorithm, value),), origin)
        parts = value_parts or etag_parts
        found = parts_size(parts)
        if found is None:
            continue
        composite = Checksum(algorithm, value, parts)
        if kind == "COMPOSITE" or value_parts:
            return Expectation((composite,), origin, found, bool(guessed))
        # a multipart object whose store does not say which kind: accept either reading
        return Expectation((Checksum(algorithm, value), composite), origin, found, bool(guessed))
    if etag_is_md5 and len(etag_hex) == 32 and _HEX.match(etag_hex):
        if not multipart:
            return Expectation((Checksum("md5", etag_hex),), "ETag")
        found = parts_size(etag_parts)
        if found is not None:
            return Expectation((Checksum("md5", etag_hex, etag_parts),), "ETag", found, bool(guessed))
    return None


def _whole_mib_part(size: int | None, parts: int) -> int | None:
    """The part size, when exactly one whole number of MiB cuts ``size`` bytes into ``parts`` parts."""
    mib = 1 << 20
    if size is None or size <= 0 or parts <= 0:
        return None
    if parts == 1:  # one part: any size from the object's up gives the same digest
        return -(-size // mib) * mib
    low = -(-size // (parts * mib))  # parts * p >= size
    high = (size - 1) // ((parts - 1) * mib)  # (parts - 1) * p < size
    return low * mib if low == high else None
