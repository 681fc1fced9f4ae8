"""`JobOutputsToStorageOperator` without servers: job references, states, outlets and lineage."""

from __future__ import annotations

import json
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk import Asset, AssetAlias

from airflow_jobstatus.exceptions import InvalidParameterError, JobFailedError, JobNotFinishedError
from airflow_jobstatus.http.settings import HttpSettings
from airflow_jobstatus.models import ApiDocument, InlineDocument, JobOutput, JobState, JobStatus
from airflow_jobstatus.operators.transfer import JobOutputsToStorageOperator, parse_job_reference
from airflow_jobstatus.services import DEEPAFFECTS, SYMBL, ServiceSpec

pytestmark = pytest.mark.unit


def status(
    state: str = "succeeded", *, service: str = "symbl", job_id: str = "j1:c1", **kw: Any
) -> JobStatus:
    return JobStatus(
        service=service, job_id=job_id, state=JobState(state), raw_status=kw.pop("raw", state), **kw
    )


@dataclass
class FakeClient:
    base_url: str = "https://api.symbl.ai"
    settings: HttpSettings = field(default_factory=HttpSettings)


class FakeHook:
    def __init__(
        self, job: JobStatus, outputs: list[JobOutput] | None = None, docs: dict[str, bytes] | None = None
    ):
        self.job = job
        self.outputs = job.outputs if outputs is None else outputs
        self.docs = docs or {}
        self.asked: list[str] = []

    def get_job(self, job_id: str) -> JobStatus:
        self.asked.append(job_id)
        return self.job

    def get_outputs(self, job: JobStatus) -> list[JobOutput]:
        return self.outputs

    def get_document(self, output: JobOutput) -> bytes:
        return self.docs[output.name]

    def get_client(self) -> FakeClient:
        return FakeClient()


def operator(monkeypatch: pytest.MonkeyPatch, hook: FakeHook, spec: ServiceSpec = SYMBL, **kw: Any) -> Any:
    kw.setdefault("destination", "/tmp/unused")
    op = JobOutputsToStorageOperator(
        task_id="deliver", job_conn_id="conn", job_id=kw.pop("job_id", "j1:c1"), **kw
    )
    monkeypatch.setattr(op, "_service", lambda: (spec, hook))
    return op


# ------------------------------------------------------------------ job references


def test_job_reference_forms() -> None:
    job = status()
    assert parse_job_reference("  abc  ") == ("abc", None)
    assert parse_job_reference(job) == ("j1:c1", "symbl")
    assert parse_job_reference(job.model_dump(mode="json")) == ("j1:c1", "symbl")
    assert parse_job_reference(json.dumps(job.model_dump(mode="json"))) == ("j1:c1", "symbl")
    # what "{{ ti.xcom_pull(...) }}" renders: the dict's Python repr
    assert parse_job_reference(str(job.model_dump(mode="json"))) == ("j1:c1", "symbl")
    for bad in ("{not json", {"job_id": "x"}, 42, ""):
        with pytest.raises(InvalidParameterError):
            parse_job_reference(bad)


def test_parameters_are_checked_when_the_task_is_defined() -> None:
    with pytest.raises(InvalidParameterError, match="if_exists"):
        JobOutputsToStorageOperator(
            task_id="t", job_conn_id="c", job_id="j", destination="/x", if_exists="replace"
        )
    with pytest.raises(InvalidParameterError, match="max_concurrency"):
        JobOutputsToStorageOperator(
            task_id="t", job_conn_id="c", job_id="j", destination="/x", max_concurrency=0
        )
    assert {"job_id", "destination", "outputs"} <= set(JobOutputsToStorageOperator.template_fields)


def test_wrong_connection_type_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_NOT_A_JOB_SERVICE", json.dumps({"conn_type": "aws"}))
    op = JobOutputsToStorageOperator(
        task_id="t", job_conn_id="not_a_job_service", job_id="j", destination="/x"
    )
    with pytest.raises(InvalidParameterError, match="not one of the job services"):
        op.execute({})


