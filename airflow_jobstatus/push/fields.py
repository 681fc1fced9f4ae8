"""The connection extras push completion reads, from the services' descriptions (`WebhookSpec.scheme`)."""

from __future__ import annotations

from airflow_jobstatus.services import SERVICES

SECRET_EXTRA = {s.name: s.webhook.scheme.extra for s in SERVICES.values() if s.webhook is not None}
"""The connection extra that authenticates each service's webhooks (a secret, never logged)."""
