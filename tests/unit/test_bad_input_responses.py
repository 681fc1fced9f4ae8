"""Bad input from the services: whatever a response holds, only the package's typed errors come out.

Every response kind the hooks parse (status, list page, submit response, outputs / access links /
metadata, Symbl's token, error bodies) is fed arbitrary JSON, arbitrary bytes and mutations of the
seeds' documented examples. The hooks run their real plans and their real `ServiceClient` (size
check, status mapping, parsing); only the network is replaced, by httpx's own in-process transport,
because this is the unit tier (no servers). The transport path itself is covered against real
loopback servers in ``tests/integration/test_response_limits.py`` and ``test_tls_verification.py``.

Also here, because both come from what a service returns: output names and job ids that try to
leave the destination folder, and download links with a scheme other than https.
"""

from __future__ import annotations

import copy
import json
import math
import posixpath
import re
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import httpx
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from airflow_jobstatus.exceptions import (
    AuthenticationError,
    BadRequestError,
    InvalidParameterError,
    JobStatusError,
    MalformedResponseError,
    NotFoundError,
    RateLimitedError,
    ServiceError,
)
from airflow_jobstatus.hooks.base import JobServiceHook
from airflow_jobstatus.hooks.daily import DailyHook
from airflow_jobstatus.hooks.deepaffects import DeepAffectsHook
from airflow_jobstatus.hooks.symbl import SymblHook
from airflow_jobstatus.hooks.wasabi import WasabiAirHook
from airflow_jobstatus.models import (
    DAILY_STATUS_MAP,
    DEEPAFFECTS_STATUS_MAP,
    SYMBL_STATUS_MAP,
    WASABI_STATUS_MAP,
    DownloadLink,
    JobOutput,
    JobState,
    JobStatus,
    S3Object,
)
from airflow_jobstatus.services.daily import DailyJob, daily_job_status
from airflow_jobstatus.services.symbl import SymblJob, symbl_job_status
from airflow_jobstatus.transfer.naming import check_source_key, plan_outputs
from tests.helpers.canary import secret
from tests.helpers.hypothesis_profile import BAD_INPUT, FEW
from tests.unit.test_models_daily import ACCESS_LINKS, DAILY_ERROR, DAILY_FINISHED
from tests.unit.test_models_deepaffects import DEEPAFFECTS_EXAMPLE, REQUEST_ID
from tests.unit.test_models_symbl import SYMBL_JOB_EXAMPLE
from tests.unit.test_models_wasabi import WASABI_JOB, WASABI_METADATA

pytestmark = [pytest.mark.unit, pytest.mark.filterwarnings("ignore:Generating overly large repr")]

# ------------------------------------------------------------------------------------------------
# Seeds: the documented examples (from the model tests, which copy them from the seed pages)
# ------------------------------------------------------------------------------------------------

DEEPAFFECTS_DOC: dict[str, Any] = json.loads(DEEPAFFECTS_EXAMPLE)
SYMBL_JOB: dict[str, Any] = json.loads(SYMBL_JOB_EXAMPLE)
DAILY_LIST = {"total_count": 2, "data": [{"id": "a1", "preset": "transcript", "status": "finished"}] * 2}
WASABI_LIST = {"Records": [WASABI_JOB, {**WASABI_JOB, "Id": "second", "Status": "completed"}]}
WASABI_STATUS = {"Id": WASABI_JOB["Id"], "Status": "in_progress", "ErrorCount": 0}
SYMBL_TOKEN = {"accessToken": "eyJ-token", "expiresIn": 86400}
SYMBL_SUBMIT = {"conversationId": "6749556955938816", "jobId": SYMBL_JOB["id"]}
DEEPAFFECTS_SUBMIT = {"request_id": REQUEST_ID, "api": "asr"}
ERROR_BODIES: list[Any] = [
    {"error": "invalid-request-error", "info": "bad preset"},  # Daily
    {"Error": "Unauthorized", "ErrorCode": "UNAUTHORIZED"},  # Wasabi
    {"message": "Token validation failed for provided token."},  # Symbl
    {"statusCode": 429, "message": "maximum of 2 number of concurrent jobs"},
    {"fault": {"faultstring": "Invalid ApiKey", "detail": {"errorcode": "oauth.v2.InvalidApiKey"}}},
]

# ------------------------------------------------------------------------------------------------
# Strategies
# ------------------------------------------------------------------------------------------------

#: Field names of the documented responses: random dicts use them so that they reach validation.
KEYS = sorted(
    {
        *DAILY_FINISHED,
        *DAILY_FINISHED["output"],
        "s3Config",
        "key",
        "bucket",
        "region",
        "format",
        "link",
        "transcription",
        "total_count",
        "data",
        *WASABI_JOB,
        *WASABI_METADATA,
        "Records",
        "Job",
        "ErrorCount",
        "Error",
        "ErrorCode",
        "accessToken",
        "expiresIn",
        "jobId",
        "conversationId",
        "request_id",
        "response",
        "api",
        "fault",
        "faultstring",
        "message",
        "info",
        "error",
    }
)

