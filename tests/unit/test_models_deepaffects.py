"""DeepAffects models, against the seed page 004 and providers.md."""

import copy
import json
from typing import Any

import pytest
from pydantic import ValidationError

from airflow_jobstatus.models import InlineDocument, JobState, JobStatus, Service
from airflow_jobstatus.services.deepaffects import (
    DEEPAFFECTS_RESULT_POINTER,
    DEEPAFFECTS_STATUS_MAP,
    DeepAffectsAsrResult,
    DeepAffectsDiarizeResult,
    DeepAffectsError,
    DeepAffectsStatusResponse,
    DeepAffectsSubmitResponse,
    deepaffects_job_status,
)

pytestmark = pytest.mark.unit

REQUEST_ID = "<REQUEST_ID>"

# From the seed page's "Output" example, verbatim except for trailing spaces after commas.
DEEPAFFECTS_EXAMPLE = """
{
  "response": {
    "request_id": "<REQUEST_ID>",
    "response": {
      "confidence": 0.97,
      "num_speakers": 2,
      "transcript": "Hi! Hello, this is Susan.",
      "words": [
        {
          "confidence": 0.97,
          "end": 1,
          "speaker_id": "1",
          "start": 0,
          "word": "Hi"
        },
        {
          "confidence": 0.97,
          "end": 2,
          "speaker_id": "2",
          "start": 1.2,
          "word": "Hello"
        },
        {
          "confidence": 0.97,
          "end": 2.6,
          "speaker_id": "2",
          "start": 2,
          "word": "this"
        },
        {
          "confidence": 0.97,
          "end": 3,
          "speaker_id": "2",
          "start": 2.6,
          "word": "is"
        },
        {
          "confidence": 0.97,
          "end": 4,
          "speaker_id": "2",
          "start": 3,
          "word": "Susan"
        }
      ]
    }
  },
  "status": "Completed"
}
"""

# The 401 body from providers.md.
DEEPAFFECTS_401 = {
    "fault": {"faultstring": "Invalid ApiKey", "detail": {"errorcode": "oauth.v2.InvalidApiKey"}}
}


def _example() -> dict[str, Any]:
    return json.loads(DEEPAFFECTS_EXAMPLE)


def test_seed_example_completed() -> None:
    for resp in (
        DeepAffectsStatusResponse.model_validate(_example()),
        DeepAffectsStatusResponse.model_validate_json(DEEPAFFECTS_EXAMPLE),
    ):
        status = deepaffects_job_status(resp, REQUEST_ID)
        assert status.service is Service.DEEPAFFECTS
        assert status.job_id == REQUEST_ID
        assert status.state is JobState.SUCCEEDED and status.succeeded
        assert status.raw_status == "Completed"
        assert status.error is None
        assert len(status.outputs) == 1
        output = status.outputs[0]
        assert (output.name, output.format, output.file_name) == ("result", "json", "result.json")
        assert output.location == InlineDocument(pointer="/response/response")
        assert output.location.pointer == DEEPAFFECTS_RESULT_POINTER
        assert output.location.resolve(status.raw) == _example()["response"]["response"]
        assert status.raw == _example()


def test_seed_example_result_as_asr() -> None:
    resp = DeepAffectsStatusResponse.model_validate(_example())
    asr = DeepAffectsAsrResult.model_validate(resp.result)
    assert asr.transcript == "Hi! Hello, this is Susan."
    assert asr.num_speakers == 2
    assert [w.word for w in asr.words] == ["Hi", "Hello", "this", "is", "Susan"]
    # "end": 1 (int) and "end": 2.6 (float) both parse as float.
    assert [w.end for w in asr.words] == [1.0, 2.0, 2.6, 3.0, 4.0]
    assert all(isinstance(w.end, float) and isinstance(w.start, float) for w in asr.words)
    assert asr.words[0].speaker_id == "1"
    # The result resolved from a JobStatus that went through JSON gives the same ASR model.
    status = JobStatus.model_validate_json(deepaffects_job_status(resp, REQUEST_ID).model_dump_json())
    assert DeepAffectsAsrResult.model_validate(status.outputs[0].location.resolve(status.raw)) == asr  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("Running", JobState.RUNNING), ("Completed", JobState.SUCCEEDED), ("Failed", JobState.FAILED)],
)
def test_documented_statuses(raw: str, expected: JobState) -> None:
    body = _example()
    body["status"] = raw
    assert (
        deepaffects_job_status(DeepAffectsStatusResponse.model_validate(body), REQUEST_ID).state is expected
    )
    assert DEEPAFFECTS_STATUS_MAP[raw] is expected


@pytest.mark.parametrize("raw", ["", None, "Pending", "Complete", "Success", "Queued"])
def test_undocumented_or_empty_status_is_unknown(raw: str | None) -> None:
    body = _example()
    body["status"] = raw
    status = deepaffects_job_status(DeepAffectsStatusResponse.model_validate(body), REQUEST_ID)
    assert status.state is JobState.UNKNOWN and not status.succeeded and not status.is_terminal
    assert status.outputs == []


def test_running_without_response() -> None:
    status = deepaffects_job_status(DeepAffectsStatusResponse.model_validate({"status": "Running"}), "abc")
    assert status.state is JobState.RUNNING and status.outputs == [] and status.raw == {"status": "Running"}


def test_completed_without_result_has_no_outputs() -> None:
    resp = DeepAffectsStatusResponse.model_validate(
        {"status": "Completed", "response": {"request_id": "abc"}}
    )
    status = deepaffects_job_status(resp, "abc")
    assert status.succeeded and status.outputs == [] and resp.result is None


