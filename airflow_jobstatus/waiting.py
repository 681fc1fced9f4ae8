"""Waiting for a job on the worker side: what the job sensors and the submit operators share.

`JobWaitMixin` is mixed into `JobSensor` and `JobSubmitOperator`. It gives a task that waits for one
job of one service:

* ``_check()``: one check with the sync hook. Permanent errors (credentials, unknown job, refused
  parameter, missing connection) fail at once; transient ones are counted, and
  ``max_consecutive_errors`` in a row fail the task. An ``unknown`` status is logged once.
* ``_finish(status)``: a terminal status ends the task: the final `JobStatus` as JSON on success
  (``raw`` left out over ``max_xcom_bytes``, see `xcom_value`), `JobFailedError` for a state in
  ``failure_states``, a skip for a terminal state left out of it.
* ``_trigger(deadline)``: the `JobStatusTrigger` to defer to.
* ``_resume(event)``: the trigger's event, validated with `parse_event` (anything outside the
  versioned vocabulary fails closed), then finished as above; ``timeout`` goes to ``_timed_out``,
  which each task type defines (a sensor times out for good, a submit operator can be retried).
  An event carries the status only: for a success the full status (with ``raw``) is fetched once,
  here in the worker, unless ``max_xcom_bytes=0`` says it would not be returned anyway.

Under ``soft_fail`` (sensors only) every failure skips the task instead.
"""

from __future__ import annotations

from collections.abc import Collection
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn

from airflow.sdk.exceptions import AirflowSkipException

from airflow_jobstatus.exceptions import (
    InvalidParameterError,
    JobFailedError,
    JobStatusError,
    RequestBudgetExhaustedError,
    is_permanent,
)
from airflow_jobstatus.hooks.base import JobServiceHook
from airflow_jobstatus.models import JobState, JobStatus
from airflow_jobstatus.models.common import DEFAULT_MAX_XCOM_BYTES, xcom_value
from airflow_jobstatus.services import ServiceSpec
from airflow_jobstatus.triggers.events import parse_event
from airflow_jobstatus.triggers.job import JobStatusTrigger, check_wait_parameters

if TYPE_CHECKING:
    from airflow.sdk.types import Logger

FAILURE_STATES: tuple[str, ...] = ("failed", "cancelled")
"""The terminal states that can count as failure (``succeeded`` never does)."""
DEFER_TIMEOUT_GRACE = 300.0
"""Airflow's own deferral timeout is set this long after the trigger's deadline: a safety net only,
so that the trigger's ``timeout`` event (with its message) normally ends the wait."""


def check_max_xcom_bytes(max_xcom_bytes: int | None, *, service: str) -> int | None:
    """``max_xcom_bytes`` checked: a whole number of bytes (0 or more), or None for no cap."""
    if max_xcom_bytes is None or (
        isinstance(max_xcom_bytes, int) and not isinstance(max_xcom_bytes, bool) and max_xcom_bytes >= 0
    ):
        return max_xcom_bytes
    raise InvalidParameterError(
        f"max_xcom_bytes must be a whole number of bytes (0 or more) or None, got {max_xcom_bytes!r}",
        service=service,
        hint="None returns the full status whatever its size (pair it with an object-storage XCom backend)",
    )


def check_failure_states(failure_states: Collection[str], *, service: str) -> tuple[str, ...]:
    """``failure_states`` as a tuple; `InvalidParameterError` for anything but failed/cancelled."""
    if isinstance(failure_states, str):
        failure_states = (failure_states,)
    states = tuple(failure_states)
    unknown = sorted(set(states) - set(FAILURE_STATES))
    if unknown:
        raise InvalidParameterError(
            f"failure_states may hold only {', '.join(FAILURE_STATES)}, got {unknown}",
            service=service,
        )
    return states