# ------------------------------------------------------------------ job states


def test_a_running_job_is_an_error_naming_its_state(monkeypatch: pytest.MonkeyPatch) -> None:
    op = operator(monkeypatch, FakeHook(status("running", raw="in_progress")))
    with pytest.raises(JobNotFinishedError) as info:
        op.execute({})
    assert "running" in str(info.value) and "in_progress" in str(info.value) and "j1:c1" in str(info.value)
    op = operator(monkeypatch, FakeHook(status("unknown", raw="mystery")))
    with pytest.raises(JobNotFinishedError, match="unknown"):
        op.execute({})


def test_a_failed_job_says_so_with_the_service_message(monkeypatch: pytest.MonkeyPatch) -> None:
    op = operator(monkeypatch, FakeHook(status("failed", raw="failed", error="bad audio")))
    with pytest.raises(JobFailedError) as info:
        op.execute({})
    assert "failed" in str(info.value) and "bad audio" in str(info.value)


def test_the_job_status_json_must_match_the_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    sensor_result = status(service="daily", job_id="d-1").model_dump(mode="json")
    hook = FakeHook(status())
    op = operator(monkeypatch, hook, job_id=sensor_result)
    with pytest.raises(InvalidParameterError, match="daily job but connection"):
        op.execute({})
    assert hook.asked == []


def test_a_bare_symbl_job_id_has_no_outputs_and_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    op = operator(monkeypatch, FakeHook(status(job_id="j1"), outputs=[]), job_id="j1")
    with pytest.raises(InvalidParameterError, match="jobId:conversationId"):
        op.execute({})


def test_service_knowledge_the_operator_needs_is_in_the_service_specs() -> None:
    import inspect

    from airflow_jobstatus.services.deepaffects import STATUS_PATH

    text = inspect.getsource(sys.modules[JobOutputsToStorageOperator.__module__])
    # no service-name branch and no service module in the shared operator
    assert "hooks.deepaffects" not in text and "spec.name ==" not in text
    # the inline result's path is the one the DeepAffects hook polls
    assert DEEPAFFECTS.result_path == STATUS_PATH
    assert "jobId:conversationId" in SYMBL.no_outputs_hint


# ------------------------------------------------------------------ delivery, outlets, lineage


def symbl_job() -> tuple[FakeHook, dict[str, bytes]]:
    outputs = [
        JobOutput(name=d, format="json", location=ApiDocument(path=f"/v1/conversations/c1/{d}"))
        for d in ("messages", "topics")
    ]
    docs = {"messages": b'{"messages": [{"text": "Hallo \\u00fc"}]}', "topics": b'{"topics": []}'}
    return FakeHook(status(outputs=outputs), docs=docs), docs


