"""A small HTTP/1.1 server on asyncio (uvloop when available) with the httptools parser.

Written by hand rather than on an ASGI server because faults need the socket itself: closing a
connection without a response, or sending fewer body bytes than Content-Length promised.
Keep-alive and pipelining are supported; requests on one connection are answered in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
import traceback
from collections import deque
from collections.abc import Callable
from email.utils import formatdate
from http import HTTPStatus

import httptools

from sandbox.wire import Request, Response

READY_PREFIX = "Salesloft sandbox listening on "
_REASONS = {s.value: s.phrase for s in HTTPStatus}


class _Date:
    """The Date header, formatted once per second."""

    def __init__(self) -> None:
        self._second = -1
        self._value = ""

    def get(self) -> str:
        now = int(time.time())
        if now != self._second:
            self._second = now
            self._value = formatdate(now, usegmt=True)
        return self._value


_DATE = _Date()


def encode_head(response: Response, keep_alive: bool, length: int) -> bytes:
    lines = [f"HTTP/1.1 {response.status} {_REASONS.get(response.status, 'Unknown')}"]
    lines.append(f"date: {_DATE.get()}")
    lines.append("server: salesloft-sandbox")
    if response.content_type and response.status != 204:
        lines.append(f"content-type: {response.content_type}")
    if response.status != 204:
        lines.append(f"content-length: {length}")
    for name, value in response.headers:
        lines.append(f"{name}: {value}")
    lines.append("connection: keep-alive" if keep_alive else "connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class HttpProtocol(asyncio.Protocol):
    def __init__(self, handle: Callable, loop: asyncio.AbstractEventLoop):
        self._handle = handle
        self._loop = loop
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._queue: deque[tuple[Request, bool]] = deque()
        self._busy = False
        self._closed = False
        self._peer = ""
        self._url = b""
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []

    # -- asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        self._peer = f"{peer[0]}:{peer[1]}" if peer else ""

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(400)
        except httptools.HttpParserError:
            self._fail(400)

    # -- httptools callbacks ---------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = {}
        self._body = []

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        url = self._url.decode("latin-1").split("#", 1)[0]
        path, _, query = url.partition("?")
        request = Request(
            self._parser.get_method().decode("ascii"),
            path or "/",
            query,
            self._headers,
            b"".join(self._body),
            self._peer,
        )
        self._queue.append((request, bool(self._parser.should_keep_alive())))
        if not self._busy:
            self._busy = True
            self._loop.create_task(self._drain())

    # -- answering ---------------------------------------------------------------------------------

    async def _drain(self) -> None:
        try:
            while self._queue and not self._closed:
                request, keep_alive = self._queue.popleft()
                try:
                    response = await self._handle(request)
                except Exception:
                    traceback.print_exc(file=sys.stderr)
                    response = Response(500, b'{"error":"Internal Server Error"}')
                if self._closed:
                    break
                self._send(response, keep_alive)
                if not keep_alive or response.drop or response.truncate:
                    break
        finally:
            self._busy = False

    def _send(self, response: Response, keep_alive: bool) -> None:
        transport = self._transport
        if transport is None:
            return
        if response.drop:
            self._close()
            return
        body = response.body if response.status != 204 else b""
        head = encode_head(response, keep_alive and not response.truncate, len(body))
        if response.truncate:
            transport.write(head + body[: len(body) // 2])
            self._close()
            return
        if len(body) < 65536:
            transport.write(head + body)
        else:
            transport.write(head)
            transport.write(body)
        if not keep_alive:
            self._close()

    def _fail(self, status: int) -> None:
        if self._transport is not None and not self._closed:
            self._transport.write(encode_head(Response(status), False, 0))
        self._close()

    def _close(self) -> None:
        self._closed = True
        if self._transport is not None:
            self._transport.close()


def url_for(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


async def serve(options, on_ready: Callable[[str], None] | None = None) -> None:
    """Bind, build the data, announce readiness, serve until SIGINT/SIGTERM."""
    from sandbox.app import App
    from sandbox.state import State

    loop = asyncio.get_running_loop()
    holder: dict[str, App] = {}

    async def handle(request: Request) -> Response:
        return await holder["app"].handle(request)

    server = await loop.create_server(
        lambda: HttpProtocol(handle, loop),
        options.host,
        options.port,
        reuse_address=True,
        backlog=2048,
        start_serving=False,
    )
    port = server.sockets[0].getsockname()[1]
    base_url = url_for(options.host, port)
    app = App(State(options, base_url))
    holder["app"] = app
    await server.start_serving()
    background = loop.create_task(app.run_background())

    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    line = READY_PREFIX + base_url
    if on_ready is not None:
        on_ready(line)
    else:
        print(line, flush=True)
    await stop.wait()
    background.cancel()
    server.close()


def run(options, on_ready: Callable[[str], None] | None = None) -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency of uvicorn[standard]
        asyncio.run(serve(options, on_ready))
    else:
        uvloop.run(serve(options, on_ready))
