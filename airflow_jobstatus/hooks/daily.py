"""`DailyHook`: the Daily description (services/daily.py) plus the domain's webhook for push completion."""

from __future__ import annotations

from typing import Any

from airflow_jobstatus.exceptions import InvalidParameterError, MalformedResponseError
from airflow_jobstatus.hooks.base import ListingHookMixin, Plan, segment
from airflow_jobstatus.http.client import Call
from airflow_jobstatus.services.daily import DAILY, DAILY_WEBHOOK_EVENTS

#: The event types push completion subscribes the domain's webhook to (contracts H5).
WEBHOOK_EVENTS = sorted(DAILY_WEBHOOK_EVENTS, reverse=True)  # job-finished, error: the order Daily shows


def _json_body(response: Any) -> Any:
    try:
        return response.json()
    except ValueError:
        raise MalformedResponseError(
            "Daily's /webhooks answer is not JSON", service="Daily", operation="ensure_webhook"
        ) from None


def _webhook_summary(hook: Any, action: str) -> dict[str, str]:
    """What `DailyHook.ensure_webhook` returns: never the webhook's ``hmac``."""
    hook = hook if isinstance(hook, dict) else {}
    return {k: str(hook.get(k, "")) for k in ("uuid", "url", "state")} | {"action": action}


class DailyHook(ListingHookMixin):
    """Daily's batch processor: submit, status, access links, list (filter ``recording_id``), delete,
    and the domain's webhook.

    :param daily_conn_id: a ``daily`` connection (password = API key; host optional).
    """

    spec = DAILY

    def __init__(self, daily_conn_id: str = DAILY.default_conn_id, **kwargs: Any) -> None:
        super().__init__(daily_conn_id, **kwargs)

    # --- push completion: the domain's webhook (contracts H1-H4, O-H8-O-H10)

    def ensure_webhook(self, base_url: str | None = None, *, replace: bool = False) -> dict[str, str]:
        """Create, or check and fix, the domain's webhook that feeds push completion; idempotent.

        The webhook posts ``batch-processor.job-finished`` and ``batch-processor.error`` to the
        receiver's Daily route (``{base_url}/webhooks/daily/{conn_id}``; ``base_url`` defaults to
        ``[jobstatus] webhook_base_url``), signed with the connection's ``webhook_secret``, with
        ``retryType`` ``exponential``. Daily webhooks are per domain: a webhook with another URL is
        only repointed with ``replace=True`` (it may feed another application). Returns
        ``{"uuid", "url", "state", "action"}`` (``created``, ``updated`` or ``unchanged``); never
        the secret. Run it once per connection, e.g. ``python -m airflow_jobstatus.push.setup daily``.
        """
        from airflow_jobstatus.push.config import load_config
        from airflow_jobstatus.push.submit import receiver_url

        base = base_url or load_config().webhook_base_url
        if not base:
            raise InvalidParameterError(
                "no webhook base URL: Daily's webhook must point at the receiver",
                service="Daily",
                operation="ensure_webhook",
                hint="Set [jobstatus] webhook_base_url (e.g. https://airflow.example.com/jobstatus) or pass base_url.",
            )
        secret = self.get_connection(self.conn_id).extra_dejson.get("webhook_secret")
        if not isinstance(secret, str) or not secret.strip():
            raise InvalidParameterError(
                f"connection '{self.conn_id}' has no webhook_secret",
                service="Daily",
                operation="ensure_webhook",
                hint="Set the connection's webhook_secret extra to a base64 secret, e.g. the output of "
                "python -c 'import base64, secrets; print(base64.b64encode(secrets.token_bytes(32)).decode())'.",
            )
        return self.run(
            self._ensure_webhook(receiver_url(base, "daily", self.conn_id), secret.strip(), replace)
        )

    def _ensure_webhook(self, url: str, secret: str, replace: bool) -> Plan[dict[str, str]]:
        listed = yield Call("list_webhooks", "GET", "/webhooks")
        data = _json_body(listed)
        hooks = data.get("data", []) if isinstance(data, dict) else data  # O-H9: a list, or {"data": [...]}
        if not isinstance(hooks, list) or not all(isinstance(h, dict) for h in hooks):
            raise MalformedResponseError(
                "Daily's GET /webhooks did not answer a list of webhooks",
                service="Daily",
                operation="ensure_webhook",
            )
        ours = [h for h in hooks if h.get("url") == url] or hooks[:1]
        wanted = {"url": url, "hmac": secret, "retryType": "exponential"}
        if not ours:
            body = {**wanted, "eventTypes": WEBHOOK_EVENTS}
            hook = _json_body((yield Call("create_webhook", "POST", "/webhooks", json=body)))
            return _webhook_summary(hook, "created")
        current = ours[0]
        if current.get("url") != url and not replace:
            raise InvalidParameterError(
                "the domain's Daily webhook points at another URL (Daily has one webhook per domain)",
                service="Daily",
                operation="ensure_webhook",
                hint="Pass replace=True (--replace) to point it at the Airflow receiver, or delete it in Daily first.",
            )
        events = list(dict.fromkeys([*(current.get("eventTypes") or []), *WEBHOOK_EVENTS]))
        if (
            current.get("url") == url
            and current.get("hmac") == secret
            and current.get("retryType") == "exponential"
            and set(WEBHOOK_EVENTS) <= set(current.get("eventTypes") or [])
            and current.get("state") == "ACTIVE"
        ):
            return _webhook_summary(current, "unchanged")
        # an update also re-activates a FAILED webhook (Daily "Update webhook"); other event types stay
        path = f"/webhooks/{segment(str(current.get('uuid', '')))}"
        hook = _json_body((yield Call("update_webhook", "POST", path, json={**wanted, "eventTypes": events})))
        return _webhook_summary(hook, "updated")
