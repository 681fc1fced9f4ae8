"""Fault injection, switched on and off at run time, as a plain httpx client sees it; admin API."""

from __future__ import annotations

import email.utils
import json
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from jobstatus_emulator.server import EmulatorError, EmulatorServer

pytestmark = pytest.mark.integration


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(trust_env=False, timeout=10) as c:
        yield c


DailyJob = tuple[str, dict[str, str]]  # (status URL, headers)


def daily_body(uri: str, preset: str = "transcript") -> dict[str, object]:
    return {
        "preset": preset,
        "inParams": {"sourceType": "uri", "uri": uri},
        "outParams": {"s3Config": {"s3KeyTemplate": "output"}},
    }


def submit_daily(
    emulator: EmulatorServer, client: httpx.Client, credential: str, body: dict[str, object]
) -> tuple[str, dict[str, str]]:
    """(status URL, headers) of a Daily job submitted with a plain client."""
    base = emulator.service_url("daily")
    headers = {"Authorization": f"Bearer {credential}"}
    job_id = client.post(f"{base}/batch-processor", headers=headers, json=body).json()["id"]
    return f"{base}/batch-processor/{job_id}", headers


def delete_and_served(
    emulator: EmulatorServer, client: httpx.Client, fid: str, url: str, headers: dict[str, str]
) -> None:
    """Once the rule is deleted, the same request is served again."""
    emulator.delete_fault(fid)
    assert client.get(url, headers=headers).status_code == 200


def wait_finished(client: httpx.Client, url: str, headers: dict[str, str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while client.get(url, headers=headers).json()["status"] != "finished":
        assert time.monotonic() < deadline, "job did not finish"
        time.sleep(0.05)


def read_cut_short(resp: httpx.Response) -> tuple[int, bytes]:
    """(declared Content-Length, bytes received) of a response whose body ends too soon."""
    declared = int(resp.headers["content-length"])
    got = b""
    with pytest.raises(httpx.RemoteProtocolError):
        for chunk in resp.iter_raw():
            got += chunk
    return declared, got


@pytest.fixture
def daily_job(emulator: EmulatorServer, client: httpx.Client, jobstatus_credential: str) -> DailyJob:
    """A fresh long-running Daily job."""
    return submit_daily(
        emulator, client, jobstatus_credential, daily_body("https://m.example/a.mp4?emu_duration=60")
    )


def test_status_fault(emulator: EmulatorServer, client: httpx.Client, daily_job: DailyJob) -> None:
    url, headers = daily_job
    fid = emulator.add_fault(service="daily", kind="status", status=503, count=2)
    for _ in range(2):
        r = client.get(url, headers=headers)
        assert r.status_code == 503 and r.json()["error"] == "server-error"
    assert client.get(url, headers=headers).status_code == 200
    assert [f["hits"] for f in emulator.faults()] == [2]
    emulator.delete_fault(fid)
    # without count: on until deleted
    fid = emulator.add_fault(service="*", kind="status", status=500, route="/batch-processor")
    assert client.get(url, headers=headers).status_code == 500
    assert client.get(url, headers=headers).status_code == 500
    delete_and_served(emulator, client, fid, url, headers)


@pytest.mark.parametrize("form", ["seconds", "http-date"])
def test_rate_limit_fault(
    emulator: EmulatorServer, client: httpx.Client, daily_job: DailyJob, form: str
) -> None:
    url, headers = daily_job
    fid = emulator.add_fault(service="daily", kind="rate_limit", retry_after=7, retry_after_form=form)
    r = client.get(url, headers=headers)
    assert r.status_code == 429
    assert r.json()["error"] == "rate-limit-error" and r.json()["info"]
    if form == "seconds":
        assert r.headers["retry-after"] == "7"
    else:
        when = email.utils.parsedate_to_datetime(r.headers["retry-after"]).timestamp()
        assert 4 <= when - time.time() <= 9
    delete_and_served(emulator, client, fid, url, headers)


def test_rate_limit_with_rps_token_bucket(
    emulator: EmulatorServer, client: httpx.Client, daily_job: DailyJob
) -> None:
    url, headers = daily_job
    emulator.add_fault(service="daily", kind="rate_limit", rps=2, retry_after=1)
    codes = [client.get(url, headers=headers).status_code for _ in range(8)]
    assert codes[:2] == [200, 200] and 429 in codes
    time.sleep(1.1)
    assert client.get(url, headers=headers).status_code == 200
    # another credential has its own bucket
    other = {"Authorization": "Bearer other-key"}
    assert client.get(url.rsplit("/", 1)[0], headers=other).status_code == 200


@pytest.mark.parametrize("service", ["wasabi", "symbl", "deepaffects"])
def test_rate_limit_bodies_per_service(emulator: EmulatorServer, client: httpx.Client, service: str) -> None:
    emulator.add_fault(service=service, kind="rate_limit", retry_after=2)
    url = {
        "wasabi": emulator.service_url("wasabi") + "/jobs",
        "symbl": emulator.service_url("symbl") + "/v1/job/x",
        "deepaffects": emulator.service_url("deepaffects")
        + "/transaction/generic/api/v1/async/status?apikey=k&request_id=x",
    }[service]
    r = client.get(url, headers={"x-amz-access-key": "k", "x-amz-secret-key": "s"})
    assert r.status_code == 429 and r.headers["retry-after"] == "2"
    body = r.json()
    if service == "wasabi":
        assert body["ErrorCode"] == "TOO_MANY_REQUESTS"
    elif service == "symbl":
        assert body["statusCode"] == 429
    else:
        assert body["fault"]["detail"]["errorcode"] == "policies.ratelimit.SpikeArrestViolation"


def test_drop_fault_closes_connection_without_response(
    emulator: EmulatorServer, client: httpx.Client, daily_job: DailyJob
) -> None:
    url, headers = daily_job
    fid = emulator.add_fault(service="daily", kind="drop", method="GET")
    for _ in range(2):
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError, httpx.ConnectError)):
            client.get(url, headers=headers)
    delete_and_served(emulator, client, fid, url, headers)
    stats = emulator.stats(service="daily")["requests"]
    assert any(row["status"] == 0 and row["count"] == 2 for row in stats)


