"""No object the package builds shows a secret in its repr or str (issue 8, secret canary).

Every connection here carries canary secrets (``tests.helpers.canary.secret``). Real objects, built
against the emulator server process where a request is needed: hooks, their sync and async
clients, HTTP settings, auth objects and Symbl's token source, job statuses and outputs (presigned
links included), triggers (repr and serialized kwargs) and the events they fire, sensors and
operators (repr and templated fields), and the typed errors of failing requests.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_jobstatus.exceptions import (
    AuthenticationError,
    InvalidParameterError,
    JobStatusError,
    NotFoundError,
    ServiceError,
    ServiceUnreachableError,
)
from airflow_jobstatus.hooks.base import JobServiceHook
from airflow_jobstatus.hooks.daily import DailyHook
from airflow_jobstatus.hooks.deepaffects import DeepAffectsHook
from airflow_jobstatus.hooks.symbl import SymblHook
from airflow_jobstatus.hooks.wasabi import WasabiAirHook
from airflow_jobstatus.http.client import close_async_clients
from airflow_jobstatus.models import DownloadLink
from airflow_jobstatus.testing.processes import free_port
from tests.helpers.canary import CANARY, secret
from tests.helpers.connections import EMULATOR_NAME as PREFIX

pytestmark = pytest.mark.integration  # the emulator runs as a real server process

HOOKS: dict[str, type[JobServiceHook]] = {
    "daily": DailyHook,
    "wasabi_air": WasabiAirHook,
    "symbl": SymblHook,
    "deepaffects": DeepAffectsHook,
}
MEDIA = "https://media.example/call.wav?emu_duration=1"


class Connections:
    """Connections (``AIRFLOW_CONN_*``) to the emulator whose every secret carries the canary."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, emulator: Any, s3_endpoint: str) -> None:
        self.monkeypatch = monkeypatch
        self.emulator = emulator
        self.s3_endpoint = s3_endpoint

    def make(
        self, service: str, *, identity: str | None = None, host: str | None = None, **extra: Any
    ) -> str:
        conn_id = f"reprs_{service}_{uuid.uuid4().hex[:8]}"
        conn: dict[str, Any] = {
            "conn_type": service,
            "host": host or self.emulator.service_url(PREFIX[service]),
            "extra": {
                "max_requests_per_second": 0,
                "max_requests_per_minute": 0,
                "max_requests_per_day": 0,
                "allow_http_links": True,
                **extra,
            },
        }
        if service == "wasabi_air":
            conn["extra"]["s3_endpoint_url"] = self.s3_endpoint
        if service in ("wasabi_air", "symbl"):  # the identity is not secret; the password is
            conn.update(
                login=identity or f"reprs-{uuid.uuid4().hex[:8]}", password=secret(f"{service}-secret")
            )
        else:  # the API key is both the secret and the account
            conn["password"] = identity or secret(service)
        self.monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))
        return conn_id


@pytest.fixture
def connections(monkeypatch: pytest.MonkeyPatch, emulator: Any, jobstatus_s3: Any) -> Iterator[Connections]:
    yield Connections(monkeypatch, emulator, jobstatus_s3.endpoint_url)
    asyncio.run(close_async_clients())


def hook_for(service: str, conn_id: str) -> JobServiceHook:
    return HOOKS[service](**{f"{service}_conn_id": conn_id})


def submit(hook: JobServiceHook, service: str, bucket: str, s3_endpoint: str) -> str:
    if isinstance(hook, DailyHook):
        return hook.submit_job("summarize", uri=MEDIA)
    if isinstance(hook, WasabiAirHook):
        source = {"Endpoint": s3_endpoint, "Bucket": "media", "Region": "us-east-1", "ObjectKey": "a.mp4"}
        return hook.submit_job(
            f"reprs-{uuid.uuid4().hex[:6]}",
            services={"s2t": ""},
            source={**source, "ObjectKey": "a.mp4?emu_duration=1"},
            destination={"Bucket": bucket, "Region": "us-east-1"},
        )
    if isinstance(hook, SymblHook):
        return hook.submit_job(audio_url=MEDIA)
    assert isinstance(hook, DeepAffectsHook)
    return hook.submit_job("asr", url=MEDIA, sample_rate=8000, webhook="https://hooks.example/deepaffects")


