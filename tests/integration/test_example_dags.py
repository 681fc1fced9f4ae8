"""The example DAGs (``example_dags/``) as system tests.

* They load in a fresh interpreter with no import error and no deprecation warning: warnings of
  the deprecation kinds are errors while the DAG files and everything they import are loaded.
* Each runs through ``dag.test()`` against the emulator and the S3 server (real processes), with its
  connections by their default ids (``AIRFLOW_CONN_*``, secrets from the canary). The run succeeds,
  the service got exactly one job with the DAG's rendered parameters, and every output lands at the
  destination (a local folder or an S3 bucket) with the bytes the emulator serves, beside its
  manifest. The expected bytes are read from the emulator over plain HTTP (and from S3 with boto3),
  not through the provider's hooks.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from airflow_jobstatus.services.symbl import SYMBL_OUTPUT_DOCUMENTS
from airflow_jobstatus.testing.s3 import S3Server
from jobstatus_emulator.server import EmulatorServer
from tests.helpers.canary import secret

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[2] / "example_dags"
DAG_IDS = {
    "example_daily.py": "example_jobstatus_daily",
    "example_wasabi_air.py": "example_jobstatus_wasabi_air",
    "example_symbl.py": "example_jobstatus_symbl",
    "example_deepaffects.py": "example_jobstatus_deepaffects",
    "example_mixed_pipeline.py": "example_jobstatus_mixed_pipeline",
    "example_push_asset.py": "example_jobstatus_push_asset",
}
EVENT_DRIVEN = {"example_jobstatus_push_asset"}
"""Scheduled by an asset watcher (push completion's `JobEventTrigger`), not run by hand."""
EMULATOR_NAME = {"daily": "daily", "wasabi_air": "wasabi", "symbl": "symbl", "deepaffects": "deepaffects"}
JOB_SECONDS = 3
"""Each job runs this long, so every wait defers (a job finished at the first check never does)."""


# ------------------------------------------------------------------------------------------ loading

LOAD_SCRIPT = r"""
import json, sys, warnings
from airflow.dag_processing.dagbag import DagBag  # Airflow's own import-time warnings are not ours

DEPRECATIONS = (DeprecationWarning, PendingDeprecationWarning, FutureWarning)
with warnings.catch_warnings(record=True) as seen:
    warnings.simplefilter("always")
    for category in DEPRECATIONS:
        warnings.simplefilter("error", category)  # raised inside a DAG file: an import error
    bag = DagBag(dag_folder=sys.argv[1])
deprecations = [
    f"{w.category.__name__}: {w.message} ({w.filename}:{w.lineno})"
    for w in seen
    if issubclass(w.category, DEPRECATIONS) or "RemovedInAirflow" in w.category.__name__
]
dags = {
    dag_id: {
        "file": dag.fileloc.rsplit("/", 1)[-1],
        "schedule": repr(dag.schedule),
        "catchup": dag.catchup,
        "tags": sorted(dag.tags),
        "doc_md": bool(dag.doc_md and dag.doc_md.strip()),
        "params": sorted(dag.params),
        "tasks": len(dag.tasks),
    }
    for dag_id, dag in bag.dags.items()
}
print("RESULT" + json.dumps({"dags": dags, "errors": bag.import_errors, "warnings": deprecations}))
"""


def test_example_dags_load_without_errors_or_deprecation_warnings(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBSTATUS_EXAMPLE_")}
    env.update(AIRFLOW_HOME=str(tmp_path), AIRFLOW__CORE__LOAD_EXAMPLES="False")
    done = subprocess.run(
        [sys.executable, "-c", LOAD_SCRIPT, str(EXAMPLES)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(line for line in done.stdout.splitlines() if line.startswith("RESULT"))
    result = json.loads(line.removeprefix("RESULT"))
    assert result["errors"] == {}
    assert result["warnings"] == []
    assert {dag_id: d["file"] for dag_id, d in result["dags"].items()} == {v: k for k, v in DAG_IDS.items()}
    for dag_id, dag in result["dags"].items():
        if dag_id in EVENT_DRIVEN:
            assert (
                "jobstatus-daily-transcripts" in dag["schedule"] and "JobEventTrigger" in dag["schedule"]
            ), dag_id
            assert dag["doc_md"] and "airflow-jobstatus" in dag["tags"] and "example" in dag["tags"], dag_id
            continue
        assert dag["schedule"] == "None" and dag["catchup"] is False, dag_id
        assert dag["doc_md"] and "airflow-jobstatus" in dag["tags"] and "example" in dag["tags"], dag_id
        assert {"destination", "destination_conn_id"} <= set(dag["params"]), dag_id


def test_example_dags_import_only_the_task_sdk_and_this_package() -> None:
    """They are what users copy: only ``airflow.sdk`` and ``airflow_jobstatus`` (and the stdlib)."""
    import ast

    for path in sorted(EXAMPLES.glob("*.py")):
        modules: list[str] = []
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                modules.append(node.module)
            elif isinstance(node, ast.Import):
                modules += [alias.name for alias in node.names]
        airflow = [m for m in modules if m.split(".")[0] == "airflow"]
        assert all(m == "airflow.sdk" or m.startswith("airflow.sdk.") for m in airflow), (path.name, airflow)
        assert any(m.startswith("airflow_jobstatus.") for m in modules), path.name
        others = {m.split(".")[0] for m in modules} - {"airflow", "airflow_jobstatus"}
        assert others <= {"__future__", "os", "datetime"}, (path.name, others)


# ------------------------------------------------------------------------------------------ accounts


@dataclass
class Accounts:
    """Connections by the examples' default ids, each to a fresh emulator account."""

    emulator: EmulatorServer
    s3: S3Server
    daily_key: str
    wasabi_access_key: str
    symbl_app_id: str
    symbl_secret: str
    deepaffects_key: str
    air_bucket: str

    def credential(self, service: str) -> str:
        """The emulator's account identity for ``service`` (its admin API's name)."""
        return {
            "daily": self.daily_key,
            "wasabi": self.wasabi_access_key,
            "symbl": self.symbl_app_id,
            "deepaffects": self.deepaffects_key,
        }[service]

    def only_job(self, service: str) -> dict[str, Any]:
        jobs = self.emulator.jobs(service=service, credential=self.credential(service))
        assert len(jobs) == 1, f"{service}: expected exactly one job, got {len(jobs)}"
        return jobs[0]


@pytest.fixture
def accounts(
    monkeypatch: pytest.MonkeyPatch, jobstatus_emulator: EmulatorServer, jobstatus_s3: S3Server
) -> Accounts:
    tag = uuid.uuid4().hex[:8]
    acc = Accounts(
        emulator=jobstatus_emulator,
        s3=jobstatus_s3,
        daily_key=secret("daily"),
        wasabi_access_key=f"example-{tag}",
        symbl_app_id=f"example-{tag}",
        symbl_secret=secret("symbl"),
        deepaffects_key=secret("deepaffects"),
        air_bucket=jobstatus_s3.create_bucket(f"example-air-{tag}"),
    )
    extra = {"allow_http_links": True, "max_requests_per_second": 0}
    conns: dict[str, dict[str, Any]] = {
        "daily_default": {
            "conn_type": "daily",
            "host": jobstatus_emulator.service_url("daily"),
            "password": acc.daily_key,
        },
        "wasabi_air_default": {
            "conn_type": "wasabi_air",
            "host": jobstatus_emulator.service_url("wasabi"),
            "login": acc.wasabi_access_key,
            "password": secret("wasabi"),
            "extra": {**extra, "s3_endpoint_url": jobstatus_s3.endpoint_url},
        },
        "symbl_default": {
            "conn_type": "symbl",
            "host": jobstatus_emulator.service_url("symbl"),
            "login": acc.symbl_app_id,
            "password": acc.symbl_secret,
        },
        "deepaffects_default": {
            "conn_type": "deepaffects",
            "host": jobstatus_emulator.service_url("deepaffects"),
            "password": acc.deepaffects_key,
        },
    }
    s3_conn = {
        "conn_type": "aws",
        "login": "testing",
        "password": secret("aws"),  # moto accepts any secret key
        "extra": {"endpoint_url": jobstatus_s3.endpoint_url, "region_name": jobstatus_s3.region},
    }
    conns["aws_default"] = s3_conn
    conns["wasabi_s3"] = s3_conn
    for conn_id, conn in conns.items():
        conn.setdefault("extra", extra)
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))
    monkeypatch.setenv("JOBSTATUS_EXAMPLE_POLL_SECONDS", "1")
    return acc


def run_example(dags_folder: Path, file_name: str, conf: dict[str, Any]) -> tuple[Any, dict[str, str]]:
    """Copy the example into the dags folder, load it and run it with ``dag.test()``."""
    path = dags_folder / file_name
    shutil.copyfile(EXAMPLES / file_name, path)
    spec = importlib.util.spec_from_file_location(f"jobstatus_example_{uuid.uuid4().hex[:8]}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.dag.dag_id == DAG_IDS[file_name]
    dag_run = module.dag.test(run_conf=conf)
    states = {ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in dag_run.get_task_instances()}
    return dag_run, states


# ------------------------------------------------------------------------------------------ outputs


def served_outputs(acc: Accounts, service: str, job: dict[str, Any]) -> dict[str, bytes]:
    """Each output's bytes as the emulator serves them, keyed by the file name it is delivered as."""
    http = httpx.Client(timeout=30, trust_env=False)
    job_id = job["job_id"]
    if service == "daily":
        base = acc.emulator.service_url("daily")
        links = http.get(
            f"{base}/batch-processor/{job_id}/access-link",
            headers={"Authorization": f"Bearer {acc.daily_key}"},
        )
        body = links.raise_for_status().json()
        found = {f"transcript.{t['format']}": t["link"] for t in body.get("transcription") or []}
        for name in ("summary", "soap"):
            if body.get(name):
                found[f"{name}.{body[name]['format']}"] = body[name]["link"]
        return {name: http.get(link).raise_for_status().content for name, link in found.items()}
    if service == "wasabi":
        [output] = job["outputs"]
        data = acc.s3.client().get_object(Bucket=output["bucket"], Key=output["key"])["Body"].read()
        return {"metadata.json": data}
    if service == "symbl":
        base = acc.emulator.service_url("symbl")
        token = http.post(
            f"{base}/oauth2/token:generate",
            json={"type": "application", "appId": acc.symbl_app_id, "appSecret": acc.symbl_secret},
        )
        headers = {"Authorization": f"Bearer {token.raise_for_status().json()['accessToken']}"}
        [output] = job["outputs"]
        conversation = output["conversationId"]
        return {
            f"{doc}.json": http.get(f"{base}/v1/conversations/{conversation}/{doc}", headers=headers)
            .raise_for_status()
            .content
            for doc in SYMBL_OUTPUT_DOCUMENTS
        }
    assert service == "deepaffects"
    status = http.get(
        acc.emulator.service_url("deepaffects") + "/transaction/generic/api/v1/async/status",
        params={"apikey": acc.deepaffects_key, "request_id": job_id},
    )
    result = status.raise_for_status().json()["response"]["response"]
    return {"result.json": json.dumps(result).encode()}


def delivered(destination: str, s3: S3Server) -> dict[str, bytes]:
    """Every file under ``destination``, keyed by its path below it."""
    if destination.startswith("s3://"):
        bucket, _, prefix = destination.removeprefix("s3://").partition("/")
        client = s3.client()
        listed = client.list_objects_v2(Bucket=bucket, Prefix=prefix.rstrip("/") + "/").get("Contents", [])
        return {
            o["Key"][len(prefix.rstrip("/")) + 1 :]: client.get_object(Bucket=bucket, Key=o["Key"])[
                "Body"
            ].read()
            for o in listed
        }
    root = Path(destination.removeprefix("file://"))
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def check_delivery(acc: Accounts, files: dict[str, bytes], service: str) -> None:
    """``<service>/<job id>/`` holds exactly the job's outputs, with the served bytes, and their manifest."""
    emulator_name = EMULATOR_NAME[service]
    job = acc.only_job(emulator_name)
    job_id = job["job_id"]
    if service == "symbl":  # Symbl's job id is "<jobId>:<conversationId>", sanitized in the path
        job_id = f"{job_id}_{job['outputs'][0]['conversationId']}"
    prefix = f"{service}/{job_id}/"
    mine = {path.removeprefix(prefix): data for path, data in files.items() if path.startswith(prefix)}
    manifest = json.loads(mine.pop("_manifest.json"))
    expected = served_outputs(acc, emulator_name, job)
    assert expected and all(expected.values()), service
    assert set(mine) == set(expected), (service, sorted(mine), sorted(expected))
    for name, data in mine.items():
        if service == "deepaffects":  # an inline result, written as indented JSON
            assert json.loads(data) == json.loads(expected[name]), name
        else:
            assert data == expected[name], (service, name)
    assert manifest["service"] == service
    assert {e["file_name"]: e["bytes"] for e in manifest["outputs"]} == {n: len(d) for n, d in mine.items()}
    assert {e["status"] for e in manifest["outputs"]} == {"written"}


# ------------------------------------------------------------------------------------------ runs


def test_example_daily_to_the_default_destination_folder(
    airflow_dags_folder: Path, accounts: Accounts, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    folder = tmp_path / "outputs"
    monkeypatch.setenv("JOBSTATUS_EXAMPLE_DESTINATION", folder.as_uri())  # the param's default
    media = f"https://media.example.com/meetings/standup.mp4?emu_duration={JOB_SECONDS}"
    _, states = run_example(airflow_dags_folder, "example_daily.py", {"media_url": media})
    assert states == {"submit": "success", "wait": "success", "deliver": "success"}
    job = accounts.only_job("daily")
    assert job["request"]["body"]["inParams"] == {"sourceType": "uri", "uri": media}
    assert job["request"]["body"]["preset"] == "summarize"
    assert job["request"]["body"]["outParams"] == {
        "s3Config": {"s3KeyTemplate": "{job_id}", "useReplacement": True}
    }
    files = delivered(folder.as_uri(), accounts.s3)
    check_delivery(accounts, files, "daily")
    assert "daily/" + job["job_id"] + "/summary.txt" in files


def test_example_wasabi_air_to_a_bucket(airflow_dags_folder: Path, accounts: Accounts) -> None:
    destination = f"s3://{accounts.s3.create_bucket(f'example-dest-{uuid.uuid4().hex[:8]}')}/deliveries"
    conf = {
        "object_key": f"videos/keynote.mp4?emu_duration={JOB_SECONDS}",
        "air_bucket": accounts.air_bucket,
        "destination": destination,
    }
    dag_run, states = run_example(airflow_dags_folder, "example_wasabi_air.py", conf)
    assert states == {"index": "success", "deliver": "success"}
    body = accounts.only_job("wasabi")["request"]["body"]
    assert body["Name"] == f"keynote-{dag_run.logical_date:%Y%m%d}"  # {{ ds_nodash }}
    assert body["Batch"] == dag_run.run_id  # {{ run_id }}
    assert body["Destination"] == {"Bucket": accounts.air_bucket, "Region": "us-east-1"}
    check_delivery(accounts, delivered(destination, accounts.s3), "wasabi_air")


def test_example_symbl_to_a_folder_path(
    airflow_dags_folder: Path, accounts: Accounts, tmp_path: Path
) -> None:
    folder = tmp_path / "symbl-outputs"
    audio = f"https://media.example.com/calls/c1.mp3?emu_duration={JOB_SECONDS}"
    conf = {"audio_url": audio, "speakers": 3, "destination": str(folder)}
    dag_run, states = run_example(airflow_dags_folder, "example_symbl.py", conf)
    assert states == {"submit": "success", "wait": "success", "deliver": "success"}
    request = accounts.only_job("symbl")["request"]
    body = request["body"]
    # diarization settings are query parameters of the submission (contracts S4)
    assert body["url"] == audio and request["query"]["diarizationSpeakerCount"] == "3"
    assert body["name"] == f"support call {dag_run.logical_date:%Y-%m-%d} ({dag_run.run_id})"
    check_delivery(accounts, delivered(folder.as_uri(), accounts.s3), "symbl")


def test_example_deepaffects_to_a_bucket(airflow_dags_folder: Path, accounts: Accounts) -> None:
    destination = f"s3://{accounts.s3.create_bucket(f'example-dest-{uuid.uuid4().hex[:8]}')}/asr"
    audio = f"https://media.example.com/calls/c2.wav?emu_duration={JOB_SECONDS}"
    _, states = run_example(
        airflow_dags_folder, "example_deepaffects.py", {"audio_url": audio, "destination": destination}
    )
    assert states == {"transcribe": "success", "deliver": "success"}
    request = accounts.only_job("deepaffects")["request"]
    # the asr API takes no speaker count (docs); the required webhook is sent
    assert request["body"]["url"] == audio and request["body"]["enableSpeakerDiarization"] is True
    assert "speakerCount" not in request["body"] and "speakers" not in request["body"]
    assert request["query"]["webhook"] == "https://hooks.example.com/deepaffects"
    check_delivery(accounts, delivered(destination, accounts.s3), "deepaffects")


def test_example_mixed_pipeline_delivers_three_services_to_one_folder(
    airflow_dags_folder: Path, accounts: Accounts, tmp_path: Path
) -> None:
    folder = tmp_path / "meeting"
    media = f"https://media.example.com/meetings/all-hands.mp4?emu_duration={JOB_SECONDS}"
    conf = {
        "recording_id": f"rec-42-emu_duration={JOB_SECONDS}",
        "media_url": media,
        "destination": folder.as_uri(),
    }
    _, states = run_example(airflow_dags_folder, "example_mixed_pipeline.py", conf)
    assert set(states.values()) == {"success"} and len(states) == 6, states
    daily_job = accounts.only_job("daily")
    assert daily_job["request"]["body"]["inParams"]["recordingId"] == conf["recording_id"]
    symbl = accounts.only_job("symbl")
    assert symbl["request"]["body"]["name"] == f"{conf['recording_id']} (Daily job {daily_job['job_id']})"
    assert symbl["created"] >= daily_job["due_at"]  # the analyses start after the recording is processed
    files = delivered(folder.as_uri(), accounts.s3)
    assert {path.split("/")[0] for path in files} == {"daily", "symbl", "deepaffects"}
    for service in ("daily", "symbl", "deepaffects"):
        check_delivery(accounts, files, service)
