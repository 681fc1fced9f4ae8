"""Wasabi AiR: the state comes from the job alone; the metadata is read only for the outputs.

Against the emulator in its default mode, where ``/metadata`` may lag the completed status
(docs/contracts.md W3, W6).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from airflow_jobstatus.exceptions import InvalidParameterError, MalformedResponseError, NotFoundError
from airflow_jobstatus.hooks.wasabi import WasabiAirHook
from airflow_jobstatus.http.client import close_async_clients
from airflow_jobstatus.models import JobState, S3Object
from jobstatus_emulator.server import EmulatorServer
from tests.helpers.dags import load_dag
from tests.helpers.jobs import wasabi_job
from tests.integration.conftest import wait_until_terminal

pytestmark = pytest.mark.integration


def _submit(hook: WasabiAirHook, s3, bucket: str, duration: float = 0.3) -> str:
    name = f"meta-{uuid.uuid4().hex[:6]}"
    return wasabi_job(hook, s3.endpoint_url, name, f"clip.mp4?emu_duration={duration}", bucket=bucket)


@pytest.fixture
def wasabi(make_connection, emulator: EmulatorServer, jobstatus_s3):
    bucket = f"air-meta-{uuid.uuid4().hex[:8]}"
    jobstatus_s3.create_bucket(bucket)
    conn_id, access = make_connection("wasabi_air", s3_endpoint_url=jobstatus_s3.endpoint_url)
    return conn_id, access, bucket


def _metadata_reads(emulator: EmulatorServer, access: str) -> list[dict]:
    return [
        r for r in emulator.requests(service="wasabi", credential=access) if r["route"].endswith("/metadata")
    ]


def test_the_wait_never_reads_the_metadata(wasabi, emulator: EmulatorServer, jobstatus_s3) -> None:
    conn_id, access, bucket = wasabi
    emulator.configure(wasabi_metadata_lag=30)  # listed long after completion
    hook = WasabiAirHook(wasabi_air_conn_id=conn_id)
    job_id = _submit(hook, jobstatus_s3, bucket)
    status = wait_until_terminal(hook.get_job, job_id)
    assert status.state is JobState.SUCCEEDED and status.outputs == []
    assert hook.get_status(job_id).state is JobState.SUCCEEDED
    assert _metadata_reads(emulator, access) == []


def test_outputs_wait_for_metadata_that_lags_the_status(
    wasabi, emulator: EmulatorServer, jobstatus_s3, caplog: pytest.LogCaptureFixture
) -> None:
    conn_id, access, bucket = wasabi
    emulator.configure(wasabi_metadata_lag=1.5)
    hook = WasabiAirHook(wasabi_air_conn_id=conn_id)
    job_id = _submit(hook, jobstatus_s3, bucket)
    status = wait_until_terminal(hook.get_job, job_id)
    with caplog.at_level(logging.INFO, logger="airflow_jobstatus.hooks.wasabi"):
        [output] = hook.get_outputs(status)
    assert isinstance(output.location, S3Object) and output.location.bucket == bucket
    assert output.location.endpoint_url == jobstatus_s3.endpoint_url
    jobstatus_s3.client().head_object(Bucket=bucket, Key=output.location.key)
    answers = [r["status"] for r in _metadata_reads(emulator, access)]
    assert answers[0] == 404 and answers[-1] == 200 and set(answers) == {404, 200}
    assert "answers 404 (not listed yet)" in caplog.text and job_id in caplog.text

    # async twin, on a second job
    job_id = _submit(hook, jobstatus_s3, bucket)
    status = wait_until_terminal(hook.get_job, job_id)

    async def outputs():
        try:
            return await hook.aget_outputs(status)
        finally:
            await close_async_clients()

    [output] = asyncio.run(outputs())
    assert isinstance(output.location, S3Object) and output.location.key.endswith("_metadata.json")


def test_metadata_still_missing_after_metadata_wait_is_a_clear_error(
    wasabi, emulator: EmulatorServer, jobstatus_s3
) -> None:
    conn_id, _, bucket = wasabi
    emulator.configure(wasabi_metadata_lag=60)
    hook = WasabiAirHook(wasabi_air_conn_id=conn_id, metadata_wait=1.0)
    job_id = _submit(hook, jobstatus_s3, bucket)
    status = wait_until_terminal(hook.get_job, job_id)
    started = time.monotonic()
    with pytest.raises(
        NotFoundError, match=r"completed but its metadata was still not found after 1 s"
    ) as err:
        hook.get_outputs(status)
    assert time.monotonic() - started < 5  # bounded by metadata_wait (plus one read)
    assert "metadata_wait" in str(err.value) and err.value.job_id == job_id
    with pytest.raises(InvalidParameterError, match="metadata_wait"):
        WasabiAirHook(wasabi_air_conn_id=conn_id, metadata_wait=-1)


def test_a_metadata_shape_mismatch_fails_the_outputs_not_the_wait(
    wasabi, emulator: EmulatorServer, jobstatus_s3
) -> None:
    conn_id, _, bucket = wasabi
    emulator.configure(wasabi_metadata_lag=0)
    emulator.add_fault(service="wasabi", route="/metadata", kind="malformed")
    hook = WasabiAirHook(wasabi_air_conn_id=conn_id)
    job_id = _submit(hook, jobstatus_s3, bucket)
    status = wait_until_terminal(hook.get_job, job_id)
    assert status.state is JobState.SUCCEEDED
    with pytest.raises(MalformedResponseError, match="get_outputs"):
        hook.get_outputs(status)


DAG = """
from airflow.sdk import DAG

