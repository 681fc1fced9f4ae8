"""Destination layout and the checks that keep every write under the destination prefix."""

from __future__ import annotations

import posixpath

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_jobstatus.exceptions import InvalidParameterError
from airflow_jobstatus.models import DownloadLink, JobOutput, S3Object
from airflow_jobstatus.transfer.naming import (
    MANIFEST_NAME,
    check_source_key,
    job_segment,
    join_key,
    output_file_name,
    plan_outputs,
    select_outputs,
)

pytestmark = pytest.mark.unit


def out(name: str, fmt: str = "txt", key: str = "a/b") -> JobOutput:
    return JobOutput(name=name, format=fmt, location=S3Object(bucket="b", key=key))


def test_layout_is_service_job_file_with_extension_from_format() -> None:
    outputs = [
        out("transcript", "txt"),
        out("transcript", "vtt"),
        out("summary", "txt", key="p/job/summary/output"),
    ]
    planned, manifest = plan_outputs("daily", "0b6f-42", outputs)
    assert [p.relative_key for p in planned] == [
        "daily/0b6f-42/transcript.txt",
        "daily/0b6f-42/transcript.vtt",
        "daily/0b6f-42/summary.txt",  # the source key has no extension; the format gives it
    ]
    assert manifest == f"daily/0b6f-42/{MANIFEST_NAME}"


def test_symbl_job_reference_becomes_one_segment() -> None:
    assert job_segment("6b1c1f2e:5154751575818240") == "6b1c1f2e_5154751575818240"
    assert job_segment(".hidden") == "_hidden"
    long_id = "x" * 300
    segment = job_segment(long_id)
    assert len(segment) <= 120 and segment.startswith("x" * 100) and segment != job_segment("x" * 301)


@pytest.mark.parametrize("job_id", ["../../etc", "a/b", "a\\b", "..", "/abs", "C:\\x", "a\x00b", "...", " "])
def test_escaping_job_ids_are_refused(job_id: str) -> None:
    with pytest.raises(InvalidParameterError):
        job_segment(job_id)


@pytest.mark.parametrize("name", ["../../etc/x", "/etc/passwd", "a/b", "..\\x", "C:evil", "bad\nname"])
def test_escaping_output_names_are_refused_with_a_clear_message(name: str) -> None:
    with pytest.raises(InvalidParameterError) as info:
        output_file_name(out(name))
    assert repr(name) in str(info.value) and "nothing was written" in str(info.value)


def test_no_output_can_take_the_manifest_name() -> None:
    assert output_file_name(out("_manifest", "json")) == "manifest.json"


@pytest.mark.parametrize(
    "key", ["acme/job/transcript/../../etc/x.txt", "../x", "/etc/x", "a/..\\..\\b", "a\x01b"]
)
def test_escaping_source_keys_are_refused(key: str) -> None:
    with pytest.raises(InvalidParameterError, match="refused"):
        check_source_key(key, output=out("transcript"))


def test_ordinary_source_keys_pass() -> None:
    for key in ("acme.daily.co/job/summary/output", "a..b/c", "x/.../y", "dir/file.txt"):
        assert check_source_key(key) == key


def test_two_outputs_with_one_file_name_are_refused() -> None:
    with pytest.raises(InvalidParameterError, match="both be written"):
        plan_outputs("daily", "j", [out("transcript", "txt"), out("transcript", "TXT")])


def test_join_key_refuses_non_plain_segments() -> None:
    assert join_key("", "daily", "j", "f.txt") == "daily/j/f.txt"
    for bad in ("..", ".", "", "a/b"):
        with pytest.raises(InvalidParameterError):
            join_key("", "daily", bad)


def test_select_outputs_by_name_format_or_both() -> None:
    outputs = [
        out("transcript", "txt"),
        out("transcript", "vtt"),
        JobOutput(name="summary", format="txt", location=DownloadLink()),
    ]
    assert select_outputs(outputs, None) == outputs
    assert select_outputs(outputs, []) == outputs
    assert [o.format for o in select_outputs(outputs, ["transcript"])] == ["txt", "vtt"]
    assert [o.name for o in select_outputs(outputs, ["vtt"])] == ["transcript"]
    assert [(o.name, o.format) for o in select_outputs(outputs, "transcript.vtt, Summary")] == [
        ("transcript", "vtt"),
        ("summary", "txt"),
    ]
    with pytest.raises(InvalidParameterError) as info:
        select_outputs(outputs, ["transcript", "soap"])
    assert "['soap']" in str(info.value) and "transcript.vtt" in str(info.value)


_names = st.text(min_size=1, max_size=40)


@settings(max_examples=300, deadline=None)
@given(
    job_id=_names, name=_names, fmt=st.text(alphabet="abcdefghijklmnopqrstuvwxyz.", min_size=1, max_size=6)
)
def test_any_name_either_is_refused_or_stays_in_its_folder(job_id: str, name: str, fmt: str) -> None:
    try:
        output = JobOutput(name=name, format=fmt, location=DownloadLink())
    except ValueError:
        return  # blank format: the model refuses it already
    try:
        planned, manifest = plan_outputs("daily", job_id, [output])
    except InvalidParameterError:
        return
    key = planned[0].relative_key
    parts = key.split("/")
    assert len(parts) == 3 and parts[0] == "daily"
    assert posixpath.normpath(key) == key and ".." not in parts and "\\" not in key
    assert manifest == f"daily/{parts[1]}/{MANIFEST_NAME}" and parts[2] != MANIFEST_NAME
