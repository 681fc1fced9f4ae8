"""Create, or check and fix, a webhook the service keeps per account (a `WebhookRegistration`).

``hook.ensure_webhook()`` and ``python -m airflow_jobstatus.push.setup <service>`` run it once per
connection: the webhook then posts its events to the receiver's route for the connection, signed
with the connection's secret (Daily: contracts H1-H5, O-H8-O-H10). The secret is never returned.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from airflow_jobstatus.exceptions import InvalidParameterError, MalformedResponseError
from airflow_jobstatus.http.call import Call, segment
from airflow_jobstatus.push.config import load_config
from airflow_jobstatus.push.submit import receiver_url
from airflow_jobstatus.services._spec import ServiceSpec
from airflow_jobstatus.services._webhooks import WebhookRegistration

SECRET_HINT = (
    "Set the connection's {extra} extra to a base64 secret, e.g. the output of "
    "python -c 'import base64, secrets; print(base64.b64encode(secrets.token_bytes(32)).decode())'."
)


def ensure_webhook(hook: Any, base_url: str | None = None, *, replace: bool = False) -> dict[str, str]:
    """Point the account's webhook at the receiver's route for ``hook``'s connection; idempotent.

    ``base_url`` defaults to ``[jobstatus] webhook_base_url``. A webhook with another URL is only
    repointed with ``replace=True`` (it may feed another application). Returns the webhook's id,
    url and state and the ``action`` (``created``, ``updated`` or ``unchanged``).
    """
    spec: ServiceSpec = hook.spec
    webhook, name = spec.webhook, spec.display_name
    if webhook is None or webhook.registration is None:
        raise InvalidParameterError(
            f"{name} has no webhook to set up", service=name, operation="ensure_webhook"
        )
    base = base_url or load_config().webhook_base_url
    if not base:
        raise InvalidParameterError(
            f"no webhook base URL: {name}'s webhook must point at the receiver",
            service=name,
            operation="ensure_webhook",
            hint="Set [jobstatus] webhook_base_url (e.g. https://airflow.example.com/jobstatus) or pass base_url.",
        )
    extra = webhook.scheme.extra
    secret = hook.get_connection(hook.conn_id).extra_dejson.get(extra)
    if not isinstance(secret, str) or not secret.strip():
        raise InvalidParameterError(
            f"connection '{hook.conn_id}' has no {extra}",
            service=name,
            operation="ensure_webhook",
            hint=SECRET_HINT.format(extra=extra),
        )
    url = receiver_url(base, spec.name, hook.conn_id)
    return hook.run(_plan(webhook.registration, name, url, secret.strip(), replace))


def _json(response: Any, name: str, path: str) -> Any:
    try:
        return response.json()
    except ValueError:
        raise MalformedResponseError(
            f"{name}'s {path} answer is not JSON", service=name, operation="ensure_webhook"
        ) from None


def _plan(
    reg: WebhookRegistration, name: str, url: str, secret: str, replace: bool
) -> Generator[Call, Any, dict[str, str]]:
    def summary(found: Any, action: str) -> dict[str, str]:
        found = found if isinstance(found, dict) else {}
        keys = (reg.id_field, reg.url_field, reg.state_field)
        return {k: str(found.get(k, "")) for k in keys} | {"action": action}

    listed = _json((yield Call("list_webhooks", "GET", reg.path)), name, reg.path)
    # O-H9: a list, or the list in an object
    hooks = listed.get(reg.list_field, []) if isinstance(listed, dict) else listed
    if not isinstance(hooks, list) or not all(isinstance(h, dict) for h in hooks):
        raise MalformedResponseError(
            f"{name}'s GET {reg.path} did not answer a list of webhooks",
            service=name,
            operation="ensure_webhook",
        )
    ours = [h for h in hooks if h.get(reg.url_field) == url] or (hooks[:1] if reg.one_per_account else [])
    wanted = {reg.url_field: url, reg.secret_field: secret, **reg.fixed}
    if not ours:
        created = yield Call(
            "create_webhook", "POST", reg.path, json={**wanted, reg.events_field: list(reg.events)}
        )
        return summary(_json(created, name, reg.path), "created")
    current = ours[0]
    if current.get(reg.url_field) != url and not replace:
        raise InvalidParameterError(
            f"the {reg.account}'s {name} webhook points at another URL ({name} has one webhook per {reg.account})",
            service=name,
            operation="ensure_webhook",
            hint=f"Pass replace=True (--replace) to point it at the Airflow receiver, or delete it in {name} first.",
        )
    subscribed = current.get(reg.events_field) or []
    if (
        all(current.get(k) == v for k, v in wanted.items())
        and set(reg.events) <= set(subscribed)
        and current.get(reg.state_field) == reg.active
    ):
        return summary(current, "unchanged")
    # an update also re-activates a failed webhook (O-H10); other event types stay subscribed
    events = list(dict.fromkeys([*subscribed, *reg.events]))
    path = reg.item_path.format(id=segment(str(current.get(reg.id_field, ""))))
    updated = yield Call("update_webhook", "POST", path, json={**wanted, reg.events_field: events})
    return summary(_json(updated, name, path), "updated")
