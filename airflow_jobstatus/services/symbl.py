"""Symbl.ai: the service's description (its hook, models and submission still live in hooks/ and models/)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_jobstatus.services._spec import ExtraField, FormField, JobConcurrency, ServiceSpec

if TYPE_CHECKING:
    from airflow_jobstatus.hooks.base import JobServiceHook


def _symbl_hook() -> type[JobServiceHook]:
    from airflow_jobstatus.hooks.symbl import SymblHook

    return SymblHook


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