def test_slow_fault(emulator: EmulatorServer, client: httpx.Client, daily_job: DailyJob) -> None:
    url, headers = daily_job
    emulator.add_fault(service="daily", kind="slow", delay=0.6, count=1)
    start = time.monotonic()
    assert client.get(url, headers=headers).status_code == 200
    assert time.monotonic() - start >= 0.6
    start = time.monotonic()
    assert client.get(url, headers=headers).status_code == 200
    assert time.monotonic() - start < 0.5
    with pytest.raises(httpx.ReadTimeout):
        emulator.add_fault(service="daily", kind="slow", delay=2, count=1)
        client.get(url, headers=headers, timeout=0.3)


def test_malformed_fault(emulator: EmulatorServer, client: httpx.Client, daily_job: DailyJob) -> None:
    url, headers = daily_job
    fid = emulator.add_fault(service="daily", kind="malformed")
    r = client.get(url, headers=headers)
    assert r.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        r.json()
    emulator.delete_fault(fid)
    assert client.get(url, headers=headers).json()["status"] == "submitted"


def test_truncated_fault(emulator: EmulatorServer, client: httpx.Client, daily_job: DailyJob) -> None:
    url, headers = daily_job
    fid = emulator.add_fault(service="daily", kind="truncated")
    with pytest.raises(httpx.RemoteProtocolError):
        client.get(url, headers=headers)
    # the raw bytes: headers promise more than the body carries
    with client.stream("GET", url, headers=headers) as resp:
        declared, got = read_cut_short(resp)
        assert 0 < len(got) < declared
    delete_and_served(emulator, client, fid, url, headers)


def test_unknown_status_fault(emulator: EmulatorServer, client: httpx.Client, daily_job: DailyJob) -> None:
    url, headers = daily_job
    fid = emulator.add_fault(service="daily", kind="unknown_status", value="paused")
    body = client.get(url, headers=headers).json()
    assert body["status"] == "paused" and body["id"] in url
    listed = client.get(url.rsplit("/", 1)[0], headers=headers).json()
    assert {j["status"] for j in listed["data"]} == {"paused"}
    emulator.delete_fault(fid)
    assert client.get(url, headers=headers).json()["status"] == "submitted"


