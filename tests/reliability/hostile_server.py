"""A hostile HTTP/1.1 server at the socket level, for the tests of what the engine does with bad servers.

It parses requests the way a lenient real server does (a line break ends a header; a blank line ends the
head; what follows a body is the next request), so a header injected or a request smuggled by a client
shows up as such in ``requests``. Each answer is raw bytes written by a *responder*: well-formed ones, and
bombs, floods, trickles, loops and bad encodings (the functions at the end of this module).
"""

from __future__ import annotations

import gzip
import json
import socket
import socketserver
import ssl
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass
class SeenRequest:
    """One request as the server parsed it off the socket."""

    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes
    connection: int
    at: float = field(default_factory=time.monotonic)  # when its head and body had arrived

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)


class Peer:
    """The client's connection, as a responder sees it: write bytes (or stop) at its own pace."""

    def __init__(self, sock: socket.socket, server: HostileServer) -> None:
        self.sock = sock
        self.server = server

    def send(self, data: bytes) -> bool:
        """Write ``data``; False once the client has gone (a responder then stops)."""
        if self.server.closing.is_set():
            return False
        try:
            self.sock.sendall(data)
            return True
        except OSError:
            return False


Responder = Callable[[SeenRequest, Peer], bool | None]  # returns False to close the connection


class _Listener(socketserver.ThreadingTCPServer):
    daemon_threads = True
    request_queue_size = 128  # many clients connecting at once get no SYN retry (a second's delay)


@dataclass
class HostileServer:
    """``with HostileServer(responder) as server:`` serves on ``server.url`` until the block ends."""

    responder: Responder
    tls: ssl.SSLContext | None = None  # serve HTTPS with this server-side context
    requests: list[SeenRequest] = field(default_factory=list)
    raw: bytearray = field(default_factory=bytearray)  # every byte received, on every connection
    closing: threading.Event = field(default_factory=threading.Event)
    connections: int = 0

    def __post_init__(self) -> None:
        hostile = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                hostile.connections += 1
                sock = self.request
                if hostile.tls is not None:
                    try:
                        sock = hostile.tls.wrap_socket(sock, server_side=True)
                    except (ssl.SSLError, OSError):
                        return  # a client refusing our certificate
                hostile._serve(sock, hostile.connections)

        self._server = _Listener(("127.0.0.1", 0), Handler)
        scheme = "https" if self.tls is not None else "http"
        self.url = f"{scheme}://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> HostileServer:
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.closing.set()
        self._server.shutdown()
        self._server.server_close()

    def _serve(self, sock: socket.socket, number: int) -> None:
        buffer = bytearray()
        while not self.closing.is_set():
            request = self._read_request(sock, buffer, number)
            if request is None:
                return
            self.requests.append(request)
            if self.responder(request, Peer(sock, self)) is False:
                return

    def _read_request(self, sock: socket.socket, buffer: bytearray, number: int) -> SeenRequest | None:
        while b"\r\n\r\n" not in buffer and b"\n\n" not in buffer:
            if not self._fill(sock, buffer):
                return None
        end = buffer.find(b"\r\n\r\n")
        head, rest = (buffer[:end], buffer[end + 4 :]) if end != -1 else buffer.split(b"\n\n", 1)
        lines = bytes(head).decode("latin-1").replace("\r\n", "\n").split("\n")
        request_line = lines[0].split(" ")
        method, target = request_line[0], request_line[1] if len(request_line) > 1 else ""
        headers = [(n.strip(), v.strip()) for n, _, v in (line.partition(":") for line in lines[1:])]
        buffer[:] = rest
        length = int(next((v for k, v in headers if k.lower() == "content-length"), "0") or 0)
        while len(buffer) < length:
            if not self._fill(sock, buffer):
                return None
        body = bytes(buffer[:length])
        del buffer[:length]
        return SeenRequest(method, target, headers, body, number)

    def _fill(self, sock: socket.socket, buffer: bytearray) -> bool:
        try:
            data = sock.recv(65536)
        except OSError:
            return False
        self.raw += data
        buffer += data
        return bool(data)

    # -- what tests ask of it

    def methods(self) -> list[str]:
        return [r.method for r in self.requests]


