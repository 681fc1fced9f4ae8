"""Wasabi AiR job API contract (seed page 002 and shared/providers.md) against the emulator."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from airflow_jobstatus.testing.s3 import S3Server
from jobstatus_emulator.server import EmulatorServer
from tests.helpers.emulator_http import statuses_until

pytestmark = pytest.mark.integration

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(trust_env=False, timeout=10) as c:
        yield c


@pytest.fixture
def bucket(jobstatus_s3: S3Server) -> str:
    return jobstatus_s3.create_bucket(f"air-out-{uuid.uuid4().hex[:10]}")


def _h(key: str, secret: str = "secret-key") -> dict[str, str]:
    return {"x-amz-access-key": key, "x-amz-secret-key": secret}


def _job_body(name: str, bucket: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "Name": name,
        "Priority": 5,
        "Services": {"ocr": "", "s2t": "", "logo": {"config": {"rec_confidence_threshold": 0.85}}},
        "Batch": "batch_2024_11_21",
        "Destination": {"Bucket": bucket, "Region": "us-east-1"},
        "Source": {
            "Endpoint": "s3.us-west-1.wasabisys.com",
            "Bucket": "wasabifs-chm",
            "Region": "us-west-1",
            "ObjectKey": "MP4/Commercial.mp4",
            "Provider": "wasabi",
        },
    }
    body.update(extra)
    return body


def _submit(client: httpx.Client, base: str, key: str, body: dict[str, Any]) -> dict[str, Any]:
    r = client.post(f"{base}/jobs", headers=_h(key), json=body)
    assert r.status_code == 200, r.text
    return dict(r.json()["Job"])


def _poll(client: httpx.Client, url: str, headers: dict[str, str]) -> list[str]:
    return statuses_until(client, url, {"completed", "failed", "cancelled"}, key="Status", headers=headers)[0]


def _metadata_once_listed(client: httpx.Client, url: str, headers: dict[str, str]) -> dict[str, Any]:
    """The metadata of a completed job: it may answer 404 for a moment first (contracts W6)."""
    deadline = time.monotonic() + 10
    while (r := client.get(url, headers=headers)).status_code == 404:
        assert time.monotonic() < deadline, r.text
        time.sleep(0.05)
    assert r.status_code == 200, r.text
    return dict(r.json())


def _check_job_shape(job: dict[str, Any]) -> None:
    assert set(job) == {
        "Id",
        "Name",
        "Source",
        "Services",
        "UserId",
        "Created",
        "Completed",
        "Priority",
        "Batch",
        "Status",
        "Destination",
    }
    assert re.fullmatch(r"[0-9a-f]{32}", job["Id"])
    assert set(job["Source"]) == {"Endpoint", "Bucket", "Region", "ObjectKey", "Provider"}
    assert all(isinstance(v, str) for v in job["Source"].values())
    assert isinstance(job["Services"], dict)
    assert isinstance(job["UserId"], str)
    assert ISO.match(job["Created"])
    assert job["Completed"] is None or ISO.match(job["Completed"])
    assert isinstance(job["Priority"], int)
    assert job["Batch"] is None or isinstance(job["Batch"], str)
    assert job["Status"] in ("submitted", "preflight", "in_progress", "completed", "failed", "cancelled")
    assert set(job["Destination"]) == {"Bucket", "Region"}


def test_job_shape_and_progression(
    emulator: EmulatorServer, client: httpx.Client, jobstatus_credential: str, bucket: str
) -> None:
    base = emulator.service_url("wasabi")
    body = _job_body("MyJobName?emu_duration=1.2", bucket)
    body["Source"].update({"AccessKey": "SRCACCESS", "SecretKey": "SRCSECRET"})
    created = _submit(client, base, jobstatus_credential, body)
    _check_job_shape(created)
    assert "SRCACCESS" not in str(created) and "SRCSECRET" not in str(created)
    assert created["Status"] == "submitted" and created["Completed"] is None
    assert created["Services"] == body["Services"]
    headers = _h(jobstatus_credential)
    job = client.get(f"{base}/jobs/{created['Id']}", headers=headers).json()
    _check_job_shape(job)
    assert job["Name"] == body["Name"] and job["Batch"] == "batch_2024_11_21"

    r = client.get(f"{base}/jobs/{created['Id']}/metadata", headers=headers)
    assert r.status_code == 404
    assert r.json() == {"Error": "Job not found or not completed", "ErrorCode": "NOT_FOUND"}

    seen = _poll(client, f"{base}/jobs/{created['Id']}/status", headers)
    assert seen == ["submitted", "preflight", "in_progress", "completed"]
    status = client.get(f"{base}/jobs/{created['Id']}/status", headers=headers).json()
    assert status == {"Id": created["Id"], "Status": "completed", "ErrorCount": 0}
    job = client.get(f"{base}/jobs/{created['Id']}", headers=headers).json()
    _check_job_shape(job)
    assert job["Status"] == "completed" and ISO.match(job["Completed"])
    meta = _metadata_once_listed(client, f"{base}/jobs/{created['Id']}/metadata", headers)
    assert set(meta) == {"Id", "UserId", "Destination", "DestinationPath"}
    assert meta["Destination"] == {"Bucket": bucket, "Region": "us-east-1"}
    assert re.fullmatch(
        rf"s3://{bucket}/jobs/\d{{4}}_\d\d_\d\d/[0-9a-f-]{{36}}/MyJobName\?emu_duration=1\.2_metadata\.json",
        meta["DestinationPath"],
    )
    # the admin view never shows the source secret either
    assert "SRCSECRET" not in str(emulator.job("wasabi", created["Id"]))


@pytest.mark.parametrize(("outcome", "status", "errors"), [("fail", "failed", 1), ("cancel", "cancelled", 0)])
def test_failed_and_cancelled(
    emulator: EmulatorServer,
    client: httpx.Client,
    jobstatus_credential: str,
    bucket: str,
    outcome: str,
    status: str,
    errors: int,
) -> None:
    base = emulator.service_url("wasabi")
    body = _job_body("job", bucket)
    body["Source"]["ObjectKey"] = f"clip.mp4?emu_duration=0.5&emu_outcome={outcome}"
    job = _submit(client, base, jobstatus_credential, body)
    headers = _h(jobstatus_credential)
    seen = _poll(client, f"{base}/jobs/{job['Id']}", headers)
    assert seen[-1] == status
    assert client.get(f"{base}/jobs/{job['Id']}/status", headers=headers).json()["ErrorCount"] == errors
    assert client.get(f"{base}/jobs/{job['Id']}", headers=headers).json()["Completed"] is not None
    assert client.get(f"{base}/jobs/{job['Id']}/metadata", headers=headers).status_code == 404


def test_missing_destination_bucket_fails_the_job(
    emulator: EmulatorServer, client: httpx.Client, jobstatus_credential: str
) -> None:
    base = emulator.service_url("wasabi")
    job = _submit(
        client,
        base,
        jobstatus_credential,
        _job_body("job?emu_duration=0.3", f"no-such-{uuid.uuid4().hex[:8]}"),
    )
    assert _poll(client, f"{base}/jobs/{job['Id']}", _h(jobstatus_credential))[-1] == "failed"
    assert "NoSuchBucket" in emulator.job("wasabi", job["Id"])["error"]


def test_auth_and_not_found(
    emulator: EmulatorServer, client: httpx.Client, jobstatus_credential: str
) -> None:
    base = emulator.service_url("wasabi")
    unauthorized = {"Error": "Unauthorized", "ErrorCode": "UNAUTHORIZED"}
    for headers in (
        {},
        {"x-amz-access-key": jobstatus_credential},
        _h("invalid-key"),
        _h(jobstatus_credential, ""),
    ):
        r = client.get(f"{base}/jobs", headers=headers)
        assert r.status_code == 401 and r.json() == unauthorized
    r = client.get(f"{base}/jobs/{uuid.uuid4().hex}", headers=_h(jobstatus_credential))
    assert r.status_code == 404 and r.json() == {"ErrorCode": "NOT_FOUND"}
    r = client.get(f"{base}/jobs/{uuid.uuid4().hex}/status", headers=_h(jobstatus_credential))
    assert r.status_code == 404 and r.json()["ErrorCode"] == "NOT_FOUND"


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"Name": ""}, "Name"),
        ({"Name": "x" * 257}, "Name"),
        ({"Priority": 11}, "Priority"),
        ({"Priority": "5"}, "Priority"),
        ({"Services": {}}, "Services"),
        ({"Services": {"translate": ""}}, "translate"),
        ({"Destination": {"Bucket": "b"}}, "Destination"),
        ({"Name": "   "}, "Name"),
        ({"Batch": "b" * 257}, "Batch"),
        ({"Source": {"Endpoint": "s3.wasabisys.com", "Region": "r", "ObjectKey": "k"}}, "Source.Bucket"),
        ({"Source": {"Bucket": "b", "Region": 3, "ObjectKey": "k"}}, "Source.Region"),
    ],
)
def test_submit_validation(
    emulator: EmulatorServer,
    client: httpx.Client,
    jobstatus_credential: str,
    change: dict[str, Any],
    needle: str,
) -> None:
    body = {**_job_body("ok", "bucket"), **change}
    r = client.post(emulator.service_url("wasabi") + "/jobs", headers=_h(jobstatus_credential), json=body)
    assert r.status_code == 400
    assert r.json()["ErrorCode"] == "BAD_REQUEST" and needle in r.json()["Error"]


def test_list_pages_every_job_exactly_once(
    emulator: EmulatorServer, client: httpx.Client, jobstatus_credential: str
) -> None:
    base = emulator.service_url("wasabi")
    headers = _h(jobstatus_credential)
    ids = [
        _submit(
            client, base, jobstatus_credential, _job_body(f"clip-{i}", "b", Batch="odd" if i % 2 else "even")
        )["Id"]
        for i in range(7)
    ]
    for order, expected in (("Asc", ids), ("Desc", ids[::-1])):
        seen: list[str] = []
        page = 1
        while True:
            records = client.get(
                f"{base}/jobs",
                headers=headers,
                params={"pageNumber": page, "pageSize": 3, "sortBy": "Created", "sortOrder": order},
            ).json()["Records"]
            if not records:
                break
            for rec in records:
                _check_job_shape(rec)
            seen += [rec["Id"] for rec in records]
            page += 1
        assert seen == expected
        assert page == 4
    # default (W7): oldest first ("Default is Asc")
    assert [r["Id"] for r in client.get(f"{base}/jobs", headers=headers).json()["Records"]] == ids
    odd = client.get(
        f"{base}/jobs",
        headers=headers,
        params={"batch": "odd", "pageSize": 2, "pageNumber": 2, "sortOrder": "Asc"},
    ).json()
    assert [r["Id"] for r in odd["Records"]] == [ids[5]]
    named = client.get(f"{base}/jobs", headers=headers, params={"name": "CLIP-3"}).json()["Records"]
    assert [r["Id"] for r in named] == [ids[3]]
    by_status = client.get(
        f"{base}/jobs", headers=headers, params={"status": "submitted", "pageSize": 100}
    ).json()
    assert len(by_status["Records"]) == 7
    assert client.get(f"{base}/jobs", headers=headers, params={"status": "completed"}).json() == {
        "Records": []
    }
    for bad in (
        {"pageSize": 101},
        {"pageSize": 0},
        {"pageNumber": 0},
        {"sortOrder": "Sideways"},
        {"sortBy": "Name"},
    ):
        r = client.get(f"{base}/jobs", headers=headers, params=bad)
        assert r.status_code == 400 and r.json()["ErrorCode"] == "BAD_REQUEST", bad


def test_metadata_lags_the_completed_status_by_the_configured_lag(
    emulator: EmulatorServer, client: httpx.Client, jobstatus_credential: str, bucket: str
) -> None:
    """W6: right after a job reads ``completed``, ``/metadata`` may still be 404; then it is listed."""
    emulator.configure(wasabi_metadata_lag=1.5)
    base = emulator.service_url("wasabi")
    headers = _h(jobstatus_credential)
    job = _submit(client, base, jobstatus_credential, _job_body("lag?emu_duration=0.3", bucket))
    _poll(client, f"{base}/jobs/{job['Id']}/status", headers)
    completed_seen = time.monotonic()
    r = client.get(f"{base}/jobs/{job['Id']}/metadata", headers=headers)
    assert r.status_code == 404 and r.json()["ErrorCode"] == "NOT_FOUND"
    meta = _metadata_once_listed(client, f"{base}/jobs/{job['Id']}/metadata", headers)
    assert meta["Id"] == job["Id"]
    assert time.monotonic() - completed_seen >= 1.0  # listed only once the lag passed

    emulator.configure(wasabi_metadata_lag=0)
    job = _submit(client, base, jobstatus_credential, _job_body("nolag?emu_duration=0.3", bucket))
    _poll(client, f"{base}/jobs/{job['Id']}/status", headers)
    assert client.get(f"{base}/jobs/{job['Id']}/metadata", headers=headers).status_code == 200


def test_source_endpoint_and_region_are_optional(
    emulator: EmulatorServer, client: httpx.Client, jobstatus_credential: str
) -> None:
    """W2: "Submit a new job" requires only Source.Bucket and Source.ObjectKey."""
    body = _job_body("minimal-source", "bucket")
    body["Source"] = {"Bucket": "media", "ObjectKey": "MP4/Commercial.mp4"}
    job = _submit(client, emulator.service_url("wasabi"), jobstatus_credential, body)
    assert job["Source"]["Bucket"] == "media" and job["Source"]["Endpoint"] is None
