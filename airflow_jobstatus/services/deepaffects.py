"""DeepAffects: the service's description (its hook, models and submission still live in hooks/ and models/)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_jobstatus.services._spec import ExtraField, FormField, ServiceSpec

if TYPE_CHECKING:
    from airflow_jobstatus.hooks.base import JobServiceHook


def _deepaffects_hook() -> type[JobServiceHook]:
    from airflow_jobstatus.hooks.deepaffects import DeepAffectsHook

    return DeepAffectsHook


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
