"""Unit tests for the shared job model (airflow_jobstatus.models.common)."""

import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from airflow_jobstatus.models import (
    DAILY_STATUS_MAP,
    DEEPAFFECTS_STATUS_MAP,
    SYMBL_STATUS_MAP,
    TERMINAL_STATES,
    WASABI_STATUS_MAP,
    ApiDocument,
    ApiModel,
    DownloadLink,
    InlineDocument,
    IsoDatetime,
    JobOutput,
    JobState,
    JobStatus,
    S3Object,
    Service,
    media_type_for,
    normalize_state,
    parse_s3_uri,
    redact_secrets,
    resolve_json_pointer,
)

pytestmark = pytest.mark.unit

SECRET_URL = (
    "https://bucket.s3.amazonaws.com/out/transcript.txt?X-Amz-Signature=deadbeefcafe&X-Amz-Credential=AKIA"
)

ALL_MAPS = [DAILY_STATUS_MAP, WASABI_STATUS_MAP, SYMBL_STATUS_MAP, DEEPAFFECTS_STATUS_MAP]


# ---------------------------------------------------------------------------------------------
# Enums and state normalization
# ---------------------------------------------------------------------------------------------


def test_service_values() -> None:
    assert [s.value for s in Service] == ["daily", "wasabi_air", "symbl", "deepaffects"]
    assert str(Service.WASABI_AIR) == "wasabi_air"
    assert f"{Service.SYMBL}" == "symbl"
    assert Service("deepaffects") is Service.DEEPAFFECTS


def test_job_state_terminality() -> None:
    assert {s for s in JobState if s.is_terminal} == {JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED}
    assert TERMINAL_STATES == {JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED}
    assert not JobState.UNKNOWN.is_terminal
    assert not JobState.QUEUED.is_terminal
    assert not JobState.RUNNING.is_terminal
    assert str(JobState.RUNNING) == "running"
    assert json.dumps({"state": JobState.FAILED}) == '{"state": "failed"}'


@pytest.mark.parametrize("status_map", ALL_MAPS)
@pytest.mark.parametrize("raw", [None, "", "paused", "unknown", "success", "done", " finished", "Completed "])
def test_normalize_state_undocumented_is_unknown(status_map, raw) -> None:
    assert normalize_state(raw, status_map) is JobState.UNKNOWN


def test_normalize_state_exact_then_case_insensitive() -> None:
    status_map = {"Done": JobState.SUCCEEDED, "done": JobState.FAILED}
    assert normalize_state("Done", status_map) is JobState.SUCCEEDED
    assert normalize_state("done", status_map) is JobState.FAILED
    assert normalize_state("DONE", status_map) in (JobState.SUCCEEDED, JobState.FAILED)
    assert normalize_state("IN_PROGRESS", SYMBL_STATUS_MAP) is JobState.RUNNING
    assert normalize_state("completed", DEEPAFFECTS_STATUS_MAP) is JobState.SUCCEEDED


def test_normalize_state_non_string_is_unknown() -> None:
    assert normalize_state(42, DAILY_STATUS_MAP) is JobState.UNKNOWN  # type: ignore[arg-type]


@pytest.mark.parametrize("status_map", ALL_MAPS)
def test_status_maps_are_read_only(status_map) -> None:
    with pytest.raises(TypeError):
        status_map["finished"] = JobState.FAILED


@given(st.text(max_size=30))
def test_normalize_state_never_invents_success(raw: str) -> None:
    for status_map in ALL_MAPS:
        state = normalize_state(raw, status_map)
        documented = {word.lower(): mapped for word, mapped in status_map.items()}
        if not raw.isascii() or raw.lower() not in documented:
            assert state is JobState.UNKNOWN
        else:
            assert state is documented[raw.lower()] or state is status_map[raw]


@pytest.mark.parametrize("raw", ["\ufb01nished", "COMPLETED\u200b", "\u212aeep"])
def test_normalize_state_no_unicode_lookalikes(raw: str) -> None:
    assert normalize_state(raw, {**DAILY_STATUS_MAP, **WASABI_STATUS_MAP, "keep": JobState.SUCCEEDED}) is (
        JobState.UNKNOWN
    )


# ---------------------------------------------------------------------------------------------
# Output locations
# ---------------------------------------------------------------------------------------------