def wait(hook: JobServiceHook, job_id: str, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        status = hook.get_job(job_id)
        if status.is_terminal or time.monotonic() > deadline:
            return status
        time.sleep(0.25)


def shown(name: str, obj: Any) -> dict[str, str]:
    return {f"{name} repr": repr(obj), f"{name} str": str(obj)}


def assert_no_canary(texts: dict[str, str]) -> None:
    leaks = {name: text.replace(CANARY, "<CANARY>") for name, text in texts.items() if CANARY in text}
    assert not leaks, leaks


def test_hooks_clients_settings_auth_statuses_and_outputs(
    connections: Connections, jobstatus_s3: Any
) -> None:
    bucket = jobstatus_s3.create_bucket(f"reprs-{uuid.uuid4().hex[:8]}")
    texts: dict[str, str] = {}
    links: list[str] = []
    for service in HOOKS:
        hook = hook_for(service, connections.make(service))
        client = hook.get_client()
        job_id = submit(hook, service, bucket, jobstatus_s3.endpoint_url)
        status = wait(hook, job_id)
        assert status.succeeded, status
        outputs = hook.get_outputs(status)  # Daily's storage: fresh presigned access links
        assert outputs
        aclient = asyncio.run(hook.aget_client())
        texts |= shown(f"{service} hook", hook) | shown(f"{service} client", client)
        texts |= shown(f"{service} async client", aclient) | shown(f"{service} settings", client.settings)
        texts |= shown(f"{service} auth", client.auth) | shown(f"{service} options", client.options)
        texts |= shown(f"{service} status", status) | {f"{service} status json": status.model_dump_json()}
        for n, output in enumerate(outputs):
            texts |= shown(f"{service} output {n}", output) | shown(
                f"{service} location {n}", output.location
            )
            texts[f"{service} output {n} json"] = output.model_dump_json()
        if isinstance(hook, SymblHook):
            texts |= shown("symbl token source", getattr(client.auth, "source", None))
        # the secret did reach the service: the request carried it, only the printed forms hide it
        assert hook.test_connection()[0]
        links += [o.location.url for o in outputs if isinstance(o.location, DownloadLink) and o.location.url]
    assert links, "Daily's outputs should include presigned links (the repr must hide them)"
    assert not [name for name, text in texts.items() if any(link in text for link in links)]
    assert_no_canary(texts)


def failing_requests(connections: Connections, emulator: Any) -> Iterator[tuple[str, JobStatusError]]:
    """A typed error of each kind per service, sync and async, from real failing requests."""
    for service in HOOKS:
        conn_id = connections.make(service, max_retries=0)
        hook = hook_for(service, conn_id)
        missing = "nosuchjob" if service == "symbl" else f"missing-{uuid.uuid4().hex[:8]}"
        for call in (hook.get_job, lambda j, h=hook: asyncio.run(h.aget_job(j))):
            with pytest.raises(NotFoundError) as caught:
                call(missing)
            yield f"{service} not found", caught.value
        emulator.add_fault(service=PREFIX[service], kind="status", status=500, count=1)
        with pytest.raises(ServiceError) as server:
            hook.get_job(missing)
        yield f"{service} 5xx", server.value

        invalid = (
            secret("invalid") if service in ("daily", "deepaffects") else f"invalid-{uuid.uuid4().hex[:6]}"
        )
        rejected = hook_for(service, connections.make(service, identity=invalid, max_retries=0))
        with pytest.raises(AuthenticationError) as auth:
            rejected.get_job(missing)
        yield f"{service} 401", auth.value
        assert rejected.test_connection()[0] is False

        nowhere = f"http://127.0.0.1:{free_port()}/{PREFIX[service]}"
        unreachable = hook_for(service, connections.make(service, host=nowhere, max_retries=0))
        with pytest.raises(ServiceUnreachableError) as down:
            unreachable.get_job(missing)
        yield f"{service} unreachable", down.value


def test_typed_errors_of_failing_requests(connections: Connections, emulator: Any) -> None:
    texts: dict[str, str] = {}
    kinds = set()
    for name, error in failing_requests(connections, emulator):
        kinds.add(type(error).__name__)
        texts |= shown(name, error) | {
            f"{name} attributes": repr(vars(error)),
            f"{name} args": repr(error.args),
        }
    assert kinds == {"NotFoundError", "ServiceError", "AuthenticationError", "ServiceUnreachableError"}
    # DeepAffects puts the key in the URL: its errors quote the URL, redacted
    assert "apikey=***" in texts["deepaffects not found str"]
    assert_no_canary(texts)


def test_triggers_events_sensors_and_operators(connections: Connections, jobstatus_s3: Any) -> None:
    from airflow_jobstatus.operators.daily import DailySubmitJobOperator
    from airflow_jobstatus.operators.deepaffects import DeepAffectsSubmitJobOperator
    from airflow_jobstatus.operators.symbl import SymblSubmitJobOperator
    from airflow_jobstatus.operators.transfer import JobOutputsToStorageOperator
    from airflow_jobstatus.operators.wasabi import WasabiAirSubmitJobOperator
    from airflow_jobstatus.sensors.daily import DailyJobSensor
    from airflow_jobstatus.sensors.deepaffects import DeepAffectsJobSensor
    from airflow_jobstatus.sensors.symbl import SymblJobSensor
    from airflow_jobstatus.sensors.wasabi import WasabiAirJobSensor
    from airflow_jobstatus.triggers.events import parse_event
    from airflow_jobstatus.triggers.job import JobStatusTrigger

    bucket = jobstatus_s3.create_bucket(f"reprs-{uuid.uuid4().hex[:8]}")
    conn_ids = {service: connections.make(service) for service in HOOKS}
    jobs = {s: submit(hook_for(s, c), s, bucket, jobstatus_s3.endpoint_url) for s, c in conn_ids.items()}
    triggers = {
        s: JobStatusTrigger(
            service=s, conn_id=conn_ids[s], job_id=jobs[s], deadline=time.time() + 60, poll_interval=2
        )
        for s in HOOKS
    }

    async def first_events() -> list[Any]:
        async def first(trigger: JobStatusTrigger) -> Any:
            async for event in trigger.run():
                return event

        try:
            return await asyncio.gather(*(first(t) for t in triggers.values()))
        finally:
            await close_async_clients()

    events = dict(zip(triggers, asyncio.run(first_events()), strict=True))
    texts: dict[str, str] = {}
    for service, trigger in triggers.items():
        event = events[service]
        assert event.payload["event"] == "succeeded", event.payload
        texts |= shown(f"{service} trigger", trigger) | {f"{service} serialized": repr(trigger.serialize())}
        texts |= shown(f"{service} event", event) | shown(
            f"{service} parsed event", parse_event(event.payload)
        )

    sensors = [
        DailyJobSensor(task_id="d", job_id=jobs["daily"], daily_conn_id=conn_ids["daily"]),
        WasabiAirJobSensor(task_id="w", job_id=jobs["wasabi_air"], wasabi_air_conn_id=conn_ids["wasabi_air"]),
        SymblJobSensor(task_id="s", job_id=jobs["symbl"], symbl_conn_id=conn_ids["symbl"]),
        DeepAffectsJobSensor(
            task_id="a", job_id=jobs["deepaffects"], deepaffects_conn_id=conn_ids["deepaffects"]
        ),
    ]
    source = {
        "Endpoint": jobstatus_s3.endpoint_url,
        "Bucket": "media",
        "Region": "us-east-1",
        "ObjectKey": "a",
    }
    operators = [
        DailySubmitJobOperator(task_id="sd", preset="summarize", uri=MEDIA, daily_conn_id=conn_ids["daily"]),
        WasabiAirSubmitJobOperator(
            task_id="sw",
            name="clip",
            services={"s2t": ""},
            source=source,
            destination={"Bucket": bucket, "Region": "us-east-1"},
            wasabi_air_conn_id=conn_ids["wasabi_air"],
        ),
        SymblSubmitJobOperator(task_id="ss", audio_url=MEDIA, symbl_conn_id=conn_ids["symbl"]),
        DeepAffectsSubmitJobOperator(
            task_id="sa",
            api="asr",
            url=MEDIA,
            webhook="https://hooks.example/deepaffects",
            deepaffects_conn_id=conn_ids["deepaffects"],
        ),
        JobOutputsToStorageOperator(
            task_id="deliver",
            job_conn_id=conn_ids["daily"],
            job_id=jobs["daily"],
            destination="file:///tmp/x/",
        ),
    ]
    for task in [*sensors, *operators]:
        texts |= shown(task.task_id, task)
        texts |= {f"{task.task_id}.{name}": repr(getattr(task, name)) for name in task.template_fields}
    assert_no_canary(texts)


def test_a_refused_parameter_value_is_echoed_with_its_credentials_masked() -> None:
    """A constraint error names the value it refused; a source's SecretKey in it is masked."""
    from airflow_jobstatus.services.wasabi_air import WasabiSubmitRequest

    source = [{"Bucket": "b", "ObjectKey": "k", "SecretKey": CANARY}]
    values = {
        "name": "n",
        "services": ["s2t"],
        "source": source,
        "destination": {"Bucket": "d", "Region": "r"},
    }
    with pytest.raises(InvalidParameterError) as caught:
        WasabiSubmitRequest.of("wasabi_air", values)
    assert "source should be a valid dictionary, got [{" in str(caught.value)
    assert CANARY not in str(caught.value) and "'SecretKey': '***'" in str(caught.value)
