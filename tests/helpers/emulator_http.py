"""Plain-HTTP helpers for the emulator's contract tests: a loopback webhook endpoint, and the
statuses a job shows in turn as a client polls it."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx


class Endpoint:
    """A loopback webhook endpoint answering from a script of status codes (then 200)."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.script: list[int] = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                endpoint.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                status = endpoint.script.pop(0) if endpoint.script else 200
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def bodies(self) -> list[Any]:
        return [json.loads(body) for _, body in self.received]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> Endpoint:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def statuses_until(
    client: httpx.Client,
    url: str,
    terminal: set[str],
    *,
    key: str = "status",
    timeout: float = 10,
    **request: Any,
) -> tuple[list[str], dict[str, Any]]:
    """GET ``url`` until its ``key`` is one of ``terminal``: the statuses seen in turn, the last body."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = client.get(url, **request)
        assert r.status_code == 200, r.text
        body = r.json()
        if not seen or seen[-1] != body[key]:
            seen.append(body[key])
        if body[key] in terminal:
            return seen, body
        time.sleep(0.04)
    raise AssertionError(f"no terminal status within {timeout}s: {seen}")
