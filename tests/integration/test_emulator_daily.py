"""Daily batch processor contract (seed pages 000/001 and shared/providers.md) against the emulator."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from jobstatus_emulator.server import EmulatorServer
from tests.helpers.emulator_http import statuses_until

pytestmark = pytest.mark.integration


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(trust_env=False, timeout=10) as c:
        yield c


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _submit(
    client: httpx.Client,
    base: str,
    key: str,
    preset: str = "transcript",
    uri: str = "https://m.example/a.mp4",
    **in_params: Any,
) -> str:
    body = {
        "preset": preset,
        "inParams": {"sourceType": "uri", "uri": uri, **in_params},
        "outParams": {"s3Config": {"s3KeyTemplate": "output"}},
    }
    r = client.post(f"{base}/batch-processor", headers=_auth(key), json=body)
    assert r.status_code == 200, r.text
    assert set(r.json()) == {"id"}
    return str(r.json()["id"])


def _poll(client: httpx.Client, url: str, headers: dict[str, str]) -> list[str]:
    return statuses_until(client, url, {"finished", "error"}, headers=headers)[0]


def test_status_has_every_seed_field(
    emulator: EmulatorServer, client: httpx.Client, jobstatus_credential: str
) -> None:
    base = emulator.service_url("daily")
    job_id = _submit(
        client, base, jobstatus_credential, preset="summarize", uri="https://m.example/a.mp4?emu_duration=0.5"
    )
    uuid.UUID(job_id)
    r = client.get(f"{base}/batch-processor/{job_id}", headers=_auth(jobstatus_credential))
    assert r.status_code == 200
    job = r.json()
    assert set(job) == {"id", "preset", "status", "input", "output", "error"}
    assert job["id"] == job_id and job["preset"] == "summarize"
    assert job["status"] in ("submitted", "processing")
    assert job["input"] == {
        "sourceType": "uri",
        "uri": "https://m.example/a.mp4?emu_duration=0.5",
        "language": "en",
    }
    assert job["error"] is None
    _poll(client, f"{base}/batch-processor/{job_id}", _auth(jobstatus_credential))
    job = client.get(f"{base}/batch-processor/{job_id}", headers=_auth(jobstatus_credential)).json()
    assert job["status"] == "finished" and job["error"] is None
    assert isinstance(job["output"]["transcription"], list) and job["output"]["transcription"]
    for item in job["output"]["transcription"]:
        assert isinstance(item["format"], str)
        assert {k: type(v) for k, v in item["s3Config"].items()} == {"key": str, "bucket": str, "region": str}
        assert item["s3Config"]["key"].endswith(f"/{job_id}/transcript/output.{item['format']}")
    assert {t["format"] for t in job["output"]["transcription"]} == {"txt", "vtt", "json"}
    summary = job["output"]["summary"]
    assert summary["format"] == "txt"
    assert summary["s3Config"]["key"].endswith(f"/{job_id}/summary/output")  # no extension
    assert "soap" not in job["output"]


def test_soap_preset_output_and_recording_source(
    emulator: EmulatorServer, client: httpx.Client, jobstatus_credential: str
) -> None:
    base = emulator.service_url("daily")
    body = {
        "preset": "soap-notes",
        "inParams": {"sourceType": "recordingId", "recordingId": "rec-1"},
        "outParams": {"s3Config": {"s3KeyTemplate": "visit-{job_id}", "useReplacement": True}},
    }
    r = client.post(
        f"{base}/batch-processor?emu_duration=0.3", headers=_auth(jobstatus_credential), json=body
    )
    job_id = r.json()["id"]
    _poll(client, f"{base}/batch-processor/{job_id}", _auth(jobstatus_credential))
    job = client.get(f"{base}/batch-processor/{job_id}", headers=_auth(jobstatus_credential)).json()
    assert job["input"]["sourceType"] == "recordingId" and job["input"]["recordingId"] == "rec-1"
    assert job["output"]["soap"]["s3Config"]["key"].endswith(f"/{job_id}/soap/visit-{job_id}.json")
    assert job["output"]["soap"]["format"] == "json"
    assert job["output"]["soap"]["s3Config"]["key"].endswith(".json")
    assert job["output"]["soap"]["s3Config"]["bucket"] == "daily-batch-processor-storage"
    assert "summary" not in job["output"]


def test_job_passes_every_in_flight_status(
    emulator: EmulatorServer, client: httpx.Client, jobstatus_credential: str
) -> None:
    base = emulator.service_url("daily")
    job_id = _submit(client, base, jobstatus_credential, uri="https://m.example/a.mp4?emu_duration=1")
    seen = _poll(client, f"{base}/batch-processor/{job_id}", _auth(jobstatus_credential))
    assert seen == ["submitted", "processing", "finished"]
    timeline = emulator.job("daily", job_id)["timeline"]
    assert [t["status"] for t in timeline] == ["submitted", "processing", "finished"]
    assert timeline[0]["at"] < timeline[1]["at"] <= timeline[2]["at"]


def test_failed_job_reports_error(
    emulator: EmulatorServer, client: httpx.Client, jobstatus_credential: str
) -> None:
    base = emulator.service_url("daily")
    job_id = _submit(
        client, base, jobstatus_credential, uri="https://m.example/a.mp4?emu_duration=0.6&emu_outcome=fail"
    )
    seen = _poll(client, f"{base}/batch-processor/{job_id}", _auth(jobstatus_credential))
    assert seen == ["submitted", "processing", "error"]
    job = client.get(f"{base}/batch-processor/{job_id}", headers=_auth(jobstatus_credential)).json()
    assert job["error"] == "Error: Failed to transcribe. May be invalid audio or silent file"
    assert job["output"] == {}
    r = client.get(f"{base}/batch-processor/{job_id}/access-link", headers=_auth(jobstatus_credential))
    assert r.status_code == 400 and r.json()["error"] == "invalid-request-error"


def test_auth_errors(emulator: EmulatorServer, client: httpx.Client, jobstatus_credential: str) -> None:
    url = emulator.service_url("daily") + "/batch-processor"
    r = client.get(url)
    assert r.status_code == 400 and r.json()["error"] == "authorization-header-error" and r.json()["info"]
    r = client.get(url, headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert r.status_code == 400 and r.json()["error"] == "authorization-header-error"
    r = client.get(url, headers=_auth("invalid-key"))
    assert r.status_code == 401 and r.json()["error"] == "authentication-error" and r.json()["info"]
    emulator.set_account("daily", jobstatus_credential, revoked=True)
    assert client.get(url, headers=_auth(jobstatus_credential)).status_code == 401
    emulator.set_account("daily", jobstatus_credential, revoked=False)
    assert client.get(url, headers=_auth(jobstatus_credential)).status_code == 200


def test_accounts_are_isolated_and_unknown_is_404(
    emulator: EmulatorServer, client: httpx.Client, jobstatus_credential: str
) -> None:
    base = emulator.service_url("daily")
    job_id = _submit(client, base, jobstatus_credential)
    r = client.get(f"{base}/batch-processor/{job_id}", headers=_auth("someone-else"))
    assert r.status_code == 404 and r.json()["error"] == "not-found" and "info" in r.json()
    r = client.get(f"{base}/batch-processor/{uuid.uuid4()}/access-link", headers=_auth(jobstatus_credential))
    assert r.status_code == 404 and r.json()["error"] == "not-found"
    r = client.get(f"{base}/batch-processor/{job_id}/access-link", headers=_auth(jobstatus_credential))
    assert r.status_code == 400 and r.json()["error"] == "invalid-request-error"


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"preset": "translate", "inParams": {"sourceType": "uri", "uri": "https://a/b"}}, "preset"),
        ({"preset": "transcript"}, "inParams"),
        ({"preset": "transcript", "inParams": {"sourceType": "file"}}, "sourceType"),
        ({"preset": "transcript", "inParams": {"sourceType": "uri"}}, "inParams.uri"),
        (
            {"preset": "transcript", "inParams": {"sourceType": "recordingId", "uri": "https://a"}},
            "recordingId",
        ),
        (
            {
                "preset": "transcript",
                "inParams": {"sourceType": "transcriptUri", "transcriptUri": "https://a"},
            },
            "transcriptUri",
        ),
        (
            {
                "preset": "transcript",
                "inParams": {"sourceType": "uri", "uri": "https://a"},
                "outParams": {"s3Config": {"s3KeyTemplate": 3}},
            },
            "s3KeyTemplate",
        ),
        # contracts D3: outParams and its s3KeyTemplate are required
        ({"preset": "transcript", "inParams": {"sourceType": "uri", "uri": "https://a"}}, "outParams"),
        (
            {"preset": "transcript", "inParams": {"sourceType": "uri", "uri": "https://a"}, "outParams": {}},
            "outParams.s3Config",
        ),
        (
            {
                "preset": "transcript",
                "inParams": {"sourceType": "uri", "uri": "https://a"},
                "outParams": {"s3Config": {"useReplacement": True}},
            },
            "s3KeyTemplate is required",
        ),
        # D4: at most 1024 characters, alphanumerics and . / - _, three placeholders
        *[
            (
                {
                    "preset": "transcript",
                    "inParams": {"sourceType": "uri", "uri": "https://a"},
                    "outParams": {"s3Config": {"s3KeyTemplate": template, "useReplacement": True}},
                },
                needle,
            )
            for template, needle in (
                ("a" * 1025, "1024"),
                ("my file", "alphanumeric"),
                ("out:1", "alphanumeric"),
                ("out/{id}", "unsupported replacement"),
                ("out/{date}", "unsupported replacement"),
            )
        ],
        # D6: language only with the transcript preset
        (
            {
                "preset": "summarize",
                "inParams": {"sourceType": "uri", "uri": "https://a", "language": "fr"},
                "outParams": {"s3Config": {"s3KeyTemplate": "output"}},
            },
            "transcript preset",
        ),
    ],
)
def test_submit_validation(
    emulator: EmulatorServer,
    client: httpx.Client,
    jobstatus_credential: str,
    body: dict[str, Any],
    needle: str,
) -> None:
    r = client.post(
        emulator.service_url("daily") + "/batch-processor", headers=_auth(jobstatus_credential), json=body
    )
    assert r.status_code == 400
    assert r.json()["error"] == "invalid-request-error"
    assert needle in r.json()["info"]


def test_bad_json(emulator: EmulatorServer, client: httpx.Client, jobstatus_credential: str) -> None:
    r = client.post(
        emulator.service_url("daily") + "/batch-processor",
        headers={**_auth(jobstatus_credential), "Content-Type": "application/json"},
        content=b"{not json",
    )
    assert r.status_code == 400 and r.json()["error"] == "json-parsing-error"


def test_list_pages_every_job_exactly_once(
    emulator: EmulatorServer, client: httpx.Client, jobstatus_credential: str
) -> None:
    base = emulator.service_url("daily")
    headers = _auth(jobstatus_credential)
    created = [
        _submit(client, base, jobstatus_credential, uri=f"https://m.example/{i}.mp4") for i in range(8)
    ]
    newest_first = list(reversed(created))

    r = client.get(f"{base}/batch-processor", headers=headers)
    body = r.json()
    assert body["total_count"] == 8
    assert [j["id"] for j in body["data"]] == newest_first
    assert {"id", "preset", "status"} <= set(body["data"][0])

    # forwards with starting_after
    seen: list[str] = []
    params: dict[str, Any] = {"limit": 3}
    while True:
        page = client.get(f"{base}/batch-processor", headers=headers, params=params).json()
        assert page["total_count"] == 8
        ids = [j["id"] for j in page["data"]]
        if not ids:
            break
        seen += ids
        params = {"limit": 3, "starting_after": ids[-1]}
    assert seen == newest_first

    # backwards with ending_before, starting from the oldest job
    back: list[str] = []
    cursor = created[0]
    back.append(cursor)
    while True:
        page = client.get(
            f"{base}/batch-processor", headers=headers, params={"limit": 3, "ending_before": cursor}
        ).json()
        ids = [j["id"] for j in page["data"]]
        if not ids:
            break
        assert ids == sorted(ids, key=newest_first.index)  # still newest first
        back = ids + back
        cursor = ids[0]
    assert back == newest_first

    assert client.get(f"{base}/batch-processor", headers=headers, params={"limit": 101}).status_code == 400
    assert client.get(f"{base}/batch-processor", headers=headers, params={"limit": 0}).status_code == 400
    r = client.get(f"{base}/batch-processor", headers=headers, params={"starting_after": str(uuid.uuid4())})
    assert r.status_code == 400 and r.json()["error"] == "invalid-request-error"
    # another account sees nothing
    assert client.get(f"{base}/batch-processor", headers=_auth(jobstatus_credential + "-x")).json() == {
        "total_count": 0,
        "data": [],
    }


def test_list_filters_by_recording_id(
    emulator: EmulatorServer, client: httpx.Client, jobstatus_credential: str
) -> None:
    base = emulator.service_url("daily")
    headers = _auth(jobstatus_credential)
    ids = []
    for rec in ("r1", "r2", "r1"):
        body = {
            "preset": "transcript",
            "inParams": {"sourceType": "recordingId", "recordingId": rec},
            "outParams": {"s3Config": {"s3KeyTemplate": "output"}},
        }
        ids.append(client.post(f"{base}/batch-processor", headers=headers, json=body).json()["id"])
    page = client.get(f"{base}/batch-processor", headers=headers, params={"recordingId": "r1"}).json()
    assert page["total_count"] == 2
    assert [j["id"] for j in page["data"]] == [ids[2], ids[0]]


def test_delete_removes_job(
    emulator: EmulatorServer, client: httpx.Client, jobstatus_credential: str
) -> None:
    base = emulator.service_url("daily")
    headers = _auth(jobstatus_credential)
    a, b, c = (_submit(client, base, jobstatus_credential) for _ in range(3))
    r = client.delete(f"{base}/batch-processor/{b}", headers=headers)
    # the delete reference: "The API response is the same as Get job status" (contracts D13)
    assert r.status_code == 200 and r.json()["id"] == b
    assert {"preset", "status", "input", "output"} <= set(r.json())
    assert client.get(f"{base}/batch-processor/{b}", headers=headers).status_code == 404
    assert client.delete(f"{base}/batch-processor/{b}", headers=headers).status_code == 404
    page = client.get(f"{base}/batch-processor", headers=headers).json()
    assert page["total_count"] == 2 and [j["id"] for j in page["data"]] == [c, a]
    # a deleted job still works as a cursor
    page = client.get(f"{base}/batch-processor", headers=headers, params={"starting_after": b}).json()
    assert [j["id"] for j in page["data"]] == [a]


def test_key_template_placeholders_and_limits(
    emulator: EmulatorServer, client: httpx.Client, jobstatus_credential: str
) -> None:
    """D4/D5: the three documented placeholders are replaced; 1024 characters is still accepted."""
    base = emulator.service_url("daily")
    template = "p-{domain_name}/{job_id}_{epoch_time}.x"
    body = {
        "preset": "transcript",
        "inParams": {"sourceType": "uri", "uri": "https://m.example/a.mp4?emu_duration=0.2"},
        "outParams": {"s3Config": {"s3KeyTemplate": template, "useReplacement": True}},
    }
    r = client.post(f"{base}/batch-processor", headers=_auth(jobstatus_credential), json=body)
    assert r.status_code == 200, r.text
    job_id = r.json()["id"]
    _poll(client, f"{base}/batch-processor/{job_id}", _auth(jobstatus_credential))
    job = client.get(f"{base}/batch-processor/{job_id}", headers=_auth(jobstatus_credential)).json()
    key = job["output"]["transcription"][0]["s3Config"]["key"]
    assert re.fullmatch(
        rf"jobstatus-emulator/{job_id}/transcript/p-jobstatus-emulator/{job_id}_\d+\.x\.\w+", key
    )
    body["outParams"] = {"s3Config": {"s3KeyTemplate": "k" * 1024}}
    assert (
        client.post(f"{base}/batch-processor", headers=_auth(jobstatus_credential), json=body).status_code
        == 200
    )
    # without useReplacement, braces are not key characters (O-D1)
    body["outParams"] = {"s3Config": {"s3KeyTemplate": "{job_id}"}}
    r = client.post(f"{base}/batch-processor", headers=_auth(jobstatus_credential), json=body)
    assert r.status_code == 400 and "useReplacement" in r.json()["info"]


def test_access_links_are_the_documented_ones(
    emulator: EmulatorServer, client: httpx.Client, jobstatus_credential: str
) -> None:
    """D11: the access-link response has transcription and summary links only; no soap link."""
    base = emulator.service_url("daily")
    body = {
        "preset": "soap-notes",
        "inParams": {"sourceType": "uri", "uri": "https://m.example/a.mp4?emu_duration=0.2"},
        "outParams": {"s3Config": {"s3KeyTemplate": "output"}},
    }
    job_id = client.post(f"{base}/batch-processor", headers=_auth(jobstatus_credential), json=body).json()[
        "id"
    ]
    _poll(client, f"{base}/batch-processor/{job_id}", _auth(jobstatus_credential))
    job = client.get(f"{base}/batch-processor/{job_id}", headers=_auth(jobstatus_credential)).json()
    assert "soap" in job["output"]
    links = client.get(
        f"{base}/batch-processor/{job_id}/access-link", headers=_auth(jobstatus_credential)
    ).json()
    assert set(links) == {"id", "preset", "status", "transcription"}
    assert [link["format"] for link in links["transcription"]] == ["txt", "vtt", "json"]
