"""`JobServiceHook`: what every service hook shares.

A service hook describes its operations as *plans*: generators that yield `Call`s and receive
their results, ending with the operation's value. This base runs a plan synchronously (a sync
client per hook instance) or asynchronously (a client shared per event loop and connection), so
each operation is written once and has both forms. Connections are read with Airflow's async API
in async code, cached per event loop for a few minutes, and their secrets are registered with the
masker as soon as they are read.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
import weakref
from collections.abc import AsyncIterator, Generator, Iterator, Mapping
from typing import Any, ClassVar, TypeVar

import pydantic
from airflow.sdk import BaseHook

from airflow_jobstatus.exceptions import (
    ConcurrencyLimitError,
    InvalidParameterError,
    JobStatusError,
    MalformedResponseError,
    NotFoundError,
    RateLimitedError,
)
from airflow_jobstatus.http.call import segment
from airflow_jobstatus.http.client import Call, ServiceClient
from airflow_jobstatus.http.inflight import await_shared, start_shared
from airflow_jobstatus.http.links import link_problem
from airflow_jobstatus.http.redaction import register_secret, scrub
from airflow_jobstatus.http.settings import HttpSettings
from airflow_jobstatus.models import (
    ApiDocument,
    DownloadLink,
    JobOutput,
    JobState,
    JobStatus,
    normalize_state,
)
from airflow_jobstatus.services import ServiceSpec, SubmitRequest
from airflow_jobstatus.services._reads import Listing

log = logging.getLogger(__name__)
T = TypeVar("T")
M = TypeVar("M", bound=pydantic.BaseModel)
PAGE_SIZE = 100
"""Records per page `list_jobs` asks for unless told."""
Plan = Generator[Call, Any, T]
"""An operation: yields the calls it needs, receives each result, returns its value."""

CONNECTION_CACHE_SECONDS = 300.0
"""How long async callers reuse a connection read (credential rotation is picked up after this)."""


def _unusable(exc: ValueError) -> str:
    """A short, secret-free account of why a response could not be translated."""
    if isinstance(exc, pydantic.ValidationError):
        detail = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in exc.errors()[:5]
        )
    else:
        detail = str(exc)
    return f"the response could not be used: {scrub(detail)[:300]}"


def _json_object(content: bytes) -> dict[str, Any]:
    """The JSON object in ``content``, or {} when it holds none."""
    try:
        document = json.loads(content)
    except (ValueError, RecursionError):
        return {}
    return document if isinstance(document, dict) else {}


class _ClientCache:
    """Per event loop: connection id -> (client, read at), with one read in flight per connection."""

    def __init__(self) -> None:
        self.entries: dict[tuple[str, str], tuple[ServiceClient, float]] = {}
        self.pending: dict[tuple[str, str], asyncio.Task[ServiceClient]] = {}


_client_caches: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _ClientCache] = (
    weakref.WeakKeyDictionary()
)


class JobServiceHook(BaseHook):
    """Base of the four service hooks. Subclasses set `spec` and describe their operations."""

    spec: ClassVar[ServiceSpec]
    conn_name_attr: ClassVar[str]
    default_conn_name: ClassVar[str]
    conn_type: ClassVar[str]
    hook_name: ClassVar[str]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """A class that sets `spec` gets Airflow's hook attributes from it (unless it sets them)."""
        super().__init_subclass__(**kwargs)
        spec = cls.__dict__.get("spec")
        if spec is not None:
            for name, value in (
                ("conn_name_attr", spec.conn_id_kwarg),
                ("default_conn_name", spec.default_conn_id),
                ("conn_type", spec.conn_type),
                ("hook_name", spec.display_name),
            ):
                if name not in cls.__dict__:
                    setattr(cls, name, value)

    def __init__(self, conn_id: str | None = None, **kwargs: Any) -> None:
        conn_id = kwargs.pop(self.spec.conn_id_kwarg, None) or conn_id
        lag = self.spec.outputs_lag
        self.outputs_wait = 0.0
        """Seconds `get_outputs` reads a finished job's lagging outputs again (the description's `OutputsLag`)."""
        if lag is not None:
            wait = kwargs.pop(lag.parameter, lag.default_wait)
            if isinstance(wait, bool) or not isinstance(wait, int | float) or wait < 0:
                raise InvalidParameterError(
                    f"{lag.parameter} must be a non-negative number of seconds, got {wait!r}",
                    service=self.spec.display_name,
                )
            self.outputs_wait = float(wait)
        super().__init__(**kwargs)
        self.conn_id = conn_id or self.default_conn_name
        self._client: ServiceClient | None = None
        self._options: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.conn_name_attr}={self.conn_id!r})"

    # ------------------------------------------------------------- connection -> client

    def _auth(self, conn: Any, extra: dict[str, Any]) -> tuple[Any, list[str]]:
        """Return (httpx.Auth, secrets to redact) for this connection: the description's `auth`."""
        if self.spec.auth is None:
            raise NotImplementedError
        return self.spec.auth.build(lambda field: self._require(getattr(conn, field), field))

    def _base_url(self, conn: Any) -> str:
        host = (conn.host or "").strip() or self.spec.default_host
        if not host:
            raise InvalidParameterError(
                f"connection '{self.conn_id}' has no host",
                service=self.spec.display_name,
                hint=f"Set the {self.spec.fields['host'].label} in the connection (host field)",
            )
        if "://" not in host:
            host = f"https://{host}"
        if conn.port and host.count(":") < 2:
            scheme, rest = host.split("://", 1)
            name, _, path = rest.partition("/")
            host = f"{scheme}://{name}:{conn.port}" + (f"/{path}" if path else "")
        return host.rstrip("/")

    def _require(self, value: str | None, field: str) -> str:
        if not value:
            label = self.spec.fields[field].label
            raise InvalidParameterError(
                f"connection '{self.conn_id}' has no {label}",
                service=self.spec.display_name,
                hint=f"Set the {label} ({field} field) in the Airflow connection '{self.conn_id}'",
            )
        return value

    def _make_client(self, conn: Any, extra: dict[str, Any]) -> ServiceClient:
        register_secret(conn.password)
        for name in ("webhook_secret", "webhook_token"):  # push completion's secrets (airflow_jobstatus.push)
            register_secret(extra[name] if isinstance(extra.get(name), str) else None)
        settings = HttpSettings.from_extra(
            extra,
            conn_type=self.spec.conn_type,
            default_max_rps=self.spec.default_max_rps,
            default_max_rpm=self.spec.default_max_rpm,
            default_max_per_day=self.spec.default_max_per_day,
        )
        auth, secrets = self._auth(conn, extra)
        client = ServiceClient(
            service=self.spec.display_name,
            conn_id=self.conn_id,
            base_url=self._base_url(conn),
            settings=settings,
            auth=auth,
            secrets=secrets,
            error_text=self.spec.error_body.text_of if self.spec.error_body is not None else None,
        )
        if self.spec.error_body is not None:
            client.error_types = self.spec.error_body.handled_as
        bind = getattr(auth, "bind", None)
        if bind is not None:  # an auth that sends requests of its own (a token exchange) sends them here
            bind(client)
        self._configure(client, conn, extra)
        return client

    def _configure(self, client: ServiceClient, conn: Any, extra: dict[str, Any]) -> None:
        """The options plans read: each of the description's extra fields (its default when unset)."""
        client.options["allow_http_links"] = client.settings.allow_http_links
        for extra_field in self.spec.extra_fields:
            value = extra.get(extra_field.name) or extra_field.default
            if extra_field.enum is not None and value not in extra_field.enum:
                raise InvalidParameterError(
                    f"connection extra {extra_field.name!r} must be "
                    f"{' or '.join(repr(v) for v in extra_field.enum)}, got {value!r}",
                    service=self.spec.display_name,
                )
            client.options[extra_field.name] = value

    def get_client(self) -> ServiceClient:
        """The sync client of this hook instance (reads the connection once)."""
        if self._client is None:
            conn = self.get_connection(self.conn_id)
            self._client = self._make_client(conn, dict(conn.extra_dejson))
        return self._client

    async def aget_client(self) -> ServiceClient:
        """The client shared by every caller of this connection in the running event loop."""
        loop = asyncio.get_running_loop()
        cache = _client_caches.get(loop)
        if cache is None:
            cache = _client_caches[loop] = _ClientCache()
        key = (type(self).__name__, self.conn_id)
        entry = cache.entries.get(key)
        if entry is not None and time.monotonic() - entry[1] < CONNECTION_CACHE_SECONDS:
            return entry[0]
        pending = cache.pending.get(key)
        if pending is None:
            # A task of its own: a caller cancelled mid-read cancels only its own wait.
            pending = cache.pending[key] = start_shared(self._read_client(cache, key), f"read {self.conn_id}")
        return await await_shared(pending, service=self.spec.display_name, operation="get_connection")

    async def _read_client(self, cache: _ClientCache, key: tuple[str, str]) -> ServiceClient:
        try:
            conn = await BaseHook.aget_connection(self.conn_id)
            reader = getattr(conn, "aextra_dejson", None)
            extra = dict(await reader()) if reader is not None else dict(conn.extra_dejson)
            client = self._make_client(conn, extra)
            cache.entries[key] = (client, time.monotonic())
            return client
        finally:
            cache.pending.pop(key, None)

    # ------------------------------------------------------------- running plans

    @property
    def options(self) -> dict[str, Any]:
        """Service-specific connection settings (set by `_configure`), for plans to read."""
        return self._options

    def run(self, plan: Plan[T], *, deadline: float | None = None) -> T:
        """Run a plan with the sync client."""
        client = self.get_client()
        self._options = client.options
        try:
            call = next(plan)
            while True:
                try:
                    result = client.execute(call, deadline=deadline)
                except JobStatusError as exc:
                    call = self._advance(plan, call, error=exc)  # the plan may handle it (e.g. a 404)
                    continue
                call = self._advance(plan, call, result)
        except StopIteration as stop:
            return stop.value

    async def arun(self, plan: Plan[T], *, deadline: float | None = None) -> T:
        """Run a plan with the shared async client."""
        client = await self.aget_client()
        self._options = client.options
        try:
            call = next(plan)
            while True:
                try:
                    result = await client.aexecute(call, deadline=deadline)
                except JobStatusError as exc:
                    call = self._advance(plan, call, error=exc)
                    continue
                call = self._advance(plan, call, result)
        except StopIteration as stop:
            return stop.value

    def _advance(
        self, plan: Plan[Any], call: Call, result: Any = None, *, error: JobStatusError | None = None
    ) -> Call:
        """Hand a call's result (or typed error) to the plan; return its next call.

        A response can match its model's shape and still break a rule the plan applies while
        translating it (an empty id, an ``s3://`` path without a key, another job's metadata):
        that ``ValueError`` (pydantic's included) becomes a `MalformedResponseError`.
        """
        try:
            return plan.throw(error) if error is not None else plan.send(result)
        except JobStatusError:
            raise
        except ValueError as exc:
            raise self.malformed(call.operation, _unusable(exc), job_id=call.job_id) from None

    def usable_id(self, operation: str, value: str, *, what: str = "job id", forbidden: str = "") -> str:
        """An id the service returned, checked before anything relies on it.

        Later calls put it in a URL path and `_check_job_id` strips it, so an empty id, one with
        surrounding blanks, control characters or (for composite references) ``forbidden``
        characters would address another job or none: that is a `MalformedResponseError`.
        """
        if (
            not value.strip()
            or value != value.strip()
            or not value.isprintable()
            or any(ch in value for ch in forbidden)
        ):
            raise self.malformed(operation, f"the service returned an unusable {what}: {value[:80]!r}")
        return value

    def malformed(self, operation: str, problem: str, *, job_id: str | None = None) -> MalformedResponseError:
        return MalformedResponseError(
            problem, service=self.spec.display_name, operation=operation, job_id=job_id
        )

    # ------------------------------------------------------------- the operations every service has

    def _get_job(self, job_id: str) -> Plan[JobStatus]:
        """``GET`` the job as the description's `JobRead` says."""
        read = self.spec.job
        if read is None:
            raise NotImplementedError(f"{self.spec.display_name} describes no JobRead")
        job = yield read.call("get_job", job_id)
        return read.status(job, self.options, job_id)

    def get_job(self, job_id: str) -> JobStatus:
        """The job's normalized status."""
        return self.run(self._get_job(self._check_job_id(job_id)))

    async def aget_job(self, job_id: str) -> JobStatus:
        """Async twin of `get_job`."""
        return await self.arun(self._get_job(self._check_job_id(job_id)))

    def _get_status(self, job_id: str) -> Plan[JobStatus]:
        read = self.spec.poll
        if read is None:
            return (yield from self._get_job(job_id))
        job = yield read.call("get_status", job_id)
        return read.status(job, self.options, job_id)

    def get_status(self, job_id: str) -> JobStatus:
        """The job's state from the description's cheaper ``poll`` read where it has one (outputs may
        be left out: `get_job` lists them), else `get_job`."""
        return self.run(self._get_status(self._check_job_id(job_id)))

    async def aget_status(self, job_id: str) -> JobStatus:
        """Async twin of `get_status`."""
        return await self.arun(self._get_status(self._check_job_id(job_id)))

    def submit_request(self, request: Any = None, **fields: Any) -> SubmitRequest:
        """The validated `SubmitRequest` of this service, from one or from its fields.

        ``request`` may also be the value of the request's positional field (Wasabi's ``name``).
        """
        model = self.spec.submit_request
        display = self.spec.display_name
        if model is None:
            raise NotImplementedError(f"{display} describes no SubmitRequest")
        if isinstance(request, model):
            if fields:
                raise InvalidParameterError(
                    f"pass a {model.__name__} or its fields, not both (got {sorted(fields)})",
                    service=display,
                    operation="submit_job",
                )
            return request
        if request is not None:
            if model.positional is None:
                raise InvalidParameterError(
                    f"request must be a {model.__name__}, got {type(request).__name__}",
                    service=display,
                    operation="submit_job",
                    hint="Pass the request's fields as keyword arguments",
                )
            fields = {model.positional: request, **fields}
        return model.of(display, fields)

    def _submit(self, request: SubmitRequest) -> Plan[str]:
        """Send the request; where the account limits concurrent jobs, the service's 429 is that limit."""
        for name, hint in request.required_at_send.items():
            if getattr(request, name) is None:
                raise InvalidParameterError(
                    f"{name} is required to send a {self.spec.display_name} job, got None",
                    service=self.spec.display_name,
                    operation="submit_job",
                    hint=hint,
                )
        call = request.call()
        if self.spec.job_concurrency is not None:
            call = dataclasses.replace(call, hints={429: ConcurrencyLimitError.hint})
        try:
            response = yield call
        except RateLimitedError as exc:
            if self.spec.job_concurrency is None or exc.http_status != 429:
                raise  # not the service's answer: the connection's own request budget
            raise ConcurrencyLimitError.like(exc) from None
        return self.usable_id("submit_job", request.job_ref(response))

    def submit_job(self, request: Any = None, **fields: Any) -> str:
        """Submit a job, given as the service's `SubmitRequest` or its fields; return its reference."""
        return self.run(self._submit(self.submit_request(request, **fields)))

    async def asubmit_job(self, request: Any = None, **fields: Any) -> str:
        """Async twin of `submit_job`."""
        return await self.arun(self._submit(self.submit_request(request, **fields)))

    def _get_outputs(self, job: JobStatus) -> Plan[list[JobOutput]]:
        """The description's `OutputsRead` where the outputs still need it; else the status's outputs."""
        read = self.spec.outputs_read
        if read is None or not read.needed(job):
            return job.outputs
        path = read.path.format(id=segment(job.job_id))
        response = yield Call(
            "get_outputs", "GET", path, read.model, job_id=job.job_id, hints=read.hints or None
        )
        outputs = read.outputs(job, response, self.options)
        for output in outputs:
            url = output.location.url if isinstance(output.location, DownloadLink) else None
            if url and (problem := link_problem(url, allow_http=bool(self.options.get("allow_http_links")))):
                raise MalformedResponseError(
                    f"refused a download link: {problem}; links must be https URLs with a host",
                    service=self.spec.display_name,
                    operation="get_outputs",
                    job_id=job.job_id,
                    hint="Set 'allow_http_links' in the connection's extra only for a test server such as the emulator",
                )
        return outputs

    def get_outputs(self, job: JobStatus | str) -> list[JobOutput]:
        """Where each output of a finished job lives, resolved for reading now.

        Where the description has an `OutputsLag`, a 404 is read again until ``outputs_wait`` is spent.
        """
        status = job if isinstance(job, JobStatus) else self.get_job(job)
        started, attempt = time.monotonic(), 0
        while True:
            try:
                return self.run(self._get_outputs(status))
            except NotFoundError as exc:
                time.sleep(self._lag_delay(status, attempt, started, exc))
                attempt += 1

    async def aget_outputs(self, job: JobStatus | str) -> list[JobOutput]:
        """Async twin of `get_outputs`."""
        status = job if isinstance(job, JobStatus) else await self.aget_job(job)
        started, attempt = time.monotonic(), 0
        while True:
            try:
                return await self.arun(self._get_outputs(status))
            except NotFoundError as exc:
                await asyncio.sleep(self._lag_delay(status, attempt, started, exc))
                attempt += 1

    def _lag_delay(self, job: JobStatus, attempt: int, started: float, exc: NotFoundError) -> float:
        """Seconds to wait before reading lagging outputs again, or the error that ends the wait."""
        lag = self.spec.outputs_lag
        if lag is None:
            raise exc
        delay = lag.delays[min(attempt, len(lag.delays) - 1)]
        if time.monotonic() + delay > started + self.outputs_wait:
            raise NotFoundError(
                f"the job {job.raw_status} but its {lag.what} was still not found after {self.outputs_wait:g} s "
                f"({attempt + 1} reads)",
                service=self.spec.display_name,
                operation="get_outputs",
                status_code=exc.http_status,
                job_id=job.job_id,
                hint=f"{self.spec.display_name} lists a job's {lag.what} shortly after the job ends; retry the "
                f"task, or raise the hook's {lag.parameter}",
            ) from None
        log.info(
            "%s job %s ended but its %s answers 404 (not listed yet); reading it again in %.1f s",
            self.spec.display_name,
            job.job_id,
            lag.what,
            delay,
        )
        return delay

    def _get_document(self, output: JobOutput) -> Plan[bytes]:
        location = output.location
        if not isinstance(location, ApiDocument):
            raise InvalidParameterError(
                f"output {output.name!r} is not a document served by the API ({location.kind})",
                service=self.spec.display_name,
            )
        response = yield Call("get_document", "GET", location.path, params=location.params or None)
        key = self.spec.documents.get(output.name)
        if key is not None and not isinstance(_json_object(response.content).get(key), list):
            raise self.malformed("get_document", f"the {output.name} document holds no {key!r} list")
        return response.content

    def get_document(self, output: JobOutput) -> bytes:
        """The bytes of an output that the service's API serves (Symbl's conversation documents)."""
        return self.run(self._get_document(output))

    async def aget_document(self, output: JobOutput) -> bytes:
        return await self.arun(self._get_document(output))

    def _delete(self, job_id: str) -> Plan[None]:
        """``DELETE`` on the job's path, where the description has ``can_delete_jobs`` (refused at
        once otherwise, before the connection is read)."""
        if self.spec.can_delete_jobs and self.spec.job is not None:
            return self._send_delete(self.spec.job.path.format(id=segment(job_id)), job_id)
        raise InvalidParameterError(
            f"{self.spec.display_name} cannot delete a job",
            service=self.spec.display_name,
            operation="delete_job",
            job_id=job_id,
            hint="Only services whose description has can_delete_jobs (Daily) offer delete_on_kill",
        )

    def _send_delete(self, path: str, job_id: str) -> Plan[None]:
        yield Call("delete_job", "DELETE", path, job_id=job_id)

    def delete_job(self, job_id: str) -> None:
        """Delete the job at the service (and its outputs in the service's storage), where it can."""
        self.run(self._delete(self._check_job_id(job_id)))

    async def adelete_job(self, job_id: str) -> None:
        """Async twin of `delete_job`."""
        await self.arun(self._delete(self._check_job_id(job_id)))

    def ensure_webhook(self, base_url: str | None = None, *, replace: bool = False) -> dict[str, str]:
        """Create, or check and fix, the account's webhook feeding push completion, where the
        description has a `WebhookRegistration` (`airflow_jobstatus.push.registration`)."""
        from airflow_jobstatus.push.registration import ensure_webhook

        return ensure_webhook(self, base_url, replace=replace)

    def _test_connection(self) -> Plan[str]:
        """One record of the description's list endpoint: the credentials are accepted."""
        listing, read = self.spec.listing, self.spec.job
        probe = getattr(self.get_client().auth, "probe", None)  # a request the auth makes itself
        if listing is not None:
            params = {listing.size: 1, listing.cursor: 1 if listing.numbered else None}
            yield Call("test_connection", "GET", listing.path, listing.page, params=params)
        elif probe is not None:  # a token exchange: the credentials were accepted
            yield probe()
        elif read is not None:  # a job that cannot exist: its 404 says the credentials were accepted
            try:
                yield dataclasses.replace(read.call("test_connection", "airflow-connection-test"), model=None)
            except NotFoundError:
                pass
        else:
            raise NotImplementedError(f"{self.spec.display_name} describes no Listing or JobRead")
        return f"Connected to {self.spec.display_name}: {self.spec.connected}"

    def test_connection(self) -> tuple[bool, str]:
        """For the UI's Test button: (ok, reason)."""
        try:
            message = self.run(self._test_connection(), deadline=time.monotonic() + 30)
        except JobStatusError as exc:
            return False, str(exc)
        except Exception as exc:  # the UI must get an answer, not a traceback
            return False, f"{type(exc).__name__}: {exc}"
        return True, message

    @property
    def token_source(self) -> Any:
        """The auth's token source (a token exchange's token, shared in the process), or None."""
        return getattr(self.get_client().auth, "source", None)

    def _check_job_id(self, job_id: str) -> str:
        # non-printable: control characters, or lone surrogates that cannot even be encoded in a URL
        if not isinstance(job_id, str) or not job_id.strip() or not job_id.isprintable():
            raise InvalidParameterError(
                f"job_id must be a non-empty string of printable characters, got {job_id!r}",
                service=self.spec.display_name,
                hint="Pass the id the service returned when the job was submitted",
            )
        return job_id.strip()


