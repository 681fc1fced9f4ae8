"""Symbl.ai: the service's description (its hook, models and submission still live in hooks/ and models/)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_jobstatus.services._spec import FormField, ServiceSpec

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
    no_outputs_hint="Symbl job references need the 'jobId:conversationId' form that SymblHook.submit_job "
    "returns; check the job at the service",
)
