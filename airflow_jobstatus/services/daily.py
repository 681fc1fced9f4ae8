"""Daily: the service's description (its hook, models and submission still live in hooks/ and models/)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_jobstatus.services._spec import ExtraField, FormField, ServiceSpec

if TYPE_CHECKING:
    from airflow_jobstatus.hooks.base import JobServiceHook


def _daily_hook() -> type[JobServiceHook]:
    from airflow_jobstatus.hooks.daily import DailyHook

    return DailyHook


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
