"""`JobOutputsToStorageOperator` through ``dag.test()`` against the emulator and the S3 server.

* every service's outputs land in another bucket and in a local folder, byte-identical, with the
  manifest; a second run transfers nothing;
* a connection dropped or cut short mid-stream leaves nothing under the final names, and the rerun
  completes byte-identical;
* a malicious output key is refused and nothing is written anywhere.

Mid-stream faults come from `FaultProxy`, a small TCP proxy between the worker and a server: the
emulator's own fault rules do not cover its storage download route, and moto has none. Daily's
download links point at the proxy because a dedicated emulator is started with ``--public-url``.
"""

from __future__ import annotations

import importlib.util
import json
import socket
import textwrap
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from airflow_jobstatus.hooks.daily import DailyHook
from airflow_jobstatus.hooks.deepaffects import DeepAffectsHook
from airflow_jobstatus.hooks.symbl import SymblHook
from airflow_jobstatus.hooks.wasabi import WasabiAirHook
from airflow_jobstatus.models import ApiDocument, DownloadLink, InlineDocument, JobStatus, S3Object
from airflow_jobstatus.testing.processes import free_port
from airflow_jobstatus.testing.s3 import S3Server
from airflow_jobstatus.transfer.sinks import TEMP_SUFFIX
from jobstatus_emulator.server import EmulatorServer
from tests.helpers.canary import secret
from tests.helpers.connections import aws_connection, daily_customer_storage
from tests.helpers.jobs import wasabi_job
from tests.integration.conftest import wait_until_terminal

pytestmark = pytest.mark.integration

SERVICE_HOOKS: dict[str, Any] = {
    "daily": DailyHook,
    "wasabi_air": WasabiAirHook,
    "symbl": SymblHook,
    "deepaffects": DeepAffectsHook,
}


# ------------------------------------------------------------------------------------------ proxy


@dataclass
class Fault:
    """Cut the response of the next ``count`` requests matching ``method`` and ``path`` (a substring)."""

    method: str
    path: str
    after: int = 100
    """Body bytes forwarded before the cut."""
    kind: str = "drop"
    """``drop``: reset the connection; ``truncated``: close it cleanly (the body is short)."""
    count: int = 1
    hits: int = 0


