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