def test_documents_are_written_and_the_manifest_returned(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    hook, docs = symbl_job()
    op = operator(
        monkeypatch, hook, destination=f"file://{tmp_path}", job_id=hook.job.model_dump(mode="json")
    )
    manifest = op.execute({})
    folder = tmp_path / "symbl" / "j1_c1"
    assert (folder / "messages.json").read_bytes() == docs["messages"]
    assert (folder / "topics.json").read_bytes() == docs["topics"]
    assert json.loads((folder / "_manifest.json").read_text()) == manifest
    assert manifest["outputs"][0]["source"] == "https://api.symbl.ai/v1/conversations/c1/messages"
    assert manifest["outputs"][0]["method"] == "document" and manifest["job_id"] == "j1:c1"
    assert hook.asked == ["j1:c1"]  # the status is read fresh, whatever the JSON said


def test_deepaffects_inline_result_is_written_as_json(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    raw = {"response": {"response": {"transcript": "hello", "words": [1, 2]}}}
    job = status(
        service="deepaffects",
        job_id="r-1",
        raw=raw and "Completed",
        outputs=[
            JobOutput(name="result", format="json", location=InlineDocument(pointer="/response/response"))
        ],
    )
    job = job.model_copy(update={"raw": raw})
    op = operator(monkeypatch, FakeHook(job), spec=DEEPAFFECTS, destination=str(tmp_path), job_id="r-1")
    manifest = op.execute({})
    written = (tmp_path / "deepaffects" / "r-1" / "result.json").read_bytes()
    assert json.loads(written) == raw["response"]["response"] and written.endswith(b"\n")
    assert manifest["outputs"][0]["source_kind"] == "inline"


def test_default_outlet_is_the_destination_root_and_events_carry_the_manifest(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    hook, _ = symbl_job()
    op = operator(monkeypatch, hook, destination=str(tmp_path))
    assert op.outlets == [Asset(uri=tmp_path.as_uri())]
    assert JobOutputsToStorageOperator.destination_asset(str(tmp_path)) == op.outlets[0]
    templated = JobOutputsToStorageOperator(
        task_id="t", job_conn_id="c", job_id="j", destination="{{ var.value.x }}"
    )
    assert templated.outlets == []
    alias = AssetAlias(name="symbl-deliveries")
    op = operator(monkeypatch, hook, destination=str(tmp_path), outlets=[op.outlets[0], alias])

    class Accessor:
        def __init__(self) -> None:
            self.extra: dict[str, Any] = {}
            self.added: list[tuple[Any, dict[str, Any]]] = []

        def add(self, asset: Any, extra: dict[str, Any]) -> None:
            self.added.append((asset, extra))

    class Events(dict):
        def __missing__(self, key: Any) -> Accessor:
            self[key] = Accessor()
            return self[key]

    events = Events()
    manifest = op.execute({"outlet_events": events})
    root_event = events[Asset(uri=tmp_path.as_uri())]
    assert root_event.extra["manifest"] == manifest["manifest"] and root_event.extra["written"] == 2
    added = [asset.uri for asset, _ in events[alias].added]
    assert added == [*(o["destination"] for o in manifest["outputs"]), manifest["manifest"]]


def test_openlineage_datasets(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    hook, _ = symbl_job()
    op = operator(monkeypatch, hook, destination=str(tmp_path))
    assert op.get_openlineage_facets_on_complete(None) is None  # nothing ran yet / provider absent
    op.execute({})
    if "airflow.providers.openlineage.extractors" not in sys.modules:
        assert op.get_openlineage_facets_on_complete(None) is None  # graceful without the provider

    @dataclass
    class OperatorLineage:
        inputs: list[Any] = field(default_factory=list)
        outputs: list[Any] = field(default_factory=list)

    @dataclass
    class Dataset:
        namespace: str
        name: str

    @dataclass
    class OutputDataset(Dataset):
        outputFacets: dict[str, Any] = field(default_factory=dict)

    extractors = types.ModuleType("airflow.providers.openlineage.extractors")
    extractors.OperatorLineage = OperatorLineage  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "airflow.providers.openlineage.extractors", extractors)
    import airflow.providers.common.compat.openlineage.facet as facet

    monkeypatch.setattr(facet, "Dataset", Dataset)
    monkeypatch.setattr(facet, "OutputDataset", OutputDataset)
    monkeypatch.setattr(facet, "OutputStatisticsOutputDatasetFacet", lambda **kw: kw)
    lineage = op.get_openlineage_facets_on_complete(None)
    assert [(d.namespace, d.name) for d in lineage.inputs] == [
        ("https://api.symbl.ai", "/v1/conversations/c1/messages"),
        ("https://api.symbl.ai", "/v1/conversations/c1/topics"),
    ]
    import socket

    host = f"file://{socket.gethostname()}"
    folder = tmp_path / "symbl" / "j1_c1"
    assert [(d.namespace, d.name) for d in lineage.outputs] == [
        (host, str(folder / "messages.json")),
        (host, str(folder / "topics.json")),
        (host, str(folder / "_manifest.json")),
    ]
    assert lineage.outputs[0].outputFacets["outputStatistics"]["size"] > 0
