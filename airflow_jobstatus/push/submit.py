"""The submit side of push: the webhook URL an operator hands a service, built from configuration.

With ``[jobstatus] webhook_base_url`` set, `webhook_url` is the receiver's route for the service
and connection (``{base}/webhooks/{service}/{conn_id}``), plus ``?token=<webhook_token>`` for the
services whose webhook is a `TokenInUrl` (Symbl.ai, DeepAffects; contracts H6, H7). The token is a
secret: it (and its URL-encoded forms) is registered with the masker before the URL exists, and
the URL is never logged, pushed to XCom or put in trigger kwargs by this package.

Operators call `fill_push_webhook` at submit time only (not at DAG parse time: it reads the
connection and the configuration); it fills the description's `WebhookSpec.submit_field`. An
explicit user value always wins.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, TypeVar
from urllib.parse import quote

from airflow_jobstatus.exceptions import InvalidParameterError
from airflow_jobstatus.http.redaction import register_secret
from airflow_jobstatus.push.config import PUSH_SERVICES, WEBHOOKS, load_config
from airflow_jobstatus.services import ServiceSpec, SubmitRequest, TokenInUrl

log = logging.getLogger(__name__)

TOKENS: dict[str, TokenInUrl] = {
    service: webhook.scheme
    for service, webhook in WEBHOOKS.items()
    if isinstance(webhook.scheme, TokenInUrl) and webhook.submit_field
}
"""Services whose webhook URL, passed with each job, carries the connection's token (no signature)."""

R = TypeVar("R", bound=SubmitRequest)


def receiver_url(base_url: str, service: str, conn_id: str, token: str | None = None) -> str:
    """The receiver's URL for ``service`` and ``conn_id`` under ``base_url`` (with ``?token=``)."""
    if service not in PUSH_SERVICES:
        raise InvalidParameterError(
            f"{service!r} sends no webhooks; push completion covers {', '.join(PUSH_SERVICES)}",
            hint="Leave the webhook unset for this service: its waits poll.",
        )
    url = f"{base_url.rstrip('/')}/webhooks/{service}/{quote(conn_id, safe='')}"
    scheme = TOKENS.get(service)
    if scheme is not None:
        if not token:
            raise InvalidParameterError(
                f"connection {conn_id!r} has no {scheme.extra}, so its webhook URL cannot be built",
                hint=f"Set the connection's {scheme.extra} extra, e.g. to the output of "
                "python -c 'import secrets; print(secrets.token_urlsafe(32))'.",
            )
        for form in (token, quote(token, safe=""), quote(quote(token, safe=""), safe="")):
            register_secret(form)
        url += f"?{scheme.query_param}={quote(token, safe='')}"
    return url


def webhook_url(
    service: str, conn_id: str, extra: Mapping[str, Any], base_url: str | None = None
) -> str | None:
    """The push webhook for a submit on ``conn_id``; None when push submit is not configured.

    Configured means: ``[jobstatus] webhook_base_url`` (or ``base_url``) is set and, for Symbl.ai
    and DeepAffects, the connection has a ``webhook_token``.
    """
    base = base_url or load_config().webhook_base_url
    scheme = TOKENS.get(service)
    if not base or scheme is None:
        return None
    token = extra.get(scheme.extra)
    if not isinstance(token, str) or not token.strip():
        return None
    return receiver_url(base, service, conn_id, token.strip())


def with_push_webhook(submit_kwargs: dict[str, Any], key: str, hook: Any) -> dict[str, Any]:
    """``submit_kwargs`` with ``key`` set to the push webhook when the user gave none (blocking).

    Reads the connection only when ``[jobstatus] webhook_base_url`` is set.
    """
    if submit_kwargs.get(key):
        return submit_kwargs  # an explicit webhook wins
    base = load_config().webhook_base_url
    if not base or hook.spec.name not in TOKENS:
        return submit_kwargs
    extra = dict(hook.get_connection(hook.conn_id).extra_dejson)
    url = webhook_url(hook.spec.name, hook.conn_id, extra, base)
    if url is None:
        return submit_kwargs
    log.info(
        "Passing the push-completion webhook of connection %r to %s", hook.conn_id, hook.spec.display_name
    )
    return {**submit_kwargs, key: url}


def fill_push_webhook(request: R, spec: ServiceSpec, hook: Any) -> R:
    """``request`` with ``spec``'s `WebhookSpec.submit_field` set to the push webhook (blocking).

    Unchanged when the service takes no webhook with a job, the field is already set, or push
    submit is not configured. The request is not validated again: the URL is this provider's own,
    and its token stays out of validation errors.
    """
    webhook = spec.webhook
    field = webhook.submit_field if webhook is not None else None
    if field is None:
        return request
    filled = with_push_webhook({field: getattr(request, field)}, field, hook)[field]
    return request.model_copy(update={field: filled})