ODD_STRINGS = [
    "",
    " ",
    "NaN",
    "nan",
    "Infinity",
    "-Infinity",
    "1e999",
    "-0",
    "null",
    "None",
    "true",
    "0x1F",
    "\u0661\u0662",  # Arabic-Indic digits
    "\x00",
    "\ufeff",
    "\ud800",  # a lone surrogate (legal in JSON text, not encodable as UTF-8)
    "\u202e",
    "../../etc/passwd",
    "A" * 5000,
    "{{ var.value.secret }}",
]

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**400), max_value=10**400),  # beyond float range, under int limits
    st.floats(),  # NaN and Infinity included: Python's json writes and reads them
    st.text(max_size=30),
    st.sampled_from(ODD_STRINGS),
)


def _children(leaves: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    keys = st.one_of(st.sampled_from(KEYS), st.text(max_size=10))
    return st.one_of(st.lists(leaves, max_size=4), st.dictionaries(keys, leaves, max_size=6))


json_values = st.recursive(json_scalars, _children, max_leaves=25)


def _paths(doc: Any) -> Iterator[tuple[Any, Any]]:
    """Every (container, key-or-index) inside a decoded JSON document."""
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield doc, key
            yield from _paths(value)
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            yield doc, index
            yield from _paths(value)


@st.composite
def mutated(draw: st.DrawFn, seed: Any) -> Any:
    """The seed with one to four fields dropped, retyped, renamed or given another status word."""
    doc = copy.deepcopy(seed)
    for _ in range(draw(st.integers(1, 4))):
        paths = list(_paths(doc))
        if not paths:
            break
        container, key = draw(st.sampled_from(paths))
        operation = draw(st.sampled_from(["drop", "retype", "rename", "status"]))
        if operation == "drop":
            del container[key]
        elif operation == "retype" or isinstance(container, list):
            container[key] = draw(json_values)
        elif operation == "rename":
            new = draw(st.one_of(st.just(key.lower()), st.just(key.upper()), st.text(max_size=8)))
            container[new] = container.pop(key)
        else:
            container[key] = draw(status_words())
    return doc


def status_words() -> st.SearchStrategy[str]:
    documented = [*DAILY_STATUS_MAP, *WASABI_STATUS_MAP, *SYMBL_STATUS_MAP, *DEEPAFFECTS_STATUS_MAP]
    variants = [
        f(w) for w in documented for f in (str.upper, str.title, lambda w: f" {w}", lambda w: w + "\u200b")
    ]
    lookalikes = [
        "\ufb01nished",
        "compIeted",
        "Сompleted",
        "completed\x00",
        "COMPLETED ",
        "succeeded",
        "success",
    ]
    return st.one_of(st.sampled_from(documented + variants + lookalikes), st.text(max_size=15))


def encode(value: Any, ascii_only: bool) -> bytes:
    # surrogatepass: a lone surrogate written raw is not valid UTF-8, which is the point
    return json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


ADVERSARIAL_BYTES = [
    b"",
    b"null",
    b"[" * 5_000,  # nesting deeper than a recursive parser allows
    b'{"id": ' * 5_000,
    b'{"id": 1' + b"1" * 5000 + b"}",  # an integer beyond Python's int-string limit
    b'{"id": "x", "status": "finished"',  # truncated
    b"\xef\xbb\xbf" + b'{"id": "x"}',  # UTF-8 BOM
    '{"id": "x"}'.encode("utf-16"),
    b'{"id": "\xff\xfe"}',
    b"<html><body>502 Bad Gateway</body></html>",
    b'{"id": NaN, "status": Infinity}',
]


def bodies(seed: Any) -> st.SearchStrategy[bytes]:
    """Arbitrary JSON, arbitrary bytes, adversarial bytes and mutations of ``seed``, as a body."""
    documents = st.one_of(json_values, mutated(seed), mutated(seed), st.just(seed))
    return st.one_of(
        st.builds(encode, documents, st.booleans()),
        st.binary(max_size=200),
        st.sampled_from(ADVERSARIAL_BYTES),
    )


# ------------------------------------------------------------------------------------------------
# Hooks answered in process
# ------------------------------------------------------------------------------------------------

Reply = tuple[int, bytes]


class Answers:
    """What the fake service answers, by route; the test sets it before each call."""

    def __init__(self) -> None:
        self.routes: dict[str, Reply] = {}
        self.requests: list[httpx.Request] = []

    def set(self, **routes: Reply) -> None:
        self.routes = dict(routes)
        self.requests = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        if path.endswith("/oauth2/token:generate"):
            route = "token"
        elif path.endswith("/access-link"):
            route = "links"
        elif path.endswith("/metadata"):
            route = "metadata"
        elif path.endswith("/status") and "/jobs/" in path:
            route = "status"
        elif request.method == "POST":
            route = "submit"
        elif path.rstrip("/").endswith(("/batch-processor", "/jobs")):
            route = "list"
        else:
            route = "job"
        default = (200, json.dumps(SYMBL_TOKEN).encode()) if route == "token" else (599, b"unscripted")
        status, body = self.routes.get(route, default)
        headers = {"Retry-After": "0"} if status == 429 else {}  # a 429 must not pause later examples
        return httpx.Response(status, content=body, headers=headers)


SECRET = secret("badinput")
HOOKS: dict[str, type[JobServiceHook]] = {
    "daily": DailyHook,
    "wasabi_air": WasabiAirHook,
    "symbl": SymblHook,
    "deepaffects": DeepAffectsHook,
}


def make_hook(
    monkeypatch: pytest.MonkeyPatch, conn_type: str, **extra: Any
) -> tuple[JobServiceHook, Answers]:
    """A hook whose connection lives in the environment and whose client answers from `Answers`."""
    conn_id = f"bad_{conn_type}_{uuid.uuid4().hex[:8]}"
    conn = {
        "conn_type": conn_type,
        "host": f"https://{conn_type}.invalid/api",
        "login": f"app-{uuid.uuid4().hex[:8]}",
        "password": SECRET,
        "extra": {
            "max_retries": 0,
            "max_requests_per_second": 0,
            "max_requests_per_minute": 0,
            "max_requests_per_day": 0,
            **extra,
        },
    }
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))
    hook = HOOKS[conn_type](conn_id)
    answers = Answers()
    client = hook.get_client()
    client._sync_client = httpx.Client(transport=httpx.MockTransport(answers.handle), follow_redirects=False)
    return hook, answers


