"""What a service description holds: `ServiceSpec`, and the connection form fields it declares.

Hooks, operators, triggers, the provider registration and the docs all read these descriptions,
so a service's identity, requests and rules are written once. Nothing here imports Airflow.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pydantic

from airflow_jobstatus.models.common import (
    JobOutput,
    JobState,
    JobStatus,
    Service,
    normalize_state,
    redact_secrets,
)

from ._reads import ErrorBody, JobRead, Listing, OutputsLag, OutputsRead, _states_page
from ._submit import SubmitRequest
from ._webhooks import WebhookSpec

if TYPE_CHECKING:
    from airflow_jobstatus.http.auth import AuthScheme


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
    json_type: str = "string"
    default: object = ""
    placeholder: str = ""
    """Shown in the empty field; by default the default value as JSON text (``30``, ``true``)."""
    minimum: float | None = None
    enum: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if not self.placeholder and self.default != "":
            text = self.default if isinstance(self.default, str) else json.dumps(self.default)
            object.__setattr__(self, "placeholder", text)


def _import(path: str) -> Any:
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


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
            minimum=0,
        )


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
        minimum=1,
    ),
    ExtraField(
        "max_retries",
        "Maximum retries",
        "Retries for 408/425/429/5xx responses, resets and read timeouts, with exponential backoff "
        "and full jitter; Retry-After is honoured. 0 disables retries. Default 5.",
        "integer",
        5,
        minimum=0,
    ),
    ExtraField(
        "max_requests_per_second",
        "Maximum requests per second",
        "Client-side rate limit shared by every task and trigger of this connection in one process. "
        "0 means no limit. Default 10.",
        "number",
        10,
        minimum=0,
    ),
    ExtraField(
        "verify_tls",
        "Verify TLS certificates",
        "Verify the service's TLS certificate. Turn off only for a test server you trust.",
        "boolean",
        True,
    ),
    ExtraField(
        "allow_http_links",
        "Allow plain-http download links",
        "Accept http:// output links (the local emulator serves them). Off by default: links must be https.",
        "boolean",
        False,
    ),
)
