"""`JobSubmitOperator`: what the four submit operators share.

A submit operator starts one job at its service and, by default, waits for it to end.

**Parameters are checked before any request.** Each service's operator takes that service's
submission parameters as named, templated arguments: the fields of its description's
`SubmitRequest` (or, for a service not yet described so, its own list). They are validated by that
request model, the one the hook uses: when the operator is created if no argument is templated,
and always in ``execute`` after templating, before the first request. An invalid value or combination fails with `InvalidSubmissionError`, which names the
parameter to fix and is never retried (it is an `AirflowFailException`).

**Retries resume, clears rerun** (Airflow's resumable-job semantics, `airflow.sdk.ResumableJobMixin`).
Right after the service accepts the job, its id is written to the task instance's
``task_state_store`` (kept for every try of the task instance: dag run, task id, map index),
together with a fingerprint of the validated request and the task instance's ``max_tries``. A later
try reads it back first:

* **an automatic retry** (the task failed, was killed, timed out, its worker died): the recorded
  job is resumed if it is queued or running (or in a status the service never documented), and its
  result is returned without submitting if it succeeded; a new job is submitted only when it failed,
  was cancelled, or no longer exists at the service (for example deleted with ``delete_on_kill``).
  A parameter that renders differently on the retry (a presigned URL, a timestamp) does not make a
  new job: the difference is logged, and the recorded job is resumed. ``resubmit_on_change=True``
  submits a new job instead (the earlier one keeps running at the service).
* **a clear** (the UI's or REST API's "Clear", whatever state the task was in): a rerun the user
  asked for, so a new job is submitted. Airflow marks it: clearing sets the task instance's
  ``max_tries`` to ``try_number + retries`` (``clear_task_instances``), which no retry changes, so a
  record written under another ``max_tries`` belongs to an earlier run. A job of that run still
  running keeps running at the service.

With no record (the first try; or the record was removed by ``[state_store] clear_on_success``, a
deleted key, or retention) the try submits. What remains open: a worker that dies after the service
accepted the job but before its id was stored (one message to the supervisor later) leaves a job
the next try does not know about, and that try submits a second one. No service here documents
de-duplication of a resent request, so none is relied on.

``durable=False`` (from `ResumableJobMixin`) turns all of this off: every try submits a new job.

**Waiting** (``wait_for_completion=True``, the default) is the sensors' wait: deferrable, it defers
to `JobStatusTrigger` with an absolute deadline of the try's start + ``timeout``; otherwise it polls
with the sync hook every ``poll_interval`` seconds in the worker. The end is the sensors' end: the
final `JobStatus` JSON is returned (XCom ``return_value``); a state in ``failure_states`` fails with
`JobFailedError`; another terminal state skips the task. With ``wait_for_completion=False`` the task
returns the job id. Either way the job id is pushed to XCom under the key ``job_id`` as soon as it is
known (and stored).

**Kill and timeout.** None of the four services can cancel a running job. When the task is killed
(or its ``execution_timeout`` passes), and when the wait passes ``timeout``, the log says so with the
job id, and the job keeps running; a retry resumes it. `DailySubmitJobOperator` offers
``delete_on_kill=True``, which deletes the Daily job instead (also while deferred: the trigger does
it, but only once the task instance's state shows a user stopped it, never when the wait merely
moved to another triggerer); a retry then submits a new job.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import math
import time
from collections.abc import Callable, Collection, Sequence
from datetime import timedelta
from typing import Any, NoReturn, cast

from airflow.sdk import BaseOperator, Context, ResumableJobMixin, conf
from airflow.sdk.exceptions import AirflowFailException

from airflow_jobstatus.exceptions import InvalidParameterError, JobStatusError, NotFoundError
from airflow_jobstatus.models import JobState, JobStatus
from airflow_jobstatus.models.common import DEFAULT_MAX_XCOM_BYTES
from airflow_jobstatus.operators.resubmit import (
    BACKOFF_INITIAL,
    BACKOFF_MAX,
    DEFAULT_CONCURRENCY_WAIT,
    submit_while_limited,
)
from airflow_jobstatus.push.submit import fill_push_webhook
from airflow_jobstatus.services import SubmitRequest
from airflow_jobstatus.shared.budget import wait_for_budget_until
from airflow_jobstatus.shared.concurrency import JOB_HOLD, free_slot, submit_in_slot
from airflow_jobstatus.triggers.job import DEFAULT_MAX_CONSECUTIVE_ERRORS
from airflow_jobstatus.waiting import DEFER_TIMEOUT_GRACE, FAILURE_STATES, JobWaitMixin

DEFAULT_TIMEOUT = 7 * 24 * 3600.0
"""Seconds a try waits for its job by default (as long as a sensor)."""
STATE_KEY = "airflow_jobstatus_job"
"""The task_state_store key of the submitted job. Renaming it breaks the resume of tries in flight."""
ACTIVE_STATES = frozenset({JobState.QUEUED.value, JobState.RUNNING.value, JobState.UNKNOWN.value})
TEMPLATE_MARKERS = ("{{", "{%", "{#")


class InvalidSubmissionError(InvalidParameterError, AirflowFailException):
    """A submission parameter is wrong; nothing was sent, and retrying cannot help (no retry)."""

    hint = ""


class JobWaitTimeoutError(JobStatusError):
    """The job had not ended when the submit operator's ``timeout`` passed (the task may be retried)."""


