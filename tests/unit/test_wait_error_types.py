"""Regressions found by the fault matrix: a deferred wait fails with the same typed error as a
non-deferred one, and an authentication error names the connection to fix."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from airflow_jobstatus.exceptions import (
    AuthenticationError,
    BadRequestError,
    InvalidParameterError,
    JobStatusError,
    NotFoundError,
    ServiceError,
)
from airflow_jobstatus.http.client import ServiceClient
from airflow_jobstatus.http.settings import HttpSettings
from airflow_jobstatus.sensors.daily import DailyJobSensor
from airflow_jobstatus.triggers.events import ERROR_TYPES, InvalidTriggerEvent, JobEvent, parse_event
from airflow_jobstatus.triggers.hub import Outcome, permanent_type
from airflow_jobstatus.triggers.job import JobStatusTrigger

pytestmark = pytest.mark.unit


def resume(payload: object) -> object:
    sensor = DailyJobSensor(task_id="wait", job_id="job-1", daily_conn_id="c")
    return sensor.resume_execution("execute_complete", {"event": payload}, context={})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "error",
    [
        AuthenticationError("Invalid API key", service="Daily", status_code=401),
        NotFoundError("job job-1 not found", service="Daily", status_code=404, job_id="job-1"),
        BadRequestError("bad preset", service="Daily", status_code=400),
        InvalidParameterError("job_id must be a non-empty string"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_a_permanent_error_reaches_the_task_with_its_type_and_message(error: JobStatusError) -> None:
    trigger = JobStatusTrigger(service="daily", conn_id="c", job_id="job-1", deadline=time.time() + 60)
    event = trigger.event_for(Outcome(error=str(error), error_type=permanent_type(error)))
    payload = json.loads(json.dumps(event.to_payload()))  # as stored by the triggerer
    assert payload["error_type"] == type(error).__name__

    with pytest.raises(type(error)) as raised:
        resume(payload)
    assert str(raised.value) == str(error)  # the hint is not appended a second time


def test_transient_and_older_error_events_stay_plain_job_status_errors() -> None:
    assert permanent_type(ServiceError("503", service="Daily")) is None
    assert permanent_type(ValueError("x")) is None
    payload = JobEvent("error", "gave up after 10 consecutive failed polls").to_payload()
    assert "error_type" not in payload  # the version-1 shape, unchanged
    with pytest.raises(JobStatusError) as raised:
        resume(payload)
    assert type(raised.value) is JobStatusError and "gave up" in str(raised.value)


@pytest.mark.parametrize(
    "payload",
    [
        {"version": 1, "event": "timeout", "job": None, "message": "m", "error_type": "NotFoundError"},
        {"version": 1, "event": "error", "job": None, "message": "m", "error_type": "KeyError"},
        {"version": 1, "event": "error", "job": None, "message": "m", "error_type": "JobStatusError"},
        {"version": 1, "event": "error", "job": None, "message": "m", "error_type": ["NotFoundError"]},
    ],
)
def test_error_type_is_a_closed_vocabulary(payload: dict[str, object]) -> None:
    with pytest.raises(InvalidTriggerEvent, match="unexpected trigger event"):
        parse_event(payload)


def test_error_types_are_the_permanent_errors() -> None:
    from airflow_jobstatus.triggers.hub import PERMANENT_ERRORS

    assert set(ERROR_TYPES.values()) == set(PERMANENT_ERRORS)


@pytest.mark.parametrize("status", [401, 403])
def test_authentication_errors_name_the_connection_never_the_secret(status: int) -> None:
    client = ServiceClient(
        service="Daily", conn_id="daily_prod", base_url="https://api.example/v1", settings=HttpSettings()
    )
    request = httpx.Request("GET", "https://api.example/v1/batch-processor/j1")
    error = client._error_for_status(
        "get_job", request, status, b'{"error": "authentication-error"}', httpx.Headers(), "j1", None
    )
    assert isinstance(error, AuthenticationError)
    assert "connection 'daily_prod'" in str(error) and "Check the credentials" in str(error)


def _error_classes() -> list[type[JobStatusError]]:
    from airflow_jobstatus import exceptions

    return [
        cls
        for cls in vars(exceptions).values()
        if isinstance(cls, type) and issubclass(cls, JobStatusError) and cls.__module__ == exceptions.__name__
    ]


def test_every_error_class_says_whether_it_is_permanent() -> None:
    from airflow_jobstatus.exceptions import ConcurrencyLimitError, ServiceUnreachableError

    inherited = {ConcurrencyLimitError, ServiceUnreachableError}  # the same kind as their base
    for cls in _error_classes():
        assert cls in inherited or "permanent" in vars(cls), f"{cls.__name__} does not declare 'permanent'"
    assert not ConcurrencyLimitError.permanent and not ServiceUnreachableError.permanent


def test_is_permanent_reads_the_class_attribute_only() -> None:
    from airflow.sdk.exceptions import AirflowNotFoundException

    from airflow_jobstatus.exceptions import PERMANENT_ERRORS, RateLimitedError, is_permanent

    for cls in _error_classes():
        error = cls("m") if cls is not RateLimitedError else RateLimitedError("m", retry_after=1.0)
        assert is_permanent(error) is cls.permanent
        assert (cls in PERMANENT_ERRORS) is cls.permanent
    assert is_permanent(AirflowNotFoundException("The conn_id `x` isn't defined"))
    assert not is_permanent(ValueError("x")) and not is_permanent(KeyError("x"))


def test_a_subclass_of_a_permanent_error_names_its_documented_type() -> None:
    class MissingDocument(NotFoundError):
        pass

    class Transient(NotFoundError):
        permanent = False

    assert permanent_type(MissingDocument("gone")) == "NotFoundError"
    assert permanent_type(Transient("try again")) is None
    assert "NotFoundError" in ERROR_TYPES and "JobStatusError" not in ERROR_TYPES