def answer(
    status: int = 200, body: Any = None, headers: dict[str, str] | None = None, raw_body: bytes | None = None
) -> bytes:
    """A well-formed response: a JSON body (or raw bytes) with its Content-Length."""
    data = raw_body if raw_body is not None else json.dumps({} if body is None else body).encode()
    lines = [f"HTTP/1.1 {status} X", "Content-Type: application/json", f"Content-Length: {len(data)}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + data


def always(response: bytes) -> Responder:
    """The same bytes to every request, on a kept-alive connection."""

    def respond(_request: SeenRequest, peer: Peer) -> bool:
        return peer.send(response)

    return respond


def gzip_bomb(inflated: int) -> bytes:
    """A small gzip body that inflates to ``inflated`` bytes of zeros (1 GB -> ~1 MB)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = b"\0" * (1 << 20)
    parts = [compressor.compress(block) for _ in range(inflated >> 20)]
    parts.append(compressor.flush())
    data = b"".join(parts)
    assert len(data) < inflated // 100
    return answer(raw_body=data, headers={"Content-Encoding": "gzip"})


def small_gzip(body: Any) -> bytes:
    return answer(raw_body=gzip.compress(json.dumps(body).encode()), headers={"Content-Encoding": "gzip"})


def chunked_flood(chunk: int = 1 << 16) -> Responder:
    """A chunked body that never ends (until the client hangs up)."""

    def respond(_request: SeenRequest, peer: Peer) -> bool:
        peer.send(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
        piece = b"%x\r\n" % chunk + b" " * chunk + b"\r\n"
        while peer.send(piece):
            pass
        return False

    return respond


def huge_length(length: int) -> Responder:
    """A Content-Length far beyond any sane body, and bytes as long as the client reads."""

    def respond(_request: SeenRequest, peer: Peer) -> bool:
        peer.send(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % length)
        while peer.send(b" " * 65536):
            pass
        return False

    return respond


def trickle(interval: float, response: bytes | None = None, for_seconds: float = 60) -> Responder:
    """One byte every ``interval`` seconds: each read gets something, the whole answer takes forever."""

    def respond(_request: SeenRequest, peer: Peer) -> bool:
        data = response or answer(body={"data": [{"id": 1, "padding": "x" * 4000}]})
        deadline = time.monotonic() + for_seconds
        for byte in _bytes(data):
            if time.monotonic() > deadline or not peer.send(byte):
                return False
            time.sleep(interval)
        return False

    return respond


def _bytes(data: bytes) -> Iterator[bytes]:
    for i in range(len(data)):
        yield data[i : i + 1]


def continue_flood(interval: float = 0.05) -> Responder:
    """``100 Continue`` interim answers, one after another, never a final one."""

    def respond(_request: SeenRequest, peer: Peer) -> bool:
        while peer.send(b"HTTP/1.1 100 Continue\r\n\r\n"):
            time.sleep(interval)
        return False

    return respond


def header_flood(count: int) -> bytes:
    """A response head with ``count`` headers."""
    headers = "".join(f"X-Flood-{i}: {'v' * 40}\r\n" for i in range(count))
    return f"HTTP/1.1 200 OK\r\n{headers}Content-Length: 2\r\n\r\n{{}}".encode()


def from_handler(handler: Callable[[httpx.Request], httpx.Response]) -> Responder:
    """An API written as an ``httpx.MockTransport`` handler, served over a real socket: the same handler
    tests every sender. A handler raising ``httpx.TransportError`` makes the server hang up unanswered."""

    def respond(seen: SeenRequest, peer: Peer) -> bool:
        request = httpx.Request(
            seen.method, f"http://{seen.header('host')}{seen.target}", headers=seen.headers, content=seen.body
        )
        try:
            response = handler(request)
        except httpx.TransportError:
            return False
        data = response.read()
        skip = ("content-length", "transfer-encoding", "connection")
        lines = [f"HTTP/1.1 {response.status_code} {response.reason_phrase}"]
        lines += [f"{k}: {v}" for k, v in response.headers.multi_items() if k.lower() not in skip]
        lines.append(f"Content-Length: {len(data)}")
        return peer.send(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + data)

    return respond
