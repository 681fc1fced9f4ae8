"""The provider's own job model, shared by every service.

Each service reports a job in its own words (``finished``, ``completed``, ``Completed``...) and keeps
its outputs in a different place (S3 objects, presigned links, API documents, inline JSON). Hooks
translate a service response into one :class:`JobStatus` so that the trigger, the sensors and the
operators have exactly one thing to understand.

A :class:`JobStatus` travels through Airflow: it is a trigger event payload and an XCom value. It is
therefore JSON-safe (``model_dump(mode="json")`` round-trips through ``model_validate``) and it never
carries a bearer secret: a presigned download URL (:class:`DownloadLink`) is excluded from
serialization and from ``repr``, so the JSON only says "this output is behind a link the hook
resolves".

This module must not import Airflow: it runs in the triggerer's event loop and in unit tests
without Airflow.
"""

import json
import re
from collections.abc import Mapping
from datetime import datetime, timezone
from enum import Enum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, TypeAdapter, field_validator

__all__ = [
    "DEFAULT_MAX_XCOM_BYTES",
    "TERMINAL_STATES",
    "ApiDocument",
    "ApiModel",
    "DownloadLink",
    "InlineDocument",
    "IsoDatetime",
    "JobOutput",
    "JobState",
    "JobStatus",
    "OutputLocation",
    "S3Object",
    "Service",
    "media_type_for",
    "normalize_state",
    "parse_s3_uri",
    "redact_secrets",
    "resolve_json_pointer",
    "xcom_value",
]


class Service(str, Enum):
    """The four job APIs this provider speaks to; the value is the stable name used in payloads."""

    DAILY = "daily"
    WASABI_AIR = "wasabi_air"
    SYMBL = "symbl"
    DEEPAFFECTS = "deepaffects"

    def __str__(self) -> str:
        # ``str, Enum`` members print as ``Service.DAILY`` by default; logs and templates want the value.
        return self.value


class JobState(str, Enum):
    """A job's state in the provider's vocabulary.

    ``UNKNOWN`` is what an undocumented, empty or missing service status maps to. It is neither
    terminal nor a success: a poller keeps waiting (and eventually times out) rather than declare
    success on a word it does not understand.
    """

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"

    def __str__(self) -> str:
        return self.value

    @property
    def is_terminal(self) -> bool:
        """True when the job will not change state again (succeeded, failed or cancelled)."""
        return self in TERMINAL_STATES


#: States after which a job never changes again. ``UNKNOWN`` is deliberately absent.
TERMINAL_STATES: frozenset[JobState] = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED})


def normalize_state(raw: str | None, status_map: Mapping[str, JobState]) -> JobState:
    """Map a service's status word to a :class:`JobState`.

    Exact lookup first (the documented spelling), then a case-insensitive one, because some
    services document the same word in two cases (Symbl writes ``in_progress`` and
    ``IN_PROGRESS``); the fallback is ASCII-only. Anything else (``None``, ``""``, a word the
    documentation does not list, a non-string) is ``UNKNOWN``: never a success, never terminal. No whitespace trimming or other
    guessing happens, so ``" completed"`` is unknown too.
    """
    if not isinstance(raw, str) or not raw:
        return JobState.UNKNOWN
    state = status_map.get(raw)
    if state is not None:
        return state
    if not raw.isascii():
        # Unicode case folding would let look-alikes ("\ufb01nished" folds to "finished") match.
        return JobState.UNKNOWN
    folded = raw.lower()
    for word, mapped in status_map.items():
        if word.lower() == folded:
            return mapped
    return JobState.UNKNOWN


# --------------------------------------------------------------------------------------------------
# Service response models: the base config and shared field types
# --------------------------------------------------------------------------------------------------


class ApiModel(BaseModel):
    """Base for the services' documented request/response bodies.

    - ``extra="allow"``: services add fields without notice; an unknown field is kept (in
      ``model_extra`` and in ``model_dump``) instead of breaking a poll.
    - ``strict=True``: a documented field with the wrong JSON type (a number where the docs show a
      string, a string where they show a number) raises ``pydantic.ValidationError`` instead of being
      coerced silently. Strict pydantic still accepts an int for a float field (DeepAffects sends
      ``"end": 1`` next to ``"end": 2.6``). Date-times use :data:`IsoDatetime`, which accepts ISO
      8601 strings from ``model_validate(response.json())`` as well as from ``model_validate_json``.
    - ``populate_by_name=True``: fields whose API name is a Python keyword (Symbl's ``from``) are
      declared with an alias and can be built by either name.

    Field names are the API's own spelling (``s3Config``, ``Id``, ``request_id``), so a model
    dumps back to the service's JSON shape.
    """

    model_config = ConfigDict(extra="allow", strict=True, populate_by_name=True)


