"""Wasabi AiR models, against the seed page 002 and providers.md."""

import copy
import json
from datetime import datetime, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from airflow_jobstatus.models import JobState, JobStatus, S3Object, Service
from airflow_jobstatus.services.wasabi_air import (
    WASABI_STATUS_MAP,
    WasabiError,
    WasabiJob,
    WasabiJobList,
    WasabiJobStatusResponse,
    WasabiMetadata,
    WasabiSubmitResponse,
    wasabi_job_status,
)

pytestmark = pytest.mark.unit

# Built from the seed page's field table with its documented example values (Provider has no
# example; the description's first value is used).
WASABI_JOB: dict[str, Any] = {
    "Id": "67345137bcb6dce44b35a6a6281711e7",
    "Name": "MyJobName",
    "Source": {
        "Endpoint": "s3.us-west-1.wasabisys.com",
        "Bucket": "wasabifs-chm",
        "Region": "us-west-1",
        "ObjectKey": "MP4/Commercial.mp4",
        "Provider": "wasabi",
    },
    "Services": {
        "ocr": "",
        "s2t": "",
        "nld": "",
        "audiotag": "",
        "face": "",
        "logo": {"config": {"rec_confidence_threshold": 0.85}},
    },
    "UserId": "10000",
    "Created": "2024-11-13T07:11:51.658Z",
    "Completed": "2024-11-13T07:11:51.658Z",
    "Priority": 5,
    "Batch": "batch_2024_11_21",
    "Status": "submitted",
    "Destination": {"Bucket": "airstream-output-2", "Region": "us-west-1"},
}

# The error bodies, verbatim from the seed page.
WASABI_401 = {"Error": "Unauthorized", "ErrorCode": "UNAUTHORIZED"}
WASABI_404 = {"ErrorCode": "NOT_FOUND"}
WASABI_500 = {
    "Error": "An unexpected error occurred while processing the job.",
    "ErrorCode": "INTERNAL_ERROR",
}

WASABI_METADATA: dict[str, Any] = {
    "Id": "67345137bcb6dce44b35a6a6281711e7",
    "UserId": "10000",
    "Destination": {"Bucket": "metabucket", "Region": "us-west-1"},
    "DestinationPath": "s3://metabucket/jobs/2025_04_29/67345137bcb6dce44b35a6a6281711e7/MyJobName_metadata.json",
}

WASABI_ENDPOINT = "https://s3.us-west-1.wasabisys.com"


def _job(**changes: Any) -> WasabiJob:
    return WasabiJob.model_validate({**copy.deepcopy(WASABI_JOB), **changes})


def test_seed_example_parses() -> None:
    for job in (
        WasabiJob.model_validate(copy.deepcopy(WASABI_JOB)),
        WasabiJob.model_validate_json(json.dumps(WASABI_JOB)),
    ):
        assert job.Id == "67345137bcb6dce44b35a6a6281711e7"
        assert job.Source is not None and job.Source.ObjectKey == "MP4/Commercial.mp4"
        assert job.Services is not None and job.Services["logo"] == {
            "config": {"rec_confidence_threshold": 0.85}
        }
        assert job.Created == datetime(2024, 11, 13, 7, 11, 51, 658000, tzinfo=timezone.utc)
        assert job.Priority == 5
        assert job.Destination is not None and job.Destination.Bucket == "airstream-output-2"
        status = wasabi_job_status(job)
        assert status.service is Service.WASABI_AIR
        assert status.state is JobState.QUEUED
        assert status.raw_status == "submitted"
        assert status.created_at == datetime(2024, 11, 13, 7, 11, 51, 658000, tzinfo=timezone.utc)
        assert status.outputs == [] and status.error is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("submitted", JobState.QUEUED),
        ("preflight", JobState.RUNNING),
        ("in_progress", JobState.RUNNING),
        ("completed", JobState.SUCCEEDED),
        ("failed", JobState.FAILED),
        ("cancelled", JobState.CANCELLED),
    ],
)
def test_documented_statuses(raw: str, expected: JobState) -> None:
    assert wasabi_job_status(_job(Status=raw)).state is expected
    response = WasabiJobStatusResponse.model_validate(
        {"Id": WASABI_JOB["Id"], "Status": raw, "ErrorCount": 0}
    )
    assert wasabi_job_status(response).state is expected
    assert WASABI_STATUS_MAP[raw] is expected


@pytest.mark.parametrize("raw", ["", None, "paused", "canceled", "complete", "success"])
def test_undocumented_or_empty_status_is_unknown(raw: str | None) -> None:
    status = wasabi_job_status(_job(Status=raw), WasabiMetadata.model_validate(WASABI_METADATA))
    assert status.state is JobState.UNKNOWN and not status.succeeded and not status.is_terminal
    assert status.outputs == []
    assert status.raw_status == raw


def test_completed_with_metadata_gives_the_metadata_object() -> None:
    metadata = WasabiMetadata.model_validate(WASABI_METADATA)
    status = wasabi_job_status(_job(Status="completed"), metadata, endpoint_url=WASABI_ENDPOINT)
    assert status.succeeded
    assert len(status.outputs) == 1
    output = status.outputs[0]
    assert (output.name, output.format, output.file_name, output.media_type) == (
        "metadata",
        "json",
        "metadata.json",
        "application/json",
    )
    assert output.location == S3Object(
        bucket="metabucket",
        key="jobs/2025_04_29/67345137bcb6dce44b35a6a6281711e7/MyJobName_metadata.json",
        region="us-west-1",
        endpoint_url=WASABI_ENDPOINT,
    )
    assert status.completed_at == datetime(2024, 11, 13, 7, 11, 51, 658000, tzinfo=timezone.utc)
    assert JobStatus.model_validate(status.model_dump(mode="json")) == status
    assert JobStatus.model_validate_json(status.model_dump_json()) == status