@pytest.fixture(scope="module")
def env() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def _hook_fixture(name: str, conn_type: str) -> Any:
    """A module-scoped fixture ``name``: a hook of ``conn_type`` and its `Answers`."""

    @pytest.fixture(scope="module", name=name)
    def fixture(env: pytest.MonkeyPatch) -> tuple[JobServiceHook, Answers]:
        return make_hook(env, conn_type)

    return fixture


daily = _hook_fixture("daily", "daily")
wasabi = _hook_fixture("wasabi", "wasabi_air")
symbl = _hook_fixture("symbl", "symbl")
deepaffects = _hook_fixture("deepaffects", "deepaffects")


def outcome(call: Callable[[], Any], *, service: str, ok_status: bool = True) -> Any:
    """Run ``call``; return its value, or the typed error it raised (anything else fails the test).

    A typed error must name the service and never carry the connection's secret; on a 2xx
    response the only acceptable error is `MalformedResponseError`.
    """
    try:
        return call()
    except JobStatusError as exc:
        text = str(exc)
        assert service in text, text
        assert SECRET not in text and SECRET not in repr(exc)
        if ok_status:
            assert isinstance(exc, MalformedResponseError), f"{type(exc).__name__}: {text}"
        return exc


def expected_state(word: Any, status_map: Mapping[str, JobState]) -> JobState:
    """README: the documented word (ASCII case-insensitively) or ``unknown``, never a guess."""
    if not isinstance(word, str) or not word:
        return JobState.UNKNOWN
    if word in status_map:
        return status_map[word]
    if word.isascii():
        for documented, state in status_map.items():
            if documented.lower() == word.lower():
                return state
    return JobState.UNKNOWN


def check_status(status: Any, status_map: Mapping[str, JobState]) -> None:
    if isinstance(status, JobStatusError):
        return
    assert isinstance(status, JobStatus)
    assert status.job_id
    assert status.state is expected_state(status.raw_status, status_map)
    if status.succeeded:
        success = [w.lower() for w, s in status_map.items() if s is JobState.SUCCEEDED]
        assert isinstance(status.raw_status, str) and status.raw_status.lower() in success
    json.dumps(status.model_dump(mode="json"))  # what goes to XCom and trigger events serializes


# ------------------------------------------------------------------------------------------------
# Status responses
# ------------------------------------------------------------------------------------------------


@BAD_INPUT
@given(body=bodies(DAILY_FINISHED) | bodies(DAILY_ERROR))
def test_daily_status_response(daily, body: bytes) -> None:
    hook, answers = daily
    answers.set(job=(200, body))
    check_status(outcome(lambda: hook.get_job("job-1"), service="Daily"), DAILY_STATUS_MAP)