from airflow_jobstatus.operators.transfer import JobOutputsToStorageOperator
from airflow_jobstatus.sensors.wasabi import WasabiAirJobSensor

with DAG({dag_id!r}, schedule=None, catchup=False) as dag:
    wait = WasabiAirJobSensor(
        task_id="wait", job_id={job_id!r}, wasabi_air_conn_id={conn_id!r}, deferrable=True, poll_interval=0.5
    )
    deliver = JobOutputsToStorageOperator(
        task_id="deliver",
        job_conn_id={conn_id!r},
        job_id=wait.output,
        destination={destination!r},
        source_aws_conn_id={aws!r},
        retries=0,
    )
    wait >> deliver
"""


def _run(folder: Path, **values: Any) -> tuple[dict[str, str], Any]:
    dag_id = f"wasabi_meta_{uuid.uuid4().hex[:6]}"
    dag_run = load_dag(folder, dag_id, DAG.format(dag_id=dag_id, **values)).test()
    tis = {ti.task_id: ti for ti in dag_run.get_task_instances()}
    return {k: str(getattr(ti.state, "value", ti.state)) for k, ti in tis.items()}, tis


def test_in_airflow_the_wait_succeeds_and_only_the_transfer_meets_the_metadata(
    wasabi,
    emulator: EmulatorServer,
    jobstatus_s3,
    airflow_dags_folder: Path,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    conn_id, access, bucket = wasabi
    aws = f"t_aws_{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{aws.upper()}",
        json.dumps(
            {
                "conn_type": "aws",
                "login": "testing",
                "password": "testing",
                "extra": {"endpoint_url": jobstatus_s3.endpoint_url, "region_name": "us-east-1"},
            }
        ),
    )
    hook = WasabiAirHook(wasabi_air_conn_id=conn_id)

    # a metadata body of the wrong shape: the sensor still succeeds; the transfer fails, typed
    fault = emulator.add_fault(service="wasabi", route="/metadata", kind="malformed")
    destination = (tmp_path / "broken").as_uri()
    states, _ = _run(
        airflow_dags_folder,
        job_id=_submit(hook, jobstatus_s3, bucket),
        conn_id=conn_id,
        destination=destination,
        aws=aws,
    )
    captured = capfd.readouterr()
    text = "\n".join([captured.out, captured.err, *(r.getMessage() for r in caplog.records)])
    assert states == {"wait": "success", "deliver": "failed"}, states
    assert "MalformedResponseError" in text and "get_outputs" in text

    # the metadata lags the status (default emulator): the wait ends, the transfer waits for it
    emulator.delete_fault(fault)
    emulator.configure(wasabi_metadata_lag=1.5)
    job_id = _submit(hook, jobstatus_s3, bucket)
    destination = (tmp_path / "delivered").as_uri()
    states, _ = _run(airflow_dags_folder, job_id=job_id, conn_id=conn_id, destination=destination, aws=aws)
    assert states == {"wait": "success", "deliver": "success"}, states
    delivered = list((tmp_path / "delivered").rglob("*_metadata.json")) + list(
        (tmp_path / "delivered").rglob("metadata.json")
    )
    assert delivered, sorted(p.name for p in (tmp_path / "delivered").rglob("*"))
    assert json.loads(delivered[0].read_text())["JobId"] == job_id
