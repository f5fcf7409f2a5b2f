"""A lean HTTP/1.1 sender: keep-alive sockets per thread, requests written and responses parsed directly.

httpx's client stack costs ~300 us of CPU per request on this kind of machine and ``http.client``
~75 us (most of it in the email-package header parser); this costs ~30 us. That matters only for
sinks sending one request per record well above an API's usual rate limit, so it is opt-in
(``http_transport: wire``): it speaks HTTP/1.1 only and goes through no proxy (a run asking for it
while a proxy is set for its API stops with a clear error). It honours ``SSL_CERT_FILE`` and
``SSL_CERT_DIR`` as httpx does, and the limits of ``connector.sender``: the whole attempt within
``request_timeout``, answers within ``max_response_bytes``, response heads within 100 KiB.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
import urllib.request
from functools import lru_cache
from urllib.parse import urlsplit

import httpx

from connector.errors import ConnectorError
from connector.secrets import REDACTOR
from connector.sender import (
    MAX_HEAD_BYTES,
    Limits,
    Request,
    Response,
    ResponseHeaders,
    check_length,
    decoded,
    fold_headers,
    too_large,
)


class NoResponse(httpx.RemoteProtocolError):
    """Not a byte of a response came back: on a kept-alive connection, the server had closed it."""


class _Connection:
    """One socket and what has been read from it but not used yet; every read is bounded by a deadline."""

    def __init__(self, scheme: str, host: str, port: int, limits: Limits, context: ssl.SSLContext) -> None:
        try:
            sock = socket.create_connection((host, port), timeout=limits.connect_timeout)
            if scheme == "https":
                sock = context.wrap_socket(sock, server_hostname=host)
        except TimeoutError as exc:
            raise httpx.ConnectTimeout(f"connecting to {host}:{port} timed out") from exc
        except OSError as exc:
            raise httpx.ConnectError(f"cannot connect to {host}:{port}: {exc}") from exc
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = sock
        self.limits = limits
        self.buffer = bytearray()
        self.deadline = 0.0
        self.host_header = host if port in (80, 443) else f"{host}:{port}"

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    def _recv(self) -> bytes:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise httpx.ReadTimeout(f"no complete answer within request_timeout ({self.limits.timeout:g}s)")
        self.sock.settimeout(left)
        try:
            return self.sock.recv(65536)
        except TimeoutError as exc:
            raise httpx.ReadTimeout(
                f"no complete answer within request_timeout ({self.limits.timeout:g}s)"
            ) from exc

    def _readline(self, limit: int) -> bytes:
        """A line with its ending; b"" when the server closed first. Longer than ``limit``: an error."""
        start = 0
        while True:
            end = self.buffer.find(b"\n", start)
            if end != -1:
                line = bytes(self.buffer[: end + 1])
                del self.buffer[: end + 1]
                return line
            if len(self.buffer) > limit:
                raise httpx.RemoteProtocolError(f"a response line longer than {limit:,} bytes")
            start = len(self.buffer)
            data = self._recv()
            if not data:
                line = bytes(self.buffer)
                self.buffer.clear()
                return line
            self.buffer += data

    def _read(self, size: int) -> bytes:
        while len(self.buffer) < size:
            data = self._recv()
            if not data:
                break
            self.buffer += data
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data

    def exchange(self, request: Request, target: str) -> tuple[int, ResponseHeaders, bytes, bool]:
        self.deadline = time.monotonic() + self.limits.timeout
        method, body = request.method, request.content
        lines = [f"{method} {target} HTTP/1.1", f"Host: {self.host_header}"]
        lines += [f"{name}: {value}" for name, value in request.headers.items()]
        if body is not None or method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(body or b'')}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")
        self.sock.settimeout(self.limits.timeout)  # sendall: a total, not per chunk
        try:
            self.sock.sendall(head + body if body else head)
        except (BrokenPipeError, ConnectionResetError) as exc:
            raise NoResponse(f"connection closed while sending: {exc}") from exc
        except TimeoutError as exc:
            raise httpx.WriteTimeout(
                f"sending took longer than request_timeout ({self.limits.timeout:g}s)"
            ) from exc
        while True:  # interim 1xx answers until the final one, all within the deadline
            status, response_headers = self._read_head()
            if not 100 <= status < 200:
                break
        fields = fold_headers(response_headers)
        headers = ResponseHeaders(response_headers, fields)
        limit = self.limits.max_response_bytes
        will_close = fields.get("connection", "").lower() == "close"
        if method == "HEAD" or status in (204, 304):
            content = b""
        elif "chunked" in fields.get("transfer-encoding", "").lower():
            content = self._read_chunked(request, limit)
        elif "content-length" in fields:
            if (
                not fields["content-length"].strip().isdigit()
            ):  # negative, repeated ("10, 20") or not a number
                raise httpx.RemoteProtocolError(f"bad Content-Length {fields['content-length'][:40]!r}")
            check_length(request, headers, limit)
            length = int(fields["content-length"])
            content = self._read(length)
            if len(content) < length:
                raise httpx.RemoteProtocolError(f"incomplete response body: {len(content)} of {length} bytes")
        else:
            content, will_close = self._read_to_close(request, limit), True
        return status, headers, decoded(request, headers, content, limit), will_close

    def _read_head(self) -> tuple[int, list[tuple[str, str]]]:
        try:
            line = self._readline(MAX_HEAD_BYTES)
        except ConnectionResetError as exc:
            raise NoResponse(f"connection reset before a response: {exc}") from exc
        if not line:
            raise NoResponse("server closed the connection without a response")
        parts = line.split(None, 2)
        if (
            len(parts) < 2
            or not parts[0].startswith(b"HTTP/1.")
            or not (parts[1].isdigit() and len(parts[1]) == 3)
        ):
            raise httpx.RemoteProtocolError(f"malformed status line {REDACTOR.shorten(repr(line[:400]), 80)}")
        status = int(parts[1])
        headers: list[tuple[str, str]] = []
        size = len(line)
        while True:
            line = self._readline(MAX_HEAD_BYTES)
            size += len(line)
            if size > MAX_HEAD_BYTES:
                raise httpx.RemoteProtocolError(f"response headers larger than {MAX_HEAD_BYTES:,} bytes")
            if line in (b"\r\n", b"\n"):
                return status, headers
            if not line.endswith(b"\n"):
                raise httpx.RemoteProtocolError("server closed the connection in the response headers")
            name, _, value = line.decode("latin-1").partition(":")
            headers.append((name.strip(), value.strip()))

    def _read_chunked(self, request: Request, limit: int) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            size_line = self._readline(1024)
            if not size_line.endswith(b"\n"):
                raise httpx.RemoteProtocolError("server closed the connection in a chunked body")
            digits = size_line.split(b";", 1)[0].strip()
            if not digits or len(digits) > 16 or digits.strip(b"0123456789abcdefABCDEF"):
                raise httpx.RemoteProtocolError(f"bad chunk size line {size_line[:40]!r}")
            size = int(digits, 16)
            if size == 0:
                trailer = 0
                while (line := self._readline(MAX_HEAD_BYTES)) not in (b"\r\n", b"\n", b""):
                    trailer += len(line)
                    if trailer > MAX_HEAD_BYTES:
                        raise httpx.RemoteProtocolError("chunked trailer too large")
                return b"".join(chunks)
            total += size
            if total > limit:
                raise too_large(request, limit, "chunked body")
            chunk = self._read(size + 2)
            if len(chunk) < size + 2:
                raise httpx.RemoteProtocolError("incomplete chunk in response body")
            chunks.append(chunk[:size])

    def _read_to_close(self, request: Request, limit: int) -> bytes:
        content = bytearray(self.buffer)
        self.buffer.clear()
        while len(content) <= limit:
            data = self._recv()
            if not data:
                return bytes(content)
            content += data
        raise too_large(request, limit, "body")


def _split_target(url: str) -> tuple[str, str]:
    """An absolute URL -> (its origin, the request target: path and query), without a full urlsplit."""
    url = url.partition("#")[0]
    authority = url.find("://") + 3
    ends = [i for i in (url.find("/", authority), url.find("?", authority)) if i != -1]
    if not ends:
        return url, "/"
    start = min(ends)
    target = url[start:]
    return url[:start], target if target.startswith("/") else f"/{target}"


@lru_cache(maxsize=64)
def _origin_parts(origin: str) -> tuple[str, str, int]:
    parts = urlsplit(origin)
    return parts.scheme, parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)


def refuse_proxied(base_url: str) -> None:
    """The lean sender goes through no proxy: a run that would bypass one the environment sets stops."""
    parts = urlsplit(base_url)
    proxies = urllib.request.getproxies_environment()
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    if proxy and not urllib.request.proxy_bypass_environment(parts.netloc, proxies):  # type: ignore[attr-defined]
        raise ConnectorError(
            f"http_transport: wire goes through no proxy, and the environment sets one for {parts.scheme} "
            f"({parts.scheme.upper()}_PROXY): use http_transport: httpx (the default), which honours it"
        )


class WireSender:
    """One keep-alive connection per thread and origin."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self._local = threading.local()
        self._ssl = httpx.create_ssl_context(trust_env=True)  # SSL_CERT_FILE / SSL_CERT_DIR, as httpx
        self._all: list[_Connection] = []
        self._lock = threading.Lock()

    def _connections(self) -> dict[str, _Connection]:
        conns = getattr(self._local, "conns", None)
        if conns is None:
            conns = self._local.conns = {}
        return conns

    def send(self, request: Request) -> Response:
        key, target = _split_target(request.target)
        conns = self._connections()
        conn = conns.get(key)
        if conn is None:
            scheme, host, port = _origin_parts(key)
            conn = _Connection(scheme, host, port, self.limits, self._ssl)
            with self._lock:
                self._all.append(conn)
            conns[key] = conn
        path = target.partition("?")[0]
        try:
            status, headers, content, will_close = conn.exchange(request, target)
        except (httpx.TransportError, ConnectorError):
            self._drop(conns, key, conn)
            raise  # retries are the ApiClient's: it counts and paces every attempt
        except TimeoutError as exc:
            self._drop(conns, key, conn)
            raise httpx.ReadTimeout(f"{request.method} {path}: timed out") from exc
        except (OSError, ValueError) as exc:
            self._drop(conns, key, conn)
            raise httpx.ReadError(f"{request.method} {path}: {type(exc).__name__}: {exc}") from exc
        except BaseException:
            self._drop(conns, key, conn)
            raise
        if will_close:
            self._drop(conns, key, conn)
        return Response(status, headers, content, request)

    def _drop(self, conns: dict, key: str, conn: _Connection) -> None:
        conns.pop(key, None)
        conn.close()
        with self._lock:
            if conn in self._all:
                self._all.remove(conn)

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
