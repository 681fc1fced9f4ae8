"""Daily batch processor models, against the seed pages 000/001 and providers.md."""

import copy
import json
from typing import Any

import pytest
from pydantic import ValidationError

from airflow_jobstatus.models import DownloadLink, JobState, JobStatus, S3Object, Service
from airflow_jobstatus.services.daily import (
    DAILY_STATUS_MAP,
    DailyAccessLinks,
    DailyError,
    DailyJob,
    DailyJobList,
    DailySubmitResponse,
    daily_attach_links,
    daily_job_status,
)

pytestmark = pytest.mark.unit

# Built from the seed pages' field tables (000: transcription/summary; 001 adds soap), with the
# documented example values verbatim. Note the keys: the transcript key starts with the bucket name,
# the summary/SOAP keys with the domain name, and the SOAP key ends in .txt while its format is json.
DAILY_FINISHED: dict[str, Any] = {
    "id": "3ab8faa2-8ba2-4ee6-bd15-003a92c18245",
    "preset": "recordingId",
    "status": "finished",
    "input": {
        "sourceType": "recordingId",
        "recordingId": "uuiasdfe-8ba2-4ee6-bd15-003a92c18245",
    },
    "output": {
        "transcription": [
            {
                "format": "txt",
                "s3Config": {
                    "key": "bucket-name/uuiasdfe-8ba2-4ee6-bd15-003a92c18245/transcript/output.txt",
                    "bucket": "bucket-name",
                    "region": "us-west-2",
                },
            }
        ],
        "summary": {
            "format": "txt",
            "s3Config": {
                "key": "your-daily-domain/uuiasdfe-8ba2-4ee6-bd15-003a92c18245/transcript/output.txt",
                "bucket": "bucket-name",
                "region": "us-west-2",
            },
        },
        "soap": {
            "format": "json",
            "s3Config": {
                "key": "your-daily-domain/uuiasdfe-8ba2-4ee6-bd15-003a92c18245/transcript/output.txt",
                "bucket": "bucket-name",
                "region": "us-west-2",
            },
        },
    },
}

DAILY_ERROR: dict[str, Any] = {
    "id": "3ab8faa2-8ba2-4ee6-bd15-003a92c18245",
    "preset": "recordingId",
    "status": "error",
    "input": {"sourceType": "uri", "uri": "https://direct-url-to/file.mp4"},
    "error": "Error: Failed to transcribe. May be invalid audio or silent file",
}

SECRET_LINK = "https://daily-storage.example/out.txt?X-Amz-Signature=feedface0123"


def _parse_both_ways(body: dict[str, Any]) -> list[DailyJob]:
    """A hook may validate the decoded dict or the raw bytes; both must give the same model."""
    return [DailyJob.model_validate(copy.deepcopy(body)), DailyJob.model_validate_json(json.dumps(body))]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("submitted", JobState.QUEUED),
        ("processing", JobState.RUNNING),
        ("finished", JobState.SUCCEEDED),
        ("error", JobState.FAILED),
    ],
)
def test_documented_statuses(raw: str, expected: JobState) -> None:
    body = {**DAILY_FINISHED, "status": raw}
    for job in _parse_both_ways(body):
        status = daily_job_status(job)
        assert status.state is expected
        assert status.raw_status == raw
        assert status.service is Service.DAILY
    assert DAILY_STATUS_MAP[raw] is expected


def test_seed_finished_example_customer_bucket() -> None:
    for job in _parse_both_ways(DAILY_FINISHED):
        assert job.output is not None and job.output.soap is not None
        status = daily_job_status(job, storage="customer")
        assert status.succeeded and status.is_terminal
        assert status.job_id == "3ab8faa2-8ba2-4ee6-bd15-003a92c18245"
        assert status.error is None
        assert [(o.name, o.format, o.file_name) for o in status.outputs] == [
            ("transcript", "txt", "transcript.txt"),
            ("summary", "txt", "summary.txt"),
            ("soap", "json", "soap.json"),
        ]
        transcript = status.outputs[0].location
        assert transcript == S3Object(
            bucket="bucket-name",
            key="bucket-name/uuiasdfe-8ba2-4ee6-bd15-003a92c18245/transcript/output.txt",
            region="us-west-2",
        )
        assert status.outputs[0].media_type == "text/plain"
        assert status.outputs[2].media_type == "application/json"
        assert status.raw == DAILY_FINISHED