def test_s3_object_uri_keeps_key_verbatim() -> None:
    obj = S3Object(bucket="bucket-name", key="bucket-name/uuid/transcript/output.txt", region="us-west-2")
    assert obj.uri == "s3://bucket-name/bucket-name/uuid/transcript/output.txt"
    with pytest.raises(ValidationError):
        S3Object(bucket="", key="k")


def test_download_link_url_is_never_serialized_or_repr() -> None:
    link = DownloadLink(url=SECRET_URL, expires_at=datetime(2030, 1, 1, tzinfo=timezone.utc))
    assert link.url == SECRET_URL
    assert "url" not in link.model_dump()
    assert "url" not in link.model_dump(mode="json")
    assert SECRET_URL not in link.model_dump_json()
    assert "deadbeef" not in repr(link)
    assert "deadbeef" not in str(link)
    output = JobOutput(name="transcript", format="txt", location=link)
    status = JobStatus(service=Service.DAILY, job_id="j", state=JobState.SUCCEEDED, outputs=[output])
    for text in (repr(output), str(output), repr(status), str(status), status.model_dump_json()):
        assert "deadbeef" not in text
    assert "deadbeef" not in json.dumps(status.model_dump(mode="json"))
    assert "deadbeef" not in str(status.model_dump())
    assert "deadbeef" not in status.model_dump_json(include={"outputs"})


def test_download_link_round_trip_drops_url() -> None:
    link = DownloadLink(url=SECRET_URL)
    again = DownloadLink.model_validate(link.model_dump(mode="json"))
    assert again.url is None
    assert again.kind == "link"


@pytest.mark.parametrize(
    "path",
    [
        "https://evil.example/v1/x",
        "//evil.example/v1/x",
        "v1/conversations/c/messages",
        "javascript:alert(1)",
        "/v1/x?verbose=true",
        "/\\evil.example/v1",
        "/v1/a b",
        "/v1/a\r\nHost: evil",
        "",
    ],
)
def test_api_document_refuses_non_relative_paths(path: str) -> None:
    with pytest.raises(ValidationError):
        ApiDocument(path=path)


def test_api_document_and_inline_document() -> None:
    doc = ApiDocument(path="/v1/conversations/123/messages", params={"verbose": "true"})
    assert doc.model_dump() == {
        "kind": "api",
        "path": "/v1/conversations/123/messages",
        "params": {"verbose": "true"},
    }
    inline = InlineDocument(pointer="/response/response")
    assert inline.resolve({"response": {"response": {"a": 1}}}) == {"a": 1}
    with pytest.raises(ValidationError):
        InlineDocument(pointer="response")


def test_location_discriminated_union_from_json() -> None:
    out = JobOutput.model_validate(
        {"name": "m", "format": "json", "location": {"kind": "s3", "bucket": "b", "key": "k"}}
    )
    assert isinstance(out.location, S3Object)
    out = JobOutput.model_validate(
        {"name": "m", "format": "json", "location": {"kind": "inline", "pointer": ""}}
    )
    assert isinstance(out.location, InlineDocument)
    with pytest.raises(ValidationError):
        JobOutput.model_validate({"name": "m", "format": "json", "location": {"kind": "ftp", "path": "/x"}})


# ---------------------------------------------------------------------------------------------
# JobOutput file names
# ---------------------------------------------------------------------------------------------

_S3 = S3Object(bucket="b", key="k")


@pytest.mark.parametrize(
    ("name", "fmt", "expected"),
    [
        ("summary", "txt", "summary.txt"),
        ("transcript", "srt", "transcript.srt"),
        ("transcript", "vtt", "transcript.vtt"),
        ("soap", "json", "soap.json"),
        ("metadata", "JSON", "metadata.json"),
        ("result", ".json", "result.json"),
        ("report.txt", "txt", "report.txt"),
        ("action-items", "json", "action-items.json"),
        ("../../etc/passwd", "txt", "etc_passwd.txt"),
        ("..", "txt", "output.txt"),
        ("a b/c", "txt", "a_b_c.txt"),
        ("weird", "text/plain", "weird.textplain"),
    ],
)
def test_output_file_name(name: str, fmt: str, expected: str) -> None:
    output = JobOutput(name=name, format=fmt, location=_S3)
    assert output.file_name == expected
    assert "/" not in output.file_name