_DATETIME_ADAPTER: TypeAdapter[datetime] = TypeAdapter(datetime)


def _iso_datetime(value: Any) -> Any:
    """Accept a ``datetime`` or an ISO 8601 string; a blank string means "not yet" (``None``)."""
    if value is None or isinstance(value, datetime):
        return value
    if isinstance(value, str):
        if not value.strip():
            return None
        try:
            return _DATETIME_ADAPTER.validate_python(value)
        except ValueError:
            raise ValueError("expected an ISO 8601 date-time string") from None
    raise ValueError(f"expected an ISO 8601 date-time string, got {type(value).__name__}")


#: An optional date-time that the API sends as an ISO 8601 string (e.g. Wasabi's
#: ``"2024-11-13T07:11:51.658Z"``). Strict models would refuse a string from ``model_validate`` on a
#: decoded JSON dict; this type parses it, accepts ``datetime`` instances and ``null``, turns ``""``
#: into ``None`` and still refuses numbers and other types.
IsoDatetime = Annotated[datetime | None, BeforeValidator(_iso_datetime)]


_SECRET_KEY_NAMES = frozenset(
    {
        "accesskey",
        "secretkey",
        "apikey",
        "appsecret",
        "clientsecret",
        "accesstoken",
        "refreshtoken",
        "token",
        "password",
        "secret",
        "authorization",
    }
)
_REDACTED = "***"


def redact_secrets(value: Any) -> Any:
    """Return a copy of a decoded JSON value with credential-like keys' values replaced by ``***``.

    ``JobStatus.raw`` goes to XCom and trigger events, so a service echoing a credential (Wasabi's
    ``Source.SecretKey`` for non-Wasabi sources, for instance) must not ride along. Keys are matched
    case-insensitively, ignoring ``_`` and ``-``; only keys are examined, never values.
    """
    if isinstance(value, Mapping):
        redacted: dict[str, Any] = {}
        for key, item in value.items():
            normalized = str(key).replace("_", "").replace("-", "").casefold()
            redacted[key] = _REDACTED if normalized in _SECRET_KEY_NAMES else redact_secrets(item)
        return redacted
    if isinstance(value, list | tuple):
        return [redact_secrets(item) for item in value]
    return value


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """Split ``s3://bucket/key`` into ``(bucket, key)``, keeping the key verbatim.

    No URL parsing: S3 keys may contain ``?``, ``#``, ``%`` and repeated slashes, and all of them
    belong to the key. Raises ``ValueError`` when the scheme, the bucket or the key is missing.
    """
    scheme, sep, rest = uri.partition("://")
    if not sep or scheme.lower() != "s3":
        raise ValueError(f"not an s3:// URI: {uri!r}")
    bucket, sep, key = rest.partition("/")
    if not bucket or not sep or not key:
        raise ValueError(f"an s3:// URI needs a bucket and a key: {uri!r}")
    return bucket, key


def resolve_json_pointer(document: Any, pointer: str) -> Any:
    """Return the value an RFC 6901 JSON pointer designates in ``document``.

    ``""`` is the whole document; ``~1`` and ``~0`` unescape to ``/`` and ``~``. Raises
    ``LookupError`` (``KeyError``/``IndexError``) when the path does not exist and ``ValueError`` on
    a malformed pointer.
    """
    if pointer == "":
        return document
    if not pointer.startswith("/"):
        raise ValueError(f"a JSON pointer starts with '/': {pointer!r}")
    current = document
    for token in pointer[1:].split("/"):
        token = token.replace("~1", "/").replace("~0", "~")
        if isinstance(current, Mapping):
            if token not in current:
                raise KeyError(f"JSON pointer {pointer!r}: no key {token!r}")
            current = current[token]
        elif isinstance(current, list):
            if not token.isdigit() or (len(token) > 1 and token.startswith("0")):
                raise KeyError(f"JSON pointer {pointer!r}: {token!r} is not an array index")
            index = int(token)
            if index >= len(current):
                raise IndexError(f"JSON pointer {pointer!r}: index {index} out of range")
            current = current[index]
        else:
            raise KeyError(f"JSON pointer {pointer!r}: cannot descend into {type(current).__name__}")
    return current


# --------------------------------------------------------------------------------------------------
# Output locations: where a finished job's output can be read from
# --------------------------------------------------------------------------------------------------

_LOCATION_CONFIG = ConfigDict(frozen=True)