def test_completed_without_metadata_has_no_output_yet() -> None:
    assert wasabi_job_status(_job(Status="completed")).outputs == []


def test_metadata_for_another_job_is_refused() -> None:
    with pytest.raises(ValueError):
        wasabi_job_status(
            _job(Status="completed"), WasabiMetadata.model_validate({**WASABI_METADATA, "Id": "other"})
        )


def test_failed_job_keeps_error_count_in_raw() -> None:
    response = WasabiJobStatusResponse.model_validate({"Id": "j1", "Status": "failed", "ErrorCount": 3})
    status = wasabi_job_status(response)
    assert status.state is JobState.FAILED and status.error is None
    assert status.raw == {"Id": "j1", "Status": "failed", "ErrorCount": 3}
    with_message = WasabiJobStatusResponse.model_validate(
        {"Id": "j1", "Status": "failed", "Error": "decoder crashed"}
    )
    assert wasabi_job_status(with_message).error == "decoder crashed"


def test_metadata_destination_object() -> None:
    metadata = WasabiMetadata.model_validate(WASABI_METADATA)
    location = metadata.to_s3_object()
    assert (location.bucket, location.key) == (
        "metabucket",
        "jobs/2025_04_29/67345137bcb6dce44b35a6a6281711e7/MyJobName_metadata.json",
    )
    keyonly = WasabiMetadata.model_validate(
        {**WASABI_METADATA, "DestinationPath": "/jobs/x/Name_metadata.json"}
    )
    location = keyonly.to_s3_object()
    assert (location.bucket, location.key) == ("metabucket", "jobs/x/Name_metadata.json")
    assert (location.region, location.endpoint_url) == ("us-west-1", WASABI_ENDPOINT)  # the region's (W8)
    assert (
        keyonly.to_s3_object(region="eu-2", endpoint_url="https://s3.example").endpoint_url
        == "https://s3.example"
    )
    nowhere = WasabiMetadata.model_validate({"Id": "j", "DestinationPath": "jobs/x.json"})
    with pytest.raises(ValueError):
        nowhere.to_s3_object()
    with pytest.raises(ValueError):
        WasabiMetadata.model_validate(
            {**WASABI_METADATA, "DestinationPath": "s3://metabucket"}
        ).to_s3_object()


def test_source_credentials_never_reach_raw_or_repr() -> None:
    body = copy.deepcopy(WASABI_JOB)
    body["Source"].update(Provider="aws", AccessKey="AKIAEXAMPLE", SecretKey="wJalrXUtnFEMI/K7MDENG")
    job = WasabiJob.model_validate(body)
    assert "wJalr" not in repr(job) and "AKIAEXAMPLE" not in repr(job)
    status = wasabi_job_status(job)
    assert status.raw["Source"]["SecretKey"] == "***"
    assert status.raw["Source"]["AccessKey"] == "***"
    assert "wJalr" not in status.model_dump_json()


def test_unknown_fields_are_kept() -> None:
    job = _job(Progress=42, Source={**WASABI_JOB["Source"], "Etag": "abc"})
    assert job.model_extra == {"Progress": 42}
    assert job.Source is not None and job.Source.model_extra == {"Etag": "abc"}
    status = wasabi_job_status(job)
    assert status.raw["Progress"] == 42 and status.raw["Source"]["Etag"] == "abc"


@pytest.mark.parametrize(
    "changes",
    [
        {"Id": 67345137},
        {"Priority": "5"},
        {"Priority": 5.0},
        {"UserId": 10000},
        {"Created": 1731481911},
        {"Completed": "yesterday"},
        {"Status": ["completed"]},
        {"Services": "ocr"},
        {"Destination": {"Region": "us-west-1"}},
    ],
)
def test_wrong_types_on_documented_fields_raise(changes: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        _job(**changes)
    with pytest.raises(ValidationError):
        WasabiJob.model_validate_json(json.dumps({**WASABI_JOB, **changes}))


def test_status_response_wrong_error_count_type() -> None:
    with pytest.raises(ValidationError):
        WasabiJobStatusResponse.model_validate({"Id": "j", "Status": "failed", "ErrorCount": "3"})


def test_list_submit_and_error_bodies() -> None:
    page = WasabiJobList.model_validate({"Records": [WASABI_JOB, {"Id": "2", "Status": "completed"}]})
    assert [r.Id for r in page.Records] == ["67345137bcb6dce44b35a6a6281711e7", "2"]
    submitted = WasabiSubmitResponse.model_validate({"Job": WASABI_JOB})
    assert submitted.Job.Status == "submitted"
    assert WasabiError.model_validate(WASABI_401).ErrorCode == "UNAUTHORIZED"
    not_found = WasabiError.model_validate(WASABI_404)
    assert not_found.Error is None and not_found.ErrorCode == "NOT_FOUND"
    assert (
        WasabiError.model_validate(WASABI_500).Error
        == "An unexpected error occurred while processing the job."
    )
    with pytest.raises(ValidationError):
        WasabiError.model_validate({"ErrorCode": 404})