def test_seed_finished_example_daily_storage_gives_links() -> None:
    job = DailyJob.model_validate(DAILY_FINISHED)
    for status in (daily_job_status(job), daily_job_status(job, storage="daily")):
        assert all(isinstance(o.location, DownloadLink) and o.location.url is None for o in status.outputs)
        assert [o.file_name for o in status.outputs] == ["transcript.txt", "summary.txt", "soap.json"]


def test_daily_storage_keeps_every_documented_field() -> None:
    """contracts D10: format, bucket, key and region survive in both modes (and through XCom JSON)."""
    job = DailyJob.model_validate(DAILY_FINISHED)
    output = DAILY_FINISHED["output"]
    documented = [output["transcription"][0], output["summary"], output["soap"]]
    for storage in ("daily", "customer"):
        status = daily_job_status(job, storage=storage)  # type: ignore[arg-type]
        again = JobStatus.model_validate_json(status.model_dump_json())
        for parsed in (status, again):
            for out, doc in zip(parsed.outputs, documented, strict=True):
                location = out.location
                s3 = location.s3 if isinstance(location, DownloadLink) else location
                assert isinstance(s3, S3Object), storage
                assert out.format == doc["format"]
                assert (s3.bucket, s3.key, s3.region) == (
                    doc["s3Config"]["bucket"],
                    doc["s3Config"]["key"],
                    doc["s3Config"]["region"],
                )


def test_concept_output_from_the_webhook_payload_is_kept() -> None:
    body = copy.deepcopy(DAILY_FINISHED)
    body["output"]["concept"] = {
        "format": "JSON",
        "s3Config": {"key": "dom/job/concept/output.json", "bucket": "bucket-name", "region": "us-west-2"},
    }
    status = daily_job_status(DailyJob.model_validate(body))
    concept = status.output("concept", "json")
    assert concept is not None and isinstance(concept.location, DownloadLink)
    assert concept.location.s3 == S3Object(
        bucket="bucket-name", key="dom/job/concept/output.json", region="us-west-2"
    )


def test_outputs_without_a_documented_link_keep_only_their_object() -> None:
    """contracts D11: the access-link response lists transcription and summary only."""
    links = DailyAccessLinks.model_validate({k: v for k, v in ACCESS_LINKS.items() if k != "soap"})
    resolved = daily_attach_links(daily_job_status(DailyJob.model_validate(DAILY_FINISHED)), links)
    soap = resolved.output("soap", "json")
    assert soap is not None and isinstance(soap.location, DownloadLink)
    assert soap.location.url is None and soap.location.s3 is not None
    assert all(
        o.location.url for o in resolved.outputs if o.name != "soap" and isinstance(o.location, DownloadLink)
    )


def test_customer_storage_without_s3config_falls_back_to_link() -> None:
    body = copy.deepcopy(DAILY_FINISHED)
    del body["output"]["summary"]["s3Config"]
    status = daily_job_status(DailyJob.model_validate(body), storage="customer")
    assert isinstance(status.output("summary").location, DownloadLink)  # type: ignore[union-attr]
    assert isinstance(status.output("transcript").location, S3Object)  # type: ignore[union-attr]


def test_bad_storage_value() -> None:
    with pytest.raises(ValueError):
        daily_job_status(DailyJob.model_validate(DAILY_FINISHED), storage="s3")  # type: ignore[arg-type]