class S3Object(BaseModel):
    """An object in an S3-compatible store (AWS for Daily's customer bucket, Wasabi for AiR).

    ``key`` is kept exactly as the service reported it, even when it looks odd (Daily's example keys
    start with the bucket name); rewriting it would point at a different object.
    ``endpoint_url`` is set only when the service or the hook knows a non-AWS endpoint.
    """

    model_config = _LOCATION_CONFIG

    kind: Literal["s3"] = "s3"
    bucket: str = Field(min_length=1)
    key: str = Field(min_length=1)
    region: str | None = None
    endpoint_url: str | None = None

    @property
    def uri(self) -> str:
        """``s3://bucket/key``."""
        return f"s3://{self.bucket}/{self.key}"


class DownloadLink(BaseModel):
    """An output read through a presigned HTTPS link (Daily's own storage).

    The URL is a bearer credential: anyone holding it can download the output until it expires.
    It is therefore excluded from ``model_dump``/``model_dump_json`` and from ``repr``; a
    :class:`JobStatus` that went through XCom or a trigger event only says "behind a link", and the
    hook resolves a fresh link when it reads the output (for Daily: the access-link endpoint).

    ``s3`` is where the service says the object itself is (Daily's ``s3Config``), when it says so:
    the link is one way to read it, the object another (with S3 credentials for that bucket).
    """

    model_config = _LOCATION_CONFIG

    kind: Literal["link"] = "link"
    url: str | None = Field(default=None, exclude=True, repr=False)
    expires_at: datetime | None = None
    s3: S3Object | None = None


_ABSOLUTE_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


class ApiDocument(BaseModel):
    """A document the service's own API serves, e.g. Symbl's ``/v1/conversations/{id}/messages``.

    ``path`` is relative to the connection's base URL and must start with a single ``/``; an
    absolute or scheme-relative URL is refused so that a JobStatus read back from XCom can never
    send the connection's credentials to another host. Query parameters go in ``params``.
    """

    model_config = _LOCATION_CONFIG

    kind: Literal["api"] = "api"
    path: str
    params: dict[str, str] = Field(default_factory=dict)

    @field_validator("path")
    @classmethod
    def _relative_path(cls, path: str) -> str:
        if not path.startswith("/") or path.startswith("//") or _ABSOLUTE_URL.match(path):
            raise ValueError("path must be relative to the connection base URL and start with one '/'")
        if "?" in path or "#" in path:
            raise ValueError("put query parameters in 'params', not in 'path'")
        if "\\" in path or any(ch.isspace() or not ch.isprintable() for ch in path):
            raise ValueError("path must not contain backslashes, whitespace or control characters")
        return path


class InlineDocument(BaseModel):
    """An output carried inside the status response itself (DeepAffects).

    ``pointer`` is an RFC 6901 JSON pointer into :attr:`JobStatus.raw`, e.g.
    ``"/response/response"``.
    """

    model_config = _LOCATION_CONFIG

    kind: Literal["inline"] = "inline"
    pointer: str

    @field_validator("pointer")
    @classmethod
    def _json_pointer(cls, pointer: str) -> str:
        if pointer and not pointer.startswith("/"):
            raise ValueError("a JSON pointer is '' or starts with '/'")
        return pointer

    def resolve(self, raw: Mapping[str, Any]) -> Any:
        """The document inside ``raw`` (normally the owning ``JobStatus.raw``)."""
        return resolve_json_pointer(raw, self.pointer)


#: Where an output lives; ``kind`` selects the variant when a JobStatus is read back from JSON.
OutputLocation = Annotated[
    S3Object | DownloadLink | ApiDocument | InlineDocument, Field(discriminator="kind")
]


_MEDIA_TYPES: Mapping[str, str] = {
    "txt": "text/plain",
    "json": "application/json",
    "srt": "application/x-subrip",
    "vtt": "text/vtt",
    "csv": "text/csv",
    "html": "text/html",
    "pdf": "application/pdf",
}


def media_type_for(format: str) -> str | None:
    """The media type for a file format name (``txt``, ``json``, ``srt``, ``vtt``...), or ``None``."""
    return _MEDIA_TYPES.get(format.strip().lstrip(".").lower())


_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9._-]+")
_NON_ALNUM = re.compile(r"[^A-Za-z0-9]+")


