"""`JobSensor`: what the four job sensors share.

A sensor waits for one job to end. It checks the job once at the start; a job that is already
finished never defers. Otherwise:

* ``deferrable=True`` (default: ``[operators] default_deferrable``): it defers to
  `JobStatusTrigger` with an absolute deadline of start + ``timeout`` and frees its worker slot;
  `execute_complete` validates the event and fails closed on anything unexpected.
* ``deferrable=False``: `poke()` asks the service with the sync hook, in ``mode="poke"`` (holds a
  worker slot) or ``mode="reschedule"`` (frees it between pokes).

Ends:

* the job succeeded: the task succeeds and returns the final `JobStatus` as JSON
  (``JobStatus.model_dump(mode="json")``, XCom ``return_value``);
* the job ended in one of ``failure_states`` (default ``("failed", "cancelled")``): `JobFailedError`
  with the service's own error message, the job id and the service's raw status;
* the job ended in a terminal state left out of ``failure_states`` (e.g. ``failure_states=("failed",)``
  and a cancelled Wasabi AiR job): the task is skipped;
* ``timeout`` passed: `AirflowSensorTimeout`;
* an error: permanent errors (wrong credentials, unknown job, refused parameter) fail at once;
  transient ones (429, 5xx, network, malformed responses) are retried by the HTTP core and then
  counted: ``max_consecutive_errors`` failed checks in a row fail the task (in reschedule mode the
  count restarts with each reschedule).

With ``soft_fail=True`` every failure above (job failure, timeout, error) skips the task instead, in
both modes, as `BaseSensorOperator.resume_execution` does for deferred sensors.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Collection, Sequence
from datetime import timedelta
from typing import Any, NoReturn

from airflow.sdk import BaseSensorOperator, Context, PokeReturnValue, conf
from airflow.sdk.exceptions import AirflowSensorTimeout, AirflowSkipException

from airflow_jobstatus.exceptions import InvalidParameterError
from airflow_jobstatus.models.common import DEFAULT_MAX_XCOM_BYTES
from airflow_jobstatus.triggers.job import DEFAULT_MAX_CONSECUTIVE_ERRORS
from airflow_jobstatus.waiting import DEFER_TIMEOUT_GRACE, FAILURE_STATES, JobWaitMixin

__all__ = ["DEFER_TIMEOUT_GRACE", "FAILURE_STATES", "JobSensor"]


class JobSensor(JobWaitMixin, BaseSensorOperator):
    """Wait for a job of one service to end. Subclasses set `spec`.

    :param job_id: the job to wait for (templated).
    :param poll_interval: seconds (or a timedelta) between checks; also the ``poke_interval`` of
        poke/reschedule mode. Default: the service's (30; DeepAffects 7200, for its 100 requests/day).
    :param timeout: seconds (or a timedelta) before the sensor gives up with `AirflowSensorTimeout`.
    :param deferrable: wait in the triggerer instead of a worker slot. Default: the ``[operators]
        default_deferrable`` setting.
    :param failure_states: which terminal job states fail the task: any of ``"failed"`` and
        ``"cancelled"`` (default both). A terminal state not listed skips the task.
    :param max_consecutive_errors: transient failed checks in a row that fail the task. Default 10.
    :param max_xcom_bytes: the most JSON, in bytes, of the status returned (XCom ``return_value``);
        over it ``raw`` (the service response) is left out and ``raw_omitted`` says so. Default
        65536; 0 never returns ``raw``; None returns it whatever its size.
    :param soft_fail: skip instead of failing (job failure, timeout or error).
    :param mode: ``poke`` or ``reschedule``, used when not deferrable.
    """

    template_fields: Sequence[str] = ("job_id",)
    ui_color = "#e6f1f2"

    def __init__(
        self,
        *,
        job_id: str,
        conn_id: str | None = None,
        poll_interval: float | timedelta | None = None,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        failure_states: Collection[str] = FAILURE_STATES,
        max_consecutive_errors: int = DEFAULT_MAX_CONSECUTIVE_ERRORS,
        max_xcom_bytes: int | None = DEFAULT_MAX_XCOM_BYTES,
        **kwargs: Any,
    ) -> None:
        if poll_interval is None:
            poll_interval = self.spec.default_poll_interval
        if isinstance(poll_interval, timedelta):
            poll_interval = poll_interval.total_seconds()
        kwargs.setdefault("poke_interval", poll_interval)
        super().__init__(**kwargs)
        self.job_id = job_id
        self.deferrable = deferrable
        self._consecutive_errors = 0
        self._unknown_logged = False
        self._set_wait(
            conn_id=conn_id or self.spec.default_conn_id,
            poll_interval=float(poll_interval),
            failure_states=failure_states,
            max_consecutive_errors=max_consecutive_errors,
            max_xcom_bytes=max_xcom_bytes,
        )

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """A class that sets `spec` and no ``__init__`` takes ``job_id`` and ``<conn_type>_conn_id``."""
        super().__init_subclass__(**kwargs)
        if "spec" in cls.__dict__ and "__init__" not in cls.__dict__:
            cls.__init__ = _conn_init(cls)  # type: ignore[method-assign]
            kwarg, spec = cls.spec.conn_id_kwarg, cls.spec
            cls.__doc__ = (
                f"{(cls.__doc__ or '').rstrip()}\n    :param {kwarg}: a ``{spec.conn_type}`` connection. "
                f"Default ``{spec.default_conn_id}``.\n"
            )

    @property
    def job_ref(self) -> str:
        """The rendered job id, checked."""
        job_id = self.job_id
        if not isinstance(job_id, str) or not job_id.strip():
            raise InvalidParameterError(
                f"job_id must be a non-empty string, got {job_id!r}",
                service=self.spec.display_name,
                hint="Pass the id the service returned when the job was submitted (e.g. from XCom)",
            )
        return job_id.strip()

    # ------------------------------------------------------------------ poke / reschedule

    def poke(self, context: Context) -> PokeReturnValue:
        status = self._check()
        if status is None or not status.is_terminal:
            if status is not None:
                self.log.info("%s job %s is %s", self.spec.display_name, status.job_id, status.raw_status)
            return PokeReturnValue(is_done=False)
        return PokeReturnValue(is_done=True, xcom_value=self._finish(status))

    # ------------------------------------------------------------------ deferrable

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        deadline = time.time() + self.timeout
        status = self._check()  # a job already finished never defers
        if status is not None and status.is_terminal:
            return self._finish(status)
        if status is not None:
            self.log.info(
                "%s job %s is %s; deferring (poll every %.0fs, timeout %.0fs)",
                self.spec.display_name,
                status.job_id,
                status.raw_status,
                self.poll_interval,
                self.timeout,
            )
        self.defer(
            trigger=self._trigger(deadline),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout + DEFER_TIMEOUT_GRACE),
        )

    def resume_execution(self, next_method: str, next_kwargs: dict[str, Any] | None, context: Context) -> Any:
        try:
            return super().resume_execution(next_method, next_kwargs, context)
        except AirflowSkipException as exc:
            # BaseSensorOperator re-wraps every AirflowException under soft_fail, our own skips too,
            # replacing their reason with a generic one: keep ours.
            if isinstance(exc.__cause__, AirflowSkipException):
                raise exc.__cause__ from None
            raise

    def execute_complete(self, context: Context, event: Any = None) -> dict[str, Any]:
        """Resume from `JobStatusTrigger`: validate the event, then succeed, fail, skip or time out."""
        return self._resume(event)

    def _timed_out(self, message: str) -> NoReturn:
        message = f"Sensor has timed out (timeout {self.timeout:.0f}s): {message}"
        if self.soft_fail:
            raise AirflowSkipException(message)
        raise AirflowSensorTimeout(message)


def _conn_init(cls: type[JobSensor]) -> Any:
    """``__init__(*, job_id, <conn_type>_conn_id=<default>, **kwargs)``; Airflow reads the signature
    (required arguments, ``default_args``), so it names the connection parameter."""
    spec = cls.spec

    def __init__(self: JobSensor, *, job_id: str, **kwargs: Any) -> None:
        conn_id = kwargs.pop(spec.conn_id_kwarg, spec.default_conn_id)
        JobSensor.__init__(self, job_id=job_id, conn_id=conn_id, **kwargs)
        setattr(self, spec.conn_id_kwarg, conn_id)

    keyword = inspect.Parameter.KEYWORD_ONLY
    __init__.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [
            inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD),
            inspect.Parameter("job_id", keyword, annotation=str),
            inspect.Parameter(spec.conn_id_kwarg, keyword, default=spec.default_conn_id, annotation=str),
            inspect.Parameter("kwargs", inspect.Parameter.VAR_KEYWORD),
        ]
    )
    __init__.__qualname__ = f"{cls.__qualname__}.__init__"
    return __init__