def test_seed_error_example() -> None:
    for job in _parse_both_ways(DAILY_ERROR):
        status = daily_job_status(job)
        assert status.state is JobState.FAILED and status.is_terminal and not status.succeeded
        assert status.error == "Error: Failed to transcribe. May be invalid audio or silent file"
        assert status.outputs == []
        assert job.input is not None and job.input.uri == "https://direct-url-to/file.mp4"


@pytest.mark.parametrize("raw", ["", None, "cancelled", "FINISHED!", "done"])
def test_undocumented_or_empty_status_is_unknown(raw: str | None) -> None:
    status = daily_job_status(DailyJob.model_validate({**DAILY_FINISHED, "status": raw}))
    assert status.state is JobState.UNKNOWN
    assert not status.succeeded and not status.is_terminal
    assert status.outputs == []
    assert status.raw_status == raw


def test_missing_status_is_unknown() -> None:
    body = {k: v for k, v in DAILY_FINISHED.items() if k != "status"}
    status = daily_job_status(DailyJob.model_validate(body))
    assert status.state is JobState.UNKNOWN and status.raw_status is None


def test_no_outputs_before_finished() -> None:
    status = daily_job_status(DailyJob.model_validate({**DAILY_FINISHED, "status": "processing"}))
    assert status.outputs == []


def test_transcription_formats_each_become_an_output() -> None:
    body = copy.deepcopy(DAILY_FINISHED)
    base = body["output"]["transcription"][0]
    body["output"]["transcription"] = [
        {"format": fmt, "s3Config": {**base["s3Config"], "key": f"staging/job/transcript/t.{fmt}"}}
        for fmt in ("txt", "srt", "vtt", "json")
    ]
    status = daily_job_status(DailyJob.model_validate(body), storage="customer")
    names = [o.file_name for o in status.outputs if o.name == "transcript"]
    assert names == ["transcript.txt", "transcript.srt", "transcript.vtt", "transcript.json"]


def test_summary_key_without_extension() -> None:
    body = copy.deepcopy(DAILY_FINISHED)
    body["output"]["summary"]["s3Config"]["key"] = "staging/3ab8/summary"
    status = daily_job_status(DailyJob.model_validate(body), storage="customer")
    summary = status.output("summary")
    assert summary is not None and summary.file_name == "summary.txt"
    assert isinstance(summary.location, S3Object) and summary.location.key == "staging/3ab8/summary"


def test_unknown_fields_are_kept() -> None:
    body = copy.deepcopy(DAILY_FINISHED)
    body["created"] = "2024-01-01T00:00:00Z"
    body["output"]["transcription"][0]["words"] = 123
    job = DailyJob.model_validate(body)
    assert job.model_extra == {"created": "2024-01-01T00:00:00Z"}
    assert job.output is not None and job.output.transcription[0].model_extra == {"words": 123}
    status = daily_job_status(job)
    assert status.raw["created"] == "2024-01-01T00:00:00Z"
    assert status.raw["output"]["transcription"][0]["words"] == 123


@pytest.mark.parametrize(
    "mutate",
    [
        lambda b: b.update(id=123),
        lambda b: b.update(status=1),
        lambda b: b.update(error={"message": "x"}),
        lambda b: b["output"].update(transcription={"format": "txt"}),
        lambda b: b["output"]["transcription"][0].update(format=None),
        lambda b: b["output"]["summary"]["s3Config"].update(bucket=["b"]),
        lambda b: b["input"].update(recordingId=42),
        lambda b: b.pop("id"),
    ],
)
def test_wrong_types_on_documented_fields_raise(mutate) -> None:
    body = copy.deepcopy(DAILY_FINISHED)
    mutate(body)
    with pytest.raises(ValidationError):
        DailyJob.model_validate(body)
    with pytest.raises(ValidationError):
        DailyJob.model_validate_json(json.dumps(body))


