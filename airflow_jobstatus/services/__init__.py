"""Each service as a description: ``services/<service>.py`` holds one; ``_spec``, ``_submit``, ``_reads`` and
``_webhooks`` say what it holds."""

from ._reads import ErrorBody
from ._spec import SHARED_EXTRA_FIELDS, ExtraField, FormField, JobConcurrency, ServiceSpec
from ._submit import Invalid, SubmitRequest
from ._webhooks import SignedWebhook, TokenInUrl, WebhookBody, WebhookSpec
from .daily import DAILY
from .deepaffects import DEEPAFFECTS
from .symbl import SYMBL
from .wasabi_air import WASABI_AIR

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