def test_vanish_fault(
    emulator: EmulatorServer, client: httpx.Client, daily_job: DailyJob, jobstatus_credential: str
) -> None:
    url, headers = daily_job
    job_id = url.rsplit("/", 1)[1]
    fid = emulator.add_fault(service="daily", kind="vanish", job_id=job_id)
    r = client.get(url, headers=headers)
    assert r.status_code == 404 and r.json()["error"] == "not-found"
    # the list still works: vanish only hits requests about a job
    assert client.get(url.rsplit("/", 1)[0], headers=headers).status_code == 200
    delete_and_served(emulator, client, fid, url, headers)

    wasabi = emulator.service_url("wasabi")
    wh = {"x-amz-access-key": jobstatus_credential, "x-amz-secret-key": "s"}
    job = {
        "Name": "n",
        "Services": {"ocr": ""},
        "Destination": {"Bucket": "b", "Region": "r"},
        "Source": {"Endpoint": "e", "Bucket": "b", "Region": "r", "ObjectKey": "k?emu_duration=60"},
    }
    wid = client.post(f"{wasabi}/jobs", headers=wh, json=job).json()["Job"]["Id"]
    emulator.add_fault(service="wasabi", kind="vanish")
    r = client.get(f"{wasabi}/jobs/{wid}/status", headers=wh)
    assert r.status_code == 404 and r.json() == {"ErrorCode": "NOT_FOUND"}


def test_revoke_fault(
    emulator: EmulatorServer, client: httpx.Client, daily_job: DailyJob, jobstatus_credential: str
) -> None:
    url, headers = daily_job
    fid = emulator.add_fault(service="daily", kind="revoke", credential=jobstatus_credential, count=1)
    r = client.get(url, headers=headers)
    assert r.status_code == 401 and r.json()["error"] == "authentication-error"
    # from now on, although the rule's count is used up
    assert client.get(url, headers=headers).status_code == 401
    assert (
        client.get(url.rsplit("/", 1)[0], headers={"Authorization": "Bearer someone-else"}).status_code == 200
    )
    delete_and_served(emulator, client, fid, url, headers)


def test_revoke_symbl_app(emulator: EmulatorServer, client: httpx.Client, jobstatus_credential: str) -> None:
    base = emulator.service_url("symbl")
    token_body = {"type": "application", "appId": jobstatus_credential, "appSecret": "s"}
    token = client.post(f"{base}/oauth2/token:generate", json=token_body).json()["accessToken"]
    headers = {"Authorization": f"Bearer {token}"}
    emulator.add_fault(service="symbl", kind="revoke", credential=jobstatus_credential)
    r = client.get(f"{base}/v1/job/x", headers=headers)
    assert r.status_code == 401 and r.json() == {"message": "Token validation failed for provided token."}
    assert client.post(f"{base}/oauth2/token:generate", json=token_body).status_code == 401
    emulator.clear_faults()
    assert client.get(f"{base}/v1/job/x", headers=headers).status_code == 404


def test_probability_faults_repeat_with_the_seed(
    emulator: EmulatorServer, client: httpx.Client, jobstatus_credential: str
) -> None:
    url = emulator.service_url("daily") + "/batch-processor"
    headers = {"Authorization": f"Bearer {jobstatus_credential}"}

    def run() -> list[int]:
        emulator.add_fault(service="daily", kind="status", status=502, probability=0.5)
        return [client.get(url, headers=headers).status_code for _ in range(30)]

    first = run()
    assert set(first) == {200, 502}
    emulator.reset()
    assert run() == first
    emulator.reset()
    emulator.configure(seed=1234)
    assert run() != first


def test_credential_and_method_scoping(
    emulator: EmulatorServer, client: httpx.Client, daily_job: DailyJob, jobstatus_credential: str
) -> None:
    url, headers = daily_job
    emulator.add_fault(
        service="daily", kind="status", status=500, credential=jobstatus_credential, method="POST"
    )
    assert client.get(url, headers=headers).status_code == 200
    body = daily_body("https://a/b")
    assert client.post(url.rsplit("/", 1)[0], headers=headers, json=body).status_code == 500
    assert (
        client.post(url.rsplit("/", 1)[0], headers={"Authorization": "Bearer another"}, json=body).status_code
        == 200
    )


def test_invalid_fault_rules_are_rejected(emulator: EmulatorServer) -> None:
    for rule in (
        {"kind": "explode"},
        {"kind": "status", "service": "zoom"},
        {"kind": "status", "probability": 2},
        {"kind": "status", "count": -1},
    ):
        with pytest.raises(EmulatorError, match="400"):
            emulator.add_fault(**rule)


def test_startup_faults_survive_reset(jobstatus_s3: object, client: httpx.Client) -> None:
    rule = {"service": "wasabi", "kind": "status", "status": 503, "route": "/jobs"}
    with EmulatorServer(faults=[rule], job_duration=1) as emu:
        h = {"x-amz-access-key": "k", "x-amz-secret-key": "s"}
        assert client.get(emu.service_url("wasabi") + "/jobs", headers=h).status_code == 503
        emu.clear_faults()
        assert client.get(emu.service_url("wasabi") + "/jobs", headers=h).status_code == 200
        emu.reset()
        assert client.get(emu.service_url("wasabi") + "/jobs", headers=h).status_code == 503
        assert emu.get_config()["job_duration"] == 1