class ListingHookMixin(JobServiceHook):
    """The description's `Listing`: every page of the list endpoint (Daily, Wasabi), sync and async.

    ``list_jobs(page_size=100, **filters)`` takes the listing's filters as keywords; a poller reads
    `_list_states` (id, state and service status of each job, newest first).
    """

    @property
    def listing(self) -> Listing:
        if self.spec.listing is None:
            raise NotImplementedError(f"{self.spec.display_name} describes no Listing")
        return self.spec.listing

    def _page(
        self, model: type[M], cursor: Any, page_size: int, params: Mapping[str, Any]
    ) -> Plan[tuple[M, Any]]:
        """One page and the next page's cursor (None after the last page)."""
        listing = self.listing
        cursor = (cursor or 1) if listing.numbered else cursor
        query = {listing.size: page_size, listing.cursor: cursor, **params}
        page = yield Call("list_jobs", "GET", listing.path, model, params=query)
        records = getattr(page, listing.records)
        if len(records) < page_size:
            return page, None
        # the last id is the next page's cursor: it must survive being put in a URL
        last = getattr(records[-1], self.spec.id_field)
        return page, cursor + 1 if listing.numbered else self.usable_id("list_jobs", last)

    def _list_page(
        self, cursor: Any, *, page_size: int = PAGE_SIZE, **filters: Any
    ) -> Plan[tuple[list[JobStatus], Any]]:
        """``(cursor, **filters)`` -> (jobs of one page, next cursor or None)."""
        listing = self.listing
        if unknown := sorted(set(filters) - set(listing.filters)):
            raise InvalidParameterError(
                f"list_jobs takes no {', '.join(unknown)}",
                service=self.spec.display_name,
                operation="list_jobs",
                hint=f"Filters: {', '.join(listing.filters) or 'none'} (and page_size)",
            )
        params = {**listing.params, **{listing.filters[k]: v for k, v in filters.items() if v is not None}}
        page, cursor = yield from self._page(listing.page, cursor, page_size, params)
        return [listing.status(record, self.options) for record in getattr(page, listing.records)], cursor

    def _list_states(
        self, cursor: Any, *, page_size: int = PAGE_SIZE
    ) -> Plan[tuple[list[tuple[str, JobState, str | None]], Any]]:
        """One page of ``(job id, state, service status)``, newest first, for a poller, without
        building a `JobStatus` per job."""
        listing = self.listing
        page, cursor = yield from self._page(listing.states, cursor, page_size, listing.newest_first)
        states = []
        for record in getattr(page, listing.records):
            raw = getattr(record, self.spec.status_field)
            states.append(
                (getattr(record, self.spec.id_field), normalize_state(raw, self.spec.status_map), raw)
            )
        return states, cursor

    def list_jobs(self, **filters: Any) -> Iterator[JobStatus]:
        """Every job of the account (matching the filters), page after page."""
        cursor: Any = None
        while True:
            jobs, cursor = self.run(self._list_page(cursor, **filters))
            yield from jobs
            if cursor is None:
                return

    async def alist_jobs(self, **filters: Any) -> AsyncIterator[JobStatus]:
        cursor: Any = None
        while True:
            jobs, cursor = await self.arun(self._list_page(cursor, **filters))
            for job in jobs:
                yield job
            if cursor is None:
                return
