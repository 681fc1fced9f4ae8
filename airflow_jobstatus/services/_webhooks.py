"""A service's completion webhook: how it proves its origin, what the receiver reads, how it is set up."""

from __future__ import annotations

import base64
import binascii
import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar

import pydantic

WebhookId = Annotated[str, pydantic.StringConstraints(min_length=1, max_length=256)]
"""A job id as a webhook body carries it (bounded: the receiver stores it in Redis keys)."""


class WebhookBody(pydantic.BaseModel):
    """A service's webhook body: the fields the receiver reads, strictly typed; other fields ignored.

    Only ids are read: a webhook is a hint and the service's own status answer decides the outcome.
    """

    model_config = pydantic.ConfigDict(strict=True, extra="ignore", frozen=True)

    id_field: ClassVar[str] = "id"
    """The field holding the job's id; dotted for a nested one (``payload.id``)."""
    kind_field: ClassVar[str | None] = None
    """The field saying what happened (an event type, a status); None: one kind of body only."""

    def job_id(self) -> str:
        """The id the webhook names its job by (`ServiceSpec.webhook_job_id` of a wait's id)."""
        return str(functools.reduce(getattr, self.id_field.split("."), self))

    def kind(self) -> str:
        """What happened, lower-case: the same kind again for a job is a re-delivery."""
        return str(getattr(self, self.kind_field)).lower() if self.kind_field else "posted"

    def in_flight(self) -> bool:
        """True for a documented in-flight change, which cannot end a wait: it wakes none."""
        return False


@dataclass(frozen=True)
class SignedWebhook:
    """Bodies signed with base64(HMAC-SHA256(base64decode(secret), "{timestamp}.{body}")).

    The signature and its timestamp come in two headers; the timestamp must be within the replay
    window of the receiver's clock. The connection's ``extra`` holds the base64 secret.
    """

    signature_header: str
    timestamp_header: str
    secret_hint: str
    """The fix named when the connection's secret is not base64."""
    extra: str = "webhook_secret"
    replay_window: float = 300.0
    """Seconds a timestamp may be off, when ``[jobstatus] webhook_replay_window`` is unset."""
    label: str = "Webhook HMAC secret"
    description: str = "The base64 secret the service signs its webhooks with; unsigned webhooks are refused."

    def problem(self, value: str) -> str | None:
        """Why the connection's secret cannot verify anything, or None."""
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            return f"is not base64; {self.secret_hint}"
        return None


@dataclass(frozen=True)
class TokenInUrl:
    """Unsigned bodies, authenticated by an unguessable per-connection token in the URL's query.

    The token is in the query, not the path: Airflow's access log masks the values of query
    parameters with secret-like names such as ``token``, and prints the path in clear.
    """

    extra: str = "webhook_token"
    query_param: str = "token"
    min_length: int = 16
    """A shorter token is refused (it would be guessable)."""
    label: str = "Webhook token"
    description: str = (
        "An unguessable token (e.g. 32+ random URL-safe characters) that the webhook URL carries "
        "as ?token=...; webhooks without it are refused."
    )

    def problem(self, value: str) -> str | None:
        """Why the connection's token is refused, or None."""
        if len(value) < self.min_length:
            return (
                f"is shorter than {self.min_length} characters, too easy to guess; "
                "use e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
        return None


@dataclass(frozen=True)
class WebhookRegistration:
    """A webhook set up once per account through the service's own API (Daily's ``/webhooks``),
    created or fixed by ``hook.ensure_webhook()`` (`airflow_jobstatus.push.registration`)."""

    path: str
    """Lists the account's webhooks (``GET``: a list, or ``{list_field: [...]}``) and creates one (``POST``)."""
    item_path: str
    """Updates one (``POST``); ``{id}`` is its ``id_field``."""
    events: tuple[str, ...]
    """The event types subscribed, in the order the service shows them."""
    fixed: Mapping[str, Any] = field(default_factory=dict)
    """Fields sent with every create and update (Daily's ``retryType``)."""
    id_field: str = "uuid"
    url_field: str = "url"
    secret_field: str = "hmac"
    """Carries the connection's secret (the scheme's ``extra``): the service signs with it."""
    events_field: str = "eventTypes"
    state_field: str = "state"
    active: str = "ACTIVE"
    list_field: str = "data"
    account: str = "account"
    """What owns the webhooks (Daily: a domain), for messages."""
    one_per_account: bool = False
    """The account has one webhook: it is updated, never a second one created."""


@dataclass(frozen=True)
class WebhookSpec:
    """A service's completion webhook, as push completion's receiver and operators use it.

    The receiver's route is ``/webhooks/{service name}/{conn_id}``: users configured it at the service.
    """

    scheme: SignedWebhook | TokenInUrl
    """How a webhook proves it comes from the service."""
    body: type[WebhookBody]
    """The body model: what the receiver reads from a verified body."""
    max_body: int
    """Largest body read (bytes) when ``[jobstatus] webhook_max_body_<service>`` is unset."""
    submit_field: str | None = None
    """The `SubmitRequest` field the submit operator fills with the receiver's URL (None: the
    webhook is set up once at the service instead)."""
    event_types: frozenset[str] = frozenset()
    """When set, only bodies whose ``type_field`` is one of these are hints; other events (and the
    service's unsigned verification call) are answered 200 and wake nothing."""
    type_field: str = "type"
    registration: WebhookRegistration | None = None
    """Set up once per account through the service's API (None: nothing to set up there)."""