def test_job_status_round_trip() -> None:
    for storage in ("customer", "daily"):
        status = daily_job_status(DailyJob.model_validate(DAILY_FINISHED), storage=storage)
        assert JobStatus.model_validate(status.model_dump(mode="json")) == status
        assert JobStatus.model_validate_json(status.model_dump_json()) == status


# ---------------------------------------------------------------------------------------------
# Access links, list, submit, error
# ---------------------------------------------------------------------------------------------

ACCESS_LINKS: dict[str, Any] = {
    "id": "3ab8faa2-8ba2-4ee6-bd15-003a92c18245",
    "preset": "recordingId",
    "status": "finished",
    "transcription": [{"format": "txt", "link": SECRET_LINK}],
    "summary": {"format": "txt", "link": SECRET_LINK + "&s=1"},
    "soap": {"format": "json", "link": SECRET_LINK + "&s=2"},
}


def test_access_links_attach_and_never_leak() -> None:
    links = DailyAccessLinks.model_validate(ACCESS_LINKS)
    assert "feedface" not in repr(links)
    assert links.link_for("transcript", "TXT") == SECRET_LINK
    assert links.link_for("transcript", "srt") is None
    assert links.link_for("soap", "json") == SECRET_LINK + "&s=2"
    assert links.link_for("other", "json") is None

    status = daily_job_status(DailyJob.model_validate(DAILY_FINISHED))
    resolved = daily_attach_links(status, links)
    urls = [o.location.url for o in resolved.outputs if isinstance(o.location, DownloadLink)]
    assert urls == [SECRET_LINK, SECRET_LINK + "&s=1", SECRET_LINK + "&s=2"]
    for text in (
        repr(resolved),
        str(resolved),
        resolved.model_dump_json(),
        json.dumps(resolved.model_dump(mode="json")),
    ):
        assert "feedface" not in text
    # The original status is untouched and equal to the resolved one once dumped.
    assert all(o.location.url is None for o in status.outputs if isinstance(o.location, DownloadLink))
    assert JobStatus.model_validate(resolved.model_dump(mode="json")) == status


def test_attach_links_checks_the_job() -> None:
    status = daily_job_status(DailyJob.model_validate(DAILY_FINISHED))
    with pytest.raises(ValueError):
        daily_attach_links(status, DailyAccessLinks.model_validate({**ACCESS_LINKS, "id": "other"}))
    with pytest.raises(ValueError):
        daily_attach_links(
            status.model_copy(update={"service": Service.SYMBL}),
            DailyAccessLinks.model_validate(ACCESS_LINKS),
        )


def test_customer_bucket_outputs_are_left_alone_by_attach() -> None:
    status = daily_job_status(DailyJob.model_validate(DAILY_FINISHED), storage="customer")
    assert daily_attach_links(status, DailyAccessLinks.model_validate(ACCESS_LINKS)) == status


def test_access_link_wrong_type_raises() -> None:
    with pytest.raises(ValidationError):
        DailyAccessLinks.model_validate({**ACCESS_LINKS, "transcription": [{"format": "txt", "link": 5}]})


def test_list_submit_and_error_bodies() -> None:
    page = DailyJobList.model_validate(
        {
            "total_count": 2,
            "data": [
                {"id": "3ab8faa2-8ba2-4ee6-bd15-003a92c18245", "preset": "transcript", "status": "finished"},
                {"id": "4bc9", "preset": "summarize", "status": "processing"},
            ],
        }
    )
    assert page.total_count == 2 and [j.status for j in page.data] == ["finished", "processing"]
    with pytest.raises(ValidationError):
        DailyJobList.model_validate({"total_count": "2", "data": []})
    assert DailySubmitResponse.model_validate({"id": "3ab8"}).id == "3ab8"
    error = DailyError.model_validate({"error": "invalid-request-error", "info": "preset is required"})
    assert error.error == "invalid-request-error" and error.info == "preset is required"
    with pytest.raises(ValidationError):
        DailyError.model_validate({"info": "no type"})
