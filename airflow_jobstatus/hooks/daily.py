"""Daily batch processor: ``/batch-processor`` under ``https://api.daily.co/v1``, Bearer API key."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from airflow_jobstatus.exceptions import InvalidParameterError, MalformedResponseError
from airflow_jobstatus.hooks.base import JobServiceHook, ListingHookMixin, Plan, segment
from airflow_jobstatus.http.auth import BearerAuth
from airflow_jobstatus.http.client import Call
from airflow_jobstatus.models import DownloadLink, JobOutput, JobState, JobStatus, Service
from airflow_jobstatus.models.common import normalize_state
from airflow_jobstatus.models.daily import (
    DAILY_STATUS_MAP,
    DailyAccessLinks,
    DailyJob,
    DailyJobList,
    daily_attach_links,
    daily_job_status,
)
from airflow_jobstatus.services.daily import DAILY, JOB, JOBS

PAGE_SIZE = 100
#: The event types push completion subscribes the domain's webhook to (contracts H5).
WEBHOOK_EVENTS = ["batch-processor.job-finished", "batch-processor.error"]


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


# host name labels or a bracketed IPv6 address, then an optional numeric port
_NETLOC = re.compile(r"(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?")


def link_problem(url: str, *, allow_http: bool) -> str | None:
    """Why a download link from the service is refused, or None when it may be fetched.

    Presigned links are plain ASCII ``https://host/...`` URLs. Anything else (another scheme,
    ``http`` unless the connection allows it, no host, user-info, blanks or control characters that
    parsers disagree on) is refused rather than interpreted. The link itself is never quoted: its
    query string is a credential.
    """
    if not url.isascii() or not url.isprintable() or any(ch.isspace() for ch in url):
        return "it contains blanks, control or non-ASCII characters"
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        return "it is not a valid URL"
    scheme = parts.scheme.lower()
    allowed = ("https", "http") if allow_http else ("https",)
    if scheme not in allowed or not url.lower().startswith(f"{scheme}://"):
        return f"its scheme is {scheme or 'missing'!r}"
    if not host or "\\" in parts.netloc:
        return "it names no host"
    if "@" in parts.netloc:
        return "it carries user-info before the host"
    if not _NETLOC.fullmatch(parts.netloc):
        return "its host is not a host name or IP address"
    return None


class DailyHook(ListingHookMixin, JobServiceHook):
    """Daily's batch processor: submit, status, access links, list, delete.

    :param daily_conn_id: a ``daily`` connection (password = API key; host optional).
    """

    spec = DAILY
    conn_name_attr = "daily_conn_id"
    default_conn_name = DAILY.default_conn_id
    conn_type = DAILY.conn_type
    hook_name = DAILY.display_name

    def __init__(self, daily_conn_id: str = DAILY.default_conn_id, **kwargs: Any) -> None:
        super().__init__(daily_conn_id, **kwargs)

    def _auth(self, conn: Any, extra: dict[str, Any]) -> tuple[Any, list[str]]:
        key = self._require(conn.password, "password")
        return BearerAuth(key), [key]

    def _configure(self, client: Any, conn: Any, extra: dict[str, Any]) -> None:
        storage = extra.get("output_storage") or "daily"
        if storage not in ("daily", "customer"):
            raise InvalidParameterError(
                f"connection extra 'output_storage' must be 'daily' or 'customer', got {storage!r}",
                service="Daily",
            )
        client.options["output_storage"] = storage
        client.options["allow_http_links"] = client.settings.allow_http_links

    # --- status

    def _get_job(self, job_id: str) -> Plan[JobStatus]:
        job = yield Call("get_job", "GET", JOB.format(id=segment(job_id)), DailyJob, job_id=job_id)
        return daily_job_status(job, storage=self.options.get("output_storage", "daily"))

    # --- list

    def _list_page(
        self, cursor: Any, *, recording_id: str | None = None, page_size: int = PAGE_SIZE
    ) -> Plan[tuple[list[JobStatus], Any]]:
        params = {"limit": page_size, "starting_after": cursor, "recordingId": recording_id}
        page = yield Call("list_jobs", "GET", JOBS, DailyJobList, params=params)
        jobs = [
            JobStatus(
                service=Service.DAILY,
                job_id=item.id,
                state=normalize_state(item.status, DAILY_STATUS_MAP),
                raw_status=item.status,
                raw=item.model_dump(mode="json", exclude_unset=True),
            )
            for item in page.data
        ]
        # the last id is the next page's cursor: it must survive being put in a URL
        next_cursor = self.usable_id("list_jobs", page.data[-1].id) if len(page.data) >= page_size else None
        return jobs, next_cursor

    def _list_states(
        self, cursor: Any, *, page_size: int = PAGE_SIZE
    ) -> Plan[tuple[list[tuple[str, JobState, str | None]], Any]]:
        """One page of ``(job id, state, service status)``, newest first, and the next cursor.

        What a poller needs from the list endpoint, without building a `JobStatus` per job.
        """
        params = {"limit": page_size, "starting_after": cursor}
        page = yield Call("list_jobs", "GET", JOBS, DailyJobList, params=params)
        states = [
            (item.id, normalize_state(item.status, DAILY_STATUS_MAP), item.status) for item in page.data
        ]
        return states, (
            self.usable_id("list_jobs", page.data[-1].id) if len(page.data) >= page_size else None
        )

    # --- outputs

    def _get_outputs(self, job: JobStatus) -> Plan[list[JobOutput]]:
        if not any(isinstance(o.location, DownloadLink) for o in job.outputs):
            return job.outputs
        links = yield Call(
            "get_outputs",
            "GET",
            JOB.format(id=segment(job.job_id)) + "/access-link",
            DailyAccessLinks,
            job_id=job.job_id,
            hints={400: "Daily serves access links only once the job is 'finished'; wait for the job first"},
        )
        resolved = daily_attach_links(job, links)
        for output in resolved.outputs:
            location = output.location
            if isinstance(location, DownloadLink) and location.url:
                self._check_link(location.url, job.job_id)
        return resolved.outputs

    def _check_link(self, url: str, job_id: str) -> None:
        problem = link_problem(url, allow_http=bool(self.options.get("allow_http_links")))
        if problem is None:
            return
        raise MalformedResponseError(
            f"refused a download link: {problem}; links must be https URLs with a host",
            service="Daily",
            operation="get_outputs",
            job_id=job_id,
            hint="Set 'allow_http_links' in the connection's extra only for a test server such as the emulator",
        )

    # --- delete

    def _delete(self, job_id: str) -> Plan[None]:
        """``delete_job``: the job and its outputs in Daily's storage (not in your bucket). No cancel."""
        yield Call("delete_job", "DELETE", JOB.format(id=segment(job_id)), job_id=job_id)

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

    # --- connection test

    def _test_connection(self) -> Plan[str]:
        yield Call("test_connection", "GET", JOBS, DailyJobList, params={"limit": 1})
        return "Connected to Daily: the API key was accepted"
