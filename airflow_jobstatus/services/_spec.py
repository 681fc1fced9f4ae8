"""What a service description holds: `ServiceSpec`, its `SubmitRequest` and its `ErrorBody`.

Hooks, operators, triggers, the provider registration and the docs all read these descriptions,
so a service's identity, requests and rules are written once. Nothing here imports Airflow.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import functools
import importlib
import json
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

import pydantic
from pydantic.fields import FieldInfo

from airflow_jobstatus.http.call import Call, segment
from airflow_jobstatus.models.common import (
    DownloadLink,
    JobOutput,
    JobState,
    JobStatus,
    OutputLocation,
    Service,
    media_type_for,
    normalize_state,
    redact_secrets,
)

if TYPE_CHECKING:
    from airflow_jobstatus.http.auth import AuthScheme

ToStatus = Callable[[Any, Mapping[str, Any]], JobStatus]
"""A response record as a `JobStatus`, given the connection's options (its extra fields' values)."""
RefToStatus = Callable[[Any, Mapping[str, Any], str], JobStatus]
"""A job read as a `JobStatus`, given the connection's options and the job reference it was read by."""


def _types_of(annotation: Any) -> set[Any]:
    """The plain types an annotation admits (``dict[str, Any] | list[str] | None`` -> dict, list, None)."""
    if annotation is None or annotation is type(None):
        return {type(None)}
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return set().union(*(_types_of(arg) for arg in typing.get_args(annotation)))
    if origin is typing.Annotated:
        return _types_of(typing.get_args(annotation)[0])
    return {origin or annotation}


def _from_text(value: Any, kinds: set[Any]) -> Any:
    """A rendered template gives text: turn it into the field's type where the text says so."""
    if not isinstance(value, str) or str in kinds:
        return value
    text = value.strip()
    if (dict in kinds or list in kinds) and text[:1] in ("{", "["):
        try:
            return json.loads(text)
        except (ValueError, RecursionError):
            return value
    if bool in kinds and text.lower() in ("true", "false"):
        return text.lower() == "true"
    if int in kinds and text.lstrip("-").isdigit():
        return int(text)
    return value


R = typing.TypeVar("R", bound="SubmitRequest")


