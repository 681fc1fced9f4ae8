"""The description framework (services/_spec.py) as the generic hook and operator use it, on Wasabi AiR."""

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
        ({"api": "emotion"}, "api must be one of asr, diarize", None),
        ({"url": None}, "exactly one of url or content", "Pass url= for audio"),
        ({"content": "UklGRg=="}, "exactly one of url or content", None),
        ({"webhook": "ftp://h/x"}, "webhook is required", "Pass webhook= with the http(s) URL"),
        ({"speaker_count": 0}, "speaker_count must be a positive integer or -1", None),
        ({"api": "asr", "speaker_count": 2}, "asr API takes no speaker count", "Drop speaker_count="),
        ({"enable_punctuation": True}, "are asr parameters, not diarize ones", None),
        ({"api": "asr", "do_vad": True}, "are diarize parameters, not asr ones", None),
        ({"audio_type": "phone"}, "audio_type for diarize must be one of callcenter", None),
        ({"sample_rate": True}, "sample_rate", None),  # strict: a bool is no rate
        ({"sample_rate": 0}, "sample_rate must be a positive integer", None),
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
    assert fields[-1] == "request_id" and DeepAffectsSubmitRequest.set_at_send == {"request_id"}
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