def test_stats_and_jobs_admin(
    emulator: EmulatorServer, client: httpx.Client, jobstatus_credential: str
) -> None:
    body = daily_body("https://a/b.mp4")
    url, headers = submit_daily(emulator, client, jobstatus_credential, body)
    job_id = url.rsplit("/", 1)[1]
    for _ in range(3):
        client.get(url, headers=headers)
    client.post(
        emulator.service_url("symbl") + "/oauth2/token:generate",
        json={"type": "application", "appId": "app-" + jobstatus_credential, "appSecret": "very-secret"},
    )
    stats = emulator.stats()
    rows = {
        (r["service"], r["method"], r["route"], r["credential"], r["status"]): r["count"]
        for r in stats["requests"]
    }
    assert rows[("daily", "GET", "/batch-processor/{id}", jobstatus_credential, 200)] == 3
    assert rows[("daily", "POST", "/batch-processor", jobstatus_credential, 200)] == 1
    assert rows[("symbl", "POST", "/oauth2/token:generate", "app-" + jobstatus_credential, 200)] == 1
    # the session's emulator may still see a request a previous test's background task sent after
    # the reset: count this test's credentials, and check that the total sums every row
    ours = (jobstatus_credential, "app-" + jobstatus_credential)
    assert sum(r["count"] for r in stats["requests"] if r["credential"] in ours) == 5
    assert stats["total"] == sum(r["count"] for r in stats["requests"])
    assert "very-secret" not in json.dumps(stats)
    assert emulator.stats(service="symbl")["total"] == 1
    assert emulator.stats(credential=jobstatus_credential)["total"] == 4

    jobs = emulator.jobs(service="daily", credential=jobstatus_credential)
    assert [j["job_id"] for j in jobs] == [job_id]
    view = jobs[0]
    assert {
        "service",
        "job_id",
        "credential",
        "request",
        "timeline",
        "outcome",
        "duration",
        "outputs",
    } <= set(view)
    assert view["request"]["body"] == body and view["outcome"] == "succeed" and view["duration"] == 1.0
    assert view["timeline"][0]["status"] == "submitted"

    patched = emulator.patch_job("daily", job_id, duration=0, outcome="fail")
    assert patched["outcome"] == "fail" and patched["status"] == "error"
    assert client.get(url, headers=headers).json()["status"] == "error"
    patched = emulator.patch_job("daily", job_id, outcome="succeed")
    wait_finished(client, url, headers, timeout=5)
    with pytest.raises(EmulatorError, match="404"):
        emulator.job("daily", str(uuid.uuid4()))
    with pytest.raises(EmulatorError, match="400"):
        emulator.patch_job("daily", job_id, outcome="cancel")


def test_config_patch_and_reset(emulator: EmulatorServer) -> None:
    config = emulator.get_config()
    assert {
        "job_duration",
        "symbl_token_lifetime",
        "symbl_max_concurrent_jobs",
        "link_ttl",
        "seed",
        "daily_bucket",
    } <= set(config)
    assert config["symbl_max_concurrent_jobs"] == 50 and config["daily_bucket"] is None
    new = emulator.configure(job_duration=0.25, daily_bucket={"bucket": "b"})
    assert new["job_duration"] == 0.25 and new["daily_bucket"]["bucket"] == "b"
    with pytest.raises(EmulatorError, match="400"):
        emulator.configure(job_duration=-1)
    with pytest.raises(EmulatorError, match="400"):
        emulator.configure(nonsense=1)
    emulator.reset()
    assert emulator.get_config() == config


# -- Daily-storage downloads go through the fault engine ------------------------------------------
@pytest.fixture
def summary_link(
    emulator: EmulatorServer, client: httpx.Client, jobstatus_credential: str
) -> tuple[str, bytes]:
    """(download link, its bytes) of a finished Daily job's summary kept in Daily's own storage."""
    body = daily_body("https://m.example/a.mp4?emu_duration=0.2", preset="summarize")
    url, headers = submit_daily(emulator, client, jobstatus_credential, body)
    wait_finished(client, url, headers, timeout=10)
    link = client.get(f"{url}/access-link", headers=headers).json()["summary"]["link"]
    assert link.startswith(emulator.url + "/_storage/daily/")
    content = client.get(link).content
    assert content
    return link, content


