"""Daily's published contract (docs/contracts.md, rows D3-D11), hook and operators against the emulator.

* submit: ``outParams.s3Config.s3KeyTemplate`` is always sent (default ``{job_id}``), templates and
  ``language`` are checked before anything is sent;
* outputs keep their ``s3Config`` in both storage modes; an output the access-link endpoint does not
  serve (``soap``) is read from its ``s3Config`` with a source S3 connection, or the transfer fails
  before writing anything.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from airflow_jobstatus.exceptions import InvalidParameterError
from airflow_jobstatus.hooks.daily import DailyHook
from airflow_jobstatus.models import DownloadLink, S3Object
from airflow_jobstatus.operators.daily import DailySubmitJobOperator
from airflow_jobstatus.operators.transfer import JobOutputsToStorageOperator
from tests.helpers.connections import aws_connection
from tests.integration.conftest import wait_until_terminal

pytestmark = pytest.mark.integration

MEDIA = "https://media.example/visit.mp4?emu_duration=0.3"


def submits(emulator, key: str) -> int:
    stats = emulator.stats(service="daily", credential=key)
    return sum(
        r["count"] for r in stats["requests"] if r["route"] == "/batch-processor" and r["method"] == "POST"
    )


# ------------------------------------------------------------------------------------------ submit


def test_default_key_template_is_sent_and_names_files_after_the_job(make_connection, jobstatus_emulator):
    conn_id, _ = make_connection("daily")
    hook = DailyHook(conn_id)
    job_id = hook.submit_job("transcript", uri=MEDIA, language="fr")
    body = jobstatus_emulator.job("daily", job_id)["request"]["body"]
    assert body["outParams"] == {"s3Config": {"s3KeyTemplate": "{job_id}", "useReplacement": True}}
    assert body["inParams"]["language"] == "fr"
    status = wait_until_terminal(hook.get_job, job_id)
    keys = [
        o.location.s3.key for o in status.outputs if isinstance(o.location, DownloadLink) and o.location.s3
    ]
    assert keys and all(key.rsplit("/", 1)[-1].startswith(f"{job_id}.") for key in keys)


def test_given_template_with_placeholders_turns_replacement_on(make_connection, jobstatus_emulator):
    conn_id, _ = make_connection("daily")
    hook = DailyHook(conn_id)
    job_id = hook.submit_job("summarize", uri=MEDIA, s3_key_template="calls/{domain_name}-{epoch_time}")
    s3 = jobstatus_emulator.job("daily", job_id)["request"]["body"]["outParams"]["s3Config"]
    assert s3 == {"s3KeyTemplate": "calls/{domain_name}-{epoch_time}", "useReplacement": True}
    plain = hook.submit_job("summarize", uri=MEDIA, s3_key_template="calls/weekly_sync-1.v2")
    s3 = jobstatus_emulator.job("daily", plain)["request"]["body"]["outParams"]["s3Config"]
    assert s3 == {"s3KeyTemplate": "calls/weekly_sync-1.v2", "useReplacement": False}


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"s3_key_template": "k" * 1025}, "1024"),
        ({"s3_key_template": "my call.txt"}, "' '"),
        ({"s3_key_template": "calls/{id}"}, "{id}"),
        ({"s3_key_template": "calls/{recording_id}"}, "{recording_id}"),
        ({"s3_key_template": "calls/{job_id}", "use_replacement": False}, "use_replacement is False"),
        ({"use_replacement": False}, "s3_key_template is needed with use_replacement=False"),
        ({"preset": "summarize", "language": "fr"}, "language applies only to a 'transcript' job"),
        (
            {"preset": "soap-notes", "language": "en"},
            "Remove language, or make the request a 'transcript' job",
        ),
    ],
)
def test_invalid_submissions_are_refused_before_sending(make_connection, jobstatus_emulator, kwargs, needle):
    conn_id, key = make_connection("daily")
    hook = DailyHook(conn_id)
    params = {k: v for k, v in kwargs.items() if k != "preset"}
    preset = kwargs.get("preset", "transcript")
    with pytest.raises(InvalidParameterError) as info:
        hook.submit_job(preset, uri=MEDIA, **params)
    assert needle in str(info.value)
    assert submits(jobstatus_emulator, key) == 0
    # the operator refuses the same parameters when the DAG is parsed
    with pytest.raises(InvalidParameterError) as info:
        DailySubmitJobOperator(task_id="submit", daily_conn_id=conn_id, preset=preset, uri=MEDIA, **params)
    assert needle in str(info.value)
    assert submits(jobstatus_emulator, key) == 0


def test_an_empty_template_is_not_given(make_connection, jobstatus_emulator):
    """A rendered empty template means "not given", for the hook as for the operator: the default."""
    conn_id, key = make_connection("daily")
    assert DailyHook(conn_id).submit_job("transcript", uri=MEDIA, s3_key_template="")
    assert submits(jobstatus_emulator, key) == 1


def test_the_longest_template_is_accepted(make_connection, jobstatus_emulator):
    conn_id, _ = make_connection("daily")
    job_id = DailyHook(conn_id).submit_job("transcript", uri=MEDIA, s3_key_template="k" * 1024)
    assert (
        jobstatus_emulator.job("daily", job_id)["request"]["body"]["outParams"]["s3Config"]["s3KeyTemplate"]
        == "k" * 1024
    )


# ------------------------------------------------------------------------------------------ outputs


def test_outputs_keep_their_s3config_in_daily_storage(make_connection):
    conn_id, _ = make_connection("daily")
    hook = DailyHook(conn_id)
    job_id = hook.submit_job("soap-notes", uri=MEDIA)
    status = wait_until_terminal(hook.get_job, job_id)
    raw = status.raw["output"]
    documented = {("transcript", t["format"]): t["s3Config"] for t in raw["transcription"]}
    documented[("soap", raw["soap"]["format"])] = raw["soap"]["s3Config"]
    assert {(o.name, o.format) for o in status.outputs} == set(documented)
    for output in status.outputs:
        location = output.location
        assert isinstance(location, DownloadLink) and location.s3 is not None
        config = documented[(output.name, output.format)]
        assert (location.s3.bucket, location.s3.key, location.s3.region) == (
            config["bucket"],
            config["key"],
            config["region"],
        )
    # the access links add URLs to transcripts; the SOAP note (no documented link) keeps its key only
    resolved = {(o.name, o.format): o.location for o in hook.get_outputs(status)}
    assert all(
        isinstance(loc, DownloadLink) and loc.url
        for (name, _), loc in resolved.items()
        if name == "transcript"
    )
    soap = resolved[("soap", "json")]
    assert isinstance(soap, DownloadLink) and soap.url is None and soap.s3 is not None


def test_transfer_without_a_source_connection_fails_naming_the_fix(make_connection, tmp_path: Path):
    conn_id, _ = make_connection("daily")
    hook = DailyHook(conn_id)
    job_id = hook.submit_job("soap-notes", uri=MEDIA)
    status = wait_until_terminal(hook.get_job, job_id)
    assert status.succeeded
    destination = tmp_path / "out"
    op = JobOutputsToStorageOperator(
        task_id="deliver", job_conn_id=conn_id, job_id=job_id, destination=str(destination)
    )
    with pytest.raises(InvalidParameterError) as info:
        op.execute({})
    message = str(info.value)
    assert (
        "'soap'" in message and "source_aws_conn_id" in message and "daily-batch-processor-storage" in message
    )
    assert not destination.exists() or list(destination.rglob("*")) == []  # no partial delivery
    # leaving the SOAP note out is the other fix the message names
    op = JobOutputsToStorageOperator(
        task_id="deliver",
        job_conn_id=conn_id,
        job_id=job_id,
        destination=str(destination),
        outputs="transcript",
    )
    manifest = op.execute({})
    assert {e["file_name"] for e in manifest["outputs"]} == {
        "transcript.txt",
        "transcript.vtt",
        "transcript.json",
    }


def test_transfer_reads_an_unlinked_output_from_its_s3config(
    make_connection, jobstatus_emulator, jobstatus_s3, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    """The domain writes to a bucket the connection does not declare (output_storage left at
    ``daily``): transcripts come through access links, the SOAP note from its ``s3Config``."""
    bucket = jobstatus_s3.create_bucket(f"daily-soap-{uuid.uuid4().hex[:8]}")
    aws = aws_connection(monkeypatch, jobstatus_s3.endpoint_url)
    conn_id, key = make_connection("daily")
    jobstatus_emulator.set_account(
        "daily", key, daily_bucket={"bucket": bucket, "region": "us-east-1", "prefix": "acme"}
    )
    hook = DailyHook(conn_id)
    job_id = hook.submit_job("soap-notes", uri=MEDIA)
    status = wait_until_terminal(hook.get_job, job_id)
    destination = tmp_path / "out"
    op = JobOutputsToStorageOperator(
        task_id="deliver",
        job_conn_id=conn_id,
        job_id=job_id,
        destination=str(destination),
        source_aws_conn_id=aws,
    )
    manifest = op.execute({})
    soap = status.output("soap", "json")
    assert soap is not None and isinstance(soap.location, DownloadLink) and soap.location.s3 is not None
    expected = jobstatus_s3.client().get_object(Bucket=bucket, Key=soap.location.s3.key)["Body"].read()
    folder = destination / "daily" / job_id
    assert (folder / "soap.json").read_bytes() == expected
    assert {e["file_name"] for e in manifest["outputs"]} == {
        "transcript.txt",
        "transcript.vtt",
        "transcript.json",
        "soap.json",
    }
    assert all(isinstance(o.location, (DownloadLink, S3Object)) for o in status.outputs)
