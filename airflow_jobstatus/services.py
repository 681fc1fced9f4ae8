"""What each service is, as data: connection type, defaults, credentials and form.

Hooks, triggers, the provider registration and the docs all read these descriptions, so a
service's identity is written once. Nothing here imports Airflow.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_jobstatus.hooks.base import JobServiceHook


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
class JobConcurrency:
    """An account-wide limit of jobs running at once (`airflow_jobstatus.shared.concurrency`)."""

    extra: str
    """The connection extra that sets the limit."""
    default: int
    """The limit when the connection sets none."""


@dataclass(frozen=True)
class ServiceSpec:
    """The fixed facts of one job service."""

    name: str
    """Machine name, also `JobStatus.service`: ``daily``, ``wasabi_air``, ``symbl``, ``deepaffects``."""
    display_name: str
    conn_type: str
    default_conn_id: str
    hook_class: str
    """The hook's import path, for Airflow's provider registration (``hook-class-name``)."""
    load_hook: Callable[[], type[JobServiceHook]]
    """The hook class itself, imported when first asked for (hooks import this module)."""
    default_host: str | None
    """Base URL used when the connection has no host; None where the service publishes none."""
    fields: dict[str, FormField]
    """Standard fields the service uses (host, login, password); the others are hidden."""
    default_max_rps: float
    docs_url: str
    """Client-side request rate limit when the connection sets none (politeness towards the API)."""
    has_list_endpoint: bool = False
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
    conn_id_kwarg: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "conn_id_kwarg", f"{self.conn_type}_conn_id")

    def make_hook(self, conn_id: str, **kwargs: Any) -> JobServiceHook:
        """A hook of this service for the connection ``conn_id``."""
        return self.load_hook()(**{self.conn_id_kwarg: conn_id}, **kwargs)


def _daily_hook() -> type[JobServiceHook]:
    from airflow_jobstatus.hooks.daily import DailyHook

    return DailyHook


def _wasabi_air_hook() -> type[JobServiceHook]:
    from airflow_jobstatus.hooks.wasabi import WasabiAirHook

    return WasabiAirHook


def _symbl_hook() -> type[JobServiceHook]:
    from airflow_jobstatus.hooks.symbl import SymblHook

    return SymblHook


def _deepaffects_hook() -> type[JobServiceHook]:
    from airflow_jobstatus.hooks.deepaffects import DeepAffectsHook

    return DeepAffectsHook


DAILY = ServiceSpec(
    name="daily",
    display_name="Daily",
    conn_type="daily",
    default_conn_id="daily_default",
    hook_class="airflow_jobstatus.hooks.daily.DailyHook",
    load_hook=_daily_hook,
    default_host="https://api.daily.co/v1",
    fields={
        "host": FormField(
            "API base URL",
            "https://api.daily.co/v1",
            "Leave empty for Daily's public API; set it to reach a proxy or the local emulator.",
        ),
        "password": FormField("API key", "your Daily API key", "Sent as 'Authorization: Bearer <key>'."),
    },
    # Daily documents about 20 requests/s; stay well under it by default.
    default_max_rps=10.0,
    docs_url="https://docs.daily.co/reference/rest-api/batch-processor",
    extra_fields=(
        ExtraField(
            "output_storage",
            "Where outputs are kept",
            "'daily' (Daily's storage, the default: outputs are read through access links) or 'customer' "
            "(your domain's batch_processor_bucket: outputs are read from your S3 bucket).",
            "string",
            "daily",
            "daily",
            enum=("daily", "customer"),
        ),
    ),
    has_list_endpoint=True,
    can_delete_jobs=True,  # DELETE /batch-processor/:id, no cancel (docs/contracts.md D13)
)

WASABI_AIR = ServiceSpec(
    name="wasabi_air",
    display_name="Wasabi AiR",
    conn_type="wasabi_air",
    default_conn_id="wasabi_air_default",
    hook_class="airflow_jobstatus.hooks.wasabi.WasabiAirHook",
    load_hook=_wasabi_air_hook,
    default_host=None,
    fields={
        "host": FormField(
            "AiR API base URL",
            "https://<your AiR host>",
            "Required: Wasabi publishes no global AiR endpoint; use the base URL of your AiR instance.",
        ),
        "login": FormField("Access key", "Wasabi access key", "Sent in the 'x-amz-access-key' header."),
        "password": FormField("Secret key", "Wasabi secret key", "Sent in the 'x-amz-secret-key' header."),
    },
    default_max_rps=10.0,
    docs_url="https://docs.wasabi.com/",
    extra_fields=(
        ExtraField(
            "s3_endpoint_url",
            "Wasabi S3 endpoint URL",
            "S3 endpoint where the destination bucket lives, recorded on each output so the transfer "
            "reads it there. Default: https://s3.<destination region>.wasabisys.com.",
            "string",
            "",
            "https://s3.us-west-1.wasabisys.com",
        ),
    ),
    has_list_endpoint=True,
)

SYMBL = ServiceSpec(
    name="symbl",
    display_name="Symbl.ai",
    conn_type="symbl",
    default_conn_id="symbl_default",
    hook_class="airflow_jobstatus.hooks.symbl.SymblHook",
    load_hook=_symbl_hook,
    default_host="https://api.symbl.ai",
    fields={
        "host": FormField("API base URL", "https://api.symbl.ai", "Leave empty for Symbl's public API."),
        "login": FormField("App ID", "Symbl appId", "Exchanged with the secret for a short-lived token."),
        "password": FormField("App secret", "Symbl appSecret", "Only ever sent to the token endpoint."),
    },
    default_max_rps=10.0,
    docs_url="https://docs.symbl.ai/",
    extra_fields=(
        # contracts S8: a 429 on submit at the account's concurrent-job limit (50 assumed: paid plans).
        ExtraField(
            "max_concurrent_jobs",
            "Maximum concurrent jobs",
            "Symbl.ai refuses a new job (429) while the account runs its maximum of concurrent jobs. "
            "With [jobstatus] redis_url set, submissions from every worker wait for a free slot instead. "
            "0 leaves it to the service's 429. Default 50.",
            "integer",
            50,
            "50",
            minimum=0,
        ),
    ),
    job_concurrency=JobConcurrency("max_concurrent_jobs", 50),
    no_outputs_hint="Symbl job references need the 'jobId:conversationId' form that SymblHook.submit_job "
    "returns; check the job at the service",
)

DEEPAFFECTS = ServiceSpec(
    name="deepaffects",
    display_name="DeepAffects",
    conn_type="deepaffects",
    default_conn_id="deepaffects_default",
    hook_class="airflow_jobstatus.hooks.deepaffects.DeepAffectsHook",
    load_hook=_deepaffects_hook,
    default_host="https://proxy.api.deepaffects.com",
    fields={
        "host": FormField(
            "API base URL",
            "https://proxy.api.deepaffects.com",
            "Leave empty for DeepAffects' public API.",
        ),
        "password": FormField(
            "API key",
            "DeepAffects apikey",
            "Sent as the 'apikey' query parameter (the service requires it); redacted from every log.",
        ),
    },
    default_max_rps=10.0,
    docs_url="https://docs.deepaffects.com/",
    extra_fields=(
        # Concepts page, "Rate Limiting": 5 requests per minute to each API, 100 per day (contracts A8).
        ExtraField(
            "max_requests_per_minute",
            "Maximum requests per minute",
            "DeepAffects allows 5 requests per minute to each API (more on request to the vendor). The "
            "client spaces this connection's requests to this rate. 0 means no per-minute limit. Default 5.",
            "number",
            5,
            "5",
            minimum=0,
        ),
        ExtraField(
            "max_requests_per_day",
            "Maximum requests per day",
            "DeepAffects caps an account at 100 requests per day (more on request to the vendor). Once this "
            "process has sent that many in 24 h, waits hold (they do not fail) until the budget refills; a "
            "submission fails. 0 means no budget. Default 100.",
            "integer",
            100,
            "100",
            minimum=0,
        ),
    ),
    default_max_rpm=5.0,
    default_max_per_day=100,
    # One job waited on for 24 h: at most 12 status requests, 12% of the default 100/day (README).
    default_poll_interval=7200.0,
    result_path="/transaction/generic/api/v1/async/status",
)

SERVICES: dict[str, ServiceSpec] = {s.name: s for s in (DAILY, WASABI_AIR, SYMBL, DEEPAFFECTS)}
BY_CONN_TYPE: dict[str, ServiceSpec] = {s.conn_type: s for s in SERVICES.values()}


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
