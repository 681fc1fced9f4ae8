"""The four job sensors without servers: how each event kind and each check result ends the task."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from airflow.sdk import PokeReturnValue
from airflow.sdk.exceptions import AirflowSensorTimeout, AirflowSkipException, TaskDeferred

from airflow_jobstatus.exceptions import (
    AuthenticationError,
    InvalidParameterError,
    JobFailedError,
    JobStatusError,
    ServiceError,
)
from airflow_jobstatus.models import JobState, JobStatus
from airflow_jobstatus.sensors.base import JobSensor
from airflow_jobstatus.sensors.daily import DailyJobSensor
from airflow_jobstatus.sensors.deepaffects import DeepAffectsJobSensor
from airflow_jobstatus.sensors.symbl import SymblJobSensor
from airflow_jobstatus.sensors.wasabi import WasabiAirJobSensor
from airflow_jobstatus.triggers import job as job_module
from airflow_jobstatus.triggers.events import InvalidTriggerEvent, JobEvent, event_for_job
from airflow_jobstatus.triggers.job import JobStatusTrigger

pytestmark = pytest.mark.unit

SENSORS: list[tuple[type[JobSensor], str, str]] = [
    (DailyJobSensor, "daily_conn_id", "daily"),
    (WasabiAirJobSensor, "wasabi_air_conn_id", "wasabi_air"),
    (SymblJobSensor, "symbl_conn_id", "symbl"),
    (DeepAffectsJobSensor, "deepaffects_conn_id", "deepaffects"),
]


def job(state: str, *, service: str = "daily", job_id: str = "job-1", error: str | None = None) -> JobStatus:
    raw = {"succeeded": "finished", "failed": "error", "running": "processing", "cancelled": "cancelled"}
    return JobStatus(
        service=service, job_id=job_id, state=JobState(state), raw_status=raw.get(state, state), error=error
    )


class FakeHook:
    def __init__(self, *answers: JobStatus | Exception) -> None:
        self.answers = list(answers)
        self.calls = 0

    def get_job(self, job_id: str) -> JobStatus:
        self.calls += 1
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


def sensor(cls: type[JobSensor] = DailyJobSensor, **kwargs: Any) -> JobSensor:
    kwargs.setdefault("task_id", "wait")
    kwargs.setdefault("job_id", "job-1")
    return cls(**kwargs)


def resume(s: JobSensor, payload: Any) -> Any:
    """Resume as the worker does: through BaseSensorOperator.resume_execution."""
    return s.resume_execution("execute_complete", {"event": payload}, context={})  # type: ignore[arg-type]


# ------------------------------------------------------------------------------- construction


@pytest.mark.parametrize(("cls", "conn_kwarg", "service"), SENSORS)
def test_each_sensor_is_a_thin_subclass(cls: type[JobSensor], conn_kwarg: str, service: str) -> None:
    s = cls(
        task_id="t", job_id="{{ params.job }}", **{conn_kwarg: "my_conn"}, poll_interval=timedelta(minutes=2)
    )
    assert s.spec.name == service and s.conn_id == "my_conn" and getattr(s, conn_kwarg) == "my_conn"
    assert s.poll_interval == 120 and s.poke_interval == 120
    assert "job_id" in s.template_fields
    assert s.hook.conn_id == "my_conn" and type(s.hook) is cls.hook_class
    default = cls(task_id="t2", job_id="j")
    assert default.conn_id == f"{service}_default" and default.failure_states == ("failed", "cancelled")


def test_deferrable_default_comes_from_the_config() -> None:
    import inspect

    from airflow.sdk import conf

    default = inspect.signature(JobSensor.__init__).parameters["deferrable"].default
    assert default is conf.getboolean("operators", "default_deferrable", fallback=False)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"failure_states": ["succeeded"]},
        {"failure_states": ("running",)},
        {"max_consecutive_errors": 0},
        {"poll_interval": 0},
    ],
)
def test_invalid_parameters(kwargs: dict[str, Any]) -> None:
    with pytest.raises(InvalidParameterError):
        sensor(**kwargs)


# ------------------------------------------------------------------------------- resuming from events


def test_succeeded_event_carries_the_status_only_and_the_task_returns_the_full_status() -> None:
    done = job("succeeded").model_copy(update={"raw": {"status": "finished", "result": "r" * 500}})
    payload = event_for_job(done).to_payload()
    assert "raw" not in payload["job"] and "r" * 500 not in repr(payload)  # no body in the trigger table
    s = sensor()
    s.hook = FakeHook(done)  # type: ignore[assignment]
    value = resume(s, payload)
    assert value == done.model_dump(mode="json") and s.hook.calls == 1  # fetched once, in the worker
    assert JobStatus.model_validate(value) == done


def test_the_returned_status_is_capped_by_max_xcom_bytes() -> None:
    done = job("succeeded").model_copy(update={"raw": {"result": "r" * 70_000}})
    s = sensor()
    s.hook = FakeHook(done)  # type: ignore[assignment]
    value = resume(s, event_for_job(done).to_payload())  # default cap: 65536 bytes
    assert value["raw"] == {} and "max_xcom_bytes=65536" in value["raw_omitted"]
    assert "JobOutputsToStorageOperator" in value["raw_omitted"] and len(str(value)) < 2000
    assert JobStatus.model_validate(value).raw_omitted == value["raw_omitted"]
    s = sensor(max_xcom_bytes=None)
    s.hook = FakeHook(done)  # type: ignore[assignment]
    assert resume(s, event_for_job(done).to_payload())["raw"] == done.raw
    s = sensor(max_xcom_bytes=0)  # never returned: not even fetched
    s.hook = FakeHook(AuthenticationError("must not be called", status_code=401))  # type: ignore[assignment]
    assert resume(s, event_for_job(done).to_payload()) == job("succeeded").model_dump(mode="json")
    assert s.hook.calls == 0
    for bad in (-1, 1.5, "big", True):
        with pytest.raises(InvalidParameterError, match="max_xcom_bytes must be a whole number"):
            sensor(max_xcom_bytes=bad)


def test_a_failed_fetch_after_success_returns_the_status_and_says_why_raw_is_missing() -> None:
    s = sensor()
    s.hook = FakeHook(ServiceError("503 from Daily", status_code=503))  # type: ignore[assignment]
    value = resume(s, event_for_job(job("succeeded")).to_payload())
    assert (
        value["state"] == "succeeded" and "fetching the service response failed: 503" in value["raw_omitted"]
    )


@pytest.mark.parametrize("soft_fail", [False, True])
def test_failed_event_fails_with_the_service_message(soft_fail: bool) -> None:
    failed = job("failed", error="Error: Failed to transcribe. May be invalid audio or silent file")
    s = sensor(soft_fail=soft_fail)
    if soft_fail:
        with pytest.raises(AirflowSkipException, match="Failed to transcribe"):
            resume(s, event_for_job(failed).to_payload())
        return
    with pytest.raises(JobFailedError) as info:
        resume(s, event_for_job(failed).to_payload())
    text = str(info.value)
    assert "Failed to transcribe" in text and "job-1" in text and "'error'" in text and "Daily" in text


def test_cancelled_event_fails_or_skips_by_failure_states() -> None:
    cancelled = job("cancelled", service="wasabi_air")
    payload = event_for_job(cancelled).to_payload()
    with pytest.raises(JobFailedError, match="cancelled"):
        resume(sensor(WasabiAirJobSensor), payload)
    with pytest.raises(AirflowSkipException, match="failure_states"):
        resume(sensor(WasabiAirJobSensor, failure_states=("failed",)), payload)


@pytest.mark.parametrize("soft_fail", [False, True])
def test_timeout_event(soft_fail: bool) -> None:
    payload = JobEvent("timeout", "Daily job job-1 had not finished at the deadline").to_payload()
    expected = AirflowSkipException if soft_fail else AirflowSensorTimeout
    with pytest.raises(expected, match="had not finished at the deadline"):
        resume(sensor(soft_fail=soft_fail, timeout=60), payload)


@pytest.mark.parametrize("soft_fail", [False, True])
def test_error_event(soft_fail: bool) -> None:
    payload = JobEvent("error", "Daily: get_job: Invalid API key [HTTP 401]").to_payload()
    expected = AirflowSkipException if soft_fail else JobStatusError
    with pytest.raises(expected, match="Invalid API key"):
        resume(sensor(soft_fail=soft_fail), payload)


@pytest.mark.parametrize(
    "payload",
    [
        None,
        {"status": "success"},
        {"version": 2, "event": "succeeded", "job": None, "message": ""},
        event_for_job(job("succeeded", job_id="someone-elses-job")).to_payload(),
    ],
)
def test_unexpected_event_fails_closed(payload: Any) -> None:
    with pytest.raises(InvalidTriggerEvent, match="unexpected trigger event"):
        resume(sensor(), payload)


def test_deferral_timeout_of_airflow_is_a_sensor_timeout() -> None:
    """The safety net: Airflow's own deferral timeout (set after the trigger's deadline)."""
    from airflow.sdk.bases.operator import TriggerFailureReason

    fail = {"error": TriggerFailureReason.TRIGGER_TIMEOUT}
    with pytest.raises(AirflowSensorTimeout):
        sensor().resume_execution("__fail__", fail, context={})  # type: ignore[arg-type]
    with pytest.raises(AirflowSkipException):
        sensor(soft_fail=True).resume_execution("__fail__", fail, context={})  # type: ignore[arg-type]


# ------------------------------------------------------------------------------- execute (deferrable)


def test_a_finished_job_never_defers() -> None:
    s = sensor(deferrable=True)
    s.hook = FakeHook(job("succeeded"))  # type: ignore[assignment]
    assert s.execute(context={})["state"] == "succeeded"  # type: ignore[arg-type]
    s = sensor(deferrable=True)
    s.hook = FakeHook(job("failed", error="bad audio"))  # type: ignore[assignment]
    with pytest.raises(JobFailedError, match="bad audio"):
        s.execute(context={})  # type: ignore[arg-type]


@pytest.mark.parametrize(("cls", "conn_kwarg", "service"), SENSORS)
def test_a_running_job_defers_with_an_absolute_deadline(
    cls: type[JobSensor], conn_kwarg: str, service: str
) -> None:
    s = sensor(cls, deferrable=True, timeout=600, poll_interval=45, **{conn_kwarg: "c"})
    s.hook = FakeHook(job("running", service=service))  # type: ignore[assignment]
    before = time.time()
    with pytest.raises(TaskDeferred) as info:
        s.execute(context={})  # type: ignore[arg-type]
    deferred = info.value
    trigger = deferred.trigger
    assert isinstance(trigger, JobStatusTrigger) and deferred.method_name == "execute_complete"
    _, kwargs = trigger.serialize()
    assert kwargs["service"] == service and kwargs["conn_id"] == "c" and kwargs["job_id"] == "job-1"
    assert kwargs["poll_interval"] == 45
    assert before + 600 <= kwargs["deadline"] <= time.time() + 600
    assert deferred.timeout is not None and deferred.timeout > timedelta(seconds=600)


def test_a_transient_error_before_deferring_still_defers() -> None:
    s = sensor(deferrable=True, max_consecutive_errors=5)
    s.hook = FakeHook(ServiceError("503", status_code=503))  # type: ignore[assignment]
    with pytest.raises(TaskDeferred) as info:
        s.execute(context={})  # type: ignore[arg-type]
    assert info.value.trigger.serialize()[1]["max_consecutive_errors"] == 4  # type: ignore[union-attr]


def test_a_permanent_error_before_deferring_fails() -> None:
    s = sensor(deferrable=True)
    s.hook = FakeHook(AuthenticationError("Invalid API key", status_code=401))  # type: ignore[assignment]
    with pytest.raises(AuthenticationError):
        s.execute(context={})  # type: ignore[arg-type]


# ------------------------------------------------------------------------------- poke


def test_poke_returns_poke_return_values() -> None:
    s = sensor(deferrable=False)
    s.hook = FakeHook(job("running"), job("succeeded"))  # type: ignore[assignment]
    first = s.poke(context={})  # type: ignore[arg-type]
    assert isinstance(first, PokeReturnValue) and not first.is_done
    second = s.poke(context={})  # type: ignore[arg-type]
    assert second.is_done and second.xcom_value == job("succeeded").model_dump(mode="json")


def test_poke_mode_end_to_end_without_servers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(job_module, "MIN_POLL_INTERVAL", 0.01)
    s = sensor(deferrable=False, poll_interval=0.01, timeout=5)
    s.hook = FakeHook(job("running"), job("running"), job("succeeded"))  # type: ignore[assignment]
    assert s.execute(context={})["state"] == "succeeded"  # type: ignore[arg-type]
    s = sensor(deferrable=False, poll_interval=0.01, timeout=0.05)
    s.hook = FakeHook(job("unknown"))  # type: ignore[assignment]
    with pytest.raises(AirflowSensorTimeout):
        s.execute(context={})  # type: ignore[arg-type]


def test_poke_failure_and_soft_fail() -> None:
    failed = job("failed", error="silent file")
    s = sensor(deferrable=False)
    s.hook = FakeHook(failed)  # type: ignore[assignment]
    with pytest.raises(JobFailedError, match="silent file"):
        s.poke(context={})  # type: ignore[arg-type]
    s = sensor(deferrable=False, soft_fail=True)
    s.hook = FakeHook(failed)  # type: ignore[assignment]
    with pytest.raises(AirflowSkipException, match="silent file"):
        s.poke(context={})  # type: ignore[arg-type]


def test_poke_counts_transient_errors() -> None:
    s = sensor(deferrable=False, max_consecutive_errors=3)
    error = ServiceError("upstream 503", status_code=503)
    s.hook = FakeHook(error, error, job("running"), error, error, error)  # type: ignore[assignment]
    results = [s.poke(context={}).is_done for _ in range(5)]  # type: ignore[arg-type]
    assert results == [False] * 5  # the success in the middle reset the count
    with pytest.raises(JobStatusError, match="3 consecutive failed checks.*upstream 503"):
        s.poke(context={})  # type: ignore[arg-type]


def test_poke_permanent_error_fails_at_once() -> None:
    s = sensor(deferrable=False)
    s.hook = FakeHook(AuthenticationError("Invalid API key", status_code=401))  # type: ignore[assignment]
    with pytest.raises(AuthenticationError):
        s.poke(context={})  # type: ignore[arg-type]


def test_templated_job_id_is_checked_when_used() -> None:
    s = sensor(job_id="  ")
    with pytest.raises(InvalidParameterError, match="job_id"):
        s.poke(context={})  # type: ignore[arg-type]
