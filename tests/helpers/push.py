"""Helpers for the push-completion tests: connections with webhook secrets, signed Daily webhooks,
and the receiver app served by uvicorn on a free loopback port (real HTTP)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import uvicorn

from airflow_jobstatus.http.client import close_async_clients
from airflow_jobstatus.push.listener import PushListener, listener_for_loop
from airflow_jobstatus.push.verify import daily_signature
from airflow_jobstatus.testing.processes import free_port
from airflow_jobstatus.triggers.job import JobStatusTrigger
from tests.helpers.canary import CANARY, secret
from tests.helpers.triggers import first_event


async def until(predicate: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(predicate):
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.1)


@asynccontextmanager
async def waiting(
    trigger: JobStatusTrigger,
) -> AsyncIterator[tuple[PushListener, asyncio.Task[dict[str, Any]]]]:
    """This loop's push listener and a task awaiting the trigger's first event; all closed after."""
    listener = listener_for_loop()
    assert listener is not None
    task = asyncio.ensure_future(first_event(trigger))
    try:
        yield listener, task
    finally:
        task.cancel()
        await listener.aclose()
        await close_async_clients()


def daily_hmac_secret() -> str:
    """A valid base64 secret, as Daily issues it, that still carries the canary in clear."""
    text = f"dailyhmac{CANARY}{uuid.uuid4().hex}"
    return text + "A" * (-len(text) % 4)


def webhook_token(label: str) -> str:
    return secret(f"{label}-token")


def conn_env(conn_id: str, conn_type: str, **extra: Any) -> dict[str, str]:
    """``AIRFLOW_CONN_*`` for a connection whose extra holds the given fields."""
    conn = {
        "conn_type": conn_type,
        "host": "http://127.0.0.1:9",
        "password": secret(conn_type),
        "extra": extra,
    }
    return {f"AIRFLOW_CONN_{conn_id.upper()}": json.dumps(conn)}


def daily_envelope(job_id: str, event_type: str = "batch-processor.job-finished", **overrides: Any) -> bytes:
    body = {
        "version": "1.0.0",
        "type": event_type,
        "id": f"evt-{uuid.uuid4().hex}",
        "payload": {"id": job_id, "preset": "transcript", "status": "finished"},
        "event_ts": time.time(),
        **overrides,
    }
    return json.dumps(body).encode()


def daily_headers(secret_b64: str, body: bytes, timestamp: float | None = None) -> dict[str, str]:
    ts = str(int(timestamp if timestamp is not None else time.time()))
    return {
        "Content-Type": "application/json",
        "X-Webhook-Timestamp": ts,
        "X-Webhook-Signature": daily_signature(secret_b64, ts, body),
    }


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """Serve ``app`` with uvicorn in a thread; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, name="push-receiver", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the receiver did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
