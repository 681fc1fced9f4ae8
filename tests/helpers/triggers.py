"""Running `JobStatusTrigger` waits in a test's own event loop."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from airflow_jobstatus.http.client import close_async_clients
from airflow_jobstatus.triggers.events import parse_event
from airflow_jobstatus.triggers.job import JobStatusTrigger
from tests.helpers.loop_watch import run_checked

T = TypeVar("T")


async def first_event(trigger: JobStatusTrigger) -> dict[str, Any]:
    """The trigger's first event, checked against the event vocabulary."""
    async for event in trigger.run():
        return parse_event(event.payload, job_id=trigger.job_id).to_payload()
    raise AssertionError("no event")


def run_debug(factory: Callable[[], Awaitable[T]]) -> T:
    """`run_checked` (fails on a slow callback), closing the loop's HTTP clients before it ends."""

    async def scenario() -> T:
        try:
            return await factory()
        finally:
            await close_async_clients()

    return run_checked(scenario)