def test_output_file_name_ignores_source_key_extension() -> None:
    # Daily's summary key may have no extension, and its SOAP example key ends in .txt while the
    # format says json: the file name follows the format.
    summary = JobOutput(name="summary", format="txt", location=S3Object(bucket="b", key="dom/uuid/summary"))
    soap = JobOutput(
        name="soap", format="json", location=S3Object(bucket="b", key="dom/uuid/transcript/output.txt")
    )
    assert summary.file_name == "summary.txt"
    assert soap.file_name == "soap.json"
    assert soap.extension == ".json"


def test_output_format_must_not_be_blank() -> None:
    with pytest.raises(ValidationError):
        JobOutput(name="x", format=" . ", location=_S3)


def test_media_type_for() -> None:
    assert media_type_for("txt") == "text/plain"
    assert media_type_for("JSON") == "application/json"
    assert media_type_for("vtt") == "text/vtt"
    assert media_type_for("srt") == "application/x-subrip"
    assert media_type_for("xyz") is None


# ---------------------------------------------------------------------------------------------
# JobStatus
# ---------------------------------------------------------------------------------------------


def _full_status() -> JobStatus:
    return JobStatus(
        service=Service.WASABI_AIR,
        job_id="67345137bcb6dce44b35a6a6281711e7",
        state=JobState.SUCCEEDED,
        raw_status="completed",
        error=None,
        outputs=[
            JobOutput(
                name="metadata",
                format="json",
                media_type="application/json",
                location=S3Object(
                    bucket="b", key="jobs/x_metadata.json", region="us-west-1", endpoint_url="https://s3"
                ),
            ),
            JobOutput(name="transcript", format="txt", location=DownloadLink()),
            JobOutput(
                name="messages", format="json", location=ApiDocument(path="/v1/conversations/c/messages")
            ),
            JobOutput(name="result", format="json", location=InlineDocument(pointer="/response/response")),
        ],
        created_at=datetime(2024, 11, 13, 7, 11, 51, 658000, tzinfo=timezone.utc),
        completed_at=datetime(2024, 11, 13, 8, 0, tzinfo=timezone(timedelta(hours=2))),
        raw={"Id": "x", "nested": {"list": [1, 2.5, None, True, "s"]}},
    )


def test_job_status_json_round_trip() -> None:
    status = _full_status()
    dumped = status.model_dump(mode="json")
    assert json.loads(json.dumps(dumped)) == dumped
    again = JobStatus.model_validate(dumped)
    assert again == status
    assert JobStatus.model_validate_json(status.model_dump_json()) == status
    assert dumped["service"] == "wasabi_air"
    assert dumped["state"] == "succeeded"
    assert [o["location"]["kind"] for o in dumped["outputs"]] == ["s3", "link", "api", "inline"]


def test_job_status_properties() -> None:
    status = _full_status()
    assert status.is_terminal and status.succeeded and not status.failed
    assert status.output("transcript") is not None
    assert status.output("transcript", "TXT") is not None
    assert status.output("transcript", "srt") is None
    for state in JobState:
        s = JobStatus(service=Service.SYMBL, job_id="j", state=state)
        assert s.is_terminal is state.is_terminal
        assert s.succeeded is (state is JobState.SUCCEEDED)
        assert s.failed is (state in (JobState.FAILED, JobState.CANCELLED))
    unknown = JobStatus(service=Service.SYMBL, job_id="j", state=JobState.UNKNOWN)
    assert not unknown.succeeded and not unknown.is_terminal and not unknown.failed


def test_job_status_defaults_and_validation() -> None:
    status = JobStatus(service="daily", job_id="j", state="queued")  # type: ignore[arg-type]
    assert status.service is Service.DAILY and status.state is JobState.QUEUED
    assert status.outputs == [] and status.raw == {} and status.error is None
    with pytest.raises(ValidationError):
        JobStatus(service="nope", job_id="j", state="queued")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        JobStatus(service="daily", job_id="", state="queued")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        status.state = JobState.FAILED


def test_job_status_naive_datetimes_become_utc() -> None:
    status = JobStatus(
        service=Service.DAILY, job_id="j", state=JobState.RUNNING, created_at=datetime(2024, 1, 1, 12, 0)
    )
    assert status.created_at == datetime(2024, 1, 1, 12, 0, tzinfo=timezone.utc)


# ---------------------------------------------------------------------------------------------
# ApiModel base and helpers
# ---------------------------------------------------------------------------------------------


class _Sample(ApiModel):
    name: str
    count: int
    ratio: float
    at: IsoDatetime = None


