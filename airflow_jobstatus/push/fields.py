"""The connection extras push completion reads (no imports: the provider registration uses it)."""

from __future__ import annotations

SECRET_EXTRA = {"daily": "webhook_secret", "symbl": "webhook_token", "deepaffects": "webhook_token"}
"""The connection extra that authenticates each service's webhooks (a secret, never logged)."""