def is_literal(value: Any) -> bool:
    """True when ``value`` is final at DAG-parse time: no Jinja template, no XComArg or other object."""
    if value is None or isinstance(value, bool | int | float | bytes):
        return True
    if isinstance(value, str):
        return not any(marker in value for marker in TEMPLATE_MARKERS)
    if isinstance(value, list | tuple):
        return all(is_literal(item) for item in value)
    if isinstance(value, dict):
        return all(is_literal(k) and is_literal(v) for k, v in value.items())
    return False


def as_int(value: Any) -> Any:
    """A rendered template gives strings: ``"5"`` -> 5. Anything else is left for validation."""
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return value


def as_bool(value: Any) -> Any:
    """``"true"``/``"false"`` (any case) from a rendered template -> bool; anything else unchanged."""
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return value


def as_structure(value: Any) -> Any:
    """A dict or list rendered to JSON text (e.g. pulled from XCom) -> the dict or list."""
    if isinstance(value, str) and value.strip()[:1] in ("{", "["):
        try:
            return json.loads(value)
        except (ValueError, RecursionError):  # not JSON, or nested too deep to parse: left as text
            return value
    return value


def need_structure(value: Any, name: str, kind: type[dict[Any, Any]] | type[list[Any]], service: str) -> Any:
    """``value`` as a dict or list (JSON text is parsed); `InvalidParameterError` naming the fix otherwise."""
    value = as_structure(value)
    if value is None or isinstance(value, kind):
        return value
    raise InvalidParameterError(
        f"{name} must be a {kind.__name__}, got {type(value).__name__} {value!r:.80}",
        service=service,
        operation="submit_job",
        hint=f"Pass a {kind.__name__}; a Jinja template renders text, so render JSON (e.g. "
        "'{{ ti.xcom_pull(...) | tojson }}') or create the DAG with render_template_as_native_obj=True",
    )


def check_sendable(kwargs: dict[str, Any], service: str) -> None:
    """Every submission value must go out as strict JSON.

    httpx encodes request bodies with ``allow_nan=False``: bytes, NaN, infinities or arbitrary
    objects would otherwise fail at send time with an untyped error that names no parameter.
    """
    for name, value in kwargs.items():
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError, RecursionError):
            raise InvalidParameterError(
                f"{name} must be text, a finite number, true/false, or a list or dict of those, "
                f"got {type(value).__name__} {value!r:.80}",
                service=service,
                operation="submit_job",
            ) from None