def test_api_model_strict_types_and_tolerant_extras() -> None:
    sample = _Sample.model_validate(
        {"name": "a", "count": 1, "ratio": 1, "at": "2024-11-13T07:11:51.658Z", "new": [1]}
    )
    assert sample.ratio == 1.0 and isinstance(sample.ratio, float)
    assert sample.at == datetime(2024, 11, 13, 7, 11, 51, 658000, tzinfo=timezone.utc)
    assert sample.model_extra == {"new": [1]}
    assert sample.model_dump(mode="json")["new"] == [1]
    assert _Sample.model_validate_json(
        '{"name": "a", "count": 1, "ratio": 2.5, "at": "2024-11-13T07:11:51Z"}'
    ).at
    for bad in (
        {"name": 1, "count": 1, "ratio": 1.0},
        {"name": "a", "count": "1", "ratio": 1.0},
        {"name": "a", "count": 1.0, "ratio": 1.0},
        {"name": "a", "count": 1, "ratio": "1.0"},
        {"name": "a", "count": 1, "ratio": True},
        {"name": "a", "count": 1, "ratio": 1.0, "at": 1700000000},
        {"name": "a", "count": 1, "ratio": 1.0, "at": "not a date"},
    ):
        with pytest.raises(ValidationError):
            _Sample.model_validate(bad)


def test_iso_datetime_blank_and_null_mean_none() -> None:
    assert _Sample.model_validate({"name": "a", "count": 1, "ratio": 1.0, "at": ""}).at is None
    assert _Sample.model_validate({"name": "a", "count": 1, "ratio": 1.0, "at": None}).at is None


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        (
            "s3://metabucket/jobs/2025_04_29/0b5c/MyJob_metadata.json",
            ("metabucket", "jobs/2025_04_29/0b5c/MyJob_metadata.json"),
        ),
        ("S3://b/a?b#c%20d//e", ("b", "a?b#c%20d//e")),
    ],
)
def test_parse_s3_uri(uri: str, expected: tuple[str, str]) -> None:
    assert parse_s3_uri(uri) == expected


@pytest.mark.parametrize("uri", ["metabucket/key", "https://b/k", "s3://bucket", "s3://bucket/", "s3:///key"])
def test_parse_s3_uri_rejects(uri: str) -> None:
    with pytest.raises(ValueError):
        parse_s3_uri(uri)


def test_resolve_json_pointer() -> None:
    doc = {"a": {"b/c": [10, {"~d": 5}]}, "": 1}
    assert resolve_json_pointer(doc, "") is doc
    assert resolve_json_pointer(doc, "/a/b~1c/0") == 10
    assert resolve_json_pointer(doc, "/a/b~1c/1/~0d") == 5
    assert resolve_json_pointer(doc, "/") == 1
    for missing in ("/x", "/a/b~1c/2", "/a/b~1c/01", "/a/b~1c/0/x"):
        with pytest.raises(LookupError):
            resolve_json_pointer(doc, missing)
    with pytest.raises(ValueError):
        resolve_json_pointer(doc, "a")


def test_redact_secrets() -> None:
    raw: dict[str, Any] = {
        "Source": {"Bucket": "b", "AccessKey": "AKIA", "SecretKey": "s3cr3t", "ObjectKey": "k"},
        "items": [{"api_key": "x"}, {"access-token": "y", "tokens": 3}],
        "Status": "completed",
    }
    redacted = redact_secrets(raw)
    assert redacted["Source"] == {"Bucket": "b", "AccessKey": "***", "SecretKey": "***", "ObjectKey": "k"}
    assert redacted["items"] == [{"api_key": "***"}, {"access-token": "***", "tokens": 3}]
    assert raw["Source"]["SecretKey"] == "s3cr3t"  # the input is not modified


def test_models_and_service_descriptions_do_not_import_airflow() -> None:
    # Airflow imports the provider's registration (which reads the descriptions) while it loads
    code = (
        "import sys, airflow_jobstatus.models, airflow_jobstatus.services, airflow_jobstatus.models as m\n"
        "m.WASABI_STATUS_MAP, m.wasabi_job_status, m.DEEPAFFECTS_STATUS_MAP, m.deepaffects_job_status,\n"
        "m.SYMBL_STATUS_MAP, m.symbl_job_status, m.DAILY_STATUS_MAP, m.daily_job_status\n"
        "bad = sorted(m for m in sys.modules if m == 'airflow' or m.startswith('airflow.'))\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