@pytest.mark.parametrize(
    ("inner", "message"),
    [
        ({"error": "Audio could not be decoded"}, "Audio could not be decoded"),
        ({"message": "Unsupported encoding"}, "Unsupported encoding"),
        ({"error": {"message": "nested reason"}}, "nested reason"),
        ("File too large", "File too large"),
        ({"something": 1}, None),
        (None, None),
    ],
)
def test_failed_error_message(inner: Any, message: str | None) -> None:
    body = {"status": "Failed", "response": {"request_id": "abc", "response": inner}}
    status = deepaffects_job_status(DeepAffectsStatusResponse.model_validate(body), "abc")
    assert status.state is JobState.FAILED and status.is_terminal
    assert status.error == message
    assert status.outputs == []


def test_failed_top_level_message() -> None:
    body = {"status": "Failed", "message": "quota exceeded"}
    assert (
        deepaffects_job_status(DeepAffectsStatusResponse.model_validate(body), "abc").error
        == "quota exceeded"
    )


def test_request_id_mismatch_is_refused() -> None:
    with pytest.raises(ValueError):
        deepaffects_job_status(DeepAffectsStatusResponse.model_validate(_example()), "someone-else")
    with pytest.raises(ValueError):
        deepaffects_job_status(DeepAffectsStatusResponse.model_validate(_example()), "")


def test_unknown_fields_are_kept() -> None:
    body = _example()
    body["elapsed"] = 3.2
    body["response"]["api"] = "asr"
    body["response"]["response"]["language"] = "en-US"
    resp = DeepAffectsStatusResponse.model_validate(body)
    assert resp.model_extra == {"elapsed": 3.2}
    assert resp.response is not None and resp.response.model_extra == {"api": "asr"}
    assert DeepAffectsAsrResult.model_validate(resp.result).model_extra == {"language": "en-US"}
    status = deepaffects_job_status(resp, REQUEST_ID)
    assert status.raw["elapsed"] == 3.2 and status.raw["response"]["response"]["language"] == "en-US"


def test_result_is_kept_verbatim_even_with_secret_looking_keys() -> None:
    body = _example()
    body["response"]["response"]["token"] = "a word-level token"
    body["apikey"] = "LEAKED"
    status = deepaffects_job_status(DeepAffectsStatusResponse.model_validate(body), REQUEST_ID)
    assert status.raw["response"]["response"]["token"] == "a word-level token"
    assert status.raw["apikey"] == "***"


@pytest.mark.parametrize(
    "mutate",
    [
        lambda b: b.update(status=200),
        lambda b: b.update(response="ok"),
        lambda b: b["response"].update(request_id=5),
        lambda b: b["response"].update(response=[1, 2]),
    ],
)
def test_wrong_types_on_status_response_raise(mutate) -> None:
    body = _example()
    mutate(body)
    with pytest.raises(ValidationError):
        DeepAffectsStatusResponse.model_validate(body)
    with pytest.raises(ValidationError):
        DeepAffectsStatusResponse.model_validate_json(json.dumps(body))


@pytest.mark.parametrize(
    "mutate",
    [
        lambda r: r["words"][0].update(end="1"),
        lambda r: r["words"][0].update(start=True),
        lambda r: r["words"][0].update(speaker_id=1),
        lambda r: r.update(num_speakers=2.0),
        lambda r: r.update(transcript=None),
        lambda r: r.update(confidence="0.97"),
    ],
)
def test_wrong_types_on_asr_result_raise(mutate) -> None:
    result = copy.deepcopy(_example()["response"]["response"])
    mutate(result)
    with pytest.raises(ValidationError):
        DeepAffectsAsrResult.model_validate(result)


def test_diarize_result() -> None:
    body = {
        "status": "Completed",
        "response": {
            "request_id": "d1",
            "response": {
                "num_speakers": 2,
                "segments": [
                    {"speaker_id": "1", "start": 0, "end": 1.5},
                    {"speaker_id": 2, "start": 1.5, "end": 3},
                ],
            },
        },
    }
    diarize = DeepAffectsDiarizeResult.model_validate(DeepAffectsStatusResponse.model_validate(body).result)
    assert diarize.num_speakers == 2 and [s.end for s in diarize.segments] == [1.5, 3.0]
    with pytest.raises(ValidationError):
        DeepAffectsDiarizeResult.model_validate({"segments": [{"speaker_id": "1", "start": "0", "end": 1}]})


def test_submit_and_fault_bodies() -> None:
    submitted = DeepAffectsSubmitResponse.model_validate({"request_id": "0b3a", "api": "requested api name"})
    assert submitted.request_id == "0b3a"
    with pytest.raises(ValidationError):
        DeepAffectsSubmitResponse.model_validate({"request_id": 123})
    fault = DeepAffectsError.model_validate(DEEPAFFECTS_401)
    assert fault.message() == "Invalid ApiKey (oauth.v2.InvalidApiKey)"
    with pytest.raises(ValidationError):
        DeepAffectsError.model_validate({"fault": {"detail": {}}})


def test_job_status_round_trip() -> None:
    status = deepaffects_job_status(DeepAffectsStatusResponse.model_validate(_example()), REQUEST_ID)
    assert JobStatus.model_validate(status.model_dump(mode="json")) == status
    assert JobStatus.model_validate_json(status.model_dump_json()) == status