class SubmitRequest(pydantic.BaseModel):
    """A service's one submission: its fields are the hook's and operator's parameters.

    Subclasses declare fields with ``description`` (the operator's docs come from them), validate
    them with validators that raise ``ValueError`` naming the fix, and say in `call` which HTTP
    request submits the job and in `job_ref` what the response gives back as the job's reference.
    Text rendered from a template is turned into a field's type first (``"5"`` -> 5, JSON -> dict).
    """

    model_config = pydantic.ConfigDict(extra="forbid", strict=True, frozen=True)

    positional: ClassVar[str | None] = None
    """The field a hook's ``submit_job`` also takes as its first positional argument."""
    set_at_send: ClassVar[Mapping[str, Callable[[], Any]]] = types.MappingProxyType({})
    """Fields the operator fills in itself when it sends the job (not operator parameters) -> a new value."""
    required_at_send: ClassVar[Mapping[str, str]] = types.MappingProxyType({})
    """Fields that may be unset while the request is checked but not when it is sent -> the fix."""

    @classmethod
    def parameters(cls) -> dict[str, FieldInfo]:
        """The fields an operator takes as parameters (all but `set_at_send`)."""
        return {k: v for k, v in cls.model_fields.items() if k not in cls.set_at_send}

    @pydantic.model_validator(mode="before")
    @classmethod
    def _rendered_text(cls, data: Any) -> Any:
        """Rendered text becomes the field's type; an empty value of an optional field is unset."""
        if not isinstance(data, dict):
            return data
        fields = cls.model_fields
        values = {}
        for key, value in data.items():
            kinds = _types_of(fields[key].annotation) if key in fields else set()
            if type(None) in kinds and value == "":
                value = None
            values[key] = _from_text(value, kinds) if kinds else value
        return values

    def exactly_one(self, *names: str) -> str:
        """The one of ``names`` that is set: `Invalid` when none or several are."""
        given = [name for name in names if getattr(self, name) is not None]
        if len(given) != 1:
            raise Invalid(
                f"exactly one source is needed, got {len(given)} ({', '.join(given) or 'none'})",
                hint=f"Pass exactly one of {', '.join(names[:-1])} or {names[-1]}",
            )
        return given[0]

    def only_for(self, allowed: bool, what: str, *names: str) -> None:
        """`Invalid` when any of ``names`` is set but the request is not ``what`` (``allowed`` False)."""
        if not allowed and (given := [name for name in names if getattr(self, name) is not None]):
            verb = "applies" if len(given) == 1 else "apply"
            raise Invalid(
                f"{', '.join(given)} {verb} only to {what}",
                hint=f"Remove {', '.join(given)}, or make the request {what}",
            )

    @pydantic.model_validator(mode="after")
    def _sendable(self) -> Any:
        """Every value goes out as strict JSON (httpx refuses NaN, bytes and objects at send time)."""
        for name in type(self).model_fields:
            value = getattr(self, name)
            try:
                json.dumps(value, allow_nan=False)
            except (TypeError, ValueError, RecursionError):
                raise ValueError(
                    f"{name} must be text, a finite number, true/false, or a list or dict of those, "
                    f"got {type(value).__name__} {value!r:.80}"
                ) from None
        return self

    shape_hints: ClassVar[Mapping[str, str]] = types.MappingProxyType({})
    """A field -> the fix named when its declared type refuses a value (e.g. a nested shape)."""

    @staticmethod
    def _where(loc: tuple[int | str, ...], data: Any) -> str:
        """An error's place as the user wrote it (``channel_metadata[0].speaker``): the field, then the
        list indexes and dict keys found along the given value (pydantic's union tags are not)."""
        where = ""
        for part in loc:
            if isinstance(data, list) and isinstance(part, int) and part < len(data):
                where, data = f"{where}[{part}]", data[part]
            elif isinstance(data, dict) and (part in data or part == loc[-1]):  # or the missing key
                where, data = f"{where}.{part}", data.get(part)
        return where.removeprefix(".")

    @classmethod
    def of(cls: type[R], service: str, values: Mapping[str, Any]) -> R:
        """The validated request; `InvalidParameterError` naming each wrong field otherwise."""
        from airflow_jobstatus.exceptions import InvalidParameterError  # imports Airflow: not at load time

        try:
            return cls.model_validate(dict(values))
        except pydantic.ValidationError as exc:
            problems, hints = [], []
            given = {key: _from_text(value, {dict, list}) for key, value in values.items()}  # rendered JSON
            for error in exc.errors():
                where = cls._where(error["loc"], given)
                found = (error.get("ctx") or {}).get("error")
                if (
                    error["type"] in ("dict_type", "list_type")
                    and isinstance(error["input"], str)
                    and where in cls.model_fields  # a field's own value, not a nested one
                ):
                    message = f"{where} must be a {error['type'][:4]}, got text {error['input']!r:.80}"
                    hints.append(TEXT_HINT)
                elif error["msg"].partition(" ")[2].startswith("should "):  # "Input/String/List should ..."
                    got = redact_secrets(error["input"])  # e.g. a source's SecretKey
                    message = f"{where} {error['msg'].partition(' ')[2]}, got {got!r:.80}"
                else:
                    message = error["msg"].removeprefix("Value error, ")
                    message = message if message.startswith(where) else f"{where}: {message}"
                if isinstance(found, Invalid) and found.hint:
                    hints.append(found.hint)
                elif error["loc"] and str(error["loc"][0]) in cls.shape_hints:
                    hints.append(cls.shape_hints[str(error["loc"][0])])
                if message not in problems:
                    problems.append(message)
            raise InvalidParameterError(
                "; ".join(problems[:5]),
                service=service,
                operation="submit_job",
                hint=hints[0] if hints else None,
            ) from None

    def call(self) -> Call:
        """The HTTP request that submits this job (method, path, query, body, response model)."""
        raise NotImplementedError

    def job_ref(self, response: Any) -> str:
        """The job's reference in the submit response (what `get_job` takes)."""
        raise NotImplementedError


