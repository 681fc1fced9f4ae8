"""A tiny HTTP/1.1 server on 127.0.0.1 that answers from a script, for HTTP-core tests.

It runs its own event loop in a thread, speaks keep-alive, records every request with the
connection it came on, and can reset a connection instead of answering. It can also stream a large
body (with a Content-Length, or chunked without one) and count how much of it the client took, and
serve HTTPS with a given ``ssl.SSLContext``.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import threading
import time
from collections import deque
from dataclasses import dataclass, field


@dataclass
class Reply:
    status: int = 200
    body: bytes | dict | list = b'{"ok": true}'
    headers: dict[str, str] = field(default_factory=dict)
    reset: bool = False
    delay: float = 0.0
    stream: int = 0
    """Instead of ``body``: stream this many bytes, in 64 KiB writes, until done or disconnected."""
    chunked: bool = False
    """Stream with ``Transfer-Encoding: chunked`` (no Content-Length)."""
    declared_length: int | None = None
    """Content-Length to announce for a stream (default: ``stream``)."""

    def stream_head(self) -> bytes:
        head = [f"HTTP/1.1 {self.status} X", "Content-Type: application/json"]
        if self.chunked:
            head.append("Transfer-Encoding: chunked")
        else:
            head.append(
                f"Content-Length: {self.declared_length if self.declared_length is not None else self.stream}"
            )
        head += [f"{k}: {v}" for k, v in self.headers.items()]
        return ("\r\n".join(head) + "\r\n\r\n").encode()

    def encode(self) -> bytes:
        body = self.body if isinstance(self.body, bytes) else json.dumps(self.body).encode()
        head = [f"HTTP/1.1 {self.status} X", f"Content-Length: {len(body)}", "Content-Type: application/json"]
        head += [f"{k}: {v}" for k, v in self.headers.items()]
        return ("\r\n".join(head) + "\r\n\r\n").encode() + body


@dataclass
class Seen:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes
    connection: int
    at: float


STREAM_CHUNK = 64 * 1024


class ScriptedServer:
    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self.ssl_context = ssl_context
        self.streamed = 0
        """Body bytes of streamed replies the client accepted (written and drained)."""
        self.stream_ended = threading.Event()
        """Set when a streamed reply ends: sent in full or cut off by the client."""
        self.script: deque[Reply] = deque()
        self.default = Reply()
        self.seen: list[Seen] = []
        self._connections = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.port = 0

    def __enter__(self) -> ScriptedServer:
        self._thread.start()
        self._ready.wait(5)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    async def _shutdown(self) -> None:
        self._server.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    @property
    def url(self) -> str:
        scheme = "https" if self.ssl_context is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    def add(self, *replies: Reply) -> None:
        self.script.extend(replies)

    def connections_used(self) -> int:
        return len({s.connection for s in self.seen})

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=self.ssl_context)
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._connections += 1
        conn = self._connections
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        k, v = line.split(":", 1)
                        headers[k.strip().lower()] = v.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0") or 0))
                self.seen.append(Seen(method, target, headers, body, conn, time.monotonic()))
                reply = self.script.popleft() if self.script else self.default
                if reply.delay:
                    await asyncio.sleep(reply.delay)
                if reply.reset:
                    writer.transport.abort()
                    return
                if reply.stream:
                    await self._stream(reply, writer)
                    return
                writer.write(reply.encode())
                await writer.drain()
        except (asyncio.CancelledError, ConnectionError, ssl.SSLError):
            return
        finally:
            writer.transport.abort()

    async def _stream(self, reply: Reply, writer: asyncio.StreamWriter) -> None:
        """Write a large body until it is complete or the client goes away; count what was taken."""
        data = b"x" * STREAM_CHUNK
        try:
            writer.write(reply.stream_head())
            remaining = reply.stream
            while remaining > 0:
                piece = data[: min(STREAM_CHUNK, remaining)]
                writer.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n" if reply.chunked else piece)
                await writer.drain()
                self.streamed += len(piece)
                remaining -= len(piece)
            if reply.chunked:
                writer.write(b"0\r\n\r\n")
                await writer.drain()
        except (ConnectionError, ssl.SSLError, OSError):
            pass  # the client closed the connection: that is what a size limit should do
        finally:
            self.stream_ended.set()
