"""The ``[jobstatus]`` configuration section that switches push completion on and tunes it.

Every option is read through ``airflow.sdk.conf`` (so ``AIRFLOW__JOBSTATUS__<OPTION>`` environment
variables work) each time `load_config` is called; nothing is cached here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from airflow_jobstatus.exceptions import InvalidParameterError
from airflow_jobstatus.services import SERVICES, SignedWebhook, WebhookSpec
from airflow_jobstatus.shared.redis import SECTION, read_redis_url

DEFAULT_EVENT_TTL = 86400.0
"""Seconds a received event is kept in Redis for waits that register (or restart) later."""
DEFAULT_PUSH_POLL_INTERVAL = 600.0
"""Safety-net poll interval (seconds) of a wait while push is healthy, when none is configured."""
DEFAULT_REPLAY_WINDOW: float = SignedWebhook.replay_window
"""How far (seconds) a signed webhook's timestamp may be from the receiver's clock, by default."""

WEBHOOKS: dict[str, WebhookSpec] = {s.name: s.webhook for s in SERVICES.values() if s.webhook is not None}
"""The services that document a completion webhook (Wasabi AiR documents none: it keeps polling)."""
PUSH_SERVICES = tuple(WEBHOOKS)
DEFAULT_MAX_BODY = {service: webhook.max_body for service, webhook in WEBHOOKS.items()}
"""Largest webhook body (bytes) read per service (its description's `WebhookSpec.max_body`)."""


@dataclass(frozen=True)
class PushConfig:
    redis_url: str | None = None
    """Unset: push is off and every wait polls exactly as without this feature."""
    webhook_base_url: str | None = None
    """Public base URL the services call, e.g. ``https://airflow.example.com/jobstatus``."""
    event_ttl: float = DEFAULT_EVENT_TTL
    push_poll_interval: dict[str, float] = field(default_factory=dict)
    replay_window: float | None = None
    """``webhook_replay_window``; None: each `SignedWebhook`'s own ``replay_window``."""
    max_body: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_MAX_BODY))

    @property
    def enabled(self) -> bool:
        return bool(self.redis_url)

    def poll_interval(self, service: str) -> float:
        """The safety-net interval of a wait on ``service`` while push is healthy."""
        return self.push_poll_interval.get(service, DEFAULT_PUSH_POLL_INTERVAL)

    def __repr__(self) -> str:
        # The Redis URL may carry a password: never print it.
        return f"PushConfig(enabled={self.enabled}, webhook_base_url={self.webhook_base_url!r})"


def _positive(option: str, raw: str | None, default: float) -> float:
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise InvalidParameterError(
            f"[{SECTION}] {option} must be a positive number of seconds or bytes, got {raw!r}",
            hint=f"Set it, e.g. AIRFLOW__{SECTION.upper()}__{option.upper()}={default:g}, or unset it.",
        )
    return value


def load_config() -> PushConfig:
    """Read ``[jobstatus]``; a bad value raises `InvalidParameterError` naming the option."""
    from airflow.sdk import conf

    def get(option: str) -> str | None:
        value = conf.get(SECTION, option, fallback=None)
        return value if value is None else str(value)

    redis_url = read_redis_url()
    base = (get("webhook_base_url") or "").strip().rstrip("/") or None
    if base is not None and not base.startswith(("https://", "http://")):
        raise InvalidParameterError(
            f"[{SECTION}] webhook_base_url must be an http(s) URL, got {base!r}",
            hint="Use the public URL of the api-server's /jobstatus app, e.g. https://airflow.example.com/jobstatus.",
        )
    default_interval = _positive("push_poll_interval", get("push_poll_interval"), DEFAULT_PUSH_POLL_INTERVAL)
    intervals = {
        service: _positive(
            f"push_poll_interval_{service}", get(f"push_poll_interval_{service}"), default_interval
        )
        for service in PUSH_SERVICES
    }
    max_body = {
        service: int(_positive(f"webhook_max_body_{service}", get(f"webhook_max_body_{service}"), size))
        for service, size in DEFAULT_MAX_BODY.items()
    }
    window = get("webhook_replay_window")
    replay_window = (
        _positive("webhook_replay_window", window, DEFAULT_REPLAY_WINDOW) if (window or "").strip() else None
    )
    return PushConfig(
        redis_url=redis_url,
        webhook_base_url=base,
        event_ttl=_positive("event_ttl", get("event_ttl"), DEFAULT_EVENT_TTL),
        push_poll_interval=intervals,
        replay_window=replay_window,
        max_body=max_body,
    )