@BAD_INPUT
@given(job=bodies(WASABI_JOB), metadata=bodies(WASABI_METADATA))
@example(
    job=json.dumps({**WASABI_JOB, "Status": "completed"}).encode(),
    metadata=json.dumps({**WASABI_METADATA, "DestinationPath": "s3://bucket-only"}).encode(),
)
@example(
    job=json.dumps({**WASABI_JOB, "Status": "completed"}).encode(),
    metadata=json.dumps({**WASABI_METADATA, "Id": "someone-else"}).encode(),
)
def test_wasabi_job_and_metadata_responses(wasabi, job: bytes, metadata: bytes) -> None:
    """The state never depends on the metadata (contracts W3); a bad metadata body fails only
    `get_outputs`, with a typed error."""
    hook, answers = wasabi
    answers.set(job=(200, job), metadata=(200, metadata))
    status = outcome(lambda: hook.get_job(WASABI_JOB["Id"]), service="Wasabi AiR")
    check_status(status, WASABI_STATUS_MAP)
    if isinstance(status, JobStatus):
        assert status.outputs == []
        assert not any(r.url.path.endswith("/metadata") for r in answers.requests)
        outputs = outcome(lambda: hook.get_outputs(status), service="Wasabi AiR")
        if isinstance(outputs, list):
            for output in outputs:
                assert isinstance(output.location, S3Object)


@BAD_INPUT
@given(body=bodies(WASABI_STATUS))
def test_wasabi_cheap_status_response(wasabi, body: bytes) -> None:
    hook, answers = wasabi
    answers.set(status=(200, body))
    status = outcome(lambda: hook.get_status(WASABI_JOB["Id"]), service="Wasabi AiR")  # type: ignore[attr-defined]
    check_status(status, WASABI_STATUS_MAP)


@BAD_INPUT
@given(body=bodies(SYMBL_JOB))
def test_symbl_status_response(symbl, body: bytes) -> None:
    hook, answers = symbl
    answers.set(job=(200, body))
    status = outcome(lambda: hook.get_job(f"{SYMBL_JOB['id']}:6749556955938816"), service="Symbl.ai")
    check_status(status, SYMBL_STATUS_MAP)


@BAD_INPUT
@given(body=bodies(DEEPAFFECTS_DOC))
def test_deepaffects_status_response(deepaffects, body: bytes) -> None:
    hook, answers = deepaffects
    answers.set(job=(200, body))
    status = outcome(lambda: hook.get_job(REQUEST_ID), service="DeepAffects")
    check_status(status, DEEPAFFECTS_STATUS_MAP)
    if isinstance(status, JobStatus) and status.outputs:
        (output,) = status.outputs
        output.location.resolve(status.raw)  # type: ignore[union-attr]  # the inline result is there


STATUS_CASES = [
    ("daily", DAILY_FINISHED, "status", DAILY_STATUS_MAP, "job-1"),
    ("wasabi_air", WASABI_JOB, "Status", WASABI_STATUS_MAP, WASABI_JOB["Id"]),
    ("symbl", SYMBL_JOB, "status", SYMBL_STATUS_MAP, SYMBL_JOB["id"]),
    ("deepaffects", DEEPAFFECTS_DOC, "status", DEEPAFFECTS_STATUS_MAP, REQUEST_ID),
]


@pytest.mark.parametrize(("conn_type", "seed", "field", "status_map", "job_id"), STATUS_CASES)
@FEW
@given(word=status_words())
def test_an_undocumented_status_word_is_unknown_never_success(
    env, conn_type, seed, field, status_map, job_id, word: str
) -> None:
    hook, answers = _hooks(env, conn_type)
    answers.set(job=(200, encode({**seed, field: word}, True)), metadata=(200, encode(WASABI_METADATA, True)))
    status = hook.get_job(job_id)
    assert status.state is expected_state(word, status_map)
    if word not in status_map and not (word.isascii() and word.lower() in {w.lower() for w in status_map}):
        assert status.state is JobState.UNKNOWN and not status.succeeded and not status.is_terminal


_hook_cache: dict[str, tuple[JobServiceHook, Answers]] = {}


def _hooks(env: pytest.MonkeyPatch, conn_type: str, **extra: Any) -> tuple[JobServiceHook, Answers]:
    """One hook per connection type and extra for the module (parametrized properties share it)."""
    key = f"{conn_type}:{sorted(extra.items())}"
    if key not in _hook_cache:
        _hook_cache[key] = make_hook(env, conn_type, **extra)
    return _hook_cache[key]


# ------------------------------------------------------------------------------------------------
# List pages, submit responses, Symbl's token
# ------------------------------------------------------------------------------------------------


LIST_CASES = [
    # conn type, seed page, status map, service name, the types a next cursor may have (None: unchecked)
    ("daily", DAILY_LIST, DAILY_STATUS_MAP, "Daily", (type(None), str)),
    ("wasabi_air", WASABI_LIST, WASABI_STATUS_MAP, "Wasabi AiR", None),
]


