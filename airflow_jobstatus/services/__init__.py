"""Each service as a description: ``services/<service>.py`` holds one, ``_spec`` says what it holds."""

from airflow_jobstatus.services._spec import (
    SHARED_EXTRA_FIELDS,
    ErrorBody,
    ExtraField,
    FormField,
    Invalid,
    JobConcurrency,
    ServiceSpec,
    SignedWebhook,
    SubmitRequest,
    TokenInUrl,
    WebhookBody,
    WebhookSpec,
)
from airflow_jobstatus.services.daily import DAILY
from airflow_jobstatus.services.deepaffects import DEEPAFFECTS
from airflow_jobstatus.services.symbl import SYMBL
from airflow_jobstatus.services.wasabi_air import WASABI_AIR

SERVICES: dict[str, ServiceSpec] = {s.name: s for s in (DAILY, WASABI_AIR, SYMBL, DEEPAFFECTS)}
BY_CONN_TYPE: dict[str, ServiceSpec] = {s.conn_type: s for s in SERVICES.values()}

__all__ = [
    "BY_CONN_TYPE",
    "DAILY",
    "DEEPAFFECTS",
    "SERVICES",
    "SHARED_EXTRA_FIELDS",
    "SYMBL",
    "WASABI_AIR",
    "ErrorBody",
    "ExtraField",
    "FormField",
    "Invalid",
    "JobConcurrency",
    "ServiceSpec",
    "SignedWebhook",
    "SubmitRequest",
    "TokenInUrl",
    "WebhookBody",
    "WebhookSpec",
]