TEXT_HINT = (
    "Pass a dict or list; a Jinja template renders text, so render JSON (e.g. "
    "'{{ ti.xcom_pull(...) | tojson }}') or create the DAG with render_template_as_native_obj=True"
)


class Invalid(ValueError):
    """Raised by a `SubmitRequest` validator: what is wrong, and the fix (the error's hint)."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


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
class FormField:
    """One standard connection field as the form shows it."""

    label: str
    placeholder: str
    description: str = ""


@dataclass(frozen=True)
class ExtraField:
    """A setting every connection accepts in its extra, shown in each connection form."""

    name: str
    label: str
    description: str
    json_type: str
    default: object
    placeholder: str
    minimum: float | None = None
    enum: tuple[str, ...] | None = None


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


def _import(path: str) -> Any:
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


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


@dataclass(frozen=True)
class JobConcurrency:
    """An account-wide limit of jobs running at once (`airflow_jobstatus.shared.concurrency`)."""

    extra: str
    """The connection extra that sets the limit."""
    default: int
    """The limit when the connection sets none."""

    def extra_field(self, service: str) -> ExtraField:
        """The connection extra that sets the limit, as the connection form shows it."""
        return ExtraField(
            self.extra,
            "Maximum concurrent jobs",
            f"{service} refuses a new job (429) while the account runs its maximum of concurrent jobs. "
            "With [jobstatus] redis_url set, submissions from every worker wait for a free slot instead. "
            f"0 leaves it to the service's 429. Default {self.default}.",
            "integer",
            self.default,
            str(self.default),
            minimum=0,
        )


WebhookId = Annotated[str, pydantic.StringConstraints(min_length=1, max_length=256)]
"""A job id as a webhook body carries it (bounded: the receiver stores it in Redis keys)."""


class WebhookBody(pydantic.BaseModel):
    """A service's webhook body: the fields the receiver reads, strictly typed; other fields ignored.

    Only ids are read: a webhook is a hint and the service's own status answer decides the outcome.
    """

    model_config = pydantic.ConfigDict(strict=True, extra="ignore", frozen=True)

    id_field: ClassVar[str] = "id"
    """The field holding the job's id; dotted for a nested one (``payload.id``)."""
    kind_field: ClassVar[str | None] = None
    """The field saying what happened (an event type, a status); None: one kind of body only."""

    def job_id(self) -> str:
        """The id the webhook names its job by (`ServiceSpec.webhook_job_id` of a wait's id)."""
        return str(functools.reduce(getattr, self.id_field.split("."), self))

    def kind(self) -> str:
        """What happened, lower-case: the same kind again for a job is a re-delivery."""
        return str(getattr(self, self.kind_field)).lower() if self.kind_field else "posted"

    def in_flight(self) -> bool:
        """True for a documented in-flight change, which cannot end a wait: it wakes none."""
        return False


@dataclass(frozen=True)
class SignedWebhook:
    """Bodies signed with base64(HMAC-SHA256(base64decode(secret), "{timestamp}.{body}")).

    The signature and its timestamp come in two headers; the timestamp must be within the replay
    window of the receiver's clock. The connection's ``extra`` holds the base64 secret.
    """

    signature_header: str
    timestamp_header: str
    secret_hint: str
    """The fix named when the connection's secret is not base64."""
    extra: str = "webhook_secret"
    replay_window: float = 300.0
    """Seconds a timestamp may be off, when ``[jobstatus] webhook_replay_window`` is unset."""
    label: str = "Webhook HMAC secret"
    description: str = "The base64 secret the service signs its webhooks with; unsigned webhooks are refused."

    def problem(self, value: str) -> str | None:
        """Why the connection's secret cannot verify anything, or None."""
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            return f"is not base64; {self.secret_hint}"
        return None