class JobWaitMixin:
    """Checking, finishing and resuming a wait for one job. Subclasses set `spec` (`hook_class` is
    the class it names).

    The task sets ``conn_id``, ``poll_interval``, ``failure_states`` and ``max_consecutive_errors``,
    and defines `job_ref` (the job waited for) and `_timed_out`.
    """

    spec: ClassVar[ServiceSpec]
    hook_class: ClassVar[type[JobServiceHook]]

    conn_id: str
    poll_interval: float
    failure_states: tuple[str, ...]
    max_consecutive_errors: int
    soft_fail: bool
    max_xcom_bytes: int | None = DEFAULT_MAX_XCOM_BYTES
    _consecutive_errors: int = 0
    _unknown_logged: bool = False

    if TYPE_CHECKING:
        log: Logger

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "spec" in cls.__dict__ and "hook_class" not in cls.__dict__:
            cls.hook_class = cls.spec.load_hook()

    def _set_wait(
        self,
        *,
        conn_id: str,
        poll_interval: float,
        failure_states: Collection[str],
        max_consecutive_errors: int,
        max_xcom_bytes: int | None,
    ) -> None:
        """Set and check what every wait is given (its job id is checked once known)."""
        display = self.spec.display_name
        self.conn_id = conn_id
        self.poll_interval = poll_interval
        self.failure_states = check_failure_states(failure_states, service=display)
        self.max_xcom_bytes = check_max_xcom_bytes(max_xcom_bytes, service=display)
        self.max_consecutive_errors = max_consecutive_errors
        check_wait_parameters(
            service=self.spec.name,
            conn_id=conn_id,
            job_id="-",  # templated or not submitted yet
            poll_interval=poll_interval,
            max_consecutive_errors=max_consecutive_errors,
        )

    @cached_property
    def hook(self) -> JobServiceHook:
        return self.hook_class(**{self.spec.conn_id_kwarg: self.conn_id})

    @property
    def job_ref(self) -> str:
        """The job waited for (subclasses)."""
        raise NotImplementedError

    def _expected_job_id(self) -> str | None:
        """The job a trigger event must be about (None: not known, not checked)."""
        return self.job_ref

    def _timed_out(self, message: str) -> NoReturn:
        """The wait passed its deadline (subclasses: raise)."""
        raise NotImplementedError

    def _fail(self, error: BaseException) -> NoReturn:
        """Raise ``error``, or skip under ``soft_fail``."""
        if getattr(self, "soft_fail", False):
            raise AirflowSkipException(f"Skipping due to soft_fail: {error}") from error
        raise error

    def _finish(self, status: JobStatus) -> dict[str, Any]:
        """A terminal status: the XCom value on success; raise or skip otherwise."""
        if status.succeeded:
            self.log.info("%s job %s succeeded", self.spec.display_name, status.job_id)
            value = xcom_value(status, self.max_xcom_bytes)
            if "raw_omitted" in value:
                self.log.warning("%s job %s: %s", self.spec.display_name, status.job_id, value["raw_omitted"])
            return value
        detail = status.error or "the service gave no error message"
        if status.state.value in self.failure_states:
            self._fail(
                JobFailedError(
                    f"the job ended {status.state.value} (service status {status.raw_status!r}): {detail}",
                    service=self.spec.display_name,
                    job_id=status.job_id,
                )
            )
        raise AirflowSkipException(
            f"{self.spec.display_name} job {status.job_id} ended {status.state.value} "
            f"(service status {status.raw_status!r}: {detail}); skipped because failure_states="
            f"{list(self.failure_states)} leaves it out"
        )

    def _check(self) -> JobStatus | None:
        """One check with the sync hook; None after a transient error (counted)."""
        try:
            status = self.hook.get_job(self.job_ref)
        except Exception as exc:
            if is_permanent(exc):  # wrong credentials, unknown job, bad parameter, missing connection
                self._fail(exc)
            if not isinstance(exc, JobStatusError):
                raise
            if isinstance(exc, RequestBudgetExhaustedError):
                return None  # nothing was sent: wait on until the budget refills (logged once by the limiter)
            self._consecutive_errors += 1
            if self._consecutive_errors >= self.max_consecutive_errors:
                self._fail(
                    JobStatusError(
                        f"gave up after {self._consecutive_errors} consecutive failed checks "
                        f"(max_consecutive_errors={self.max_consecutive_errors}); last error: {exc}",
                        service=self.spec.display_name,
                        job_id=self.job_ref,
                    )
                )
            self.log.warning(
                "Checking the job failed (%d in a row, %d allowed); trying again: %s",
                self._consecutive_errors,
                self.max_consecutive_errors,
                exc,
            )
            return None
        self._consecutive_errors = 0
        if status.state is JobState.UNKNOWN and not self._unknown_logged:
            self._unknown_logged = True
            self.log.warning(
                "%s job %s reports the undocumented status %r: not a success, waiting on",
                self.spec.display_name,
                status.job_id,
                status.raw_status,
            )
        return status

    def _trigger(self, deadline: float, *, delete_on_kill: bool = False) -> JobStatusTrigger:
        """The trigger to defer to; its error budget is what this try has not used yet."""
        return JobStatusTrigger(
            service=self.spec.name,
            conn_id=self.conn_id,
            job_id=self.job_ref,
            deadline=deadline,
            poll_interval=self.poll_interval,
            max_consecutive_errors=max(1, self.max_consecutive_errors - self._consecutive_errors),
            delete_on_kill=delete_on_kill,
        )

    def _full_status(self, job: JobStatus) -> JobStatus:
        """The succeeded job of an event (status only) with the service response, fetched here once."""
        if self.max_xcom_bytes == 0:
            return job
        try:
            full = self.hook.get_job(job.job_id)
        except Exception as exc:  # the job succeeded: its status is returned whatever this fetch meets
            self.log.warning(
                "%s job %s succeeded; fetching its result failed, returning its status without it: %s",
                self.spec.display_name,
                job.job_id,
                exc,
            )
            return job.model_copy(update={"raw_omitted": f"fetching the service response failed: {exc}"})
        return full if full.succeeded and full.job_id == job.job_id else job

    def _resume(self, event: Any) -> dict[str, Any]:
        """Resume from `JobStatusTrigger`: validate the event, then succeed, fail, skip or time out."""
        try:
            parsed = parse_event(event, job_id=self._expected_job_id())
        except JobStatusError as exc:
            self._fail(exc)
        if parsed.job is not None:
            return self._finish(self._full_status(parsed.job) if parsed.job.succeeded else parsed.job)
        if parsed.kind == "timeout":
            self._timed_out(parsed.message)
        self._fail(parsed.error())  # the typed error the trigger met (e.g. AuthenticationError)