class JobOutput(BaseModel):
    """One output of a finished job.

    ``name`` is the provider's name for the output (``transcript``, ``summary``, ``metadata``...),
    ``format`` the file format the service reports (``txt``, ``json``...), lower-cased and without a
    leading dot. Several outputs may share a name with different formats (Daily's transcript in
    txt, srt and vtt); ``(name, format)`` identifies one.
    """

    model_config = ConfigDict(frozen=True)

    name: str = Field(min_length=1)
    format: str = Field(min_length=1)
    media_type: str | None = None
    location: OutputLocation

    @field_validator("format")
    @classmethod
    def _normalize_format(cls, value: str) -> str:
        normalized = value.strip().lstrip(".").lower()
        if not normalized:
            raise ValueError("format must not be blank")
        return normalized

    @property
    def extension(self) -> str:
        """The file extension for :attr:`format`, with its dot (``".txt"``), or ``""``."""
        ext = _NON_ALNUM.sub("", self.format)
        return f".{ext}" if ext else ""

    @property
    def file_name(self) -> str:
        """A safe local file name: the output name plus the extension its format calls for.

        The extension comes from ``format``, never from the source key, because services store
        outputs under keys without one (Daily's summary key may have no extension while its format is
        ``txt``): ``summary`` + ``txt`` gives ``summary.txt``. Path separators and other unsafe
        characters in the name become ``_`` so the name can never escape a target directory.
        """
        stem = _UNSAFE_NAME_CHARS.sub("_", self.name).strip("._") or "output"
        ext = self.extension
        if not ext or stem.lower().endswith(ext.lower()):
            return stem
        return stem + ext


class JobStatus(BaseModel):
    """A job's status in the provider's vocabulary: what triggers emit and operators push to XCom.

    - ``state`` is the normalized state; ``raw_status`` the service's own word, verbatim (``None``
      when the response had none).
    - ``error`` is the service's error message, or ``None`` when it gave none.
    - ``outputs`` is filled only for a succeeded job: before that the outputs may not exist yet or be
      partial.
    - ``raw`` is the service response (decoded JSON, credential-like keys redacted); an
      :class:`InlineDocument` output points into it.
    - ``raw_omitted`` says why ``raw`` is empty in a returned value (see :func:`xcom_value`); it
      is absent from the JSON otherwise.
    - Naive timestamps are taken as UTC so that every datetime here is timezone-aware.

    The model is frozen: derive a changed copy with ``model_copy(update=...)``.
    ``JobStatus.model_validate(status.model_dump(mode="json"))`` gives back an equal status, except
    that :class:`DownloadLink` URLs are dropped on purpose.
    """

    model_config = ConfigDict(frozen=True)

    service: Service
    job_id: str = Field(min_length=1)
    state: JobState
    raw_status: str | None = None
    error: str | None = None
    outputs: list[JobOutput] = Field(default_factory=list)
    created_at: datetime | None = None
    completed_at: datetime | None = None
    raw: dict[str, Any] = Field(default_factory=dict)
    raw_omitted: str | None = Field(default=None, exclude_if=lambda value: value is None)

    @field_validator("created_at", "completed_at")
    @classmethod
    def _assume_utc(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value

    @property
    def is_terminal(self) -> bool:
        """True when the job will not change state again."""
        return self.state.is_terminal

    @property
    def succeeded(self) -> bool:
        """True only for ``SUCCEEDED``; ``UNKNOWN`` is never a success."""
        return self.state is JobState.SUCCEEDED

    @property
    def failed(self) -> bool:
        """True for the terminal non-success states (``FAILED``, ``CANCELLED``)."""
        return self.state in (JobState.FAILED, JobState.CANCELLED)

    def output(self, name: str, format: str | None = None) -> JobOutput | None:
        """The first output called ``name`` (and of ``format``, when given), or ``None``."""
        wanted_format = format.strip().lstrip(".").lower() if format is not None else None
        for candidate in self.outputs:
            if candidate.name == name and (wanted_format is None or candidate.format == wanted_format):
                return candidate
        return None


DEFAULT_MAX_XCOM_BYTES = 65536
"""The default cap, in bytes of JSON, on the status a task returns: Airflow's own default cap on one
task state store value (``[state_store] max_value_storage_bytes``, 65535) rounded up."""


def xcom_value(status: JobStatus, max_bytes: int | None = DEFAULT_MAX_XCOM_BYTES) -> dict[str, Any]:
    """The JSON a sensor or submit operator returns (its XCom ``return_value``) for ``status``.

    Over ``max_bytes`` of JSON, ``raw`` (the service response; for DeepAffects the whole result) is
    left out and ``raw_omitted`` says so and what to do instead: the metadata database is no place
    for megabytes per task. ``None``: no cap (pair it with an object-storage XCom backend).
    """
    value = status.model_dump(mode="json")
    if max_bytes is None or not value["raw"]:
        return value
    size = len(json.dumps(value, separators=(",", ":")).encode())
    if size <= max_bytes:
        return value
    raw_size = len(json.dumps(value["raw"], separators=(",", ":")).encode())
    value["raw"] = {}
    value["raw_omitted"] = (
        f"the status is {size} bytes of JSON, over max_xcom_bytes={max_bytes}: returned without 'raw' "
        f"(the service response, {raw_size} bytes). Move the job's outputs to object storage with "
        "JobOutputsToStorageOperator, read them with the hook's get_job(), or raise max_xcom_bytes "
        "(None: no cap) with Airflow's object-storage XCom backend configured"
    )
    return value
