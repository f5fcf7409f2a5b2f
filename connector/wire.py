"""A lean HTTP/1.1 client: keep-alive sockets per thread, requests written and responses parsed directly.

httpx's client stack costs ~300 us of CPU per request on this kind of machine and ``http.client``
~75 us (most of it in the email-package header parser); this costs ~30 us. For a sink that sends
one request per record that difference is most of the engine's CPU, so the ApiClient sends through
this by default. It speaks httpx's language at its edges (responses with ``httpx.Response``'s
attributes, httpx's exception classes for transport failures) so that retries, auth and pacing
are the same whichever stack runs.
``http_transport: httpx`` in the config switches to httpx's own stack (HTTP/2 where offered).
"""

from __future__ import annotations

import socket
import ssl
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
import orjson

from connector.secrets import REDACTOR

MAX_LINE = 65536


class NoResponse(httpx.RemoteProtocolError):
    """Not a byte of a response came back: on a kept-alive connection, the server had closed it."""


@dataclass
class WireRequest:
    """What the wire sends; ``url`` parses lazily (only error and redirect paths look at it)."""

    method: str
    target: str  # absolute URL with its query
    headers: dict[str, str]
    content: bytes | None

    @cached_property
    def url(self) -> httpx.URL:
        return httpx.URL(self.target)


def prepare(
    method: str, url: str, params: object, headers: dict[str, str], content: bytes | None, form_body: object
) -> WireRequest:
    if params:
        url = f"{url}{'&' if '?' in url else '?'}{urlencode(params, doseq=True)}"  # type: ignore[arg-type]
    if form_body is not None and content is None:
        content = urlencode(form_body, doseq=True).encode()  # type: ignore[arg-type]
        headers = {**headers, "Content-Type": "application/x-www-form-urlencoded"}
    return WireRequest(method, url, headers, content)