@dataclass
class FaultProxy:
    """A TCP proxy to ``upstream`` that cuts matching responses mid-body.

    Each request is forced onto its own connection (``Connection: close``), so the first request
    line identifies the connection's only response.
    """

    upstream: tuple[str, int] | None = None
    faults: list[Fault] = field(default_factory=list)
    port: int = 0

    def __post_init__(self) -> None:
        self._server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._server.bind(("127.0.0.1", self.port or 0))
        self.port = self._server.getsockname()[1]
        self._server.listen(64)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self._stop.set()
        self._server.close()
        self._thread.join(5)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(client,), daemon=True).start()

    def _match(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.count > 0 and fault.method == method and fault.path in path.split("?", 1)[0]:
                    fault.count -= 1
                    fault.hits += 1
                    return fault
        return None

    @staticmethod
    def _cut(client: socket.socket, pumping: threading.Thread, *, reset: bool) -> None:
        """End the client's connection now: a reset (``drop``) or a clean close (``truncated``)."""
        if reset:
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            client.shutdown(socket.SHUT_RD)  # wakes the other thread's recv; close() then sends RST
        else:
            client.shutdown(socket.SHUT_RDWR)
        pumping.join(2)

    def _handle(self, client: socket.socket) -> None:
        assert self.upstream is not None
        try:
            head = b""
            while b"\r\n\r\n" not in head:
                data = client.recv(65536)
                if not data:
                    client.close()
                    return
                head += data
            raw_head, rest = head.split(b"\r\n\r\n", 1)
            lines = raw_head.split(b"\r\n")
            method, target = lines[0].decode("latin-1").split(" ")[:2]
            kept = [line for line in lines[1:] if not line.lower().startswith(b"connection:")]
            new_head = b"\r\n".join([lines[0], *kept, b"Connection: close"]) + b"\r\n\r\n"
            upstream = socket.create_connection(self.upstream)
            upstream.sendall(new_head + rest)
            fault = self._match(method, target)

            def pump_up() -> None:
                try:
                    while data := client.recv(65536):
                        upstream.sendall(data)
                except OSError:
                    pass

            pumping = threading.Thread(target=pump_up, daemon=True)
            pumping.start()
            seen = b""
            body = -1
            while data := upstream.recv(65536):
                if fault is not None:
                    if body < 0:
                        seen += data
                        if b"\r\n\r\n" not in seen:
                            continue
                        body = len(seen.split(b"\r\n\r\n", 1)[1])
                        data = seen
                    else:
                        body += len(data)
                    if body >= fault.after:
                        client.sendall(data[: len(data) - (body - fault.after)])
                        self._cut(client, pumping, reset=fault.kind == "drop")
                        break
                client.sendall(data)
            upstream.close()
        except OSError:
            pass
        finally:
            client.close()


# ------------------------------------------------------------------------------------------ Airflow


DAG_TEMPLATE = '''
"""Generated by tests/integration/test_transfer.py."""
import json

from airflow.sdk import DAG, task

from airflow_jobstatus.operators.transfer import JobOutputsToStorageOperator

CASES = {cases}

with DAG({dag_id!r}, schedule=None, catchup=False) as dag:
    moves = [JobOutputsToStorageOperator(task_id=task_id, **kwargs) for task_id, kwargs in CASES]

    @task(trigger_rule="all_done")
    def collect(**context):
        ti = context["ti"]
        with open({result_path!r}, "w") as f:
            json.dump({{task_id: ti.xcom_pull(task_ids=task_id) for task_id, _ in CASES}}, f)

    moves >> collect()
'''


@pytest.fixture
def run_dag(
    airflow_dags_folder: Path, tmp_path: Path
) -> Callable[..., tuple[dict[str, str], dict[str, Any]]]:
    """Write a DAG of transfer tasks, run it with dag.test(); return (task states, XCom manifests)."""

    def run(dag_id: str, cases: list[tuple[str, dict[str, Any]]]) -> tuple[dict[str, str], dict[str, Any]]:
        result_path = tmp_path / f"{dag_id}-{uuid.uuid4().hex[:6]}.json"
        path = airflow_dags_folder / f"{dag_id}.py"
        path.write_text(
            textwrap.dedent(
                DAG_TEMPLATE.format(dag_id=dag_id, cases=repr(cases), result_path=str(result_path))
            )
        )
        spec = importlib.util.spec_from_file_location(f"jobstatus_xfer_{dag_id}_{uuid.uuid4().hex[:6]}", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        dag_run = module.dag.test()
        states = {
            ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in dag_run.get_task_instances()
        }
        return states, json.loads(result_path.read_text())

    return run


# ------------------------------------------------------------------------------------------ helpers


def expected_bytes(conn_type: str, conn_id: str, job_id: str, s3: S3Server) -> dict[str, bytes]:
    """Each output's bytes read straight from where the service keeps it."""
    hook = SERVICE_HOOKS[conn_type](conn_id)
    status: JobStatus = hook.get_job(job_id)
    found: dict[str, bytes] = {}
    for output in hook.get_outputs(status):
        location = output.location
        if isinstance(location, S3Object):
            data = s3.client().get_object(Bucket=location.bucket, Key=location.key)["Body"].read()
        elif isinstance(location, DownloadLink):
            assert location.url
            data = httpx.get(location.url, trust_env=False).raise_for_status().content
        elif isinstance(location, ApiDocument):
            data = hook.get_document(output)
        else:
            assert isinstance(location, InlineDocument)
            data = (json.dumps(location.resolve(status.raw), ensure_ascii=False, indent=2) + "\n").encode()
        found[output.file_name] = data
    return found


def delivered(destination: str, service: str, job_id: str, s3: S3Server) -> dict[str, bytes]:
    """What is under ``<destination>/<service>/<job>/``, manifest included."""
    segment = job_id.replace(":", "_")
    if destination.startswith("s3://"):
        bucket, _, prefix = destination.removeprefix("s3://").partition("/")
        folder = f"{prefix}/{service}/{segment}/"
        client = s3.client()
        listed = client.list_objects_v2(Bucket=bucket, Prefix=folder).get("Contents", [])
        return {
            o["Key"][len(folder) :]: client.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
            for o in listed
        }
    root = Path(destination.removeprefix("file://")) / service / segment
    return {p.name: p.read_bytes() for p in root.iterdir()} if root.is_dir() else {}


def submit(conn_type: str, conn_id: str, marker: str, s3: S3Server, bucket: str | None = None) -> str:
    hook = SERVICE_HOOKS[conn_type](conn_id)
    if conn_type == "daily":
        return str(hook.submit_job("summarize", uri=f"https://media.example/visit.mp4?{marker}"))
    if conn_type == "wasabi_air":
        name = f"xfer-{uuid.uuid4().hex[:6]}"
        return wasabi_job(
            hook, s3.endpoint_url, name, f"a.mp4?{marker}", bucket=bucket, services={"s2t": "", "ocr": ""}
        )
    if conn_type == "symbl":
        return str(hook.submit_job(audio_url=f"https://media.example/a.mp3?{marker}"))
    return str(
        hook.submit_job(
            "asr", url=f"https://media.example/a.wav?{marker}", webhook="https://hooks.example/deepaffects"
        )
    )


# ------------------------------------------------------------------------------------------ tests


def test_every_service_lands_byte_identical_in_a_bucket_and_a_folder_then_rerun_skips(
    run_dag,
    make_connection,
    jobstatus_emulator: EmulatorServer,
    jobstatus_s3: S3Server,
    monkeypatch,
    tmp_path,
) -> None:
    dest_bucket = jobstatus_s3.create_bucket(f"xfer-dest-{uuid.uuid4().hex[:8]}")
    air_bucket = jobstatus_s3.create_bucket(f"xfer-air-{uuid.uuid4().hex[:8]}")
    daily_bucket = jobstatus_s3.create_bucket(f"xfer-daily-{uuid.uuid4().hex[:8]}")
    aws = aws_connection(monkeypatch, jobstatus_s3.endpoint_url)
    customer_conn, customer_key = daily_customer_storage(make_connection, jobstatus_emulator, daily_bucket)
    jobs: list[tuple[str, str, str]] = [  # (label, conn type, conn id)
        ("daily_links", "daily", make_connection("daily")[0]),
        ("daily_bucket", "daily", customer_conn),
        ("wasabi", "wasabi_air", make_connection("wasabi_air", s3_endpoint_url=jobstatus_s3.endpoint_url)[0]),
        ("symbl", "symbl", make_connection("symbl")[0]),
        ("deepaffects", "deepaffects", make_connection("deepaffects")[0]),
    ]
    ids = {label: submit(t, c, "emu_duration=0.3", jobstatus_s3, air_bucket) for label, t, c in jobs}
    for label, conn_type, conn_id in jobs:
        assert wait_until_terminal(SERVICE_HOOKS[conn_type](conn_id).get_job, ids[label]).succeeded, label
    local = tmp_path / "deliveries"
    destinations = {"bucket": f"s3://{dest_bucket}/incoming", "folder": local.as_uri()}
    cases = []
    for label, _conn_type, conn_id in jobs:
        for where, destination in destinations.items():
            job_ref: Any = ids[label]
            if label == "symbl" and where == "folder":  # the JobStatus JSON a sensor returns works too
                job_ref = SymblHook(conn_id).get_job(ids[label]).model_dump(mode="json")
            cases.append(
                (
                    f"{label}_to_{where}",
                    {
                        "job_conn_id": conn_id,
                        "job_id": job_ref,
                        "destination": destination,
                        "destination_conn_id": aws,
                        "source_aws_conn_id": aws,
                    },
                )
            )

    states, first = run_dag("jobstatus_transfer_it", cases)
    assert states == {**{task: "success" for task, _ in cases}, "collect": "success"}, states
    for label, conn_type, conn_id in jobs:
        expected = expected_bytes(conn_type, conn_id, ids[label], jobstatus_s3)
        assert expected and all(expected.values())
        for where, destination in destinations.items():
            got = delivered(destination, conn_type, ids[label], jobstatus_s3)
            manifest = json.loads(got.pop("_manifest.json"))
            assert got == expected, (label, where)
            assert manifest == first[f"{label}_to_{where}"]
            assert {e["file_name"] for e in manifest["outputs"]} == set(expected)
            assert all(
                e["status"] == "written" and e["bytes"] == len(expected[e["file_name"]])
                for e in manifest["outputs"]
            )
            assert all(e["checksum"] for e in manifest["outputs"])
    assert "summary.txt" in delivered(destinations["folder"], "daily", ids["daily_links"], jobstatus_s3)
    for label in (
        "daily_bucket",
        "wasabi",
    ):  # S3 to S3 on one endpoint: server-side, nothing through the worker
        manifest = first[f"{label}_to_bucket"]
        assert {e["method"] for e in manifest["outputs"]} == {"server_side_copy"}, manifest
        assert manifest["summary"]["bytes_through_worker"] == 0
    assert first["daily_links_to_folder"]["outputs"][0]["source"].startswith(
        jobstatus_emulator.url + "/_storage/"
    )
    assert not any("X-Signature" in json.dumps(m) for m in first.values())  # no presigned credential leaks

    before = {
        (label, where): delivered(d, t, ids[label], jobstatus_s3)
        for label, t, _ in jobs
        for where, d in destinations.items()
    }
    states, second = run_dag("jobstatus_transfer_it_rerun", cases)
    assert set(states.values()) == {"success"}, states
    for task, manifest in second.items():
        assert {e["status"] for e in manifest["outputs"]} == {"skipped"}, (task, manifest["outputs"])
        assert manifest["summary"]["written"] == 0 and manifest["summary"]["bytes_through_worker"] == 0, task
    for (label, where), content in before.items():
        now = delivered(
            destinations[where], dict((lbl, t) for lbl, t, _ in jobs)[label], ids[label], jobstatus_s3
        )
        assert json.loads(now.pop("_manifest.json"))["summary"]["skipped"] == len(now)
        content = dict(content)
        content.pop("_manifest.json")
        assert now == content


def test_a_stream_cut_mid_way_leaves_nothing_under_final_names_and_the_rerun_completes(
    run_dag, jobstatus_s3: S3Server, monkeypatch, tmp_path
) -> None:
    emulator_port = free_port()
    via_emulator = FaultProxy(upstream=("127.0.0.1", emulator_port))
    via_s3 = FaultProxy(upstream=("127.0.0.1", jobstatus_s3.port))
    emulator = EmulatorServer(
        port=emulator_port,
        s3_endpoint=jobstatus_s3.endpoint_url,
        job_duration=0.3,
        public_url=via_emulator.url,  # Daily's download links go through the proxy
        log_path=tmp_path / "emulator.log",
    )
    emulator.start()
    try:
        daily_bucket = jobstatus_s3.create_bucket(f"xfer-cut-{uuid.uuid4().hex[:8]}")
        dest_bucket = jobstatus_s3.create_bucket(f"xfer-cut-dest-{uuid.uuid4().hex[:8]}")
        direct = aws_connection(monkeypatch, jobstatus_s3.endpoint_url)
        proxied = aws_connection(monkeypatch, via_s3.url)

        def daily(customer: bool) -> tuple[str, str]:
            key = secret("cut")  # the API key is also the emulator account
            conn_id = f"t_daily_{uuid.uuid4().hex[:8]}"
            extra = {"max_requests_per_second": 0, "allow_http_links": True}
            if customer:
                extra["output_storage"] = "customer"
                emulator.set_account(
                    "daily",
                    key,
                    daily_bucket={"bucket": daily_bucket, "region": "us-east-1", "prefix": "acme"},
                )
            conn = {
                "conn_type": "daily",
                "host": emulator.service_url("daily"),
                "password": key,
                "extra": extra,
            }
            monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))
            # the faults below match the key the "output" template gives
            job_id = DailyHook(conn_id).submit_job(
                "summarize", uri="https://media.example/v.mp4", s3_key_template="output"
            )
            return conn_id, job_id

        links_conn, links_job = daily(customer=False)
        bucket_conn, bucket_job = daily(customer=True)
        for conn_id, job_id in ((links_conn, links_job), (bucket_conn, bucket_job)):
            assert wait_until_terminal(DailyHook(conn_id).get_job, job_id).succeeded
        folder = tmp_path / "deliveries"
        cases = [
            ("links_to_folder", {"job_conn_id": links_conn, "job_id": links_job, "destination": str(folder)}),
            (
                "bucket_to_folder",
                {
                    "job_conn_id": bucket_conn,
                    "job_id": bucket_job,
                    "destination": str(folder),
                    "source_aws_conn_id": proxied,
                },
            ),
            (  # another endpoint than the source's: streamed S3 to S3
                "bucket_to_bucket",
                {
                    "job_conn_id": bucket_conn,
                    "job_id": bucket_job,
                    "destination": f"s3://{dest_bucket}/in",
                    "destination_conn_id": direct,
                    "source_aws_conn_id": proxied,
                },
            ),
        ]
        via_emulator.faults = [Fault("GET", "/_storage/daily/", after=150, kind="truncated", count=1)]
        via_s3.faults = [Fault("GET", "/transcript/output.txt", after=150, kind="drop", count=2)]
        states, _ = run_dag("jobstatus_transfer_cut", cases)
        assert {k: v for k, v in states.items() if k != "collect"} == {task: "failed" for task, _ in cases}, (
            states
        )
        assert via_emulator.faults[0].hits == 1 and via_s3.faults[0].hits == 2

        links_left = delivered(str(folder), "daily", links_job, jobstatus_s3)
        bucket_left = delivered(str(folder), "daily", bucket_job, jobstatus_s3)
        s3_left = delivered(f"s3://{dest_bucket}/in", "daily", bucket_job, jobstatus_s3)
        for left in (links_left, bucket_left, s3_left):
            assert "_manifest.json" not in left  # the folder is not marked complete
            assert len(left) == 3  # one of the four outputs was cut; the others were delivered whole
        assert "transcript.txt" not in bucket_left and "transcript.txt" not in s3_left
        assert not [p for p in tmp_path.rglob("*") if p.name.endswith(TEMP_SUFFIX)]
        assert not jobstatus_s3.client().list_multipart_uploads(Bucket=dest_bucket).get("Uploads")
        expected_links = expected_bytes("daily", links_conn, links_job, jobstatus_s3)
        expected_bucket = expected_bytes("daily", bucket_conn, bucket_job, jobstatus_s3)
        for name, data in links_left.items():
            assert data == expected_links[name]  # what was delivered is whole
        for name, data in bucket_left.items():
            assert data == expected_bucket[name]

        via_emulator.faults, via_s3.faults = [], []
        states, manifests = run_dag("jobstatus_transfer_cut_rerun", cases)
        assert set(states.values()) == {"success"}, states
        for task, expected, destination, job_id in (
            ("links_to_folder", expected_links, str(folder), links_job),
            ("bucket_to_folder", expected_bucket, str(folder), bucket_job),
            ("bucket_to_bucket", expected_bucket, f"s3://{dest_bucket}/in", bucket_job),
        ):
            got = delivered(destination, "daily", job_id, jobstatus_s3)
            assert json.loads(got.pop("_manifest.json")) == manifests[task]
            assert got == expected, task
            statuses = sorted(e["status"] for e in manifests[task]["outputs"])
            assert statuses == ["skipped"] * 3 + ["written"], (task, statuses)
    finally:
        emulator.stop()
        via_emulator.close()
        via_s3.close()