@pytest.mark.parametrize(("conn_type", "seed", "status_map", "service", "cursor_types"), LIST_CASES)
@BAD_INPUT
@given(data=st.data())
def test_list_page(
    env,
    conn_type: str,
    seed: Any,
    status_map: Mapping[str, JobState],
    service: str,
    cursor_types: tuple[type, ...] | None,
    data: st.DataObject,
) -> None:
    hook, answers = _hooks(env, conn_type)
    answers.set(list=(200, data.draw(bodies(seed), label="body")))
    page = outcome(lambda: hook.run(hook._list_page(None)), service=service)  # type: ignore[attr-defined]
    states = outcome(lambda: hook.run(hook._list_states(None)), service=service)  # type: ignore[attr-defined]
    if not isinstance(page, JobStatusError):
        for status in page[0]:
            check_status(status, status_map)
        if cursor_types is not None:
            assert isinstance(page[1], cursor_types)
    if not isinstance(states, JobStatusError):
        for job_id, state, raw in states[0]:
            assert isinstance(job_id, str) and state is expected_state(raw, status_map)


def _submit(conn_type: str, hook: Any) -> Callable[[], str]:
    if conn_type == "daily":
        return lambda: hook.submit_job("transcript", uri="https://media.example/a.mp4")
    if conn_type == "wasabi_air":
        source = {"Endpoint": "https://s3.wasabisys.com", "Bucket": "b", "Region": "r", "ObjectKey": "k"}
        return lambda: hook.submit_job(
            "n", services={"s2t": ""}, source=source, destination={"Bucket": "d", "Region": "r"}
        )
    if conn_type == "symbl":
        return lambda: hook.submit_job(audio_url="https://media.example/a.mp3")
    return lambda: hook.submit_job(
        "asr", url="https://media.example/a.wav", webhook="https://hooks.example/deepaffects"
    )


SUBMIT_SEEDS = {
    "daily": {"id": DAILY_FINISHED["id"]},
    "wasabi_air": {"Job": WASABI_JOB},
    "symbl": SYMBL_SUBMIT,
    "deepaffects": DEEPAFFECTS_SUBMIT,
}
DISPLAY = {"daily": "Daily", "wasabi_air": "Wasabi AiR", "symbl": "Symbl.ai", "deepaffects": "DeepAffects"}


@pytest.mark.parametrize("conn_type", list(HOOKS))
@FEW  # per service: four services make one property of about 200 examples
@given(data=st.data())
def test_submit_response(env, conn_type: str, data: st.DataObject) -> None:
    hook, answers = _hooks(env, conn_type)
    body = data.draw(bodies(SUBMIT_SEEDS[conn_type]), label="body")
    answers.set(submit=(data.draw(st.sampled_from([200, 201, 202]), label="status"), body))
    job_id = outcome(_submit(conn_type, hook), service=DISPLAY[conn_type])
    if not isinstance(job_id, JobStatusError):
        # an id the next call can use: a non-empty string (Symbl: "jobId:conversationId")
        assert isinstance(job_id, str) and job_id.strip(), repr(job_id)


@BAD_INPUT
@given(body=bodies(SYMBL_TOKEN))
@example(body=b'{"accessToken": "t", "expiresIn": 1' + b"0" * 400 + b"}")
def test_symbl_token_response(symbl, body: bytes) -> None:
    hook, answers = symbl
    answers.set(token=(200, body))
    source = hook.token_source  # type: ignore[attr-defined]
    if source._token is not None:
        source.invalidate(source._token)
    token = outcome(source.get, service="Symbl.ai")
    if not isinstance(token, JobStatusError):
        assert isinstance(token, str)


# ------------------------------------------------------------------------------------------------
# Outputs: Daily's access links (and the scheme of every link), Symbl's documents
# ------------------------------------------------------------------------------------------------

FINISHED_IN_DAILY_STORAGE = daily_job_status(DailyJob.model_validate(DAILY_FINISHED))


@BAD_INPUT
@given(body=bodies(ACCESS_LINKS))
def test_daily_access_links_response(daily, body: bytes) -> None:
    hook, answers = daily
    answers.set(links=(200, body))
    outputs = outcome(lambda: hook.get_outputs(FINISHED_IN_DAILY_STORAGE), service="Daily")
    if not isinstance(outputs, JobStatusError):
        for output in outputs:
            assert isinstance(output, JobOutput)
            if isinstance(output.location, DownloadLink) and output.location.url:
                assert link_is_acceptable(output.location.url, allow_http=False), output.location.url


SCHEMES = [
    "https",
    "HTTPS",
    "http",
    "HTTP",
    "file",
    "ftp",
    "data",
    "javascript",
    "gopher",
    "s3",
    "ws",
    "hxxps",
]
HOSTS = [
    "storage.example",
    "127.0.0.1",
    "[::1]",
    "",
    "@evil.example",
    "good.example@evil.example",
    "[",
    "a b",
]


@st.composite
def links(draw: st.DrawFn) -> str:
    scheme = draw(st.sampled_from(SCHEMES))
    separator = draw(st.sampled_from(["://", "://", ":/", ":", ":\\\\", ":///"]))
    host = draw(st.sampled_from(HOSTS))
    path = draw(st.sampled_from(["/out.txt?X-Amz-Signature=abc", "", "/a b", "/\x00", "/../x"]))
    url = f"{scheme}{separator}{host}{path}"
    padding = draw(st.sampled_from(["", " ", "\t", "\n", "\x00"]))
    return draw(st.sampled_from([url, padding + url, url + padding]))


