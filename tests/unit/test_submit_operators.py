"""The four submit operators without servers: validation, submission, resume decisions, waits and ends.

A fake hook answers ``submit_job`` / ``get_job`` / ``delete_job``, a fake task state store and task
instance stand in for Airflow's, and a recording logger keeps what the operator logs.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException, TaskDeferred

from airflow_jobstatus.exceptions import (
    AuthenticationError,
    InvalidParameterError,
    JobFailedError,
    NotFoundError,
)
from airflow_jobstatus.models import JobState, JobStatus
from airflow_jobstatus.operators.base import (
    STATE_KEY,
    InvalidSubmissionError,
    JobSubmitOperator,
    JobWaitTimeoutError,
    fingerprint,
    is_literal,
)
from airflow_jobstatus.operators.daily import DailySubmitJobOperator
from airflow_jobstatus.operators.deepaffects import DeepAffectsSubmitJobOperator
from airflow_jobstatus.operators.symbl import SymblSubmitJobOperator
from airflow_jobstatus.operators.wasabi import WasabiAirSubmitJobOperator
from airflow_jobstatus.triggers import job as job_module
from airflow_jobstatus.triggers.events import JobEvent, event_for_job
from airflow_jobstatus.triggers.job import JobStatusTrigger

pytestmark = pytest.mark.unit

SOURCE = {"Endpoint": "https://s3.example", "Bucket": "media", "Region": "us-east-1", "ObjectKey": "a.mp4"}
DEST = {"Bucket": "out", "Region": "us-east-1"}
VALID: dict[type[JobSubmitOperator], dict[str, Any]] = {
    DailySubmitJobOperator: {"preset": "transcript", "uri": "https://media.example/a.mp4"},
    WasabiAirSubmitJobOperator: {"name": "n", "services": {"s2t": ""}, "source": SOURCE, "destination": DEST},
    SymblSubmitJobOperator: {"audio_url": "https://media.example/a.mp3"},
    DeepAffectsSubmitJobOperator: {
        "api": "asr",
        "url": "https://media.example/a.wav",
        "webhook": "https://hooks.example/deepaffects",
    },
}
CONN_KWARG = {
    DailySubmitJobOperator: ("daily_conn_id", "daily"),
    WasabiAirSubmitJobOperator: ("wasabi_air_conn_id", "wasabi_air"),
    SymblSubmitJobOperator: ("symbl_conn_id", "symbl"),
    DeepAffectsSubmitJobOperator: ("deepaffects_conn_id", "deepaffects"),
}


def job(state: str, *, service: str = "daily", job_id: str = "job-1", error: str | None = None) -> JobStatus:
    raw = {"succeeded": "finished", "failed": "error", "running": "processing", "cancelled": "cancelled"}
    return JobStatus(
        service=service, job_id=job_id, state=JobState(state), raw_status=raw.get(state, state), error=error
    )


class FakeHook:
    """Answers get_job from a script (the last answer repeats); records every call."""

    def __init__(self, *answers: JobStatus | Exception, job_id: str = "job-1") -> None:
        self.answers = list(answers)
        self.job_id = job_id
        self.calls: list[tuple[str, Any]] = []

    def submit_job(self, **kwargs: Any) -> str:
        self.calls.append(("submit_job", kwargs))
        return getattr(kwargs.get("request"), "request_id", None) or self.job_id  # DeepAffects' id

    def get_job(self, job_id: str) -> JobStatus:
        self.calls.append(("get_job", job_id))
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    def delete_job(self, job_id: str) -> None:
        self.calls.append(("delete_job", job_id))

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


class FakeStore:
    def __init__(self, **values: Any) -> None:
        self.values = dict(values)
        self.writes: list[tuple[str, Any]] = []

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def set(self, key: str, value: Any, **_: Any) -> None:
        self.writes.append((key, value))
        self.values[key] = value


class FakeTI:
    def __init__(
        self, *, try_number: int = 1, map_index: int = -1, task_id: str = "submit", max_tries: int = 3
    ) -> None:
        self.dag_id, self.task_id, self.run_id = "dag", task_id, "manual__2026-01-01"
        self.try_number, self.map_index, self.max_tries = try_number, map_index, max_tries
        self.stats_tags: dict[str, str] = {}
        self.xcom: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcom[key] = value


class RecordingLog:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def _record(self, level: str, message: str, *args: Any, **kwargs: Any) -> None:
        text = message % args if args else message
        if kwargs:
            text += " " + " ".join(f"{k}={v}" for k, v in kwargs.items())
        self.lines.append((level, text))

    def debug(self, message: str, *args: Any, **kwargs: Any) -> None:
        self._record("debug", message, *args, **kwargs)

    def info(self, message: str, *args: Any, **kwargs: Any) -> None:
        self._record("info", message, *args, **kwargs)

    def warning(self, message: str, *args: Any, **kwargs: Any) -> None:
        self._record("warning", message, *args, **kwargs)

    def error(self, message: str, *args: Any, **kwargs: Any) -> None:
        self._record("error", message, *args, **kwargs)

    def text(self) -> str:
        return "\n".join(line for _, line in self.lines)


def operator(
    cls: type[JobSubmitOperator] = DailySubmitJobOperator, hook: FakeHook | None = None, **kwargs: Any
) -> Any:
    params = {**VALID[cls], **kwargs}
    params.setdefault("task_id", "submit")
    params.setdefault("deferrable", False)
    params.setdefault("poll_interval", 0.01)
    op = cls(**params)
    op.hook = hook or FakeHook(job("succeeded", service=op.spec.name))
    op._cached_logger = RecordingLog()
    return op


def context(store: FakeStore | None = None, ti: FakeTI | None = None) -> Any:
    return {"task_state_store": store if store is not None else FakeStore(), "ti": ti or FakeTI()}


@pytest.fixture(autouse=True)
def fast_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    """Polls 10 ms apart (operators here poll every 10 ms unless a test says otherwise)."""
    monkeypatch.setattr(job_module, "MIN_POLL_INTERVAL", 0.01)


def record_for(op: JobSubmitOperator, job_id: str = "job-1", max_tries: int = 3) -> dict[str, Any]:
    """The record a try of ``op`` (task instance ``max_tries``) stores after submitting ``job_id``."""
    _, request = op._submission()
    return {"job_id": job_id, "request": fingerprint(op.spec.name, request), "max_tries": max_tries}


# ------------------------------------------------------------------------------- construction


@pytest.mark.parametrize("cls", list(VALID))
def test_each_operator_is_a_thin_subclass(cls: type[JobSubmitOperator]) -> None:
    conn_kwarg, service = CONN_KWARG[cls]
    op = cls(task_id="t", **VALID[cls], **{conn_kwarg: "my_conn"}, poll_interval=timedelta(minutes=2))
    assert op.spec.name == service and op.conn_id == "my_conn" and getattr(op, conn_kwarg) == "my_conn"
    assert op.hook.conn_id == "my_conn" and type(op.hook) is cls.hook_class
    assert op.poll_interval == 120 and op.wait_for_completion is True and op.durable is True
    assert op.failure_states == ("failed", "cancelled") and op.external_id_key == STATE_KEY
    assert set(op.template_fields) <= set(vars(op)) and len(op.template_fields) >= 4
    default = cls(task_id="t2", **VALID[cls])
    assert default.conn_id == f"{service}_default"


def test_deferrable_default_comes_from_the_config() -> None:
    import inspect

    from airflow.sdk import conf

    default = inspect.signature(JobSubmitOperator.__init__).parameters["deferrable"].default
    assert default is conf.getboolean("operators", "default_deferrable", fallback=False)


@pytest.mark.parametrize(
    ("cls", "kwargs", "fix"),
    [
        (
            DailySubmitJobOperator,
            {"recording_id": "rec-1"},
            "exactly one of recording_id, uri or transcript_uri",
        ),
        (DailySubmitJobOperator, {"uri": None}, "exactly one of recording_id, uri or transcript_uri"),
        (
            DailySubmitJobOperator,
            {"preset": "minutes"},
            "preset should be 'transcript', 'summarize' or 'soap-notes', got 'minutes'",
        ),
        (
            DailySubmitJobOperator,
            {"uri": None, "transcript_uri": "https://x/t.vtt"},
            "Remove transcript_uri, or make the request a 'summarize' or 'soap-notes' job",
        ),
        (WasabiAirSubmitJobOperator, {"services": {"translate": ""}}, "Use some of: ocr, s2t"),
        (WasabiAirSubmitJobOperator, {"priority": 11}, "priority should be less than or equal to 10, got 11"),
        (WasabiAirSubmitJobOperator, {"source": {"Bucket": "b"}}, "ObjectKey"),
        (WasabiAirSubmitJobOperator, {"name": "   "}, "not only blanks"),
        (WasabiAirSubmitJobOperator, {"source": "s3://media/a.mp4"}, "render_template_as_native_obj=True"),
        (SymblSubmitJobOperator, {"video_url": "https://x/v.mp4"}, "exactly one of audio_url, video_url or"),
        (
            SymblSubmitJobOperator,
            {"audio_url": None, "messages": "hello"},
            "messages must be a list, got text 'hello'",
        ),
        (
            SymblSubmitJobOperator,
            {"audio_url": None, "messages": [{"payload": {"content": "hi"}}], "language_code": "en-US"},
            "Remove language_code",
        ),
        (SymblSubmitJobOperator, {"diarization_speaker_count": 2}, "enable_speaker_diarization=True"),
        (DeepAffectsSubmitJobOperator, {"content": "UklGRg=="}, "Pass exactly one of url or content"),
        (DeepAffectsSubmitJobOperator, {"api": "emotion"}, "api should be 'asr' or 'diarize', got 'emotion'"),
        (DeepAffectsSubmitJobOperator, {"speaker_count": 2}, "speaker_count is a diarize parameter"),
        (DeepAffectsSubmitJobOperator, {"webhook": "ftp://hooks.example/x"}, "Pass webhook= with the http"),
        (
            DeepAffectsSubmitJobOperator,
            {"api": "diarize", "speaker_count": 0},
            "speaker_count must be a positive integer or -1",
        ),
        (
            DeepAffectsSubmitJobOperator,
            {"audio_type": "phone"},
            "audio_type should be 'callcenter', 'meeting'",
        ),
        (DeepAffectsSubmitJobOperator, {"sample_rate": 0}, "sample_rate should be greater than 0, got 0"),
    ],
)
def test_invalid_literal_parameters_fail_at_construction(
    cls: type[JobSubmitOperator], kwargs: dict[str, Any], fix: str
) -> None:
    with pytest.raises(InvalidSubmissionError, match="submit_job") as info:
        cls(task_id="t", **{**VALID[cls], **kwargs})
    assert fix in str(info.value)
    # never retried, and still the provider's parameter error
    assert isinstance(info.value, AirflowFailException) and isinstance(info.value, InvalidParameterError)


def test_deepaffects_without_a_webhook_or_push_fails_before_sending() -> None:
    # the webhook may come from push completion at send time, so construction accepts none; without
    # push configured the send refuses, naming both fixes, and the service is never called
    op = operator(DeepAffectsSubmitJobOperator, webhook=None)
    with pytest.raises(InvalidSubmissionError, match="webhook is required") as info:
        op._send(op._validated()[0], context())
    assert "webhook_base_url" in str(info.value)
    assert op.hook.calls == []


def test_templated_parameters_are_validated_after_rendering_before_any_request() -> None:
    hook = FakeHook(job("succeeded"))
    op = operator(hook=hook, uri="{{ params.uri }}", recording_id="{{ params.rec }}")  # not checkable yet
    op.uri, op.recording_id = "https://media.example/a.mp4", "rec-1"  # as rendered
    store = FakeStore()
    with pytest.raises(
        InvalidSubmissionError, match="Pass exactly one of recording_id, uri or transcript_uri"
    ):
        op.execute(context(store))
    assert hook.calls == [] and store.writes == []


def test_is_literal() -> None:
    assert is_literal({"a": [1, "x", None, True, b"raw"]})
    assert not is_literal("{{ ds }}") and not is_literal(["ok", "{% if x %}"]) and not is_literal(object())


def test_rendered_strings_are_coerced_for_typed_parameters() -> None:
    op = operator(WasabiAirSubmitJobOperator, priority="{{ params.p }}", services='["s2t", "ocr"]')
    op.priority = "7"
    body = op._submission()[1]["json"]
    assert body["Priority"] == 7 and body["Services"] == {"s2t": "", "ocr": ""}
    op = operator(DeepAffectsSubmitJobOperator, sample_rate="{{ params.rate }}", content=None)
    op.sample_rate, op.url, op.enable_punctuation = "8000", None, "false"
    op.content = b"RIFF"
    body = op._submission()[1]["json"]
    assert body["sampleRate"] == 8000 and body["content"] == "UklGRg==" and body["enablePunctuation"] is False


@pytest.mark.parametrize(
    "kwargs",
    [{"failure_states": ["succeeded"]}, {"poll_interval": 0}, {"timeout": 0}, {"max_consecutive_errors": 0}],
)
def test_invalid_wait_parameters(kwargs: dict[str, Any]) -> None:
    with pytest.raises(InvalidParameterError):
        operator(**kwargs)


# ------------------------------------------------------------------------------- a first try


@pytest.mark.parametrize("cls", list(VALID))
def test_submit_records_the_job_pushes_it_and_waits(cls: type[JobSubmitOperator]) -> None:
    service = CONN_KWARG[cls][1]
    hook = FakeHook(job("running", service=service), job("succeeded", service=service))
    op = operator(cls, hook=hook, poll_interval=0.01)
    store, ti = FakeStore(), FakeTI()
    value = op.execute(context(store, ti))
    assert JobStatus.model_validate(value).succeeded
    submitted = hook.calls[0]
    assert submitted[0] == "submit_job" and hook.names().count("submit_job") == 1
    job_id = "job-1" if cls is not DeepAffectsSubmitJobOperator else submitted[1]["request"].request_id
    assert store.writes == [(STATE_KEY, record_for(op, job_id))]
    assert ti.xcom == {"job_id": job_id}
    assert f"Submitted {op.spec.display_name} job {job_id}" in op.log.text()


def test_submission_kwargs_reach_the_hook() -> None:
    hook = FakeHook(job("succeeded"))
    op = operator(hook=hook, language="fr", s3_key_template="out/{job_id}", use_replacement="true")
    op.execute(context())
    name, kwargs = hook.calls[0]
    assert (name, list(kwargs)) == ("submit_job", ["request"])  # the validated DailySubmitRequest
    assert kwargs["request"].model_dump() == {
        "preset": "transcript",
        "recording_id": None,
        "uri": "https://media.example/a.mp4",
        "transcript_uri": None,
        "language": "fr",
        "s3_key_template": "out/{job_id}",
        "use_replacement": True,
    }


def test_without_waiting_returns_the_job_id() -> None:
    hook = FakeHook(job("running"))
    op = operator(hook=hook, wait_for_completion=False)
    ti = FakeTI()
    assert op.execute(context(ti=ti)) == "job-1" and ti.xcom == {"job_id": "job-1"}
    assert hook.names() == ["submit_job"]


def test_not_durable_never_reads_or_writes_the_store() -> None:
    hook = FakeHook(job("succeeded"))
    op = operator(hook=hook, durable=False)
    store = FakeStore(**{STATE_KEY: {"job_id": "old", "request": "x", "max_tries": 3}})
    op.execute(context(store))
    assert store.writes == [] and hook.names() == ["submit_job", "get_job"]


def test_sync_wait_fails_on_a_failed_job_and_skips_outside_failure_states() -> None:
    op = operator(hook=FakeHook(job("failed", error="silent audio")), poll_interval=0.01)
    with pytest.raises(JobFailedError, match="silent audio"):
        op.execute(context())
    op = operator(hook=FakeHook(job("cancelled")), poll_interval=0.01, failure_states=["failed"])
    with pytest.raises(AirflowSkipException, match="failure_states"):
        op.execute(context())


def test_sync_wait_times_out_and_says_the_job_keeps_running() -> None:
    op = operator(hook=FakeHook(job("running")), poll_interval=0.05, timeout=0.2)
    with pytest.raises(JobWaitTimeoutError, match="timeout 0s.*job-1.*a retry of this task resumes it"):
        op.execute(context())
    assert "Daily cannot cancel a running job: job job-1 keeps running" in op.log.text()
    assert "delete_on_kill=True" in op.log.text()  # Daily offers the delete


def test_sync_wait_timeout_with_delete_on_kill_deletes_the_daily_job() -> None:
    hook = FakeHook(job("running"))
    op = operator(hook=hook, poll_interval=0.05, timeout=0.2, delete_on_kill=True)
    with pytest.raises(JobWaitTimeoutError, match="a retry submits a new job"):
        op.execute(context())
    assert hook.calls[-1] == ("delete_job", "job-1")
    assert "deleted Daily job job-1 (delete_on_kill=True" in op.log.text()


def test_on_kill_logs_or_deletes() -> None:
    op = operator(SymblSubmitJobOperator)
    op.on_kill()  # nothing submitted yet: nothing to say
    assert op.log.lines == []
    op._job_id = "j:c"
    op.on_kill()
    assert "Symbl.ai cannot cancel a running job: job j:c keeps running at the service" in op.log.text()
    assert "delete_on_kill" not in op.log.text()
    hook = FakeHook(job("running"))
    op = operator(hook=hook, delete_on_kill=True)
    op._job_id = "job-9"
    op.on_kill()
    assert hook.calls == [("delete_job", "job-9")]
    with pytest.raises(TypeError):
        SymblSubmitJobOperator(task_id="t", audio_url="https://x/a.mp3", delete_on_kill=True)


# ------------------------------------------------------------------------------- deferrable


def test_deferrable_defers_to_the_shared_trigger_after_recording_the_job() -> None:
    hook = FakeHook(job("running"))
    op = operator(hook=hook, deferrable=True, poll_interval=45, timeout=600, delete_on_kill=True)
    store, ti = FakeStore(), FakeTI()
    before = time.time()
    with pytest.raises(TaskDeferred) as info:
        op.execute(context(store, ti))
    deferred = info.value
    assert isinstance(deferred.trigger, JobStatusTrigger) and deferred.method_name == "execute_complete"
    assert deferred.kwargs == {"job_id": "job-1"}
    _, kwargs = deferred.trigger.serialize()
    assert kwargs["service"] == "daily" and kwargs["job_id"] == "job-1" and kwargs["poll_interval"] == 45
    assert kwargs["delete_on_kill"] is True
    assert before + 600 <= kwargs["deadline"] <= time.time() + 600
    assert deferred.timeout is not None and deferred.timeout > timedelta(seconds=600)
    assert store.values[STATE_KEY]["job_id"] == "job-1" and ti.xcom == {"job_id": "job-1"}
    assert hook.names() == ["submit_job"]  # no check right after submitting


def resume(op: JobSubmitOperator, payload: Any, job_id: str = "job-1") -> Any:
    return op.resume_execution("execute_complete", {"event": payload, "job_id": job_id}, context={})  # type: ignore[arg-type]


def test_resuming_from_each_event() -> None:
    done = job("succeeded")
    assert resume(operator(), event_for_job(done).to_payload()) == done.model_dump(mode="json")
    with pytest.raises(JobFailedError, match="bad codec"):
        resume(operator(), event_for_job(job("failed", error="bad codec")).to_payload())
    with pytest.raises(AirflowSkipException):
        resume(operator(failure_states=["failed"]), event_for_job(job("cancelled")).to_payload())
    op = operator()
    with pytest.raises(JobWaitTimeoutError, match="had not finished"):
        resume(op, JobEvent("timeout", "Daily job job-1 had not finished at the deadline").to_payload())
    assert "job job-1 keeps running" in op.log.text()
    with pytest.raises(Exception, match="401"):
        resume(operator(), JobEvent("error", "401 from Daily").to_payload())
    with pytest.raises(Exception, match="not 'job-1'"):  # fails closed on another job's event
        resume(operator(), event_for_job(job("succeeded", job_id="other")).to_payload())


# ------------------------------------------------------------------------------- a later try


def test_a_retry_resumes_a_running_job_instead_of_submitting() -> None:
    hook = FakeHook(job("running"), job("running"), job("succeeded"))
    op = operator(hook=hook, poll_interval=0.01)
    store, ti = FakeStore(), FakeTI(try_number=2)
    store.values[STATE_KEY] = record_for(op)
    value = op.execute(context(store, ti))
    assert JobStatus.model_validate(value).succeeded
    assert "submit_job" not in hook.names() and store.writes == []
    assert ti.xcom == {"job_id": "job-1"}
    assert "Resuming Daily job job-1 submitted by an earlier try" in op.log.text()


def test_a_deferrable_retry_resumes_by_deferring_again() -> None:
    hook = FakeHook(job("running"))
    op = operator(hook=hook, deferrable=True)
    store = FakeStore(**{STATE_KEY: record_for(op)})
    with pytest.raises(TaskDeferred) as info:
        op.execute(context(store))
    assert info.value.kwargs == {"job_id": "job-1"} and hook.names() == ["get_job"]


def test_a_retry_after_the_job_succeeded_returns_it() -> None:
    hook = FakeHook(job("succeeded"))
    op = operator(hook=hook, deferrable=True)
    store = FakeStore(**{STATE_KEY: record_for(op)})
    assert op.execute(context(store))["state"] == "succeeded"
    assert hook.names() == ["get_job"]
    op = operator(hook=FakeHook(job("succeeded")), wait_for_completion=False)
    assert op.execute(context(FakeStore(**{STATE_KEY: record_for(op)}))) == "job-1"


@pytest.mark.parametrize(
    ("answer", "record_change", "says"),
    [
        (job("failed", error="corrupt"), {}, "ended failed"),
        (job("cancelled"), {}, "ended cancelled"),
        (NotFoundError("gone", status_code=404), {}, "no longer exists"),
        (job("running"), {"job_id": None}, "unreadable"),
        (job("running"), {"max_tries": 1}, "The task was cleared after Daily job old-job was submitted"),
        (job("succeeded"), {"max_tries": 1}, "submitting a new job for the rerun"),
    ],
)
def test_a_retry_submits_a_new_job_when_the_recorded_one_cannot_be_resumed(
    answer: Any, record_change: dict[str, Any], says: str
) -> None:
    hook = FakeHook(answer, job("succeeded", job_id="job-1"))
    op = operator(hook=hook)
    store = FakeStore(**{STATE_KEY: {**record_for(op, "old-job"), **record_change}})
    op.execute(context(store))
    assert hook.names().count("submit_job") == 1
    assert store.values[STATE_KEY]["job_id"] == "job-1" and store.values[STATE_KEY]["max_tries"] == 3
    assert says in op.log.text()
    if "cleared" in says or "rerun" in says:  # a clear is decided from the record alone
        assert hook.names()[0] == "submit_job"


def test_a_retry_resumes_the_recorded_job_when_parameters_render_differently() -> None:
    hook = FakeHook(job("running"), job("succeeded"))
    op = operator(hook=hook)
    store = FakeStore(**{STATE_KEY: {**record_for(op), "request": "another-fingerprint"}})
    assert JobStatus.model_validate(op.execute(context(store, FakeTI(try_number=2)))).succeeded
    assert "submit_job" not in hook.names() and store.writes == []
    assert "rendered differently" in op.log.text() and "resubmit_on_change=True" in op.log.text()
    # asked for: a new job
    hook = FakeHook(job("succeeded"))
    op = operator(hook=hook, resubmit_on_change=True)
    store = FakeStore(**{STATE_KEY: {**record_for(op, "old-job"), "request": "another-fingerprint"}})
    op.execute(context(store, FakeTI(try_number=2)))
    assert hook.names()[0] == "submit_job" and store.values[STATE_KEY]["job_id"] == "job-1"
    assert "submitting a new job (resubmit_on_change=True)" in op.log.text()


def test_a_record_without_max_tries_is_resumed() -> None:
    """A record written before clears were told apart (or with no task instance) is resumed."""
    hook = FakeHook(job("succeeded"))
    op = operator(hook=hook)
    record = {k: v for k, v in record_for(op).items() if k != "max_tries"}
    assert op.execute(context(FakeStore(**{STATE_KEY: record}), FakeTI(max_tries=7)))["state"] == "succeeded"
    assert hook.names() == ["get_job"]


def test_a_retry_fails_without_submitting_when_the_job_cannot_be_checked() -> None:
    hook = FakeHook(AuthenticationError("Invalid API key", status_code=401))
    op = operator(hook=hook)
    with pytest.raises(AuthenticationError):
        op.execute(context(FakeStore(**{STATE_KEY: record_for(op)})))
    assert "submit_job" not in hook.names()


# ------------------------------------------------------------------------------- DeepAffects request id


def test_deepaffects_sends_a_new_request_id_with_every_submission() -> None:
    """The docs do not say that a resent request_id de-duplicates: an id is never sent twice."""
    ids = []
    for try_number in (1, 1, 2):  # the same task instance and try, then a retry
        hook = FakeHook(job("succeeded", service="deepaffects"))
        op = operator(DeepAffectsSubmitJobOperator, hook=hook, webhook="https://hooks.example/da")
        op.execute(context(FakeStore(), FakeTI(try_number=try_number)))
        sent = hook.calls[0][1]["request"]
        assert sent.webhook == "https://hooks.example/da" and len(sent.request_id) == 36
        assert sent.call().params == {"webhook": sent.webhook, "request_id": sent.request_id}
        assert f"Submitting DeepAffects request_id {sent.request_id}" in op.log.text()
        ids.append(sent.request_id)
    assert len(set(ids)) == 3


# ------------------------------------------------------------------------------- the trigger's kill


class FakeDailyHook:
    deleted: list[tuple[str, str]] = []

    def __init__(self, daily_conn_id: str) -> None:
        self.conn_id = daily_conn_id

    async def adelete_job(self, job_id: str) -> None:
        self.deleted.append((self.conn_id, job_id))


class FakeSupervisor:
    """Answers the task SDK's ``GetTaskStates`` as the triggerer's supervisor would (or fails)."""

    def __init__(self, states: dict[str, dict[str, Any]] | None) -> None:
        self.states = states
        self.asked: list[Any] = []

    def send(self, msg: Any) -> Any:
        from airflow.sdk.execution_time.comms import TaskStatesResult

        self.asked.append(msg)
        if self.states is None:
            raise ConnectionError("the supervisor is gone")
        return TaskStatesResult(task_states=self.states)


class FakeTaskInstance:
    dag_id, task_id, run_id, map_index = "d", "submit", "r1", -1


def kill(monkeypatch: pytest.MonkeyPatch, trigger: JobStatusTrigger, states: Any) -> FakeSupervisor:
    from airflow.sdk.execution_time import task_runner

    supervisor = FakeSupervisor(states)
    monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", supervisor, raising=False)
    trigger.task_instance = FakeTaskInstance()  # type: ignore[assignment]
    asyncio.run(trigger.on_kill())
    return supervisor


def test_trigger_on_kill_deletes_only_with_delete_on_kill(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_jobstatus.hooks import daily

    monkeypatch.setattr(daily, "DailyHook", FakeDailyHook)
    FakeDailyHook.deleted = []
    kwargs: dict[str, Any] = {"service": "daily", "conn_id": "c", "job_id": "j", "deadline": time.time() + 60}
    asked = kill(monkeypatch, JobStatusTrigger(**kwargs), {"r1": {"submit": "failed"}})
    assert FakeDailyHook.deleted == [] and asked.asked == []  # nothing to delete: not even asked
    kill(monkeypatch, JobStatusTrigger(**kwargs, delete_on_kill=True), {"r1": {"submit": "failed"}})
    assert FakeDailyHook.deleted == [("c", "j")]
    assert "delete_on_kill" not in JobStatusTrigger(**kwargs).serialize()[1]
    rebuilt = JobStatusTrigger(**JobStatusTrigger(**kwargs, delete_on_kill=True).serialize()[1])
    assert rebuilt.delete_on_kill is True
    with pytest.raises(InvalidParameterError, match="daily only"):
        JobStatusTrigger(**{**kwargs, "service": "symbl"}, delete_on_kill=True)


@pytest.mark.parametrize(
    ("states", "deleted"),
    [
        ({"r1": {"submit": "failed"}}, True),  # marked failed by a user
        ({"r1": {"submit": None}}, True),  # cleared by a user
        ({"r1": {"submit": "deferred"}}, False),  # the trigger moved to another triggerer
        ({"r1": {"submit": "queued"}}, False),  # the wait ended elsewhere and the task resumes
        ({"r1": {"submit": "success"}}, False),  # finished: its outputs must survive
        ({"r1": {}}, False),  # no such task instance: ambiguous
        (None, False),  # the state cannot be read: ambiguous
    ],
    ids=["failed", "cleared", "deferred", "queued", "success", "missing", "unreadable"],
)
def test_trigger_on_kill_deletes_only_when_a_user_stopped_the_task(
    monkeypatch: pytest.MonkeyPatch, states: Any, deleted: bool
) -> None:
    """Airflow 3.3 cancels a trigger "by user action" also when it moved to another triggerer."""
    from airflow_jobstatus.hooks import daily

    monkeypatch.setattr(daily, "DailyHook", FakeDailyHook)
    FakeDailyHook.deleted = []
    trigger = JobStatusTrigger(
        service="daily", conn_id="c", job_id="j", deadline=time.time() + 60, delete_on_kill=True
    )
    supervisor = kill(monkeypatch, trigger, states)
    assert FakeDailyHook.deleted == ([("c", "j")] if deleted else [])
    [asked] = supervisor.asked
    assert (asked.dag_id, asked.task_ids, asked.run_ids) == ("d", ["submit"], ["r1"])