class _Connection:
    def __init__(
        self,
        scheme: str,
        host: str,
        port: int,
        timeout: float,
        connect_timeout: float,
        context: ssl.SSLContext,
    ) -> None:
        try:
            sock = socket.create_connection((host, port), timeout=connect_timeout)
            if scheme == "https":
                sock = context.wrap_socket(sock, server_hostname=host)
        except TimeoutError as exc:
            raise httpx.ConnectTimeout(f"connecting to {host}:{port} timed out") from exc
        except OSError as exc:
            raise httpx.ConnectError(f"cannot connect to {host}:{port}: {exc}") from exc
        sock.settimeout(timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = sock
        self.rfile = sock.makefile("rb")
        self.host_header = host if port in (80, 443) else f"{host}:{port}"

    def close(self) -> None:
        try:
            self.rfile.close()
            self.sock.close()
        except OSError:
            pass

    def exchange(
        self, method: str, target: str, headers: dict[str, str], body: bytes | None
    ) -> tuple[int, WireHeaders, bytes, bool]:
        lines = [f"{method} {target} HTTP/1.1", f"Host: {self.host_header}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        if body is not None or method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(body or b'')}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        try:
            self.sock.sendall(head + body if body else head)
        except (BrokenPipeError, ConnectionResetError) as exc:
            raise NoResponse(f"connection closed while sending: {exc}") from exc
        while True:
            status, response_headers = self._read_head()
            if not 100 <= status < 200:
                break
        fields = _fold(response_headers)
        will_close = fields.get("connection", "").lower() == "close"
        if method == "HEAD" or status in (204, 304):
            content = b""
        elif "chunked" in fields.get("transfer-encoding", "").lower():
            content = self._read_chunked()
        elif "content-length" in fields:
            length = int(fields["content-length"])
            content = self.rfile.read(length)
            if len(content) < length:
                raise httpx.RemoteProtocolError(f"incomplete response body: {len(content)} of {length} bytes")
        else:
            content, will_close = self.rfile.read(), True
        return status, WireHeaders(response_headers, fields), content, will_close

    def _read_head(self) -> tuple[int, list[tuple[str, str]]]:
        try:
            line = self.rfile.readline(MAX_LINE)
        except ConnectionResetError as exc:
            raise NoResponse(f"connection reset before a response: {exc}") from exc
        if not line:
            raise NoResponse("server closed the connection without a response")
        parts = line.split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/"):
            raise httpx.RemoteProtocolError(f"malformed status line {REDACTOR.shorten(repr(line[:400]), 80)}")
        status = int(parts[1])
        headers = []
        while True:
            line = self.rfile.readline(MAX_LINE)
            if line in (b"\r\n", b"\n"):
                return status, headers
            if not line:
                raise httpx.RemoteProtocolError("server closed the connection in the response headers")
            name, _, value = line.decode("latin-1").partition(":")
            headers.append((name.strip(), value.strip()))

    def _read_chunked(self) -> bytes:
        chunks = []
        while True:
            size_line = self.rfile.readline(MAX_LINE)
            if not size_line:
                raise httpx.RemoteProtocolError("server closed the connection in a chunked body")
            size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline(MAX_LINE) not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            chunk = self.rfile.read(size + 2)
            if len(chunk) < size + 2:
                raise httpx.RemoteProtocolError("incomplete chunk in response body")
            chunks.append(chunk[:size])


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


class WireSender:
    """One keep-alive connection per thread and origin."""

    def __init__(self, timeout: float, connect_timeout: float) -> None:
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self._local = threading.local()
        self._ssl = ssl.create_default_context()
        self._all: list[_Connection] = []
        self._lock = threading.Lock()

    def _connections(self) -> dict[str, _Connection]:
        conns = getattr(self._local, "conns", None)
        if conns is None:
            conns = self._local.conns = {}
        return conns

    def send(self, request: WireRequest) -> WireResponse:
        key, target = _split_target(request.target)
        path = target.partition("?")[0]
        conns = self._connections()
        conn = conns.get(key)
        if conn is None:
            scheme, host, port = _origin_parts(key)
            conn = _Connection(scheme, host, port, self.timeout, self.connect_timeout, self._ssl)
            with self._lock:
                self._all.append(conn)
            conns[key] = conn
        try:
            status, headers, content, will_close = conn.exchange(
                request.method, target, request.headers, request.content
            )
        except httpx.TransportError:
            self._drop(conns, key, conn)
            raise  # retries are the ApiClient's: it counts and paces every attempt
        except TimeoutError as exc:
            self._drop(conns, key, conn)
            raise httpx.ReadTimeout(f"{request.method} {path}: timed out") from exc
        except (OSError, ValueError) as exc:
            self._drop(conns, key, conn)
            raise httpx.ReadError(f"{request.method} {path}: {type(exc).__name__}: {exc}") from exc
        if will_close:
            self._drop(conns, key, conn)
        return _response(status, headers, content, request)

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


def _fold(pairs: list[tuple[str, str]]) -> dict[str, str]:
    """Lower-cased names; a repeated header's values joined by ", " (as httpx.Headers.get gives them)."""
    fields: dict[str, str] = {}
    for name, value in pairs:
        key = name.lower()
        fields[key] = f"{fields[key]}, {value}" if key in fields else value
    return fields


class WireHeaders:
    """A response's headers: case-insensitive lookups like ``httpx.Headers``, built from what the wire
    parsed anyway (an ``httpx.Headers`` costs ~2 us to build and ~0.5 us per lookup)."""

    __slots__ = ("_pairs", "_fields")

    def __init__(self, pairs: list[tuple[str, str]], fields: dict[str, str] | None = None) -> None:
        self._pairs = pairs
        self._fields = _fold(pairs) if fields is None else fields

    def get(self, name: str, default: Any = None) -> Any:
        return self._fields.get(name.lower(), default)

    def __getitem__(self, name: str) -> str:
        return self._fields[name.lower()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._fields

    def get_list(self, name: str) -> list[str]:
        key = name.lower()
        return [value for header, value in self._pairs if header.lower() == key]

    def multi_items(self) -> list[tuple[str, str]]:
        return list(self._pairs)

    def items(self) -> list[tuple[str, str]]:
        return list(self._fields.items())

    def keys(self) -> list[str]:
        return list(self._fields)

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def __repr__(self) -> str:
        return f"WireHeaders({self._pairs!r})"


class WireResponse:
    """The part of ``httpx.Response`` the engine reads, without its construction cost (~10 us -> ~2 us).

    Whole bodies only: the wire reads a response completely before returning it.
    """

    __slots__ = ("status_code", "headers", "content", "request", "extensions")

    def __init__(self, status: int, headers: WireHeaders, content: bytes, request: WireRequest) -> None:
        self.status_code = status
        self.headers = headers
        self.content = content
        self.request = request
        self.extensions: dict = {}

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code < 300

    @property
    def is_redirect(self) -> bool:
        return self.status_code in REDIRECTS and "location" in self.headers

    @property
    def reason_phrase(self) -> str:
        return httpx.codes.get_reason_phrase(self.status_code)

    @property
    def encoding(self) -> str:
        charset = self.headers.get("content-type", "").partition("charset=")[2]
        return charset.split(";")[0].strip().strip('"') or "utf-8"

    @property
    def text(self) -> str:
        try:
            return self.content.decode(self.encoding, errors="replace")
        except LookupError:  # an unknown charset
            return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return orjson.loads(self.content)

    @property
    def links(self) -> dict[str, dict[str, str]]:
        return httpx.Response(self.status_code, headers=self.headers.multi_items()).links

    def read(self) -> bytes:
        return self.content

    def close(self) -> None:
        pass

    def __repr__(self) -> str:
        return f"<WireResponse [{self.status_code}]>"


REDIRECTS = frozenset((301, 302, 303, 307, 308))


def _response(status: int, headers: WireHeaders, content: bytes, request: WireRequest) -> WireResponse:
    encoding = headers.get("content-encoding", "").lower()
    if encoding in ("gzip", "deflate") and content:  # decoded; the headers stay as sent, as httpx keeps them
        try:
            content = zlib.decompress(content, 16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS)
        except zlib.error as exc:
            raise httpx.DecodingError(f"bad {encoding} response body: {exc}") from exc
    return WireResponse(status, headers, content, request)
