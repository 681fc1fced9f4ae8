"""Symbl.ai models, against the seed page 003 and providers.md."""

import json
from typing import Any

import pytest
from pydantic import ValidationError

from airflow_jobstatus.models import ApiDocument, JobState, JobStatus, Service
from airflow_jobstatus.services.symbl import (
    SYMBL,
    SYMBL_CONVERSATION_DOCUMENTS,
    SYMBL_OUTPUT_DOCUMENTS,
    SYMBL_STATUS_MAP,
    SymblError,
    SymblJob,
    SymblSubmitResponse,
    SymblToken,
    symbl_document_path,
    symbl_job_status,
)

pytestmark = pytest.mark.unit

# Verbatim from the seed page's "Response" example.
SYMBL_JOB_EXAMPLE = """
{
  "id": "9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d",
  "status": "in_progress"
}
"""

CONVERSATION_ID = "6749556955938816"


def test_seed_example() -> None:
    for job in (
        SymblJob.model_validate(json.loads(SYMBL_JOB_EXAMPLE)),
        SymblJob.model_validate_json(SYMBL_JOB_EXAMPLE),
    ):
        status = symbl_job_status(job, CONVERSATION_ID)
        assert status.service is Service.SYMBL
        assert status.job_id == "9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d"
        assert status.state is JobState.RUNNING and not status.is_terminal
        assert status.raw_status == "in_progress"
        assert status.outputs == [] and status.error is None
        assert status.raw == json.loads(SYMBL_JOB_EXAMPLE)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("scheduled", JobState.QUEUED),
        ("in_progress", JobState.RUNNING),
        ("completed", JobState.SUCCEEDED),
        ("failed", JobState.FAILED),
        # The same page also writes them upper-case.
        ("SCHEDULED", JobState.QUEUED),
        ("IN_PROGRESS", JobState.RUNNING),
        ("COMPLETED", JobState.SUCCEEDED),
        ("FAILED", JobState.FAILED),
    ],
)
def test_documented_statuses(raw: str, expected: JobState) -> None:
    status = symbl_job_status(SymblJob(id="j", status=raw))
    assert status.state is expected
    assert status.raw_status == raw  # the service's own word, case included


@pytest.mark.parametrize("raw", ["", None, "in progress", "done", "succeeded", "queued"])
def test_undocumented_or_empty_status_is_unknown(raw: str | None) -> None:
    status = symbl_job_status(SymblJob.model_validate({"id": "j", "status": raw}), CONVERSATION_ID)
    assert status.state is JobState.UNKNOWN and not status.succeeded and not status.is_terminal
    assert status.outputs == []
    assert "scheduled" in SYMBL_STATUS_MAP


def test_completed_with_conversation_lists_documents() -> None:
    status = symbl_job_status(SymblJob(id="j", status="completed"), CONVERSATION_ID)
    assert status.succeeded
    assert [o.name for o in status.outputs] == list(SYMBL_OUTPUT_DOCUMENTS)
    assert list(SYMBL_OUTPUT_DOCUMENTS) == [
        "messages",
        "topics",
        "action-items",
        "follow-ups",
        "questions",
        "summary",
    ]
    assert all(o.format == "json" and o.media_type == "application/json" for o in status.outputs)
    assert status.outputs[0].location == ApiDocument(path=f"/v1/conversations/{CONVERSATION_ID}/messages")
    assert status.output("action-items").file_name == "action-items.json"  # type: ignore[union-attr]
    assert JobStatus.model_validate(status.model_dump(mode="json")) == status
    assert JobStatus.model_validate_json(status.model_dump_json()) == status


def test_completed_without_conversation_has_no_outputs() -> None:
    assert symbl_job_status(SymblJob(id="j", status="completed")).outputs == []


def test_document_path_encodes_the_id() -> None:
    assert symbl_document_path("a/b?c", "topics") == "/v1/conversations/a%2Fb%3Fc/topics"
    with pytest.raises(ValueError):
        symbl_document_path(CONVERSATION_ID, "transcript")
    with pytest.raises(ValueError):
        symbl_document_path("", "topics")


def test_failed_job_message_if_any() -> None:
    assert symbl_job_status(SymblJob(id="j", status="failed")).error is None
    job = SymblJob.model_validate({"id": "j", "status": "failed", "message": "Unsupported media"})
    assert symbl_job_status(job).error == "Unsupported media"


def test_unknown_fields_are_kept_and_wrong_types_raise() -> None:
    job = SymblJob.model_validate({"id": "j", "status": "completed", "progress": 1.0})
    assert job.model_extra == {"progress": 1.0}
    assert symbl_job_status(job).raw["progress"] == 1.0
    for bad in ({"id": 5, "status": "completed"}, {"id": "j", "status": 3}, {"status": "completed"}):
        with pytest.raises(ValidationError):
            SymblJob.model_validate(bad)
        with pytest.raises(ValidationError):
            SymblJob.model_validate_json(json.dumps(bad))