@dataclass(frozen=True)
class TokenInUrl:
    """Unsigned bodies, authenticated by an unguessable per-connection token in the URL's query.

    The token is in the query, not the path: Airflow's access log masks the values of query
    parameters with secret-like names such as ``token``, and prints the path in clear.
    """

    extra: str = "webhook_token"
    query_param: str = "token"
    min_length: int = 16
    """A shorter token is refused (it would be guessable)."""
    label: str = "Webhook token"
    description: str = (
        "An unguessable token (e.g. 32+ random URL-safe characters) that the webhook URL carries "
        "as ?token=...; webhooks without it are refused."
    )

    def problem(self, value: str) -> str | None:
        """Why the connection's token is refused, or None."""
        if len(value) < self.min_length:
            return (
                f"is shorter than {self.min_length} characters, too easy to guess; "
                "use e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
        return None


@dataclass(frozen=True)
class WebhookRegistration:
    """A webhook set up once per account through the service's own API (Daily's ``/webhooks``),
    created or fixed by ``hook.ensure_webhook()`` (`airflow_jobstatus.push.registration`)."""

    path: str
    """Lists the account's webhooks (``GET``: a list, or ``{list_field: [...]}``) and creates one (``POST``)."""
    item_path: str
    """Updates one (``POST``); ``{id}`` is its ``id_field``."""
    events: tuple[str, ...]
    """The event types subscribed, in the order the service shows them."""
    fixed: Mapping[str, Any] = field(default_factory=dict)
    """Fields sent with every create and update (Daily's ``retryType``)."""
    id_field: str = "uuid"
    url_field: str = "url"
    secret_field: str = "hmac"
    """Carries the connection's secret (the scheme's ``extra``): the service signs with it."""
    events_field: str = "eventTypes"
    state_field: str = "state"
    active: str = "ACTIVE"
    list_field: str = "data"
    account: str = "account"
    """What owns the webhooks (Daily: a domain), for messages."""
    one_per_account: bool = False
    """The account has one webhook: it is updated, never a second one created."""


@dataclass(frozen=True)
class WebhookSpec:
    """A service's completion webhook, as push completion's receiver and operators use it.

    The receiver's route is ``/webhooks/{service name}/{conn_id}``: users configured it at the service.
    """

    scheme: SignedWebhook | TokenInUrl
    """How a webhook proves it comes from the service."""
    body: type[WebhookBody]
    """The body model: what the receiver reads from a verified body."""
    max_body: int
    """Largest body read (bytes) when ``[jobstatus] webhook_max_body_<service>`` is unset."""
    submit_field: str | None = None
    """The `SubmitRequest` field the submit operator fills with the receiver's URL (None: the
    webhook is set up once at the service instead)."""
    event_types: frozenset[str] = frozenset()
    """When set, only bodies whose ``type_field`` is one of these are hints; other events (and the
    service's unsigned verification call) are answered 200 and wake nothing."""
    type_field: str = "type"
    registration: WebhookRegistration | None = None
    """Set up once per account through the service's API (None: nothing to set up there)."""


@dataclass(frozen=True, kw_only=True)
class ServiceSpec:
    """The fixed facts of one job service."""

    name: str
    """Machine name, also `JobStatus.service`: ``daily``, ``wasabi_air``, ``symbl``, ``deepaffects``."""
    display_name: str
    conn_type: str = ""
    """The Airflow connection type; by default ``name``."""
    default_conn_id: str = ""
    """By default ``<conn_type>_default``."""
    hook_class: str
    """The hook's import path, for Airflow's provider registration (``hook-class-name``)."""
    load_hook: Callable[[], type[Any]] = None  # type: ignore[assignment]
    """The hook class, imported when first asked for. By default the class ``hook_class`` names, the
    path Airflow's provider registration loads too: descriptions sit below hooks, never import them."""
    default_host: str | None
    """Base URL used when the connection has no host; None where the service publishes none."""
    fields: dict[str, FormField]
    """Standard fields the service uses (host, login, password); the others are hidden."""
    docs_url: str
    default_max_rps: float = 10.0
    """Client-side request rate limit when the connection sets none (politeness towards the API)."""
    has_list_endpoint: bool = False
    """The service lists jobs (a poller may sweep them); set wherever ``listing`` is described."""
    extra_fields: tuple[ExtraField, ...] = ()
    """Settings only this service's connections have (besides `SHARED_EXTRA_FIELDS`)."""
    default_max_rpm: float = 0.0
    """Client-side per-minute limit when the connection sets none (0: only ``default_max_rps``)."""
    default_max_per_day: int = 0
    """Client-side budget of requests per 24 h when the connection sets none (0: none)."""
    default_poll_interval: float = 30.0
    """Seconds between checks of a job when the sensor or operator sets none."""
    result_path: str = ""
    """Where a result carried inside the job's status is read (an ``InlineDocument``): the status path."""
    no_outputs_hint: str = "Check the job at the service"
    """What to check when a succeeded job lists no outputs (the transfer's error says it)."""
    can_delete_jobs: bool = False
    """The service can delete a job (``delete_on_kill``): the hook's ``delete_job``/``adelete_job``."""
    job_concurrency: JobConcurrency | None = None
    """The account's concurrent-job limit, kept across the deployment when Redis is configured."""
    webhook_job_id: Callable[[str], str] = str
    """The id the service's webhook names a job by, from the id a wait tracks it by (push completion)."""
    status_map: Mapping[str, JobState] = field(default_factory=dict)
    """The service's documented job statuses and the state each one is."""
    submit_request: type[SubmitRequest] | None = None
    """The submission: the hook's ``submit_job`` and the operator's parameters (None: not converted yet)."""
    auth: AuthScheme | None = None
    """How requests carry the connection's credentials (None: the hook's own ``_auth``)."""
    job: JobRead | None = None
    """Reading one job (None: the hook's own ``_get_job``)."""
    poll: JobRead | None = None
    """A cheaper read of the job's state alone, for `get_status` (None: `get_status` reads ``job``)."""
    outputs_read: OutputsRead | None = None
    """How a finished job's outputs are resolved (None: the status lists them resolved)."""
    listing: Listing | None = None
    """The list endpoint (`ListingHookMixin`); also the connection test's request."""
    connected: str = "the credentials were accepted"
    """What a passed connection test says after ``Connected to <display name>:``."""
    outputs_lag: OutputsLag | None = None
    """A finished job's outputs may answer 404 for a while: `get_outputs` reads them again meanwhile."""
    error_body: type[ErrorBody] | None = None
    """The documented error body; None: the client's generic reading of error text."""
    webhook: WebhookSpec | None = None
    """The completion webhook push completion receives; None: the service documents none (it polls)."""
    documents: Mapping[str, str | None] = field(default_factory=dict)
    """`ApiDocument` outputs by name -> the top-level key holding the document's list (a wrong document
    fails `get_document` loudly; None: the service documents no key, the document is not checked)."""
    id_field: str = "id"
    """The job id's field in the service's job records."""
    status_field: str = "status"
    """The status word's field in the service's job records."""
    error_field: str | None = None
    """The field holding a failed job's error text, documented or not (None: none is read)."""
    conn_id_kwarg: str = field(init=False)

    def __post_init__(self) -> None:
        set_ = functools.partial(object.__setattr__, self)
        set_("conn_type", self.conn_type or self.name)
        set_("default_conn_id", self.default_conn_id or f"{self.conn_type}_default")
        set_("conn_id_kwarg", f"{self.conn_type}_conn_id")
        if self.load_hook is None:
            set_("load_hook", lambda: _import(self.hook_class))
        if (jobs := self.job_concurrency) and all(f.name != jobs.extra for f in self.extra_fields):
            set_("extra_fields", (*self.extra_fields, jobs.extra_field(self.display_name)))
        if "host" not in self.fields and self.default_host:
            help_ = f"Leave empty for {self.display_name}'s public API; set it to reach a proxy or the local emulator."
            set_("fields", {"host": FormField("API base URL", self.default_host, help_), **self.fields})
        set_("extra_fields", (*_budget_fields(self), *self.extra_fields))
        if (listing := self.listing) is not None:
            set_("has_list_endpoint", True)
            states = listing.states or _states_page(listing.records, self.id_field, self.status_field)
            status = (
                listing.status if listing.status is not None else lambda record, _: self.status_of(record)
            )
            set_("listing", dataclasses.replace(listing, states=states, status=status))

    def status_of(
        self, record: pydantic.BaseModel, outputs: Callable[[], list[JobOutput]] | None = None, **fields: Any
    ) -> JobStatus:
        """A job record as a `JobStatus`: id, status and error read by the description's field names,
        ``outputs()`` called only for a succeeded job, the record redacted as ``raw``; ``fields``
        override any of these."""
        raw_status = getattr(record, self.status_field, None)
        state = normalize_state(raw_status, self.status_map)
        error = None
        if self.error_field is not None:
            extra = record.model_extra or {}
            error = getattr(record, self.error_field, None) or extra.get(self.error_field)
        values = {
            "service": Service(self.name),
            "job_id": getattr(record, self.id_field),
            "state": state,
            "raw_status": raw_status,
            "error": error if isinstance(error, str) and error else None,
            "outputs": outputs() if outputs is not None and state is JobState.SUCCEEDED else [],
            "raw": redact_secrets(record.model_dump(mode="json", exclude_unset=True, by_alias=True)),
        }
        return JobStatus(**(values | fields))

    def make_hook(self, conn_id: str, **kwargs: Any) -> Any:
        """A hook of this service for the connection ``conn_id``."""
        return self.load_hook()(**{self.conn_id_kwarg: conn_id}, **kwargs)


def _budget_fields(spec: ServiceSpec) -> tuple[ExtraField, ...]:
    """The connection settings of the per-minute and per-day limits a service documents (its defaults)."""
    given = {f.name for f in spec.extra_fields}
    rpm, per_day, name = spec.default_max_rpm, spec.default_max_per_day, spec.display_name
    fields = []
    if rpm and "max_requests_per_minute" not in given:
        rate = int(rpm) if float(rpm).is_integer() else rpm
        help_ = f"{name} allows {rate} requests per minute. The client spaces this connection's requests to this rate."
        fields.append(
            ExtraField(
                "max_requests_per_minute",
                "Maximum requests per minute",
                f"{help_} 0 means no per-minute limit. Default {rate}.",
                "number",
                rate,
                str(rate),
                minimum=0,
            )
        )
    if per_day and "max_requests_per_day" not in given:
        help_ = (
            f"{name} caps an account at {per_day} requests per day. Once this process has sent that many "
            "in 24 h, waits hold (they do not fail) until the budget refills; a submission fails."
        )
        fields.append(
            ExtraField(
                "max_requests_per_day",
                "Maximum requests per day",
                f"{help_} 0 means no budget. Default {per_day}.",
                "integer",
                per_day,
                str(per_day),
                minimum=0,
            )
        )
    return tuple(fields)


SHARED_EXTRA_FIELDS: tuple[ExtraField, ...] = (
    ExtraField(
        "request_timeout",
        "Request timeout (seconds)",
        "Time allowed for one HTTP request (connect, read, write). Default 30.",
        "number",
        30,
        "30",
        minimum=1,
    ),
    ExtraField(
        "max_retries",
        "Maximum retries",
        "Retries for 408/425/429/5xx responses, resets and read timeouts, with exponential backoff "
        "and full jitter; Retry-After is honoured. 0 disables retries. Default 5.",
        "integer",
        5,
        "5",
        minimum=0,
    ),
    ExtraField(
        "max_requests_per_second",
        "Maximum requests per second",
        "Client-side rate limit shared by every task and trigger of this connection in one process. "
        "0 means no limit. Default 10.",
        "number",
        10,
        "10",
        minimum=0,
    ),
    ExtraField(
        "verify_tls",
        "Verify TLS certificates",
        "Verify the service's TLS certificate. Turn off only for a test server you trust.",
        "boolean",
        True,
        "true",
    ),
    ExtraField(
        "allow_http_links",
        "Allow plain-http download links",
        "Accept http:// output links (the local emulator serves them). Off by default: links must be https.",
        "boolean",
        False,
        "false",
    ),
)
