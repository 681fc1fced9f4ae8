"""One piece of work in flight (a connection read, a token exchange) awaited by several callers."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from airflow_jobstatus.exceptions import ServiceError

T = TypeVar("T")


def being_cancelled() -> bool:
    """Whether the running task itself has been asked to stop (not merely met a `CancelledError`).

    Python 3.11+ counts cancellation requests; where it cannot tell (3.10), assume it has.
    """
    task = asyncio.current_task()
    cancelling = getattr(task, "cancelling", None)
    return cancelling is None or cancelling() > 0


def start_shared(work: Coroutine[Any, Any, T], name: str) -> asyncio.Task[T]:
    """Run work that several callers await (with `await_shared`) as a task of its own."""
    task = asyncio.get_running_loop().create_task(work, name=f"jobstatus-shared-{name}")
    task.add_done_callback(_retrieve)
    return task


def _retrieve(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved: the callers re-raise it, nobody logs "never retrieved"


async def await_shared(task: asyncio.Task[T], *, service: str, operation: str) -> T:
    """Await shared work: this caller's cancellation ends only its own wait, never the work.

    A `CancelledError` reaches the caller only when the caller itself is being cancelled; if the
    shared work was cancelled by someone else, the caller gets a transient `ServiceError` instead.
    """
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        if being_cancelled() or not task.cancelled():
            raise
        raise ServiceError(
            "the shared request in flight was cancelled before it finished",
            service=service,
            operation=operation,
            hint="A transient interruption: the next attempt makes the request again",
        ) from None
