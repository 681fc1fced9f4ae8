"""How a description reads a service: one job, a finished job's outputs, the job list, the error bodies."""

from __future__ import annotations

import types
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pydantic

from airflow_jobstatus.http.call import Call, segment
from airflow_jobstatus.models.common import (
    DownloadLink,
    JobOutput,
    JobStatus,
    OutputLocation,
    Service,
    media_type_for,
)

ToStatus = Callable[[Any, Mapping[str, Any]], JobStatus]
"""A response record as a `JobStatus`, given the connection's options (its extra fields' values)."""
RefToStatus = Callable[[Any, Mapping[str, Any], str], JobStatus]
"""A job read as a `JobStatus`, given the connection's options and the job reference it was read by."""


class ErrorBody(pydantic.BaseModel):
    """A service's documented error body; `message` is the text its errors show."""

    model_config = pydantic.ConfigDict(extra="ignore")

    handled_as: ClassVar[Mapping[str, int]] = types.MappingProxyType({})
    """A body's ``type`` -> the HTTP status its error is handled as, whatever status it came with."""

    message_fields: ClassVar[tuple[str, ...]] = ()
    """The fields whose texts, where given, make `message` (joined by ``": "``)."""

    def message(self) -> str:
        return ": ".join(
            text for name in self.message_fields if isinstance(text := getattr(self, name), str) and text
        )

    @classmethod
    def text_of(cls, content: bytes) -> str | None:
        """The error text of a response body, or None when the body is not this shape."""
        try:
            return cls.model_validate_json(content).message() or None
        except (ValueError, RecursionError):  # pydantic's ValidationError is a ValueError
            return None


@dataclass(frozen=True)
class OutputsLag:
    """How long a finished job's outputs may answer 404, and the hook parameter that bounds the wait."""

    what: str
    """What is read (the error says it): ``"metadata"``."""
    parameter: str
    """The hook's keyword argument for the wait in seconds: ``"metadata_wait"``."""
    default_wait: float = 30.0
    delays: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0, 8.0)
    """Waits between reads; the last one repeats until the wait is spent."""


def output(name: str, format: str, location: OutputLocation) -> JobOutput:
    """One output of a finished job, its media type known from its format."""
    return JobOutput(name=name, format=format, media_type=media_type_for(format), location=location)


def find_message(value: Any, keys: tuple[str, ...]) -> str | None:
    """The first non-empty text under ``keys`` (in that order, nested mappings searched too) of a payload
    whose shape is undocumented, such as a failed job's; a text ``value`` is its own message."""
    if isinstance(value, str):
        return value or None
    for key in keys if isinstance(value, Mapping) else ():
        if isinstance(found := value.get(key), str | Mapping) and (message := find_message(found, keys)):
            return message
    return None


def link_for(links: Iterable[tuple[str, str, str]], name: str, format: str) -> str | None:
    """The URL of output ``name`` in ``format`` among ``links`` (output name, format, URL); formats
    compare as `JobOutput.format` does (case-blind, no leading dot)."""
    wanted = format.strip().lstrip(".").lower()
    return next((url for n, f, url in links if n == name and f.strip().lstrip(".").lower() == wanted), None)


def attach_links(
    status: JobStatus, service: Service, job_id: str, link_for: Callable[[str, str], str | None]
) -> JobStatus:
    """``status`` with each `DownloadLink` output's ``url`` from ``link_for(name, format)`` (None: it stays
    None), the links being those of ``service``'s job ``job_id``. The URLs stay out of any dump."""
    if (status.service, status.job_id) != (service, job_id):
        raise ValueError(
            f"links of {service} job {job_id!r} are not for {status.service} job {status.job_id!r}"
        )
    outputs = []
    for out in status.outputs:
        url = link_for(out.name, out.format) if isinstance(out.location, DownloadLink) else None
        if url is not None:
            out = out.model_copy(update={"location": out.location.model_copy(update={"url": url})})
        outputs.append(out)
    return status.model_copy(update={"outputs": outputs})


@dataclass(frozen=True)
class JobRead:
    """``GET`` one job: the generic hook's `get_job` (and ``DELETE`` on the same path, `delete_job`)."""

    path: str
    """The job's path; ``{id}`` is the job id, percent-encoded."""
    model: type[pydantic.BaseModel]
    status: RefToStatus
    """(the response, the connection's options, the job reference) -> the job as a `JobStatus`; the
    description's output-location rules read the options."""
    params: Mapping[str, str] = field(default_factory=dict)
    """Query parameters; ``{id}`` in a value is the job id (DeepAffects' ``request_id``)."""
    job_id: Callable[[str], str] = str
    """The service's job id within a job reference (the reference may carry more, e.g. Symbl's)."""

    def call(self, operation: str, ref: str) -> Call:
        """The request reading the job ``ref``."""
        job_id = self.job_id(ref)
        params = {key: value.format(id=job_id) for key, value in self.params.items()}
        path = self.path.format(id=segment(job_id))
        return Call(operation, "GET", path, self.model, params=params or None, job_id=ref)


@dataclass(frozen=True)
class OutputsRead:
    """A finished job's outputs resolved by one more ``GET`` (Daily's access links, Wasabi's metadata).

    Download links it gives are checked before anything fetches them (https with a host, or http where
    the connection allows it).
    """

    path: str
    """``{id}`` is the job id, percent-encoded."""
    model: type[pydantic.BaseModel]
    needed: Callable[[JobStatus], bool]
    """Whether the status's outputs still need this read (else they are returned as they are)."""
    outputs: Callable[[JobStatus, Any, Mapping[str, Any]], list[JobOutput]]
    """(the status, the response, the connection's options) -> the resolved outputs."""
    hints: Mapping[int, str] = field(default_factory=dict)
    """What to do about an HTTP error status of this read (the error's hint)."""


@dataclass(frozen=True)
class Listing:
    """A list endpoint: `list_jobs` pages through it; a poller reads it for each job's id and status only."""

    path: str
    page: type[pydantic.BaseModel]
    """A page of full records (`list_jobs`, the connection test)."""
    records: str
    """The page's attribute holding its records."""
    size: str
    """The query parameter of the page size."""
    cursor: str
    """The query parameter of the page's position: a page number, or the previous page's last id."""
    numbered: bool = False
    """Pages are numbered from 1; otherwise the next page starts after the last record's id."""
    filters: Mapping[str, str] = field(default_factory=dict)
    """`list_jobs` keyword -> query parameter."""
    params: Mapping[str, Any] = field(default_factory=dict)
    """Sent with every `list_jobs` page (a filter given overrides)."""
    newest_first: Mapping[str, Any] = field(default_factory=dict)
    """Sent with a poller's pages so that the newest jobs come first."""
    status: ToStatus = None  # type: ignore[assignment]
    """A record of ``page`` as a `JobStatus`; by default `ServiceSpec.status_of` (no outputs)."""
    states: type[pydantic.BaseModel] = None  # type: ignore[assignment]
    """The page a poller reads; by default one that reads only the description's ``id_field`` (text)
    and ``status_field`` (text or null) of each record and ignores the rest, so that a new field never
    breaks the sweep."""


def _states_page(records: str, id_field: str, status_field: str) -> type[pydantic.BaseModel]:
    strict = pydantic.ConfigDict(extra="ignore", strict=True)
    fields: Any = {id_field: (str, ...), status_field: (str | None, None)}
    record = pydantic.create_model("ListedState", __config__=strict, **fields)
    page: Any = {records: (list[record], [])}  # type: ignore[valid-type]
    return pydantic.create_model("ListedStates", __config__=strict, **page)