def test_api_rules_never_touch_downloads(
    emulator: EmulatorServer, client: httpx.Client, summary_link: tuple[str, bytes], jobstatus_credential: str
) -> None:
    link, content = summary_link
    emulator.add_fault(service="daily", kind="status", status=500)  # no route: Daily's API only
    emulator.add_fault(service="*", kind="drop")
    emulator.add_fault(service="daily", kind="vanish", route="/_storage", credential=jobstatus_credential)
    r = client.get(link)
    assert r.status_code == 200 and r.content == content
    assert [f["hits"] for f in emulator.faults()] == [0, 0, 0]


@pytest.mark.parametrize(
    ("rule", "status", "code"),
    [
        ({"kind": "status", "status": 503}, 503, "InternalError"),
        ({"kind": "vanish"}, 404, "NoSuchKey"),
        ({"kind": "rate_limit", "retry_after": 3}, 503, "SlowDown"),
    ],
    ids=["status", "vanish", "rate_limit"],
)
def test_download_error_faults_answer_s3_xml(
    emulator: EmulatorServer,
    client: httpx.Client,
    summary_link: tuple[str, bytes],
    rule: dict[str, object],
    status: int,
    code: str,
) -> None:
    link, content = summary_link
    emulator.add_fault(service="daily", route="/_storage/daily/", count=1, **rule)
    r = client.get(link)
    assert r.status_code == status and f"<Code>{code}</Code>" in r.text
    assert r.headers["content-type"] == "application/xml"
    if rule["kind"] == "rate_limit":
        assert r.headers["retry-after"] == "3"
    again = client.get(link)  # count=1: the next download is served
    assert again.status_code == 200 and again.content == content
    rows = [
        row
        for row in emulator.stats(service="daily")["requests"]
        if row["route"] == "/_storage/daily/{token}"
    ]
    assert {(row["status"], row["count"]) for row in rows} >= {(status, 1)}


def test_download_drop_truncated_malformed_and_slow(
    emulator: EmulatorServer, client: httpx.Client, summary_link: tuple[str, bytes]
) -> None:
    link, content = summary_link
    emulator.add_fault(service="daily", route="/_storage", kind="drop", count=1)
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        client.get(link)
    assert client.get(link).content == content

    emulator.add_fault(service="daily", route="/_storage", kind="truncated", count=1)
    with client.stream("GET", link) as resp:
        assert resp.status_code == 200
        declared, got = read_cut_short(resp)
    assert declared == len(content) and 0 < len(got) < declared and content.startswith(got)

    emulator.add_fault(service="daily", route="/_storage", kind="malformed", count=1, method="GET")
    bad = client.get(link)
    assert bad.status_code == 200 and bad.content != content

    emulator.add_fault(service="daily", route="/_storage", kind="slow", delay=0.5, count=1)
    start = time.monotonic()
    assert client.get(link).content == content
    assert time.monotonic() - start >= 0.5

    statuses = [
        r["status"] for r in emulator.requests(service="daily") if r["route"] == "/_storage/daily/{token}"
    ]
    assert statuses.count(0) == 1  # the dropped download
    assert all(f["remaining"] == 0 for f in emulator.faults())


def test_request_log_keeps_arrival_times(
    emulator: EmulatorServer, client: httpx.Client, daily_job: DailyJob, jobstatus_credential: str
) -> None:
    url, headers = daily_job
    emulator.add_fault(service="daily", kind="slow", delay=0.6, count=1)
    sent = time.time()
    client.get(url, headers=headers)  # arrives now, answered 0.6 s later
    client.get(url, headers=headers)
    other = {"Authorization": "Bearer someone-else"}
    client.get(emulator.service_url("daily") + "/batch-processor", headers=other)
    rows = emulator.requests(service="daily", credential=jobstatus_credential, since=sent)
    assert [(r["method"], r["route"], r["status"]) for r in rows] == [
        ("GET", "/batch-processor/{id}", 200)
    ] * 2
    first, second = rows[0]["at"], rows[1]["at"]
    assert sent <= first < sent + 0.3  # logged on arrival, not after the delay
    assert second - first >= 0.55
    # since filters, credential filters, reset empties
    assert emulator.requests(service="daily", credential=jobstatus_credential, since=second + 0.001) == []
    assert len(emulator.requests(credential="someone-else")) == 1
    raw = emulator.admin("GET", "requests")
    assert raw["total"] == len(raw["requests"]) >= 4 and raw["dropped"] == 0
    with pytest.raises(EmulatorError, match="400"):
        emulator.admin("GET", "requests", params={"since": "yesterday"})
    emulator.reset()
    assert emulator.admin("GET", "requests")["total"] == 0