_HOST = re.compile(
    r"^(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*|\d{1,3}(?:\.\d{1,3}){3}|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$"
)


def link_is_acceptable(url: str, *, allow_http: bool) -> bool:
    """The rule, written independently: https (http only when allowed), a host, no user-info,
    nothing but printable non-space ASCII."""
    if not url or any(not (0x21 <= ord(c) <= 0x7E) for c in url):
        return False
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in (("https", "http") if allow_http else ("https",)):
        return False
    netloc = rest.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    return "@" not in netloc and "\\" not in netloc and bool(_HOST.match(netloc))


@pytest.mark.parametrize("allow_http", [False, True])
@BAD_INPUT
@given(url=links())
@example(url="https://storage.example/out.txt?X-Amz-Signature=abc")
@example(url="http://127.0.0.1:9000/out.txt")
@example(url="https://[/out.txt")
@example(url="https:///out.txt")
@example(url=" https://storage.example/out.txt")
@example(url="https://good.example@evil.example/out.txt")
def test_download_links_other_than_https_are_refused(env, allow_http: bool, url: str) -> None:
    hook, answers = _hooks(env, "daily", allow_http_links=allow_http)
    transcript = {**ACCESS_LINKS, "transcription": [{"format": "txt", "link": url}]}
    answers.set(links=(200, encode({**transcript, "summary": None, "soap": None}, False)))
    result = outcome(lambda: hook.get_outputs(FINISHED_IN_DAILY_STORAGE), service="Daily")
    if link_is_acceptable(url, allow_http=allow_http):
        assert not isinstance(result, JobStatusError), result
        assert [o.location.url for o in result if o.name == "transcript"] == [url]
    else:
        assert isinstance(result, MalformedResponseError), (url, result)
        assert "link" in str(result) and "allow_http_links" in str(result)
        assert "X-Amz-Signature=abc" not in str(result)  # the refused link's credential is not quoted


# ------------------------------------------------------------------------------------------------
# Error responses
# ------------------------------------------------------------------------------------------------

