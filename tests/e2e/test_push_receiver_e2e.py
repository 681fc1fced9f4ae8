"""A real `airflow api-server` mounts the webhook receiver at /jobstatus: it refuses an unsigned
Daily webhook, reads connections the way the api-server can (environment and metadata database),
publishes verified events to Redis, and never writes a webhook token to its log."""

from __future__ import annotations

import json
import time
from importlib.metadata import entry_points
from pathlib import Path

import httpx
import pytest
import redis

from airflow_jobstatus.push.models import CHANNEL, event_key
from tests.e2e.airflow_stack import AirflowStack
from tests.helpers.push import daily_envelope, daily_headers, daily_hmac_secret, webhook_token
from tests.helpers.redis_server import RedisServer, redis_server  # noqa: F401 - fixture

pytestmark = pytest.mark.e2e


def _plugin_env(tmp_path: Path) -> dict[str, str]:
    """Load the plugin through its entry point when this checkout is what is installed; otherwise
    (an older editable install without the entry point) through a plugins folder."""
    if any(ep.value.startswith("airflow_jobstatus.") for ep in entry_points(group="airflow.plugins")):
        return {}
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "jobstatus_push_plugin.py").write_text(
        "from airflow_jobstatus.push.plugin import JobStatusPushPlugin  # noqa: F401\n"
    )
    return {"AIRFLOW__CORE__PLUGINS_FOLDER": str(folder)}


def test_api_server_mounts_the_receiver(tmp_path: Path, redis_server: RedisServer) -> None:  # noqa: F811
    daily_secret = daily_hmac_secret()
    symbl_token = webhook_token("e2e-symbl")
    dags = tmp_path / "dags"
    dags.mkdir()
    env = {
        **_plugin_env(tmp_path),
        "AIRFLOW__JOBSTATUS__REDIS_URL": redis_server.url,
        "AIRFLOW_CONN_PUSH_E2E_DAILY": json.dumps(
            {"conn_type": "daily", "password": "k", "extra": {"webhook_secret": daily_secret}}
        ),
    }
    stack = AirflowStack(tmp_path / "stack", dags_folder=dags, env=env)
    stack.migrate()
    watcher = redis.Redis.from_url(redis_server.url)
    pubsub = watcher.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(CHANNEL)
    try:
        stack.start_component("api-server", stack.healthy, timeout=180)
        client = httpx.Client(base_url=f"{stack.url}/jobstatus", timeout=30, trust_env=False)

        # unsigned Daily event: refused, nothing published
        body = daily_envelope("e2e-job-1")
        refused = client.post("/webhooks/daily/push_e2e_daily", content=body)
        assert refused.status_code == 401 and refused.json() == {"detail": "rejected"}

        # signed with the secret of a connection from the environment: accepted and published
        accepted = client.post(
            "/webhooks/daily/push_e2e_daily", content=body, headers=daily_headers(daily_secret, body)
        )
        assert accepted.status_code == 200, accepted.text
        assert watcher.get(event_key("daily", "push_e2e_daily", "e2e-job-1")) is not None

        # a connection stored in the metadata database (through the REST API)
        stack.api(
            "POST",
            "/connections",
            json={
                "connection_id": "push_e2e_symbl",
                "conn_type": "symbl",
                "login": "app",
                "password": "secret-e2e",
                "extra": json.dumps({"webhook_token": symbl_token}),
            },
        )
        done = {"jobId": "e2e-symbl-1", "status": "completed"}
        wrong = client.post("/webhooks/symbl/push_e2e_symbl", params={"token": "guess"}, json=done)
        unknown = client.post("/webhooks/symbl/no_such_conn", params={"token": symbl_token}, json=done)
        assert (
            (wrong.status_code, wrong.content)
            == (unknown.status_code, unknown.content)
            == (
                401,
                b'{"detail":"rejected"}',
            )
        )
        right = client.post("/webhooks/symbl/push_e2e_symbl", params={"token": symbl_token}, json=done)
        assert right.status_code == 200, right.text

        published: list[str] = []
        deadline = time.monotonic() + 10
        while len(published) < 2 and time.monotonic() < deadline:
            message = pubsub.get_message(timeout=1)
            if message is not None:
                published.append(json.loads(message["data"])["job_id"])
        assert published == ["e2e-job-1", "e2e-symbl-1"]

        # Airflow's own API is untouched, and the token never reached the api-server's log
        assert stack.healthy()
        log = stack.processes["api-server"].log_path.read_text(errors="replace")
        assert "/jobstatus/webhooks/symbl/push_e2e_symbl" in log  # the access log saw the requests
        assert symbl_token not in log and daily_secret not in log
    finally:
        pubsub.close()
        watcher.close()
        stack.stop()
