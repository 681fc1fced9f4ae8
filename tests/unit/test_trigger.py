"""JobStatusTrigger and the poll hub, against an in-process fake service, in asyncio debug mode.

Every test that runs the trigger goes through `tests.helpers.loop_watch.run_checked`: the loop runs
in debug mode and the test fails if one callback used more than 50 ms of CPU or was blocked (slept,
waited on synchronous I/O) for more than 100 ms. It measures CPU and blocked time rather than wall
time, so machine load cannot fail a test, and real blocking still does.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import pytest
from airflow.sdk.serde import deserialize, serialize

from airflow_jobstatus.exceptions import (
    AuthenticationError,
    BadRequestError,
    InvalidParameterError,
    NotFoundError,
    RateLimitedError,
    ServiceError,
)
from airflow_jobstatus.models import JobState, JobStatus
from airflow_jobstatus.triggers import hub as hub_module
from airflow_jobstatus.triggers import job as job_module
from airflow_jobstatus.triggers import pacing as pacing_module
from airflow_jobstatus.triggers import poller as poller_module
from airflow_jobstatus.triggers.events import (
    EVENT_VERSION,
    InvalidTriggerEvent,
    JobEvent,
    event_for_job,
    parse_event,
)
from airflow_jobstatus.triggers.hub import PollHub
from airflow_jobstatus.triggers.job import JobStatusTrigger
from tests.helpers.loop_watch import run_checked

pytestmark = pytest.mark.unit

SERVICES = ("daily", "wasabi_air", "symbl", "deepaffects")
FIRST = 0.2  # MIN_FIRST_EVENT_DELAY in these tests


def status(job_id: str, state: str, *, service: str = "daily", error: str | None = None) -> JobStatus:
    raw = {"queued": "submitted", "running": "processing", "succeeded": "finished", "failed": "error"}
    return JobStatus(
        service=service,
        job_id=job_id,
        state=JobState(state),
        raw_status=raw.get(state, state),
        error=error,
    )


class FakeHook:
    """Stands in for a service hook: plans are tuples, `arun` answers from `jobs`."""

    def __init__(self, service: str = "daily") -> None:
        self.service = service
        self.jobs: dict[str, JobStatus] = {}
        self.order: list[str] = []  # submission order (oldest first)
        self.calls: list[tuple[float, str, Any]] = []
        self.raise_next: list[Exception] = []
        self.list_error: Exception | None = None
        self.get_delay = 0.0

    def add(self, job_id: str, state: str = "running", **kw: Any) -> None:
        self.jobs[job_id] = status(job_id, state, service=self.service, **kw)
        if job_id not in self.order:
            self.order.append(job_id)

    def set(self, job_id: str, state: str, **kw: Any) -> None:
        self.jobs[job_id] = status(job_id, state, service=self.service, **kw)

    def _check_job_id(self, job_id: str) -> str:
        return job_id

    def _get_job(self, job_id: str) -> tuple[str, Any, dict[str, Any]]:
        return ("get", job_id, {})

    def _list_states(self, cursor: Any, **kw: Any) -> tuple[str, Any, dict[str, Any]]:
        return ("list", cursor, kw)

    def count(self, kind: str) -> int:
        return sum(1 for _, k, _ in self.calls if k == kind)

    async def arun(self, plan: tuple[str, Any, dict[str, Any]], *, deadline: float | None = None) -> Any:
        kind, arg, kw = plan
        self.calls.append((time.monotonic(), kind, (arg, kw)))
        await asyncio.sleep(self.get_delay if kind == "get" else 0)
        if kind == "list" and self.list_error is not None:
            raise self.list_error
        if self.raise_next:
            raise self.raise_next.pop(0)
        if kind == "get":
            if arg not in self.jobs:
                raise NotFoundError("job not found", service="Fake", job_id=arg)
            return self.jobs[arg]
        start = int(arg or 0)
        size = kw["page_size"]
        newest_first = self.order[::-1]
        page = [(j, self.jobs[j].state, self.jobs[j].raw_status) for j in newest_first[start : start + size]]
        return page, (start + size if start + size < len(newest_first) else None)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], FakeHook]:
    monkeypatch.setattr(pacing_module, "MIN_FIRST_EVENT_DELAY", FIRST)
    monkeypatch.setattr(job_module, "MIN_POLL_INTERVAL", 0.01)
    hooks: dict[str, FakeHook] = {}

    def hook_for(spec: Any, conn_id: str) -> FakeHook:
        return hooks.setdefault(conn_id, FakeHook(spec.name))

    monkeypatch.setattr(poller_module, "_hook_for", hook_for)

    def make(conn_id: str = "c1", service: str = "daily") -> FakeHook:
        return hooks.setdefault(conn_id, FakeHook(service))

    return make


def trigger(job_id: str, *, conn_id: str = "c1", service: str = "daily", **kw: Any) -> JobStatusTrigger:
    kw.setdefault("poll_interval", 0.1)
    kw.setdefault("deadline", time.time() + 30)
    return JobStatusTrigger(service=service, conn_id=conn_id, job_id=job_id, **kw)


async def first_event(t: JobStatusTrigger) -> dict[str, Any]:
    async for event in t.run():
        payload = event.payload
        assert isinstance(payload, dict)
        parse_event(payload)  # every event the trigger emits is valid
        return payload
    raise AssertionError("the trigger ended without an event")


async def all_events(triggers: list[JobStatusTrigger]) -> list[dict[str, Any]]:
    """Run many triggers concurrently; tasks are started in small batches so that the test's own
    set-up (debug mode records a stack per task) is not what the slow-callback check catches."""
    tasks = []
    for i, t in enumerate(triggers):
        tasks.append(asyncio.ensure_future(first_event(t)))
        if i % 5 == 4:
            await asyncio.sleep(0)
    return list(await asyncio.gather(*tasks))


# ------------------------------------------------------------------------------- serialization


@pytest.mark.parametrize("service", SERVICES)
def test_serialize_and_rebuild_equal(service: str) -> None:
    original = JobStatusTrigger(
        service=service,
        conn_id=f"{service}_default",
        job_id="job-1:conv-1" if service == "symbl" else "job-1",
        deadline=1_900_000_000.5,
        poll_interval=15,
        max_consecutive_errors=4,
    )
    classpath, kwargs = original.serialize()
    assert classpath == "airflow_jobstatus.triggers.job.JobStatusTrigger"
    assert JobStatusTrigger(**kwargs) == original
    # primitives only: plain JSON, and through Airflow's serde as the triggerer stores them
    assert all(isinstance(v, str | int | float) for v in kwargs.values())
    assert JobStatusTrigger(**json.loads(json.dumps(kwargs))) == original
    assert JobStatusTrigger(**deserialize(serialize(kwargs))) == original
    assert set(kwargs) == {
        "service",
        "conn_id",
        "job_id",
        "deadline",
        "poll_interval",
        "max_consecutive_errors",
    }


def test_rebuilt_trigger_keeps_the_absolute_deadline(fake: Callable[..., FakeHook]) -> None:
    hook = fake()
    hook.add("slow")
    # the gap is what tells the two apart, and the latency this test tolerates (a loaded machine
    # or parallel test workers have ended the wait 0.5 s late)
    restart_gap = 2.0
    deadline = time.time() + restart_gap + 0.2

    async def scenario() -> tuple[dict[str, Any], float]:
        _, kwargs = trigger("slow", deadline=deadline).serialize()
        assert kwargs["deadline"] == deadline  # stored absolute, not as "seconds left"
        await asyncio.sleep(restart_gap)  # "the triggerer restarted"
        rebuilt = JobStatusTrigger(**kwargs)
        payload = await first_event(rebuilt)
        return payload, time.time()

    payload, ended = run_checked(scenario)
    assert payload["event"] == "timeout"
    # A deadline recomputed at rebuild time would end restart_gap later than this.
    assert deadline <= ended < deadline + restart_gap


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"service": "nope"}, "service must be one of"),
        ({"conn_id": ""}, "connection id"),
        ({"job_id": "  "}, "job_id"),
        ({"poll_interval": 0}, "poll_interval"),
        ({"poll_interval": True}, "poll_interval"),
        ({"max_consecutive_errors": 0}, "max_consecutive_errors"),
        ({"deadline": "tomorrow"}, "deadline"),
        ({"deadline": float("nan")}, "deadline"),
    ],
)
def test_invalid_parameters(kwargs: dict[str, Any], problem: str) -> None:
    base: dict[str, Any] = {"service": "daily", "conn_id": "c", "job_id": "j", "deadline": 1e9}
    with pytest.raises(InvalidParameterError, match=problem):
        JobStatusTrigger(**{**base, **kwargs})


# ------------------------------------------------------------------------------- event vocabulary


def test_event_payloads_round_trip() -> None:
    done = status("j1", "succeeded")
    failed = status("j1", "failed", error="Error: Failed to transcribe")
    cancelled = status("j1", "cancelled", service="wasabi_air")
    for job in (done, failed, cancelled):
        event = event_for_job(job)
        payload = event.to_payload()
        assert payload["version"] == EVENT_VERSION and payload["event"] == job.state.value
        assert parse_event(json.loads(json.dumps(payload)), job_id="j1") == event
    assert event_for_job(failed).message == "Error: Failed to transcribe"
    assert "cancelled" in event_for_job(cancelled).message
    for kind in ("timeout", "error"):
        payload = JobEvent(kind, "why").to_payload()  # type: ignore[arg-type]
        assert parse_event(payload) == JobEvent(kind, "why")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not terminal"):
        event_for_job(status("j1", "running"))


@pytest.mark.parametrize(
    "mutate",
    [
        lambda p: None,
        lambda p: "succeeded",
        lambda p: {**p, "version": 2},
        lambda p: {**p, "version": True},
        lambda p: {**p, "event": "finished"},
        lambda p: {**p, "message": None},
        lambda p: {**p, "extra": 1},
        lambda p: {k: v for k, v in p.items() if k != "message"},
        lambda p: {**p, "job": None},
        lambda p: {**p, "job": {"job_id": "j1"}},
        lambda p: {**p, "event": "failed"},  # a succeeded job in a failed event
        lambda p: {**p, "job": {**p["job"], "job_id": "other"}},
        lambda p: {**p, "event": "timeout"},  # timeout with a job
    ],
)
def test_unexpected_events_fail_closed(mutate: Callable[[dict[str, Any]], Any]) -> None:
    payload = event_for_job(status("j1", "succeeded")).to_payload()
    with pytest.raises(InvalidTriggerEvent, match="unexpected trigger event"):
        parse_event(mutate(payload), job_id="j1")


# ------------------------------------------------------------------------------- the hub


def test_waits_until_terminal_and_first_poll_is_one_interval_later(fake: Callable[..., FakeHook]) -> None:
    hook = fake()
    hook.add("j1", "running")

    async def scenario() -> tuple[dict[str, Any], float]:
        asyncio.get_running_loop().call_later(0.7, hook.set, "j1", "succeeded")
        start = time.monotonic()
        payload = await first_event(trigger("j1", poll_interval=0.25))
        return payload, start

    payload, start = run_checked(scenario)
    assert payload["event"] == "succeeded" and payload["message"] == ""
    assert JobStatus.model_validate(payload["job"]).state is JobState.SUCCEEDED
    first_call = hook.calls[0][0]
    assert first_call - start >= 0.25 * 0.9  # one jittered interval after registration
    assert 3 <= hook.count("get") <= 5  # about every 0.25 s until 0.7 s


def test_first_event_never_sooner_than_the_floor(fake: Callable[..., FakeHook]) -> None:
    hook = fake()
    hook.add("done", "succeeded")

    async def scenario() -> float:
        start = time.monotonic()
        payload = await first_event(trigger("done", poll_interval=0.01))
        assert payload["event"] == "succeeded"
        return time.monotonic() - start

    assert run_checked(scenario) >= FIRST


@pytest.mark.parametrize(
    ("state", "error", "event"),
    [("failed", "Error: Failed to summarize", "failed"), ("cancelled", None, "cancelled")],
)
def test_failure_events_carry_the_service_message(
    fake: Callable[..., FakeHook], state: str, error: str | None, event: str
) -> None:
    hook = fake(service="wasabi_air")
    hook.add("j1", state, error=error)
    payload = run_checked(lambda: first_event(trigger("j1", service="wasabi_air")))
    assert payload["event"] == event
    assert payload["job"]["state"] == state
    assert (error or "cancelled") in payload["message"]


def test_coalescing_many_waits_on_one_job(fake: Callable[..., FakeHook]) -> None:
    hook = fake()
    hook.add("shared", "running")

    async def scenario() -> list[dict[str, Any]]:
        asyncio.get_running_loop().call_later(1.05, hook.set, "shared", "succeeded")
        return await all_events([trigger("shared", poll_interval=0.2) for _ in range(200)])

    events = run_checked(scenario)
    assert {e["event"] for e in events} == {"succeeded"}
    # one request per interval for all 200 waits: about 1.05 / 0.2 polls, not 200 x that
    assert 4 <= hook.count("get") <= 7, hook.count("get")


def test_transient_errors_within_budget_do_not_fail(fake: Callable[..., FakeHook]) -> None:
    hook = fake()
    hook.add("j1", "succeeded")
    hook.raise_next = [
        ServiceError("boom", status_code=503),
        RateLimitedError("slow down", retry_after=0.05),
    ] * 2

    payload = run_checked(lambda: first_event(trigger("j1", poll_interval=0.05, max_consecutive_errors=5)))
    assert payload["event"] == "succeeded"
    assert hook.count("get") == 5


def test_error_budget_ends_the_wait_with_a_clear_message(fake: Callable[..., FakeHook]) -> None:
    hook = fake()
    hook.add("j1", "running")
    hook.raise_next = [ServiceError("upstream says 503", service="Daily", status_code=503)] * 10

    payload = run_checked(lambda: first_event(trigger("j1", poll_interval=0.05, max_consecutive_errors=3)))
    assert payload["event"] == "error" and payload["job"] is None
    assert "after 3 consecutive failed polls" in payload["message"]
    assert "upstream says 503" in payload["message"] and "j1" in payload["message"]
    assert hook.count("get") == 3


@pytest.mark.parametrize(
    "error",
    [
        AuthenticationError("Invalid API key", status_code=401),
        NotFoundError("batch processor job j1 not found", status_code=404),
        BadRequestError("invalid-request-error", status_code=400),
        InvalidParameterError("bad id"),
    ],
)
def test_permanent_errors_end_the_wait_at_once(fake: Callable[..., FakeHook], error: Exception) -> None:
    hook = fake()
    hook.add("j1", "running")
    hook.raise_next = [error]
    payload = run_checked(lambda: first_event(trigger("j1", poll_interval=0.05)))
    assert payload["event"] == "error"
    assert payload["message"] == str(error)
    assert hook.count("get") == 1


def test_a_missing_connection_ends_the_wait_at_once(fake: Callable[..., FakeHook]) -> None:
    from airflow.sdk.exceptions import AirflowNotFoundException

    hook = fake()
    hook.add("j1", "running")
    hook.raise_next = [AirflowNotFoundException("The conn_id `c1` isn't defined")]
    payload = run_checked(lambda: first_event(trigger("j1", poll_interval=0.05)))
    assert payload["event"] == "error" and "isn't defined" in payload["message"]
    assert hook.count("get") == 1


def test_an_unexpected_error_while_listing_counts_as_transient(fake: Callable[..., FakeHook]) -> None:
    hook = fake()
    for i in range(6):
        hook.add(f"j{i}", "succeeded")
    hook.raise_next = [RuntimeError("surprise")]  # the first list page
    events = run_checked(lambda: all_events([trigger(f"j{i}", poll_interval=0.05) for i in range(6)]))
    assert {e["event"] for e in events} == {"succeeded"}
    assert hook.count("list") >= 2


def test_unknown_state_is_never_success(
    fake: Callable[..., FakeHook], caplog: pytest.LogCaptureFixture
) -> None:
    hook = fake()
    hook.add("j1", "unknown")
    caplog.set_level(logging.WARNING, logger=hub_module.__name__)

    payload = run_checked(lambda: first_event(trigger("j1", poll_interval=0.05, deadline=time.time() + 0.6)))
    assert payload["event"] == "timeout" and payload["job"] is None
    assert "had not finished at the deadline" in payload["message"] and "'unknown'" in payload["message"]
    assert hook.count("get") >= 4
    warnings = [r for r in caplog.records if "undocumented status" in r.getMessage()]
    assert len(warnings) == 1


def test_deadline_already_past_times_out_after_the_floor(fake: Callable[..., FakeHook]) -> None:
    hook = fake()
    hook.add("j1", "running")

    async def scenario() -> tuple[dict[str, Any], float]:
        start = time.monotonic()
        payload = await first_event(trigger("j1", deadline=time.time() - 100))
        return payload, time.monotonic() - start

    payload, took = run_checked(scenario)
    assert payload["event"] == "timeout" and took >= FIRST
    assert hook.count("get") == 0


def test_cancelled_trigger_deregisters_and_the_poller_stops(fake: Callable[..., FakeHook]) -> None:
    hook = fake()
    for i in range(3):
        hook.add(f"j{i}", "running")

    async def scenario() -> None:
        hub = PollHub.current()
        tasks = [asyncio.ensure_future(first_event(trigger(f"j{i}", poll_interval=0.05))) for i in range(3)]
        await asyncio.sleep(0.4)
        poller = hub.pollers[("daily", "c1")]
        assert len(poller.watches) == 3
        tasks[0].cancel()
        await asyncio.sleep(0.05)
        assert set(poller.watches) == {"j1", "j2"}
        for task in tasks[1:]:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.sleep(0.05)
        assert hub.pollers == {}
        assert poller.closed and poller.task.done()
        calls = len(hook.calls)
        await asyncio.sleep(0.2)
        assert len(hook.calls) == calls  # nothing polls any more

    run_checked(scenario)


def test_rate_limit_pauses_the_whole_connection(fake: Callable[..., FakeHook]) -> None:
    hook = fake()
    for i in range(3):
        hook.add(f"j{i}", "running")
    hook.raise_next = [RateLimitedError("Too many requests", retry_after=0.6)]

    async def scenario() -> None:
        tasks = [asyncio.ensure_future(first_event(trigger(f"j{i}", poll_interval=0.05))) for i in range(3)]
        await asyncio.sleep(FIRST + 0.1)  # the first polls are done by now
        limited_at = hook.calls[0][0]
        await asyncio.sleep(1.0)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        during = [t for t, _, _ in hook.calls[1:] if t < limited_at + 0.6]
        # requests already in flight when the 429 came back may land; nothing new starts in the pause
        assert len(during) <= 2, during
        assert any(t >= limited_at + 0.6 for t, _, _ in hook.calls)

    run_checked(scenario)


# ------------------------------------------------------------------------------- batching


@pytest.mark.parametrize("service", ["daily", "wasabi_air"])
def test_many_waits_on_one_account_use_list_pages(fake: Callable[..., FakeHook], service: str) -> None:
    hook = fake(service=service)
    for i in range(250):
        hook.add(f"old{i}", "succeeded")  # history nobody waits for
    for i in range(120):
        hook.add(f"j{i}", "running")
    for i in range(30):
        hook.add(f"new{i}", "running")  # newer jobs nobody waits for

    async def scenario() -> list[dict[str, Any]]:
        loop = asyncio.get_running_loop()
        for i in range(0, 120, 2):
            loop.call_later(0.5, hook.set, f"j{i}", "succeeded")
        for i in range(1, 120, 2):
            loop.call_later(0.9, functools.partial(hook.set, f"j{i}", "failed", error="nope"))
        return await all_events([trigger(f"j{i}", service=service) for i in range(120)])

    events = run_checked(scenario)
    assert [e["event"] for e in events] == ["succeeded", "failed"] * 60
    # 150 newest jobs = 2 pages per sweep; every job fetched in full only once it is terminal
    assert hook.count("get") == 120
    assert 4 <= hook.count("list") <= 24, hook.count("list")
    lists = [arg for _, kind, arg in hook.calls if kind == "list"]
    assert all(kw["page_size"] == 100 for _, kw in lists)
    assert all(cursor in (None, 100) for cursor, _ in lists)  # never pages into the old history


def test_few_waits_poll_each_job(fake: Callable[..., FakeHook]) -> None:
    hook = fake()
    for i in range(3):
        hook.add(f"j{i}", "succeeded")
    events = run_checked(lambda: asyncio.gather(*(first_event(trigger(f"j{i}")) for i in range(3))))
    assert {e["event"] for e in events} == {"succeeded"}
    assert hook.count("list") == 0 and hook.count("get") == 3


def test_services_without_list_endpoint_never_list(fake: Callable[..., FakeHook]) -> None:
    hook = fake(service="symbl")
    for i in range(20):
        hook.add(f"j{i}", "succeeded")
    events = run_checked(
        lambda: asyncio.gather(*(first_event(trigger(f"j{i}", service="symbl")) for i in range(20)))
    )
    assert {e["event"] for e in events} == {"succeeded"}
    assert hook.count("list") == 0 and hook.count("get") == 20


def test_list_refused_falls_back_to_polling_each_job(fake: Callable[..., FakeHook]) -> None:
    hook = fake()
    for i in range(10):
        hook.add(f"j{i}", "succeeded")
    hook.list_error = AuthenticationError("listing not allowed", status_code=403)
    events = run_checked(lambda: asyncio.gather(*(first_event(trigger(f"j{i}")) for i in range(10))))
    assert {e["event"] for e in events} == {"succeeded"}
    assert hook.count("list") == 1 and hook.count("get") == 10


def test_a_waited_job_missing_from_the_list_is_fetched(fake: Callable[..., FakeHook]) -> None:
    hook = fake()
    for i in range(10):
        hook.add(f"j{i}", "running")

    async def scenario() -> list[dict[str, Any]]:
        loop = asyncio.get_running_loop()
        loop.call_later(0.25, hook.order.remove, "j3")  # deleted: gone from the list, 404 on GET
        loop.call_later(0.25, hook.jobs.pop, "j3")
        for i in range(10):
            if i != 3:
                loop.call_later(0.6, hook.set, f"j{i}", "succeeded")
        return await asyncio.gather(*(first_event(trigger(f"j{i}")) for i in range(10)))

    events = run_checked(scenario)
    assert events[3]["event"] == "error" and "not found" in events[3]["message"]
    assert all(e["event"] == "succeeded" for i, e in enumerate(events) if i != 3)