def test_token_submit_and_error_bodies() -> None:
    token = SymblToken.model_validate({"accessToken": "eyJhbGciOiJSUzI1NiJ9.secret", "expiresIn": 86400})
    assert token.expiresIn == 86400 and "eyJhbGci" not in repr(token)
    with pytest.raises(ValidationError):
        SymblToken.model_validate({"accessToken": "t", "expiresIn": "86400"})
    # contracts S2: a number, possibly fractional (the official client types expiresIn as float)
    assert SymblToken.model_validate({"accessToken": "t", "expiresIn": 86399.5}).expiresIn == 86399.5
    submitted = SymblSubmitResponse.model_validate({"conversationId": CONVERSATION_ID, "jobId": "9b1deb4d"})
    assert submitted.conversationId == CONVERSATION_ID and submitted.jobId == "9b1deb4d"
    # the error body (contracts S5, S8) is read by the description's SymblError
    assert SymblError.text_of(b'{"message": "Token validation failed for provided token."}') == (
        "Token validation failed for provided token."
    )
    limited = (
        b'{"statusCode": 429, "message": "This account has reached maximum of 2 number of concurrent jobs."}'
    )
    assert SymblError.text_of(limited) == "This account has reached maximum of 2 number of concurrent jobs."
    assert SymblError.text_of(b'{"fault": {"faultstring": "x"}}') is None  # not its shape
    assert SymblError.text_of(b'{"message": ""}') is None


# Conversation API documents: abridged from Symbl's Conversation API reference examples.
MESSAGES: dict[str, Any] = {
    "messages": [
        {
            "id": "6412283618000896",
            "text": "Best package for you is $69.99 per month.",
            "from": {"name": "Roger", "email": "Roger@example.com"},
            "startTime": "2020-07-10T11:16:21.024Z",
            "endTime": "2020-07-10T11:16:26.724Z",
            "timeOffset": 5.9,
            "duration": 1,
            "conversationId": CONVERSATION_ID,
            "phrases": [{"type": "action_phrase", "text": "$69.99 per month"}],
            "sentiment": {"polarity": {"score": 0.6}, "suggested": "positive"},
            "words": [
                {
                    "word": "Best",
                    "startTime": "2020-08-18T11:10:14.536Z",
                    "endTime": "2020-08-18T11:10:15.536Z",
                    "score": 0.91,
                    "timeOffset": 5.9,
                    "duration": 0.2,
                }
            ],
        }
    ]
}
TOPICS = {
    "topics": [
        {
            "id": "5907389282779136",
            "text": "interns",
            "type": "topic",
            "score": 0.7178597920690242,
            "messageIds": ["4600982711304192"],
            "parentRefs": [{"type": "topic", "text": "company-wise hiring"}],
        }
    ]
}
ACTION_ITEMS = {
    "actionItems": [
        {
            "id": "4567077831573504",
            "text": "Vikram you need to work on figuring out a plan.",
            "type": "action_item",
            "score": 0.9456050585275944,
            "messageIds": ["4854542482014208"],
            "entities": [
                {
                    "type": "person",
                    "text": "Vikram",
                    "offset": 0,
                    "value": {"assignee": True, "name": "Vikram"},
                }
            ],
            "phrases": [{"type": "action_phrase", "text": "make this hackathon work"}],
            "from": {"id": "c99e7baf", "name": "Surbhi", "userId": "surbhi@example.com"},
            "definitive": True,
            "assignee": {"name": "Vikram"},
        }
    ]
}
ENTITIES = {
    "entities": [
        {
            "type": "person",
            "value": "jamie smith",
            "text": "jamie smith",
            "messageRefs": [{"id": "5979280332816384", "text": "The name is Jamie Smith.", "offset": 12}],
        }
    ]
}
ANALYTICS = {
    "metrics": [{"type": "total_silence", "percent": 29.061, "seconds": 23.432}],
    "members": [{"id": "acc63fbe", "name": "Speaker 1", "pace": {"wpm": 68}}],
}
SUMMARY = {
    "summary": [
        {"id": "3498579583479", "text": "John, Mark and Paul...", "messageRefs": [{"id": "248594875984"}]}
    ]
}


DOCUMENTS = {"messages": MESSAGES, "topics": TOPICS, "action-items": ACTION_ITEMS, "entities": ENTITIES}
DOCUMENTS |= {"analytics": ANALYTICS, "summary": SUMMARY, "questions": {"questions": []}}
DOCUMENTS["follow-ups"] = {"followUps": ACTION_ITEMS["actionItems"]}


def test_conversation_documents_have_their_top_level_key() -> None:
    # the description's table (S7) is what the hook's get_document checks a document against
    assert SYMBL.documents is SYMBL_CONVERSATION_DOCUMENTS
    assert set(SYMBL_CONVERSATION_DOCUMENTS) == set(DOCUMENTS) >= set(SYMBL_OUTPUT_DOCUMENTS)
    # the reference shows entities without a wrapper object: that one is not checked (contracts S7)
    assert SYMBL_CONVERSATION_DOCUMENTS["entities"] is None
    for document, key in SYMBL_CONVERSATION_DOCUMENTS.items():
        assert symbl_document_path(CONVERSATION_ID, document).endswith(f"/{document}")
        if key is not None:
            assert isinstance(DOCUMENTS[document][key], list), document
