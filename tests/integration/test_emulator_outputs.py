"""Outputs really written: S3 objects at the documented keys, Daily-storage access links."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from airflow_jobstatus.testing.s3 import S3Server
from jobstatus_emulator.server import EmulatorServer

pytestmark = pytest.mark.integration


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(trust_env=False, timeout=10) as c:
        yield c


def _daily(client: httpx.Client, emu: EmulatorServer, key: str, preset: str, **extra: Any) -> dict[str, Any]:
    base = emu.service_url("daily")
    headers = {"Authorization": f"Bearer {key}"}
    body = {
        "preset": preset,
        "inParams": {"sourceType": "uri", "uri": "https://m.example/visit.mp4?emu_duration=0.4"},
        "outParams": {"s3Config": {"s3KeyTemplate": "output"}},
        **extra,
    }
    r = client.post(f"{base}/batch-processor", headers=headers, json=body)
    assert r.status_code == 200, r.text
    job_id = r.json()["id"]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        job = client.get(f"{base}/batch-processor/{job_id}", headers=headers).json()
        if job["status"] in ("finished", "error"):
            return dict(job)
        time.sleep(0.05)
    raise AssertionError("job did not end")


def _get(s3: S3Server, bucket: str, key: str) -> bytes:
    return bytes(s3.client().get_object(Bucket=bucket, Key=key)["Body"].read())


TS = re.compile(r"\d\d:\d\d:\d\d\.\d{3} --> \d\d:\d\d:\d\d\.\d{3}")


def test_daily_outputs_in_customer_bucket(
    emulator: EmulatorServer, client: httpx.Client, jobstatus_s3: S3Server, jobstatus_credential: str
) -> None:
    bucket = jobstatus_s3.create_bucket(f"daily-out-{uuid.uuid4().hex[:8]}")
    emulator.set_account(
        "daily",
        jobstatus_credential,
        daily_bucket={"bucket": bucket, "region": "us-east-1", "prefix": "acme.daily.co"},
    )
    jobs = {
        preset: _daily(client, emulator, jobstatus_credential, preset)
        for preset in ("transcript", "summarize", "soap-notes")
    }
    for preset, job in jobs.items():
        assert job["status"] == "finished", job
        listed = {
            o["Key"]
            for o in jobstatus_s3.client().list_objects_v2(
                Bucket=bucket, Prefix=f"acme.daily.co/{job['id']}/"
            )["Contents"]
        }
        expected = {t["s3Config"]["key"] for t in job["output"]["transcription"]}
        for name in ("summary", "soap"):
            if name in job["output"]:
                expected.add(job["output"][name]["s3Config"]["key"])
        assert listed == expected, preset
        for t in job["output"]["transcription"]:
            assert t["s3Config"]["bucket"] == bucket and t["s3Config"]["region"] == "us-east-1"
            assert t["s3Config"]["key"] == f"acme.daily.co/{job['id']}/transcript/output.{t['format']}"
            body = _get(jobstatus_s3, bucket, t["s3Config"]["key"]).decode()
            if t["format"] == "txt":
                assert TS.search(body) and "Speaker 0:" in body and "Speaker 1:" in body
            elif t["format"] == "vtt":
                assert body.startswith("WEBVTT") and TS.search(body) and "<v Speaker 0>" in body
            else:
                doc = json.loads(body)
                assert doc["jobId"] == job["id"] and doc["segments"]
                seg = doc["segments"][0]
                assert {"speaker", "start", "end", "text", "words"} <= set(seg)
                assert {"word", "start", "end", "speaker", "confidence"} <= set(seg["words"][0])

    summary = jobs["summarize"]["output"]["summary"]
    assert (
        summary["format"] == "txt"
        and summary["s3Config"]["key"] == f"acme.daily.co/{jobs['summarize']['id']}/summary/output"
    )
    text = _get(jobstatus_s3, bucket, summary["s3Config"]["key"]).decode()
    assert len(text) > 100 and "Participants:" in text

    soap = jobs["soap-notes"]["output"]["soap"]
    note = json.loads(_get(jobstatus_s3, bucket, soap["s3Config"]["key"]))
    assert {"subjective", "objective", "assessment", "plan"} <= set(note)
    assert "sore throat" in note["subjective"]

    # access links for customer-bucket outputs are presigned S3 URLs that download the object
    links = client.get(
        emulator.service_url("daily") + f"/batch-processor/{jobs['summarize']['id']}/access-link",
        headers={"Authorization": f"Bearer {jobstatus_credential}"},
    ).json()
    assert client.get(links["summary"]["link"]).text == text


def test_daily_key_template_with_replacement(
    emulator: EmulatorServer, client: httpx.Client, jobstatus_s3: S3Server, jobstatus_credential: str
) -> None:
    bucket = jobstatus_s3.create_bucket(f"daily-tpl-{uuid.uuid4().hex[:8]}")
    emulator.configure(daily_bucket={"bucket": bucket, "region": "us-east-1", "prefix": "staging"})
    before = int(time.time())
    job = _daily(
        client,
        emulator,
        jobstatus_credential,
        "transcript",
        outParams={"s3Config": {"s3KeyTemplate": "call-{epoch_time}", "useReplacement": True}},
    )
    key = job["output"]["transcription"][0]["s3Config"]["key"]
    m = re.fullmatch(rf"staging/{job['id']}/transcript/call-(\d+)\.txt", key)
    assert m and before <= int(m.group(1)) <= int(time.time())
    assert _get(jobstatus_s3, bucket, key)


def test_daily_missing_bucket_errors(
    emulator: EmulatorServer, client: httpx.Client, jobstatus_credential: str
) -> None:
    emulator.set_account(
        "daily",
        jobstatus_credential,
        daily_bucket={"bucket": f"gone-{uuid.uuid4().hex[:8]}", "region": "us-east-1"},
    )
    job = _daily(client, emulator, jobstatus_credential, "transcript")
    assert job["status"] == "error"
    assert "NoSuchBucket" in job["error"] and job["error"].startswith("Error:")


def test_daily_storage_links_download_and_expire(
    emulator: EmulatorServer, client: httpx.Client, jobstatus_credential: str
) -> None:
    emulator.configure(link_ttl=1)
    job = _daily(client, emulator, jobstatus_credential, "summarize")
    assert job["output"]["summary"]["s3Config"]["bucket"] == "daily-batch-processor-storage"
    base = emulator.service_url("daily")
    headers = {"Authorization": f"Bearer {jobstatus_credential}"}
    links = client.get(f"{base}/batch-processor/{job['id']}/access-link", headers=headers).json()
    assert set(links) == {"id", "preset", "status", "transcription", "summary"}
    assert links["status"] == "finished" and links["preset"] == "summarize"
    assert {t["format"] for t in links["transcription"]} == {"txt", "vtt", "json"}
    by_format = {t["format"]: t["link"] for t in links["transcription"]}
    for link in [*by_format.values(), links["summary"]["link"]]:
        assert (
            link.startswith(emulator.url + "/_storage/daily/")
            and "X-Expires=" in link
            and "X-Signature=" in link
        )
    vtt = client.get(by_format["vtt"])
    assert vtt.status_code == 200 and vtt.text.startswith("WEBVTT")
    assert json.loads(client.get(by_format["json"]).text)["segments"]
    summary = client.get(links["summary"]["link"])
    assert summary.status_code == 200 and "Participants:" in summary.text
    tampered = re.sub(
        r"X-Signature=([0-9a-f])",
        lambda m: "X-Signature=" + ("1" if m.group(1) != "1" else "2"),
        by_format["txt"],
    )
    assert client.get(tampered).status_code == 403
    time.sleep(2.1)
    expired = client.get(by_format["txt"])
    assert expired.status_code == 403 and "expired" in expired.text
    # deleting the job removes its objects from Daily storage
    fresh = client.get(f"{base}/batch-processor/{job['id']}/access-link", headers=headers).json()
    assert client.get(fresh["summary"]["link"]).status_code == 200
    assert client.delete(f"{base}/batch-processor/{job['id']}", headers=headers).status_code == 200
    assert client.get(fresh["summary"]["link"]).status_code == 404


def test_wasabi_metadata_object(
    emulator: EmulatorServer, client: httpx.Client, jobstatus_s3: S3Server, jobstatus_credential: str
) -> None:
    bucket = jobstatus_s3.create_bucket(f"metabucket-{uuid.uuid4().hex[:8]}")
    base = emulator.service_url("wasabi")
    headers = {"x-amz-access-key": jobstatus_credential, "x-amz-secret-key": "s"}
    body = {
        "Name": "Commercial",
        "Priority": 3,
        "Services": {
            "s2t": "",
            "ocr": "",
            "nld": "",
            "audiotag": "",
            "face": "",
            "logo": {"config": {"rec_confidence_threshold": 0.85}},
        },
        "Destination": {"Bucket": bucket, "Region": "us-east-1"},
        "Source": {
            "Endpoint": "s3.wasabisys.com",
            "Bucket": "media",
            "Region": "us-east-1",
            "ObjectKey": "MP4/Commercial.mp4?emu_duration=0.4",
        },
    }
    job_id = client.post(f"{base}/jobs", headers=headers, json=body).json()["Job"]["Id"]
    deadline = time.monotonic() + 10
    while client.get(f"{base}/jobs/{job_id}/status", headers=headers).json()["Status"] != "completed":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    while (r := client.get(f"{base}/jobs/{job_id}/metadata", headers=headers)).status_code == 404:
        assert time.monotonic() < deadline  # the metadata may lag the completed status (contracts W6)
        time.sleep(0.05)
    path = r.json()["DestinationPath"]
    m = re.fullmatch(
        rf"s3://{bucket}/(jobs/\d{{4}}_\d\d_\d\d/[0-9a-f-]{{36}}/Commercial_metadata\.json)", path
    )
    assert m, path
    doc = json.loads(_get(jobstatus_s3, bucket, m.group(1)))
    assert doc["JobId"] == job_id
    assert doc["SourceObject"] == "s3://media/MP4/Commercial.mp4?emu_duration=0.4"
    assert doc["Source"]["ObjectKey"] == body["Source"]["ObjectKey"]
    results = doc["Services"]
    assert set(results) == set(body["Services"])
    assert results["s2t"]["Transcript"] and results["s2t"]["Segments"][0].keys() >= {
        "Start",
        "End",
        "Speaker",
        "Text",
    }
    assert results["ocr"]["Results"][0]["Text"]
    assert all(lg["Confidence"] >= 0.85 for lg in results["logo"]["Logos"])
    assert emulator.job("wasabi", job_id)["outputs"][0]["key"] == m.group(1)