STATUS_ERRORS: dict[int, type[JobStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: AuthenticationError,
    404: NotFoundError,
    408: ServiceError,  # retried, and transient for waits (exceptions.error_class_for_status)
    409: BadRequestError,
    413: BadRequestError,
    422: BadRequestError,
    429: RateLimitedError,
    500: ServiceError,
    502: ServiceError,
    503: ServiceError,
    504: ServiceError,
}


@pytest.mark.parametrize("conn_type", list(HOOKS))
@FEW  # per service: four services make one property of about 200 examples
@given(data=st.data())
def test_error_responses(env, conn_type: str, data: st.DataObject) -> None:
    hook, answers = _hooks(env, conn_type)
    status = data.draw(st.sampled_from(sorted(STATUS_ERRORS)), label="status")
    body = data.draw(st.one_of(*(bodies(seed) for seed in ERROR_BODIES)), label="body")
    answers.set(job=(status, body), submit=(status, body))
    if conn_type == "symbl":
        answers.routes["token"] = (status, body)
        source = hook.token_source  # type: ignore[attr-defined]
        if source._token is not None:
            source.invalidate(source._token)
    operation = data.draw(st.sampled_from(["get_job", "submit_job"]), label="operation")
    call = (lambda: hook.get_job("job-1")) if operation == "get_job" else _submit(conn_type, hook)
    error = outcome(call, service=DISPLAY[conn_type], ok_status=False)
    assert isinstance(error, STATUS_ERRORS[status]), f"HTTP {status}: {type(error).__name__}: {error}"
    assert f"HTTP {status}" in str(error)


# ------------------------------------------------------------------------------------------------
# Output names and job ids that try to leave the destination
# ------------------------------------------------------------------------------------------------

ESCAPES = [
    "..",
    "../..",
    "../../etc/passwd",
    "..\\..\\windows",
    "/etc/passwd",
    "\\\\server\\share",
    "C:\\x",
    "C:x",
    "a/../../b",
    "a\x00b",
    "%2e%2e",
    "%2e%2e%2f%2e%2e",
    "..%2f..",
    "\u2025",  # two-dot leader
    "\uff0e\uff0e",  # fullwidth full stops
    "\u2215etc\u2215passwd",  # division slashes
    "\uff0f",  # fullwidth solidus
    ".\u200b.",
    "." * 300,
    "x" * 5000,
    "_manifest.json",
    " ",
    ".",
    "...",
    "a/b",
    "\n",
]
segments = st.one_of(st.sampled_from(ESCAPES), st.text(min_size=1, max_size=40))
formats = st.one_of(
    st.sampled_from(["txt", "json", "../x", ".", "t/x", "..", "v\x00tt", "\u2025"]),
    st.text(min_size=1, max_size=8),
)
_SAFE_KEY = re.compile(r"^[A-Za-z0-9._-]+$")


@BAD_INPUT
@given(
    job_id=segments,
    names=st.lists(st.tuples(segments, formats), min_size=1, max_size=3),
    root=st.sampled_from(["/srv/out", "/srv/out/", "bucket/prefix"]),
)
@example(job_id="..", names=[("transcript", "txt")], root="/srv/out")
@example(job_id="job", names=[("../../etc/passwd", "txt")], root="/srv/out")
@example(job_id="job", names=[("..", "..")], root="/srv/out")
def test_output_keys_stay_inside_the_destination(
    job_id: str, names: list[tuple[str, str]], root: str
) -> None:
    try:
        outputs = [JobOutput(name=n, format=f, location=S3Object(bucket="b", key="k")) for n, f in names]
    except ValueError:
        return  # the model itself refuses it (blank format), so no output with this name exists
    try:
        planned, manifest = plan_outputs("daily", job_id, outputs)
    except InvalidParameterError as exc:
        assert "refused" in str(exc) or "would both be written" in str(exc) or "job_id" in str(exc)
        return
    base = root.rstrip("/")
    for relative in [manifest, *(p.relative_key for p in planned)]:
        parts = relative.split("/")
        assert len(parts) == 3 and parts[0] == "daily"
        assert all(_SAFE_KEY.match(part) and part not in (".", "..") for part in parts), relative
        joined = posixpath.normpath(f"{base}/{relative}")
        assert joined.startswith(base + "/") and joined == f"{base}/{relative}"
    assert len({p.relative_key.lower() for p in planned}) == len(planned)
    assert manifest not in {p.relative_key for p in planned}


@BAD_INPUT
@given(key=st.one_of(st.sampled_from(ESCAPES), st.text(max_size=40)).map(lambda k: k or "k"))
def test_source_keys_that_escape_are_refused(key: str) -> None:
    try:
        accepted = check_source_key(key)
    except InvalidParameterError as exc:
        assert "refused" in str(exc)
        return
    assert accepted == key
    assert not key.startswith(("/", "\\")) and not re.match(r"^[A-Za-z]:", key)
    assert ".." not in re.split(r"[/\\]", key)
    assert not any(ord(c) < 0x20 or ord(c) == 0x7F for c in key)


def test_adversarial_seeds_are_valid_json_documents() -> None:
    """The seeds the mutations start from parse as documented (guards the harness itself)."""
    for seed in (DAILY_FINISHED, WASABI_JOB, SYMBL_JOB, DEEPAFFECTS_DOC, ACCESS_LINKS, WASABI_METADATA):
        assert json.loads(encode(seed, True)) == seed
    assert math.isnan(json.loads(b"NaN"))  # the JSON parser does accept these tokens: keep testing them


# ------------------------------------------------------------------------------------------------
# What the properties found, kept as explicit cases
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("conn_type", list(HOOKS))
@pytest.mark.parametrize("status", [200, 400, 500])
def test_json_nested_too_deep_is_malformed_not_a_recursion_error(env, conn_type: str, status: int) -> None:
    hook, answers = _hooks(env, conn_type)
    answers.set(job=(status, b"[" * 5000))
    error = outcome(lambda: hook.get_job("job-1"), service=DISPLAY[conn_type], ok_status=status == 200)
    assert isinstance(error, MalformedResponseError if status == 200 else JobStatusError)


@pytest.mark.parametrize(
    ("conn_type", "body"),
    [
        ("daily", {"id": ""}),
        ("daily", {"id": " job "}),
        ("wasabi_air", {"Job": {"Id": "\x00"}}),
        ("symbl", {"jobId": "a:b", "conversationId": "c"}),  # would poll job "a"
        ("symbl", {"jobId": "a", "conversationId": ""}),
        ("deepaffects", {"request_id": "\ud800"}),
    ],
)
def test_an_unusable_submitted_id_is_malformed(env, conn_type: str, body: dict[str, Any]) -> None:
    hook, answers = _hooks(env, conn_type)
    answers.set(submit=(200, encode(body, True)))
    error = outcome(_submit(conn_type, hook), service=DISPLAY[conn_type])
    assert isinstance(error, MalformedResponseError) and "unusable" in str(error)


def test_a_translation_rule_broken_by_the_response_is_malformed(env) -> None:
    """The shape validates, yet the metadata names another job: a ValueError escaped the hook."""
    hook, answers = _hooks(env, "wasabi_air")
    answers.set(
        job=(200, encode({**WASABI_JOB, "Status": "completed"}, True)),
        metadata=(200, encode({**WASABI_METADATA, "Id": "someone-else"}, True)),
    )
    status = hook.get_job(WASABI_JOB["Id"])  # the wait is not concerned by the metadata
    assert status.succeeded and status.outputs == []
    with pytest.raises(MalformedResponseError, match="get_outputs.*could not be used: metadata is for job"):
        hook.get_outputs(status)


def test_an_unusable_list_cursor_is_malformed(env) -> None:
    """The last id of a full page becomes the next page's cursor; a lone surrogate cannot go in a URL."""
    hook, answers = _hooks(env, "daily")
    page = {"total_count": 200, "data": [{"id": f"j{i}", "status": "finished"} for i in range(99)]}
    page["data"].append({"id": "\ud800", "status": "finished"})
    answers.set(list=(200, encode(page, True)))
    with pytest.raises(MalformedResponseError, match="list_jobs"):
        list(hook.list_jobs())  # type: ignore[attr-defined]
    with pytest.raises(MalformedResponseError, match="unusable job id"):
        hook.run(hook._list_states(None))  # type: ignore[attr-defined]  # builds no JobStatus: the cursor check


@pytest.mark.parametrize("conn_type", list(HOOKS))
@FEW
@given(
    job_id=st.one_of(
        st.text(max_size=20),
        st.sampled_from(["\ud800", "a\x00b", " ", "../x", "a/b?c#d", "%2e%2e", ".", ".."]),
    )
)
def test_any_job_id_from_a_dag_gives_a_status_or_a_typed_error(env, conn_type: str, job_id: str) -> None:
    hook, answers = _hooks(env, conn_type)
    seed = {
        "daily": DAILY_FINISHED,
        "wasabi_air": WASABI_JOB,
        "symbl": SYMBL_JOB,
        "deepaffects": DEEPAFFECTS_DOC,
    }
    answers.set(job=(200, encode(seed[conn_type], True)), metadata=(200, encode(WASABI_METADATA, True)))
    try:
        hook.get_job(job_id)
    except InvalidParameterError as exc:
        assert "job_id" in str(exc)
        return
    except JobStatusError:
        pass  # e.g. the seed's id differs from the one asked for (DeepAffects checks the echo)
    sent = [r.url.raw_path for r in answers.requests if not r.url.path.endswith("token:generate")]
    try:
        hook.get_job("plain-id")
    except JobStatusError:
        pass  # only the request it sends matters here
    plain = [r.url.raw_path for r in answers.requests if not r.url.path.endswith("token:generate")][-1]
    for raw_path in sent:  # the id stayed one encoded path segment (or a query value)
        path = raw_path.split(b"?", 1)[0]
        assert path.count(b"/") == plain.split(b"?", 1)[0].count(b"/"), raw_path
        assert b"/../" not in path and not path.endswith(b"/..")


def test_a_fractional_symbl_expires_in_gives_a_usable_token(symbl) -> None:
    """Contracts S2: ``expiresIn`` is a number (the official client types it float)."""
    hook, answers = symbl
    source = hook.token_source  # type: ignore[attr-defined]
    source.invalidate(source._valid() or "")  # the module's hook may hold a token already
    answers.set(
        token=(200, json.dumps({"accessToken": "frac-token", "expiresIn": 86399.5}).encode()),
        job=(200, encode(SYMBL_JOB, True)),
    )
    status = hook.get_job(f"{SYMBL_JOB['id']}:6749556955938816")
    assert status.job_id.startswith(SYMBL_JOB["id"])
    job_request = [r for r in answers.requests if "/v1/job/" in r.url.path][-1]
    assert job_request.headers["Authorization"] == "Bearer frac-token"


def test_wasabi_outputs_from_a_cheap_status_take_the_endpoint_from_the_metadata(wasabi) -> None:
    """A `JobStatus` from ``/status`` has no destination: the metadata's region gives the endpoint."""
    hook, answers = wasabi
    answers.set(
        status=(200, encode({"Id": WASABI_JOB["Id"], "Status": "completed", "ErrorCount": 0}, True)),
        metadata=(200, encode(WASABI_METADATA, True)),
    )
    status = hook.get_status(WASABI_JOB["Id"])  # type: ignore[attr-defined]
    [output] = hook.get_outputs(status)
    region = WASABI_METADATA["Destination"]["Region"]
    assert output.location.endpoint_url == f"https://s3.{region}.wasabisys.com"  # type: ignore[union-attr]
    assert output.location.region == region  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "body", [b'{"unrelated": []}', b'{"messages": {}}', b"[1]", b"not json", b'{"topics": []}']
)
def test_a_symbl_document_without_its_top_level_list_is_malformed(symbl, body: bytes) -> None:
    """The description's document table (S7): a wrong document fails loudly, a right one is returned."""
    hook, answers = symbl
    answers.set(job=(200, body))  # the conversation's documents fall to the "job" route
    status = symbl_job_status(SymblJob(id="j", status="completed"), "6749556955938816")
    with pytest.raises(MalformedResponseError, match="the messages document holds no 'messages' list"):
        hook.get_document(status.output("messages"))
    good = b'{"messages": [{"text": "hi"}], "extra": 1}'
    answers.set(job=(200, good))
    assert hook.get_document(status.output("messages")) == good
