"""The description framework (services/_spec.py, _submit.py, _reads.py) as the generic hook and operator use it, on Wasabi AiR."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from airflow_jobstatus.exceptions import InvalidParameterError
from airflow_jobstatus.hooks.wasabi import WasabiAirHook
from airflow_jobstatus.operators.wasabi import WasabiAirSubmitJobOperator
from airflow_jobstatus.services import SERVICES, WASABI_AIR
from airflow_jobstatus.services.wasabi_air import WasabiError, WasabiSubmitRequest

pytestmark = pytest.mark.unit

FIELDS: dict[str, Any] = {
    "name": "clip",
    "services": ["s2t"],
    "source": {"Bucket": "media", "ObjectKey": "a.mp4"},
    "destination": {"Bucket": "out", "Region": "us-east-1"},
}


def test_the_request_states_the_http_call() -> None:
    call = WasabiSubmitRequest.of("Wasabi AiR", {**FIELDS, "priority": "3", "batch": ""}).call()
    assert (call.method, call.path) == ("POST", "/jobs")
    assert call.json == {
        "Name": "clip",
        "Priority": 3,  # rendered text -> int
        "Services": {"s2t": ""},  # a list of names -> each with its defaults
        "Source": FIELDS["source"],
        "Destination": FIELDS["destination"],
    }  # an empty batch is left out


@pytest.mark.parametrize(
    ("change", "says", "hint"),
    [
        ({"priority": True}, "priority", None),  # strict: a bool is not a priority
        ({"services": {"translate": ""}}, "unknown services ['translate']", "Use some of: ocr, s2t"),
        ({"source": '{"Bucket": "b"}'}, "source is missing ObjectKey", "Give source as"),  # JSON text parsed
        (
            {"destination": "out"},
            "destination must be a dict, got text 'out'",
            "render_template_as_native_obj",
        ),
        ({"name": float("nan")}, "name", None),
        ({"name": "x" * 257}, "name should have at most 256 characters, got 'xxx", None),
        ({"priority": 0}, "priority should be greater than or equal to 1, got 0", None),
        ({"batch": "x", "extra": 1}, "extra", None),  # unknown parameters are refused
    ],
)
def test_invalid_fields_name_the_field_and_the_fix(
    change: dict[str, Any], says: str, hint: str | None
) -> None:
    with pytest.raises(InvalidParameterError) as info:
        WasabiSubmitRequest.of("Wasabi AiR", {**FIELDS, **change})
    assert says in str(info.value) and "submit_job" in str(info.value)
    if hint:
        assert hint in info.value.hint


def test_values_that_are_not_json_are_refused_before_sending() -> None:
    with pytest.raises(InvalidParameterError, match="must be text, a finite number"):
        WasabiSubmitRequest.of("Wasabi AiR", {**FIELDS, "services": {"s2t": {"config": {"x": float("inf")}}}})


def test_the_hook_takes_a_request_or_its_fields_not_both() -> None:
    hook = WasabiAirHook(wasabi_air_conn_id="unused")
    request = WasabiSubmitRequest.of("Wasabi AiR", FIELDS)
    assert hook.submit_request(request) is request
    assert hook.submit_request(**FIELDS) == request
    assert hook.submit_request("clip", **{k: v for k, v in FIELDS.items() if k != "name"}) == request
    with pytest.raises(InvalidParameterError, match="not both"):
        hook.submit_request(request, priority=2)


def test_the_operator_parameters_are_the_request_fields() -> None:
    fields = tuple(WasabiSubmitRequest.model_fields)
    assert WasabiAirSubmitJobOperator.template_fields == fields
    signature = inspect.signature(WasabiAirSubmitJobOperator.__init__)
    assert [p for p in signature.parameters if p in fields] == list(fields)
    assert signature.parameters["name"].default is inspect.Parameter.empty
    assert signature.parameters["priority"].default == 5
    assert signature.parameters["wasabi_air_conn_id"].default == "wasabi_air_default"
    for name in fields:
        assert f":param {name}:" in (WasabiAirSubmitJobOperator.__doc__ or "")
    with pytest.raises(TypeError, match="missing keyword argument 'name'"):  # Airflow reads the signature
        WasabiAirSubmitJobOperator(task_id="t", **{k: v for k, v in FIELDS.items() if k != "name"})
    op = WasabiAirSubmitJobOperator(
        task_id="t", wasabi_air_conn_id="w", default_args={"priority": 2}, **FIELDS
    )
    set_by_init = [getattr(op, name) for name in ("conn_id", "wasabi_air_conn_id", "priority", "batch")]
    assert set_by_init == ["w", "w", 2, None]


def test_mapped_operators_accept_the_request_fields() -> None:
    mapped = WasabiAirSubmitJobOperator.partial(
        task_id="t", services=["s2t"], source=FIELDS["source"], destination=FIELDS["destination"]
    ).expand(name=["a", "b"])
    assert mapped.expand_input.value == {"name": ["a", "b"]}


def test_the_error_model_reads_its_own_bodies() -> None:
    assert (
        WasabiError.text_of(b'{"Error": "bad key", "ErrorCode": "UNAUTHORIZED"}') == "bad key: UNAUTHORIZED"
    )
    assert WasabiError.text_of(b'{"ErrorCode": "NOT_FOUND"}') == "NOT_FOUND"
    assert WasabiError.text_of(b"<html>busy</html>") is None  # not its shape: the client's generic reading
    assert WasabiError.text_of(b"{}") is None


def test_every_description_is_registered_under_its_name() -> None:
    assert SERVICES["wasabi_air"] is WASABI_AIR and WASABI_AIR.submit_request is WasabiSubmitRequest
    assert set(WASABI_AIR.status_map.values()) >= {"queued", "running", "succeeded", "failed", "cancelled"}


def test_an_operator_may_add_its_own_parameters() -> None:
    from airflow_jobstatus.operators.base import JobSubmitOperator

    class Tagged(JobSubmitOperator):
        spec = WASABI_AIR
        hook_class = WasabiAirHook
        template_fields = ("name",)  # a subclass may template fewer fields

        def __init__(self, *, tag: str = "none", **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.tag = tag

    assert "tag" in inspect.signature(Tagged.__init__).parameters and Tagged.template_fields == ("name",)
    op = Tagged(task_id="t", tag="x", wasabi_air_conn_id="w", **FIELDS)
    assert (op.tag, op.conn_id, op.name) == ("x", "w", "clip")
    Tagged.partial(task_id="m", **{k: v for k, v in FIELDS.items() if k != "name"}).expand(
        tag=["a", "b"], name=["c", "d"]
    )


def test_daily_request_body_and_rules() -> None:
    from airflow_jobstatus.services.daily import DailySubmitRequest

    call = DailySubmitRequest.of(
        "Daily", {"preset": "transcript", "uri": "https://m/a.mp4", "recording_id": ""}
    ).call()
    assert (call.method, call.path) == ("POST", "/batch-processor")
    assert call.json == {
        "preset": "transcript",
        "inParams": {"sourceType": "uri", "uri": "https://m/a.mp4"},
        "outParams": {"s3Config": {"s3KeyTemplate": "{job_id}", "useReplacement": True}},
    }
    fixed = {"preset": "summarize", "transcript_uri": "https://m/t.vtt", "s3_key_template": "out/x"}
    assert (
        DailySubmitRequest.of("Daily", fixed).call().json["outParams"]["s3Config"]["useReplacement"] is False
    )
    with pytest.raises(InvalidParameterError, match="unknown placeholder") as info:
        DailySubmitRequest.of("Daily", {**fixed, "s3_key_template": "{when}"})
    assert "{epoch_time}" in info.value.hint


# ------------------------------------------------------------------------------- DeepAffects

DA_FIELDS: dict[str, Any] = {
    "api": "diarize",
    "url": "https://m/a.wav",
    "webhook": "https://hooks.example/da",
}


def test_deepaffects_request_states_the_http_call() -> None:
    from airflow_jobstatus.services.deepaffects import DeepAffectsSubmitRequest

    request = DeepAffectsSubmitRequest.of(
        "DeepAffects",
        {**DA_FIELDS, "speaker_count": "-1", "do_vad": "true", "speaker_ids": ("a", "b"), "source": ""},
    )
    call = request.call()
    assert (call.method, call.path) == ("POST", "/audio/generic/api/v2/async/diarize")
    assert call.params == {"webhook": "https://hooks.example/da", "request_id": None}
    assert call.json == {
        "encoding": "wav",
        "sampleRate": 16000,
        "languageCode": "en-US",
        "url": "https://m/a.wav",
        "speakers": -1,  # speaker_count's documented name (A3), from rendered text
        "doVad": True,
        "speakerIds": ["a", "b"],
    }  # an empty source is left out
    assert call.idempotent is False  # a submit POST is never resent, request_id or not (A11)
    asr = DeepAffectsSubmitRequest.of(
        "DeepAffects", {"api": "asr", "content": b"RIFF", "request_id": "r-1", "enable_punctuation": "false"}
    )
    assert asr.call().json["content"] == "UklGRg==" and asr.call().json["enablePunctuation"] is False
    assert asr.call().params == {"webhook": None, "request_id": "r-1"}  # the webhook is checked at send


@pytest.mark.parametrize(
    ("change", "says", "hint"),
    [
        ({"api": "emotion"}, "api should be 'asr' or 'diarize', got 'emotion'", None),
        ({"url": None}, "exactly one source is needed, got 0", "Pass exactly one of url or content"),
        ({"content": "UklGRg=="}, "exactly one source is needed, got 2 (url, content)", None),
        ({"webhook": "ftp://h/x"}, "webhook is required", "Pass webhook= with the http(s) URL"),
        ({"speaker_count": 0}, "speaker_count must be a positive integer or -1", None),
        ({"api": "asr", "speaker_count": 2}, "asr API takes no speaker count", "Drop speaker_count="),
        ({"enable_punctuation": True}, "enable_punctuation applies only to api='asr'", "Remove enable_punct"),
        ({"api": "asr", "do_vad": True}, "do_vad applies only to api='diarize'", "Remove do_vad"),
        (
            {"audio_type": "phone"},
            "audio_type should be 'callcenter', 'meeting', 'earningscalls', 'interview' or 'media-broadcast', "
            "got 'phone'",
            None,
        ),
        ({"sample_rate": True}, "sample_rate should be a valid integer, got True", None),  # strict
        ({"sample_rate": 0}, "sample_rate should be greater than 0, got 0", None),
        ({"speaker_ids": ["a", ""]}, "speaker_ids must be a list of speaker id strings", None),
        ({"speaker_ids": "alice"}, "speaker_ids must be a list, got text", "render_template_as_native_obj"),
    ],
)
def test_deepaffects_invalid_fields_name_the_field_and_the_fix(
    change: dict[str, Any], says: str, hint: str | None
) -> None:
    from airflow_jobstatus.services.deepaffects import DeepAffectsSubmitRequest

    with pytest.raises(InvalidParameterError) as info:
        DeepAffectsSubmitRequest.of("DeepAffects", {**DA_FIELDS, **change})
    assert says in str(info.value) and "submit_job" in str(info.value)
    if hint:
        assert hint in info.value.hint


def test_deepaffects_operator_parameters_are_the_request_fields_but_request_id() -> None:
    from airflow_jobstatus.operators.deepaffects import DeepAffectsSubmitJobOperator
    from airflow_jobstatus.services.deepaffects import DeepAffectsSubmitRequest

    fields = tuple(DeepAffectsSubmitRequest.model_fields)
    assert fields[-1] == "request_id" and set(DeepAffectsSubmitRequest.set_at_send) == {"request_id"}
    assert (
        DeepAffectsSubmitJobOperator.template_fields == fields[:-1]
    )  # the operator sends a new id each time
    signature = inspect.signature(DeepAffectsSubmitJobOperator.__init__)
    assert "request_id" not in signature.parameters and signature.parameters["sample_rate"].default == 16000
    assert ":param request_id:" not in (DeepAffectsSubmitJobOperator.__doc__ or "")
    op = DeepAffectsSubmitJobOperator(task_id="t", api="asr", url="https://m/a.wav")  # push may add a webhook
    assert (op.deepaffects_conn_id, op.webhook) == ("deepaffects_default", None)
    with pytest.raises(TypeError, match="request_id"):
        DeepAffectsSubmitJobOperator(task_id="t", request_id="r", **DA_FIELDS)


def test_deepaffects_error_model_reads_its_own_bodies() -> None:
    from airflow_jobstatus.services.deepaffects import DEEPAFFECTS, DeepAffectsError

    fault = b'{"fault": {"faultstring": "Invalid ApiKey", "detail": {"errorcode": "oauth.v2.InvalidApiKey"}}}'
    assert DeepAffectsError.text_of(fault) == "Invalid ApiKey (oauth.v2.InvalidApiKey)"
    assert DeepAffectsError.text_of(b'{"fault": {"faultstring": "busy"}}') == "busy"
    assert (
        DeepAffectsError.text_of(b'{"type": "params_invalid", "message": "bad url"}')
        == "params_invalid: bad url"
    )
    assert DeepAffectsError.text_of(b'{"message": "No request found"}') == "No request found"
    assert DeepAffectsError.text_of(b'{"fault": {"detail": {}}}') is None  # not its shape: generic reading
    assert DeepAffectsError.text_of(b"<html>busy</html>") is None and DeepAffectsError.text_of(b"{}") is None
    assert DEEPAFFECTS.error_body is DeepAffectsError
    assert dict(DeepAffectsError.handled_as) == {
        "params_invalid": 400,
        "unknown_route": 404,
        "queued": 429,
        "rate_limit": 429,
        "api_error": 503,
    }


def test_deepaffects_auth_puts_the_key_in_the_query_string() -> None:
    import httpx

    from airflow_jobstatus.services.deepaffects import DEEPAFFECTS

    assert DEEPAFFECTS.auth is not None
    auth, secrets = DEEPAFFECTS.auth.build({"password": "k3y"}.__getitem__)
    request = next(auth.auth_flow(httpx.Request("GET", "https://h/status?request_id=r")))
    assert request.url.params["apikey"] == "k3y" and request.url.params["request_id"] == "r"
    assert secrets == ["k3y"] and "k3y" not in repr(auth)


def test_symbl_description_and_operator() -> None:
    from airflow_jobstatus.hooks.symbl import SymblHook
    from airflow_jobstatus.operators.symbl import SymblSubmitJobOperator
    from airflow_jobstatus.services.symbl import SYMBL, SymblError, SymblSubmitRequest

    assert SERVICES["symbl"] is SYMBL and SYMBL.submit_request is SymblSubmitRequest
    assert SYMBL.error_body is SymblError and SymblError.text_of(b'{"message": "bad"}') == "bad"
    fields = tuple(SymblSubmitRequest.model_fields)
    assert SymblSubmitJobOperator.template_fields == fields
    parameters = inspect.signature(SymblSubmitJobOperator.__init__).parameters
    assert [p for p in parameters if p in fields] == list(fields)
    assert parameters["concurrency_wait_timeout"].default == 3600.0  # the operator's own parameter
    assert ":param webhook_url:" in (SymblSubmitJobOperator.__doc__ or "")
    op = SymblSubmitJobOperator(task_id="t", audio_url="https://m/a.mp3", concurrency_wait_timeout=60)
    assert (op.conn_id, op.concurrency_wait_timeout, op.audio_url) == (
        "symbl_default",
        60.0,
        "https://m/a.mp3",
    )
    with pytest.raises(InvalidParameterError, match="concurrency_wait_timeout must not be negative"):
        SymblSubmitJobOperator(task_id="t", audio_url="https://m/a.mp3", concurrency_wait_timeout=-1)
    hook = SymblHook(symbl_conn_id="unused")
    assert hook.submit_request(audio_url="https://m/a.mp3") == SymblSubmitRequest.of(
        "Symbl.ai", {"audio_url": "https://m/a.mp3"}
    )
    with pytest.raises(InvalidParameterError, match="request must be a SymblSubmitRequest"):
        hook.submit_request("https://m/a.mp3")  # no positional field


def test_a_token_exchange_is_shared_by_the_clients_of_one_api_and_app() -> None:
    from airflow_jobstatus.http.auth import RefreshableTokenAuth
    from airflow_jobstatus.http.client import ServiceClient
    from airflow_jobstatus.http.settings import HttpSettings
    from airflow_jobstatus.http.tokens import ExchangedToken
    from airflow_jobstatus.services.symbl import SYMBL

    assert SYMBL.auth is not None
    credentials = {"login": "app-1", "password": "s3cret-app"}
    sources = []
    for base_url in ("http://a.example", "http://a.example", "http://b.example"):
        auth, secrets = SYMBL.auth.build(credentials.__getitem__)
        assert secrets == ["s3cret-app"] and "s3cret" not in repr(auth)
        client = ServiceClient(
            service="Symbl.ai", conn_id="c", base_url=base_url, settings=HttpSettings(), auth=auth
        )
        assert isinstance(auth, RefreshableTokenAuth)
        auth.bind(client)
        sources.append(auth.source)
    assert isinstance(sources[0], ExchangedToken) and sources[0] is sources[1] is not sources[2]
    call = sources[0].call()
    assert (call.method, call.path, call.no_auth) == ("POST", "/oauth2/token:generate", True)
    assert call.json == {"type": "application", "appId": "app-1", "appSecret": "s3cret-app"}
    assert repr(sources[0]) == "ExchangedToken(type='application', appId='app-1', appSecret=***)"


# --- the generic reads: Listing, JobRead, OutputsRead, connection options (Daily and Wasabi) ---


def _env_hook(monkeypatch: pytest.MonkeyPatch, spec: Any, **extra: Any) -> Any:
    """A hook of ``spec`` whose connection lives in the environment (never contacted here)."""
    import json

    conn_id = f"descr_{spec.name}"
    conn = {"conn_type": spec.conn_type, "host": "https://svc.invalid", "login": "a", "password": "b"}
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({**conn, "extra": extra}))
    hook = spec.make_hook(conn_id)
    hook._options = hook.get_client().options  # what run() hands the plans
    return hook


def _pages(hook: Any, plan: Any, answers: list[Any]) -> tuple[list[Any], Any]:
    """Drive a plan by hand: every call it yields, answered in turn; its calls and its value."""
    calls: list[Any] = []
    answer: Any = None
    try:
        while True:
            calls.append(plan.send(answer) if calls else next(plan))
            answer = answers[len(calls) - 1]
    except StopIteration as stop:
        return calls, stop.value


def test_a_numbered_listing_pages_by_number_and_maps_its_filters(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_jobstatus.services.wasabi_air import WasabiJobList

    hook = _env_hook(monkeypatch, WASABI_AIR)
    full = WasabiJobList.model_validate({"Records": [{"Id": "a", "Status": "completed"}, {"Id": "b"}]})
    calls, (jobs, cursor) = _pages(hook, hook._list_page(None, page_size=2, batch="x"), [full])
    assert (calls[0].path, dict(calls[0].params)) == (
        "/jobs",
        {"pageNumber": 1, "pageSize": 2, "sortBy": "Created", "sortOrder": "Asc", "batch": "x"},
    )
    assert [j.job_id for j in jobs] == ["a", "b"] and cursor == 2  # a full page: the next number
    calls, (states, cursor) = _pages(hook, hook._list_states(2, page_size=3), [full])
    assert dict(calls[0].params)["sortOrder"] == "Desc" and calls[0].params["pageNumber"] == 2
    assert [(i, s.value, raw) for i, s, raw in states] == [
        ("a", "succeeded", "completed"),
        ("b", "unknown", None),
    ]
    assert cursor is None  # a short page is the last
    with pytest.raises(InvalidParameterError, match="list_jobs takes no recording_id") as info:
        next(hook._list_page(None, recording_id="r"))
    assert "sort_order" in (info.value.hint or "")


def test_a_cursor_listing_starts_after_the_last_id(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_jobstatus.services.daily import DAILY, DailyJobList

    hook = _env_hook(monkeypatch, DAILY)
    page = DailyJobList.model_validate(
        {"total_count": 5, "data": [{"id": "j1", "status": "finished"}, {"id": "j2"}]}
    )
    calls, (jobs, cursor) = _pages(hook, hook._list_page(None, page_size=2, recording_id="r"), [page])
    assert dict(calls[0].params) == {"limit": 2, "starting_after": None, "recordingId": "r"}
    assert [j.job_id for j in jobs] == ["j1", "j2"] and cursor == "j2"
    unusable = DailyJobList.model_validate({"total_count": 1, "data": [{"id": " "}]})
    with pytest.raises(Exception, match="unusable job id"):  # the cursor goes into the next URL
        _pages(hook, hook._list_states(None, page_size=1), [unusable])


def test_the_generated_state_page_reads_only_id_and_status() -> None:
    import pydantic

    states = WASABI_AIR.listing.states  # type: ignore[union-attr]
    page = states.model_validate(
        {"Records": [{"Id": "a", "Status": None, "Source": {"x": [1]}, "Priority": "?"}]}
    )
    assert page.Records[0].Id == "a"  # type: ignore[union-attr]
    for bad in ({"Records": [{"Status": "completed"}]}, {"Records": [{"Id": 5}]}):
        with pytest.raises(pydantic.ValidationError):
            states.model_validate(bad)


def test_connection_options_are_the_description_extra_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_jobstatus.services.daily import DAILY

    assert _env_hook(monkeypatch, DAILY).options["output_storage"] == "daily"  # the field's default
    assert _env_hook(monkeypatch, DAILY, output_storage="customer").options["output_storage"] == "customer"
    with pytest.raises(
        InvalidParameterError, match="'output_storage' must be 'daily' or 'customer', got 's3'"
    ):
        _env_hook(monkeypatch, DAILY, output_storage="s3")
    hook = _env_hook(monkeypatch, WASABI_AIR, s3_endpoint_url="https://s3.example")
    assert (
        hook.options["s3_endpoint_url"] == "https://s3.example" and hook.options["allow_http_links"] is False
    )


def test_output_locations_follow_the_description_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_jobstatus.models import DownloadLink, S3Object
    from airflow_jobstatus.services.daily import DAILY, DailyJob
    from airflow_jobstatus.services.wasabi_air import WasabiJob
    from tests.unit.test_models_daily import DAILY_FINISHED

    job = DailyJob.model_validate(DAILY_FINISHED)
    read = DAILY.job
    assert read is not None
    assert isinstance(read.status(job, {"output_storage": "daily"}, job.id).outputs[0].location, DownloadLink)
    assert isinstance(read.status(job, {"output_storage": "customer"}, job.id).outputs[0].location, S3Object)
    wasabi = WasabiJob.model_validate(
        {"Id": "w", "Status": "completed", "Destination": {"Bucket": "o", "Region": "eu-2"}}
    )
    hook = _env_hook(monkeypatch, WASABI_AIR)
    calls, outputs = _pages(
        hook,
        hook._get_outputs(WASABI_AIR.job.status(wasabi, {}, wasabi.Id)),  # type: ignore[union-attr]
        [WASABI_AIR.outputs_read.model.model_validate({"Id": "w", "DestinationPath": "s3://o/k.json"})],  # type: ignore[union-attr]
    )
    assert calls[0].path == "/jobs/w/metadata"
    assert outputs[0].location.endpoint_url == "https://s3.eu-2.wasabisys.com"  # the region's, no setting


def test_download_links_from_an_outputs_read_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_jobstatus.exceptions import MalformedResponseError
    from airflow_jobstatus.services.daily import DAILY, DailyAccessLinks, DailyJob
    from tests.unit.test_models_daily import ACCESS_LINKS, DAILY_FINISHED

    status = DAILY.job.status(DailyJob.model_validate(DAILY_FINISHED), {}, "job")  # type: ignore[union-attr]
    hook = _env_hook(monkeypatch, DAILY)
    calls, outputs = _pages(hook, hook._get_outputs(status), [DailyAccessLinks.model_validate(ACCESS_LINKS)])
    assert calls[0].path.endswith("/access-link") and 400 in (calls[0].hints or {})
    assert any(o.location.url for o in outputs)
    plain = {**ACCESS_LINKS, "transcription": [{"format": "txt", "link": "http://x.example/a"}]}
    with pytest.raises(MalformedResponseError, match="refused a download link: its scheme is 'http'"):
        _pages(hook, hook._get_outputs(status), [DailyAccessLinks.model_validate(plain)])


def test_a_sensor_without_init_takes_the_connection_parameter_of_its_service() -> None:
    import datetime

    from airflow.sdk import DAG

    from airflow_jobstatus.sensors.daily import DailyJobSensor

    signature = inspect.signature(DailyJobSensor.__init__)
    assert list(signature.parameters)[1:3] == ["job_id", "daily_conn_id"]
    assert signature.parameters["daily_conn_id"].default == "daily_default"
    assert ":param daily_conn_id:" in (DailyJobSensor.__doc__ or "")
    with DAG(
        "d",
        default_args={"daily_conn_id": "from_defaults"},
        schedule=None,
        start_date=datetime.datetime(2024, 1, 1),
    ):
        sensor = DailyJobSensor(task_id="s", job_id="j")
    # Airflow read the signature
    assert (sensor.conn_id, sensor.daily_conn_id) == ("from_defaults", "from_defaults")  # type: ignore[attr-defined]
    with pytest.raises(TypeError, match="job_id"):
        DailyJobSensor(task_id="t")  # type: ignore[call-arg]


def test_only_an_operator_whose_service_deletes_jobs_takes_delete_on_kill() -> None:
    from airflow_jobstatus.operators.daily import DailySubmitJobOperator

    assert "delete_on_kill" in inspect.signature(DailySubmitJobOperator.__init__).parameters
    assert "delete_on_kill" not in inspect.signature(WasabiAirSubmitJobOperator.__init__).parameters
    assert ":param delete_on_kill:" in (DailySubmitJobOperator.__doc__ or "")
    made: Any = DailySubmitJobOperator  # its parameters are generated: mypy sees the base's
    op = made(task_id="t", preset="transcript", uri="https://m/a.mp4", delete_on_kill=True)
    assert op.delete_on_kill is True and op._can_delete()
    with pytest.raises(InvalidParameterError, match="delete_on_kill must be True or False"):
        made(task_id="u", preset="transcript", uri="https://m/a.mp4", delete_on_kill="yes")


def test_hooks_get_airflow_attributes_and_load_from_the_description() -> None:
    from airflow_jobstatus.hooks.daily import DailyHook

    assert (WasabiAirHook.conn_name_attr, WasabiAirHook.conn_type) == ("wasabi_air_conn_id", "wasabi_air")
    assert (DailyHook.default_conn_name, DailyHook.hook_name) == ("daily_default", "Daily")
    assert WASABI_AIR.load_hook() is WasabiAirHook