def fingerprint(service: str, request: Any) -> str:
    """A stable digest of a validated request: tells whether a recorded job is the one asked for."""
    text = json.dumps([service, request], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def max_tries(context: Context) -> int | None:
    """The task instance's ``max_tries``: fixed for all automatic retries, raised by every clear.

    Airflow's ``clear_task_instances`` sets it to ``try_number + retries`` (a cleared running task
    gets the same when it has stopped); nothing else changes it after the task instance exists.
    """
    value = getattr(context.get("ti"), "max_tries", None)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def as_seconds(value: float | timedelta, name: str) -> float:
    seconds = value.total_seconds() if isinstance(value, timedelta) else value
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not math.isfinite(seconds):
        raise InvalidParameterError(f"{name} must be a number of seconds or a timedelta, got {value!r}")
    return float(seconds)


def params_doc(request: type[SubmitRequest], conn_id_kwarg: str) -> str:
    """The ``:param:`` lines of an operator whose parameters are ``request``'s fields."""
    lines = [
        f":param {name}: {field.description or ''} (templated)"
        for name, field in request.parameters().items()
    ]
    conn_type = conn_id_kwarg.removesuffix("_conn_id")
    lines.append(f":param {conn_id_kwarg}: a ``{conn_type}`` connection. Default ``{conn_type}_default``.")
    return "\n".join(f"    {line}" for line in lines)


DELETE_ON_KILL_DOC = """:param delete_on_kill: delete the job when the task is killed or its ``timeout`` passes (the
        service has no cancel; deleting removes the job and its outputs in the service's storage). While
        deferred, a kill deletes only once the task instance is marked failed/skipped or cleared, never
        when the wait moved to another triggerer or the state cannot be read. Default False: the job
        keeps running and a retry resumes it."""
CONCURRENCY_WAIT_DOC = """:param concurrency_wait_timeout: seconds (or a timedelta) to keep submitting again while the
        service answers 429 because the account runs its maximum number of concurrent jobs. The operator
        waits 15 s, doubling up to 5 minutes between attempts, and logs each wait with the reason;
        past this bound (or the ``timeout``) the task fails with `ConcurrencyLimitError`. Default
        1 hour. With ``[jobstatus] redis_url`` set, a submission first waits (as long) for a free
        slot under the connection's ``max_concurrent_jobs``, shared by every worker (README)."""


def _request_init(
    cls: type[JobSubmitOperator], request: type[SubmitRequest], own: Callable[..., None]
) -> Any:
    """An ``__init__`` whose keyword parameters are ``request``'s fields, the connection id and
    those of the class's ``own`` ``__init__`` (operator-only parameters such as ``delete_on_kill``;
    it receives ``conn_id`` and passes it on, and cannot read the fields yet).

    Airflow reads an operator's parameters from its ``__init__`` signature (required arguments,
    ``default_args``, ``expand``), so the signature is built from them.
    """
    spec = cls.spec
    fields = request.parameters()

    def __init__(self: JobSubmitOperator, **kwargs: Any) -> None:
        conn_id = kwargs.pop(spec.conn_id_kwarg, spec.default_conn_id)
        delete_on_kill = kwargs.pop("delete_on_kill", False) if spec.can_delete_jobs else False
        if not isinstance(delete_on_kill, bool):
            raise InvalidParameterError(f"delete_on_kill must be True or False, got {delete_on_kill!r}")
        wait = kwargs.pop("concurrency_wait_timeout", DEFAULT_CONCURRENCY_WAIT) if spec.job_concurrency else 0
        if (wait := as_seconds(wait, "concurrency_wait_timeout")) < 0:
            raise InvalidParameterError(
                f"concurrency_wait_timeout must not be negative, got {wait!r}", service=spec.display_name
            )
        values = {
            name: kwargs.pop(name) if name in kwargs else field.get_default(call_default_factory=True)
            for name, field in fields.items()
        }
        own(self, conn_id=conn_id, **kwargs)
        self.delete_on_kill = delete_on_kill
        self.concurrency_wait_timeout = wait
        for name, value in values.items():
            setattr(self, name, value)
        setattr(self, spec.conn_id_kwarg, conn_id)
        self._check_literal_parameters()

    keyword = inspect.Parameter.KEYWORD_ONLY
    parameters = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    for name, field in fields.items():
        default = (
            inspect.Parameter.empty if field.is_required() else field.get_default(call_default_factory=True)
        )
        parameters.append(inspect.Parameter(name, keyword, default=default, annotation=field.annotation))
    parameters.append(
        inspect.Parameter(spec.conn_id_kwarg, keyword, default=spec.default_conn_id, annotation=str)
    )
    if spec.can_delete_jobs:
        parameters.append(inspect.Parameter("delete_on_kill", keyword, default=False, annotation=bool))
    if spec.job_concurrency:
        parameters.append(
            inspect.Parameter(
                "concurrency_wait_timeout",
                keyword,
                default=DEFAULT_CONCURRENCY_WAIT,
                annotation=float | timedelta,
            )
        )
    if own is not JobSubmitOperator.__init__:
        skip = {"self", "conn_id", *fields, spec.conn_id_kwarg, "delete_on_kill", "concurrency_wait_timeout"}
        parameters += [
            p.replace(kind=keyword)
            for p in inspect.signature(own).parameters.values()
            if p.name not in skip and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]
    parameters.append(inspect.Parameter("kwargs", inspect.Parameter.VAR_KEYWORD))
    __init__.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    __init__.__qualname__ = f"{cls.__qualname__}.__init__"
    return __init__


class JobSubmitOperator(JobWaitMixin, ResumableJobMixin, BaseOperator):
    """Submit a job to one service and (by default) wait for it. Subclasses set `spec` (the
    hook is the class it names); where the spec has a `SubmitRequest`, its fields are the parameters (see
    `__init_subclass__`), otherwise the subclass lists them and writes `_submission`.

    :param wait_for_completion: wait for the job to end and return its final `JobStatus` JSON
        (default). False: return the job id once the job is submitted.
    :param deferrable: wait in the triggerer instead of a worker slot. Default: the ``[operators]
        default_deferrable`` setting.
    :param poll_interval: seconds (or a timedelta) between checks of the job. Default: the service's
        (30; DeepAffects 7200, for its 100 requests/day).
    :param timeout: seconds (or a timedelta) one try waits for the job before it fails with
        `JobWaitTimeoutError` (the job keeps running; a retry resumes it). Default 7 days.
    :param failure_states: which terminal job states fail the task: any of ``"failed"`` and
        ``"cancelled"`` (default both). A terminal state not listed skips the task.
    :param max_consecutive_errors: transient failed checks in a row that fail the task. Default 10.
    :param max_xcom_bytes: the most JSON, in bytes, of the status returned (XCom ``return_value``);
        over it ``raw`` (the service response) is left out and ``raw_omitted`` says so. Default
        65536; 0 never returns ``raw``; None returns it whatever its size.
    :param durable: record the job in the task state store so that a retry resumes it (default).
        False: every try submits a new job.
    :param resubmit_on_change: on a retry whose submission parameters render differently from those
        of the recorded job, submit a new job (the recorded one keeps running). Default False: the
        difference is logged and the recorded job is resumed, so a value that changes on every
        render (a presigned URL, a timestamp) never makes a second, billable job.
    """

    template_fields: Sequence[str] = ()
    ui_color = "#d7ecf0"
    external_id_key = STATE_KEY
    delete_on_kill: bool = False
    """A parameter of operators whose service can delete a job (its description's ``can_delete_jobs``: Daily)."""
    concurrency_wait_timeout: float = 0.0
    """Seconds a submission waits for a free job slot or submits again after a 429, for a service whose
    account limits concurrent jobs (its description's ``job_concurrency``: a parameter, default 1 hour)."""
    concurrency_backoff_initial: float = BACKOFF_INITIAL
    concurrency_backoff_max: float = BACKOFF_MAX

    def __init__(
        self,
        *,
        conn_id: str,
        wait_for_completion: bool = True,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poll_interval: float | timedelta | None = None,
        timeout: float | timedelta = DEFAULT_TIMEOUT,
        failure_states: Collection[str] = FAILURE_STATES,
        max_consecutive_errors: int = DEFAULT_MAX_CONSECUTIVE_ERRORS,
        resubmit_on_change: bool = False,
        max_xcom_bytes: int | None = DEFAULT_MAX_XCOM_BYTES,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.resubmit_on_change = resubmit_on_change
        self.wait_for_completion = wait_for_completion
        self.deferrable = deferrable
        interval = as_seconds(
            self.spec.default_poll_interval if poll_interval is None else poll_interval, "poll_interval"
        )
        self.timeout = as_seconds(timeout, "timeout")
        if self.timeout <= 0:
            raise InvalidParameterError(
                f"timeout must be positive, got {timeout!r}", service=self.spec.display_name
            )
        self._set_wait(
            conn_id=conn_id,
            poll_interval=interval,
            failure_states=failure_states,
            max_consecutive_errors=max_consecutive_errors,
            max_xcom_bytes=max_xcom_bytes,
        )
        self._job_id: str | None = None
        self._xcom_job_id: str | None = None
        self._deadline = 0.0
        self._request: dict[str, Any] = {}
        self._fingerprint = ""
        self._prior: JobStatus | None = None
        self._result: Any = None
        self._have_result = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """A class that sets a `spec` with a `SubmitRequest` gets its parameters from the request's fields."""
        super().__init_subclass__(**kwargs)
        request = cls.__dict__["spec"].submit_request if "spec" in cls.__dict__ else None
        if request is not None:
            if "template_fields" not in cls.__dict__:
                cls.template_fields = tuple(request.parameters())
            own = cls.__dict__.get("__init__", JobSubmitOperator.__init__)
            cls.__init__ = _request_init(cls, request, own)  # type: ignore[method-assign]
            cls.__doc__ = f"{cls.__doc__ or ''}\n{params_doc(request, cls.spec.conn_id_kwarg)}"
            if cls.spec.can_delete_jobs:
                cls.__doc__ += f"\n    {DELETE_ON_KILL_DOC}"
            if cls.spec.job_concurrency:
                cls.__doc__ += f"\n    {CONCURRENCY_WAIT_DOC}"

    # ------------------------------------------------------------------ what each service defines

    def _submission(self) -> tuple[dict[str, Any], Any]:
        """(keyword arguments of the hook's ``submit_job``, the validated service request).

        Reads the (rendered) parameters and validates them with the service's `SubmitRequest`;
        raises `InvalidParameterError` naming what to fix.
        """
        model = self.spec.submit_request
        if model is None:
            raise NotImplementedError
        request = model.of(self.spec.display_name, {name: getattr(self, name) for name in model.parameters()})
        call = request.call()
        return {"request": request}, {
            "method": call.method,
            "path": call.path,
            "params": call.params,
            "json": call.json,
        }

    def _send(self, submit_kwargs: dict[str, Any], context: Context) -> str:
        """Submit the job, its request completed for sending (`_completed`); return its id.

        Where the account limits concurrent jobs, a submission refused at the limit is sent again
        (`submit_while_limited`), within ``concurrency_wait_timeout`` and the try's ``timeout``.
        """
        hook = cast(Any, self.hook)
        request = self._completed(submit_kwargs["request"])
        if self.spec.job_concurrency is None:
            return str(hook.submit_job(request=request))
        limit = self.concurrency_wait_timeout
        if self._deadline:
            limit = min(limit, max(0.0, self._deadline - time.time()))
        return submit_while_limited(
            lambda: str(hook.submit_job(request=request)),
            limit_seconds=limit,
            log=self.log,
            service=self.spec.display_name,
            initial=self.concurrency_backoff_initial,
            maximum=self.concurrency_backoff_max,
        )

    def _completed(self, request: SubmitRequest) -> SubmitRequest:
        """``request`` with the push webhook in the description's `WebhookSpec.submit_field` (unless
        given), its `required_at_send` fields checked, and new values of its `set_at_send` fields."""
        request = fill_push_webhook(request, self.spec, self.hook)
        webhook = self.spec.webhook
        for name, hint in request.required_at_send.items():
            if getattr(request, name) is None:
                push = (
                    f"; or configure push completion ([jobstatus] webhook_base_url and the connection's "
                    f"{webhook.scheme.extra}; README 'Push completion')"
                    if webhook is not None and name == webhook.submit_field
                    else ""
                )
                raise InvalidSubmissionError(
                    f"{name} is required to send a {self.spec.display_name} job: {hint}{push}"
                )
        fresh = {name: new() for name, new in request.set_at_send.items()}
        for name, value in fresh.items():
            # logged before the request: a job whose id never reached the task state store can be found
            self.log.info("Submitting %s %s %s", self.spec.display_name, name, value)
        # not validated again: a push URL is this provider's own, and its token stays out of errors
        return request.model_copy(update=fresh)

    def _delete(self, job_id: str) -> None:
        """Delete the job at the service (only where the description has ``can_delete_jobs``)."""
        cast(Any, self.hook).delete_job(job_id)

    # ------------------------------------------------------------------ validation

    def _validated(self) -> tuple[dict[str, Any], Any]:
        try:
            submission = self._submission()
            sendable = {k: v for k, v in submission[0].items() if not isinstance(v, SubmitRequest)}
            check_sendable(sendable, self.spec.display_name)  # a SubmitRequest checks its own fields
            return submission
        except InvalidSubmissionError:
            raise
        except InvalidParameterError as exc:
            raise InvalidSubmissionError(str(exc)) from None

    def _check_literal_parameters(self) -> None:
        """At construction: validate now when no submission parameter is templated."""
        if all(is_literal(getattr(self, name)) for name in self.template_fields):
            self._validated()

    # ------------------------------------------------------------------ execute

    @property
    def job_ref(self) -> str:
        if not self._job_id:
            raise InvalidParameterError("no job is known yet", service=self.spec.display_name)
        return self._job_id

    def execute(self, context: Context) -> Any:
        self._deadline = time.time() + self.timeout
        self._request, request = self._validated()  # after templating, before any request
        self._fingerprint = fingerprint(self.spec.name, request)
        # With shared limits, a spent account budget delays the submission (up to the timeout)
        # instead of failing it: see airflow_jobstatus.shared.budget.
        with wait_for_budget_until(time.monotonic() + self.timeout):
            return self.execute_resumable(context)

    def _known(self, job_id: str, context: Context) -> None:
        """The job of this try is known (and stored): remember it, and push it to XCom once."""
        self._job_id = job_id
        if self._xcom_job_id == job_id:
            return
        ti = context.get("ti")
        if ti is not None:
            ti.xcom_push(key="job_id", value=job_id)
        self._xcom_job_id = job_id

    # ------------------------------------------------------------------ ResumableJobMixin

    def submit_job(self, context: Context) -> dict[str, Any]:
        """Submit the job; return the record that goes to the task state store."""
        job_id = self._submit(context)
        self.log.info("Submitted %s job %s", self.spec.display_name, job_id)
        return {"job_id": job_id, "request": self._fingerprint, "max_tries": max_tries(context)}

    def _submit(self, context: Context) -> str:
        """`_send`, after waiting for a free slot where the account limits concurrent jobs
        (`airflow_jobstatus.shared.concurrency`; only with ``[jobstatus] redis_url``)."""
        if self.spec.job_concurrency is None:
            return self._send(self._request, context)
        remaining = max(0.0, self._deadline - time.time())
        return submit_in_slot(
            self.spec,
            lambda: self.hook.get_connection(self.conn_id),
            lambda: self._send(self._request, context),
            wait_limit=min(self.concurrency_wait_timeout, remaining),
            hold=min(JOB_HOLD, remaining) if remaining > 0 else JOB_HOLD,
            log=self.log,
        )

    def _job_ended(self, job_id: str | None) -> None:
        """Free the ended (or deleted) job's slot at once instead of at its expiry."""
        if job_id and self.spec.job_concurrency is not None:
            free_slot(self.spec, lambda: self.hook.get_connection(self.conn_id), job_id)

    def _finish(self, status: JobStatus) -> dict[str, Any]:
        if status.is_terminal:
            self._job_ended(self._job_id)
        return super()._finish(status)

    def get_job_status(self, external_id: Any, context: Context) -> str:
        """The state of the job an earlier try recorded, or why this try submits a new one."""
        display = self.spec.display_name
        record = external_id if isinstance(external_id, dict) else {}
        job_id = record.get("job_id")
        if not isinstance(job_id, str) or not job_id:
            self.log.warning("Ignoring an unreadable job record in the task state store: %r", external_id)
            return "unreadable"
        recorded_max_tries, current_max_tries = record.get("max_tries"), max_tries(context)
        if (
            recorded_max_tries is not None
            and current_max_tries is not None
            and recorded_max_tries != current_max_tries
        ):
            self.log.warning(
                "The task was cleared after %s job %s was submitted: submitting a new job for the rerun "
                "(if job %s still runs, it keeps running at the service)",
                display,
                job_id,
                job_id,
            )
            return "cleared"
        if record.get("request") != self._fingerprint:
            if self.resubmit_on_change:
                self.log.warning(
                    "The submission parameters rendered differently than for %s job %s, submitted by an "
                    "earlier try: submitting a new job (resubmit_on_change=True)",
                    display,
                    job_id,
                )
                return "changed"
            self.log.warning(
                "The submission parameters rendered differently than for %s job %s, submitted by an "
                "earlier try; resuming that job with its own parameters (pass resubmit_on_change=True "
                "to submit a new job when they change)",
                display,
                job_id,
            )
        try:
            status = self.hook.get_job(job_id)
        except NotFoundError:
            self.log.warning(
                "%s job %s, submitted by an earlier try, no longer exists at the service: submitting a new job",
                display,
                job_id,
            )
            return "missing"
        self._prior = status
        state = status.state.value
        if state in ACTIVE_STATES:
            self.log.info(
                "Resuming %s job %s submitted by an earlier try (service status %r) instead of submitting again",
                display,
                job_id,
                status.raw_status,
            )
        elif state == JobState.SUCCEEDED.value:
            self.log.info("%s job %s, submitted by an earlier try, has already succeeded", display, job_id)
        else:
            self.log.warning(
                "%s job %s, submitted by an earlier try, ended %s (service status %r): submitting a new job",
                display,
                job_id,
                state,
                status.raw_status,
            )
        return state

    def is_job_active(self, status: str) -> bool:
        return status in ACTIVE_STATES

    def is_job_succeeded(self, status: str) -> bool:
        return status == JobState.SUCCEEDED.value

    def poll_until_complete(self, external_id: Any, context: Context) -> Any:
        """Wait for the job (defer, or poll here); return what the task returns."""
        job_id = external_id["job_id"]
        self._known(job_id, context)
        if not self.wait_for_completion:
            result: Any = job_id
        elif self.deferrable:
            remaining = max(0.0, self._deadline - time.time())
            self.log.info(
                "Deferring until %s job %s ends (poll every %.0fs, timeout %.0fs)",
                self.spec.display_name,
                job_id,
                self.poll_interval,
                remaining,
            )
            self.defer(
                trigger=self._trigger(self._deadline, delete_on_kill=self.delete_on_kill),
                method_name="execute_complete",
                kwargs={"job_id": job_id},
                timeout=timedelta(seconds=remaining + DEFER_TIMEOUT_GRACE),
            )
        else:
            result = self._poll()
        self._result, self._have_result = result, True
        return result

    def get_job_result(self, external_id: Any, context: Context) -> Any:
        if self._have_result:
            return self._result
        # an earlier try's job that has already succeeded
        job_id = external_id["job_id"]
        self._known(job_id, context)
        if not self.wait_for_completion or self._prior is None:
            return job_id
        return self._finish(self._prior)

    # ------------------------------------------------------------------ waiting

    def _poll(self) -> dict[str, Any]:
        """Wait in the worker, checking every ``poll_interval`` seconds until the deadline."""
        status: JobStatus | None = None
        while True:
            remaining = self._deadline - time.time()
            if remaining <= 0:
                last = f" (last status {status.raw_status!r})" if status is not None else ""
                self._timed_out(f"{self.spec.display_name} job {self.job_ref} had not finished{last}")
            time.sleep(min(self.poll_interval, remaining))
            checked = self._check()
            if checked is None:
                continue
            status = checked
            if status.is_terminal:
                return self._finish(status)
            self.log.info("%s job %s is %s", self.spec.display_name, status.job_id, status.raw_status)

    def execute_complete(self, context: Context, event: Any = None, job_id: str | None = None) -> Any:
        """Resume from `JobStatusTrigger`: validate the event, then succeed, fail, skip or time out.

        ``job_id`` comes from the deferral's kwargs; where those are not kept (``dag.test()`` passes
        only the event), the job recorded in the task state store is the job.
        """
        self._job_id = job_id or self._recorded_job_id(context)
        return self._resume(event)

    def _recorded_job_id(self, context: Context) -> str | None:
        store = context.get("task_state_store") if self.durable else None
        record = store.get(self.external_id_key) if store is not None else None
        job_id = record.get("job_id") if isinstance(record, dict) else None
        return job_id if isinstance(job_id, str) and job_id else None

    def _expected_job_id(self) -> str | None:
        return self._job_id

    # ------------------------------------------------------------------ ends without the job's end

    def _timed_out(self, message: str) -> NoReturn:
        deleted = self._abandon(f"timed out after waiting {self.timeout:.0f}s for the job")
        hint = (
            "The job was deleted (delete_on_kill=True): a retry submits a new job"
            if deleted
            else "The job keeps running at the service: a retry of this task resumes it; raise "
            "'timeout' if jobs need longer"
        )
        raise JobWaitTimeoutError(
            f"the wait timed out (timeout {self.timeout:.0f}s): {message}",
            service=self.spec.display_name,
            hint=hint,
        )

    def on_kill(self) -> None:
        if self._job_id:
            self._abandon("was killed")

    def _abandon(self, what: str) -> bool:
        """Say that the job keeps running (no service can cancel), or delete it if asked; True if deleted."""
        display, job_id = self.spec.display_name, self._job_id
        if self.delete_on_kill and job_id:
            try:
                self._delete(job_id)
                self._job_ended(job_id)
            except Exception as exc:
                self.log.error(
                    "The task %s; deleting %s job %s (delete_on_kill=True) failed: %s",
                    what,
                    display,
                    job_id,
                    exc,
                )
                return False
            self.log.warning(
                "The task %s: deleted %s job %s (delete_on_kill=True; %s has no cancel)",
                what,
                display,
                job_id,
                display,
            )
            return True
        extra = "; pass delete_on_kill=True to delete it instead" if self._can_delete() else ""
        self.log.warning(
            "The task %s. %s cannot cancel a running job: job %s keeps running at the service%s",
            what,
            display,
            job_id,
            extra,
        )
        return False

    def _can_delete(self) -> bool:
        return self.spec.can_delete_jobs