def test_a_malicious_output_key_is_refused_and_nothing_is_written(
    make_connection, jobstatus_emulator: EmulatorServer, jobstatus_s3: S3Server, monkeypatch, tmp_path
) -> None:
    from airflow_jobstatus.exceptions import InvalidParameterError
    from airflow_jobstatus.operators.transfer import JobOutputsToStorageOperator

    bucket = jobstatus_s3.create_bucket(f"xfer-evil-{uuid.uuid4().hex[:8]}")
    dest_bucket = jobstatus_s3.create_bucket(f"xfer-evil-dest-{uuid.uuid4().hex[:8]}")
    aws = aws_connection(monkeypatch, jobstatus_s3.endpoint_url)
    conn_id, key = daily_customer_storage(make_connection, jobstatus_emulator, bucket)
    hook = DailyHook(conn_id)
    job_id = hook.submit_job(
        "summarize", uri="https://media.example/v.mp4?emu_duration=0.3", s3_key_template="../../etc/x"
    )
    status = wait_until_terminal(hook.get_job, job_id)
    assert status.succeeded and any(
        ".." in o.location.key for o in status.outputs if isinstance(o.location, S3Object)
    )
    root = tmp_path / "sandbox"
    root.mkdir()
    for destination in (str(root / "dest"), f"s3://{dest_bucket}/prefix"):
        op = JobOutputsToStorageOperator(
            task_id="deliver",
            job_conn_id=conn_id,
            job_id=job_id,
            destination=destination,
            destination_conn_id=aws,
            source_aws_conn_id=aws,
        )
        with pytest.raises(InvalidParameterError) as info:
            op.execute({})
        assert "'..' path segment" in str(info.value) and "../../etc/x" in str(info.value)
    assert [p for p in tmp_path.rglob("*") if p != root] == []  # nothing in the folder, nor beside it
    assert not jobstatus_s3.client().list_objects_v2(Bucket=dest_bucket).get("Contents")
