"""Bad input from DAG authors: every operator parameter validator and connection setting, fuzzed.

Whatever a DAG passes (wrong types, empty or huge strings, control characters, odd URLs, negative
numbers, template-looking text, NaN), a submit operator either refuses it with
`InvalidSubmissionError` / `InvalidParameterError` naming the parameter, or builds a request that
can be sent as strict JSON. Nothing else comes out, at construction (literal values) or in
``execute`` after templating (``_validated``). The same holds for the transfer operator's
destination, job reference and options, and for the connection extras of every hook.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from airflow_jobstatus.exceptions import InvalidParameterError
from airflow_jobstatus.http.settings import HttpSettings
from airflow_jobstatus.operators.base import InvalidSubmissionError, JobSubmitOperator
from airflow_jobstatus.operators.daily import DailySubmitJobOperator
from airflow_jobstatus.operators.deepaffects import DeepAffectsSubmitJobOperator
from airflow_jobstatus.operators.symbl import SymblSubmitJobOperator
from airflow_jobstatus.operators.transfer import JobOutputsToStorageOperator, parse_job_reference
from airflow_jobstatus.operators.wasabi import WasabiAirSubmitJobOperator
from airflow_jobstatus.transfer.sinks import parse_destination
from tests.helpers.hypothesis_profile import BAD_INPUT, FEW

pytestmark = [pytest.mark.unit, pytest.mark.filterwarnings("ignore:Generating overly large repr")]

ODD_URLS = [
    "https://media.example/a.mp4",
    "http://media.example/a.mp4",
    "HTTPS://MEDIA.EXAMPLE/A.MP4",
    "file:///etc/passwd",
    "ftp://media.example/a.mp4",
    "data:audio/wav;base64,UklGRg==",
    "javascript:alert(1)",
    "gopher://x",
    "s3://bucket/key.mp4",
    " https://media.example/a.mp4 ",
    "https://",
    "https://user:pw@media.example/a.mp4",
    "//media.example/a.mp4",
]
ODD_STRINGS = [
    "",
    " ",
    "\x00",
    "a\nb",
    "\u202e",
    "x" * 10_000,
    "[" * 5000,
    '{"a": ' * 3000,
    "{{ params.url }}",
    "{% if x %}",
    "None",
    "-1",
]

bad_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(max_value=0),
    st.floats(),  # NaN and infinities
    st.binary(max_size=10),
    st.text(max_size=20),
    st.sampled_from(ODD_STRINGS + ODD_URLS),
    st.lists(st.text(max_size=5), max_size=3),
    st.dictionaries(
        st.text(max_size=5), st.one_of(st.text(max_size=5), st.integers(), st.none()), max_size=3
    ),
)


def strict_json(value: Any) -> None:
    """What httpx sends: ``json.dumps(..., allow_nan=False)``; bytes, NaN and objects fail there."""
    json.dumps(value, allow_nan=False)


def check_refusal(exc: InvalidParameterError, names: set[str]) -> None:
    text = str(exc)
    assert any(name in text for name in names), f"no parameter of {sorted(names)} named in: {text}"


OPERATORS: dict[str, tuple[type[JobSubmitOperator], dict[str, Any], dict[str, list[str]]]] = {
    # class, valid parameters, and for each parameter the names a message may call it by
    "daily": (
        DailySubmitJobOperator,
        {"preset": "transcript", "uri": "https://media.example/a.mp4", "language": "en"},
        {
            "preset": ["preset"],
            "recording_id": ["recording_id", "recordingId", "source"],
            "uri": ["uri", "source"],
            "transcript_uri": ["transcript_uri", "transcriptUri", "source"],
            "language": ["language"],
            "s3_key_template": ["s3_key_template"],
            "use_replacement": ["use_replacement"],
        },
    ),
    "wasabi_air": (
        WasabiAirSubmitJobOperator,
        {
            "name": "job",
            "services": {"s2t": ""},
            "source": {
                "Endpoint": "https://s3.wasabisys.com",
                "Bucket": "b",
                "Region": "r",
                "ObjectKey": "k",
            },
            "destination": {"Bucket": "d", "Region": "r"},
            "priority": 5,
        },
        {
            "name": ["name"],
            "services": ["services", "service"],
            "source": ["source"],
            "destination": ["destination"],
            "priority": ["priority"],
            "batch": ["batch"],
        },
    ),
    "symbl": (
        SymblSubmitJobOperator,
        {"audio_url": "https://media.example/a.mp3"},
        {
            "audio_url": ["audio_url", "source"],
            "video_url": ["video_url", "source"],
            "messages": ["messages", "source"],
            "name": ["name"],
            "language_code": ["language_code"],
            "enable_speaker_diarization": ["enable_speaker_diarization"],
            "diarization_speaker_count": ["diarization_speaker_count"],
            "webhook_url": ["webhook_url"],
            "detect_entities": ["detect_entities"],
            "enable_separate_recognition_per_channel": ["enable_separate_recognition_per_channel"],
            "channel_metadata": ["channel_metadata", "enable_separate_recognition_per_channel"],
        },
    ),
    "deepaffects": (
        DeepAffectsSubmitJobOperator,
        {"api": "asr", "url": "https://media.example/a.wav", "webhook": "https://hooks.example/deepaffects"},
        {
            "api": ["api"],
            "url": ["url", "content"],
            "content": ["content", "url"],
            "encoding": ["encoding"],
            "sample_rate": ["sample_rate"],
            "language_code": ["language_code"],
            "speaker_count": ["speaker_count"],
            "audio_type": ["audio_type"],
            "enable_punctuation": ["enable_punctuation"],
            "enable_speaker_diarization": ["enable_speaker_diarization"],
            "webhook": ["webhook"],
            "source": ["source"],
            "do_vad": ["do_vad"],
            "speaker_ids": ["speaker_ids"],
        },
    ),
}


def _build(cls: type[JobSubmitOperator], params: dict[str, Any]) -> JobSubmitOperator:
    return cls(task_id="submit", deferrable=False, **params)


@pytest.mark.parametrize("service", list(OPERATORS))
def test_valid_parameters_pass(service: str) -> None:
    cls, valid, _ = OPERATORS[service]
    operator = _build(cls, valid)
    _, request = operator._validated()
    strict_json(request)


@pytest.mark.parametrize("service", list(OPERATORS))
@BAD_INPUT
@given(data=st.data())
def test_submit_parameters_only_typed_refusals(service: str, data: st.DataObject) -> None:
    cls, valid, names = OPERATORS[service]
    changed = data.draw(
        st.lists(st.sampled_from(sorted(names)), min_size=1, max_size=3, unique=True), "params"
    )
    params = dict(valid)
    for name in changed:
        params[name] = data.draw(bad_values, name)
    allowed = {alias for name in changed for alias in names[name]}
    try:
        operator = _build(cls, params)  # literal values are validated here
        _, request = operator._validated()  # templated ones in execute, after rendering: same call
    except InvalidSubmissionError as exc:
        check_refusal(exc, allowed)
        return
    except InvalidParameterError as exc:  # e.g. delete_on_kill; raised by the constructor itself
        check_refusal(exc, allowed)
        return
    strict_json(request)


@BAD_INPUT
@given(
    name=st.sampled_from(
        [
            "request_timeout",
            "max_retries",
            "max_requests_per_second",
            "max_requests_per_minute",
            "max_requests_per_day",
            "max_response_bytes",
        ]
    ),
    value=bad_values | st.sampled_from(["1e999", "nan", "-inf", "inf", "NaN", "1_000", "0x10", " 5 "]),
    prefixed=st.booleans(),
)
@example(name="max_retries", value=math.inf, prefixed=False)
@example(name="request_timeout", value=math.nan, prefixed=False)
@example(name="request_timeout", value="1e999", prefixed=False)
def test_numeric_connection_extras(name: str, value: Any, prefixed: bool) -> None:
    key = f"extra__daily__{name}" if prefixed else name
    try:
        settings = HttpSettings.from_extra({key: value}, conn_type="daily")
    except InvalidParameterError as exc:
        assert f"'{name}'" in str(exc), str(exc)
        return
    number = getattr(settings, name)
    assert math.isfinite(number) and number >= 0, (name, value, number)
    if name == "request_timeout":
        assert number > 0


@BAD_INPUT
@given(name=st.sampled_from(["verify_tls", "allow_http_links"]), value=bad_values)
def test_boolean_connection_extras(name: str, value: Any) -> None:
    try:
        settings = HttpSettings.from_extra({name: value}, conn_type="symbl")
    except InvalidParameterError as exc:
        assert f"'{name}'" in str(exc), str(exc)
        return
    assert isinstance(getattr(settings, name), bool)


@pytest.mark.parametrize("value", ["yes", "on", "1", True, "TRUE"])
def test_verify_tls_stays_on_for_truthy_spellings(value: Any) -> None:
    assert HttpSettings.from_extra({"verify_tls": value}, conn_type="daily").verify_tls is True
    assert HttpSettings.from_extra({}, conn_type="daily").verify_tls is True


# ------------------------------------------------------------------------------------------------
# The transfer operator
# ------------------------------------------------------------------------------------------------

destinations = st.one_of(
    bad_values,
    st.sampled_from(
        [
            "s3://bucket/prefix",
            "s3://conn@bucket/p",
            "s3://",
            "s3:///key",
            "s3://bucket/../../x",
            "file:///srv/out",
            "file://../etc",
            "file:///srv/out/../../etc",
            "/srv/out",
            "relative/path",
            "..",
            "C:\\out",
            "gs://bucket/x",
            "memory://x",
            "/srv/o\x00ut",
            "{{ var.value.dest }}",
        ]
    ),
)


@BAD_INPUT
@given(destination=destinations)
@example(destination=5)
@example(destination=["s3://bucket/x"])
def test_destination_is_a_uri_or_an_absolute_path(destination: Any) -> None:
    try:
        parsed = parse_destination(destination)
    except InvalidParameterError as exc:
        assert "destination" in str(exc), str(exc)
        return
    assert isinstance(destination, str), f"{destination!r} became {parsed}"
    assert ".." not in parsed.prefix.replace("\\", "/").split("/")
    assert "\x00" not in parsed.prefix
    if parsed.scheme == "file":
        assert parsed.prefix.startswith("/")
    else:
        assert parsed.bucket


@BAD_INPUT
@given(
    value=st.one_of(
        bad_values,
        st.sampled_from(
            [
                "[" * 5000,
                "{" * 5000,
                "{'job_id': 'x'}",
                '{"service": "daily"}',
                "{ 1: 2 }",
                "{" + "1" * 5000 + "}",
            ]
        ),
        st.fixed_dictionaries(
            {}, optional={"service": bad_values, "job_id": bad_values, "state": bad_values}
        ),
    )
)
@example(value="{" * 5000)
@example(value='{"a": ' * 3000)  # nested too deep: a RecursionError escaped the JSON parse
def test_job_reference(value: Any) -> None:
    try:
        job_id, service = parse_job_reference(value)
    except InvalidParameterError as exc:
        assert "job_id" in str(exc), str(exc)
        return
    assert isinstance(job_id, str) and job_id.strip()
    assert service is None or isinstance(service, str)


@FEW
@given(if_exists=bad_values, max_concurrency=bad_values)
def test_transfer_options(if_exists: Any, max_concurrency: Any) -> None:
    try:
        JobOutputsToStorageOperator(
            task_id="deliver",
            job_conn_id="daily_default",
            job_id="job",
            destination="s3://bucket/p",
            if_exists=if_exists,
            max_concurrency=max_concurrency,
        )
    except InvalidParameterError as exc:
        assert "if_exists" in str(exc) or "max_concurrency" in str(exc), str(exc)
        return
    assert if_exists in ("skip_identical", "overwrite", "fail")
    assert isinstance(max_concurrency, int) and max_concurrency >= 1


# ------------------------------------------------------------------------------------------------
# What the properties found, kept as explicit cases
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("service", "params", "named"),
    [
        # JSON text nested too deep for the parser: a RecursionError escaped as_structure
        ("symbl", {"audio_url": None, "messages": "[" * 5000}, "messages"),
        # unhashable api: a TypeError escaped the membership test
        ("deepaffects", {"api": ["asr"]}, "api"),
        # bytes and NaN reached the request body and failed inside httpx, naming nothing
        ("daily", {"language": b"en"}, "language"),
        ("symbl", {"name": math.nan}, "name"),
    ],
)
def test_found_submit_parameter_cases(service: str, params: dict[str, Any], named: str) -> None:
    cls, valid, _ = OPERATORS[service]
    with pytest.raises(InvalidSubmissionError, match=named):
        _build(cls, {**valid, **params})


def test_a_destination_that_is_not_a_location_is_refused_not_read_as_the_root() -> None:
    for destination in (5, ["s3://bucket/x"], {"bucket": "b"}):
        with pytest.raises(InvalidParameterError, match="destination must be a URI"):
            parse_destination(destination)
    with pytest.raises(InvalidParameterError, match="control character"):
        parse_destination("/srv/o\x00ut")
