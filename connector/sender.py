"""The HTTP seam: one request type, one response type, and the ``Sender`` interface both stacks implement.

``ApiClient`` (auth, budget, retries, redirects) sends every request through a ``Sender``: ``HttpxSender``
(httpx's stack, HTTP/2 where offered, proxies and CA settings from the environment; the default) or the
lean ``WireSender`` of ``connector/wire.py``. Whichever runs, callers get the same ``Response``, and the
same limits hold: a whole attempt ends after ``request_timeout``; an answer larger than
``max_response_bytes`` raw or decompressed is not read further.

Requests are checked here before any byte is sent: a header value or request target is written to the
socket as it is, and a line break in it would end the header (or the request) early, letting a record
value inject headers or smuggle a second request.
"""

from __future__ import annotations

import re
import threading
import time
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Protocol
from urllib.parse import quote, urlencode

import httpcore
import httpx
import orjson

from connector.errors import InvalidRequestError, ResponseTooLarge

# RFC 9110 5.1: a field name is a token; 5.5: a field value is visible ASCII, spaces and tabs (obs-text,
# bytes >= 0x80, is refused: the stacks would encode it differently, and no API needs it).
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_FIELD_VALUE = re.compile(r"[\t\x20-\x7e]*")
_TARGET_BAD = re.compile(r"[\x00-\x20\x7f]")  # spaces and control characters: never part of a URL
_PRINTABLE_ASCII = "".join(chr(c) for c in range(0x21, 0x7F))
_NAMES = {"\r": "a carriage return (CR)", "\n": "a line feed (LF)", "\0": "a NUL byte", " ": "a space"}

MIB = 1024 * 1024
DEFAULT_MAX_RESPONSE_BYTES = 64 * MIB
MAX_HEAD_BYTES = 100 * 1024  # a response's status line and headers, as httpx's own stack allows
REDIRECTS = frozenset((301, 302, 303, 307, 308))


def _first_bad(text: str, allowed: re.Pattern[str]) -> str:
    bad = next((c for c in text if not allowed.fullmatch(c)), "")
    return _NAMES.get(bad) or f"the character {bad!r}"


def request_url(method: str, url: str) -> str:
    """The URL to send: refused if it holds a space or a control character, non-ASCII percent-encoded."""
    if not _TOKEN.fullmatch(method):
        raise InvalidRequestError(f"method {method!r} is not an HTTP token: refused before sending")
    found = _TARGET_BAD.search(url)
    if found:
        what = _NAMES.get(found.group(), f"the control character {found.group()!r}")
        raise InvalidRequestError(f"request URL {url[:200]!r} contains {what}: refused before sending")
    return url if url.isascii() else quote(url, safe=_PRINTABLE_ASCII)


# Headers that frame the message or the connection are the stack's to write: one set by a template or a
# setting (a Content-Length that is not the body's, a Transfer-Encoding) would make the server read the
# request differently from what was sent: a second request smuggled in the body.
STACK_HEADERS = frozenset(
    ("host", "content-length", "transfer-encoding", "connection", "keep-alive", "proxy-connection", "te")
    + ("trailer", "upgrade")
)


def header_problem(name: str, value: str) -> str | None:
    """What makes this header unfit to send, said of it (``is not an HTTP token``, ``its value contains a
    line feed (LF)``); None when it is fine."""
    if name.lower() in STACK_HEADERS:
        return "is written by the HTTP stack, not by a template or setting"
    if not _TOKEN.fullmatch(name):
        return f"is not an HTTP token (its name contains {_first_bad(name, _TOKEN)})"
    if not _FIELD_VALUE.fullmatch(value):
        return f"has a value that contains {_first_bad(value, _FIELD_VALUE)}"
    return None


def check_headers(headers: Mapping[str, str]) -> None:
    """Refuse header names that are not tokens or that frame the message, and values with line breaks,
    NUL or non-ASCII characters (a line break in a header would inject headers or a second request)."""
    for name, value in headers.items():
        problem = header_problem(name, value)
        if problem is not None:
            raise InvalidRequestError(f"header {name!r} {problem}: refused before sending")


@dataclass(frozen=True)
class Limits:
    """What one attempt may take: ``timeout`` seconds in all (connecting, sending, every byte of the
    answer, however slowly it comes), ``connect_timeout`` of them to connect, ``max_response_bytes``
    of body (raw, and again decompressed)."""

    timeout: float
    connect_timeout: float
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES


@dataclass
class Request:
    """What a sender sends; ``url`` parses lazily (only error and redirect paths look at it)."""

    method: str
    target: str  # absolute URL with its query
    headers: dict[str, str]
    content: bytes | None

    @cached_property
    def url(self) -> httpx.URL:
        return httpx.URL(self.target)


def _query_value(value: Any) -> str:
    """As httpx writes query and form values (``true``, not ``True``; nothing for None)."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    return "" if value is None else str(value)


def _encode(values: Mapping[str, Any]) -> str:
    pairs = []
    for key, value in values.items():
        items = value if isinstance(value, (list, tuple)) else [value]
        pairs += [(str(key), _query_value(item)) for item in items]
    return urlencode(pairs)


def _merged(headers: Mapping[str, str]) -> dict[str, str]:
    """One entry per header name, whatever its case; a later one wins (credentials are added last: a
    template's ``authorization`` cannot ride along beside them)."""
    merged: dict[str, str] = {}
    spelled: dict[str, str] = {}
    for name, value in headers.items():
        key = name.lower()
        if key in spelled:
            del merged[spelled[key]]
        spelled[key] = name
        merged[name] = value
    return merged


def build_request(
    method: str,
    url: str,
    params: Mapping[str, Any] | None,
    headers: Mapping[str, str],
    content: bytes | None,
    form_body: Mapping[str, Any] | None,
) -> Request:
    """A checked request: query params and form bodies encoded, headers and URL refused if unsafe."""
    url = request_url(method, url)
    if params:
        url = f"{url}{'&' if '?' in url else '?'}{_encode(params)}"
    headers = _merged(headers)
    if form_body is not None and content is None:
        content = _encode(form_body).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    check_headers(headers)
    return Request(method, url, headers, content)


def fold_headers(pairs: list[tuple[str, str]]) -> dict[str, str]:
    """Lower-cased names; a repeated header's values joined by ", " (as httpx.Headers.get gives them)."""
    fields: dict[str, str] = {}
    for name, value in pairs:
        key = name.lower()
        fields[key] = f"{fields[key]}, {value}" if key in fields else value
    return fields


class ResponseHeaders:
    """A response's headers: case-insensitive lookups like ``httpx.Headers``, built from what the sender
    parsed anyway (an ``httpx.Headers`` costs ~2 us to build and ~0.5 us per lookup)."""

    __slots__ = ("_pairs", "_fields")

    def __init__(self, pairs: list[tuple[str, str]], fields: dict[str, str] | None = None) -> None:
        self._pairs = pairs
        self._fields = fold_headers(pairs) if fields is None else fields

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
        return f"ResponseHeaders({self._pairs!r})"


class Response:
    """An answer, read whole and decoded, whichever stack fetched it (``httpx.Response``'s vocabulary)."""

    __slots__ = ("status_code", "headers", "content", "request", "extensions")

    def __init__(self, status: int, headers: ResponseHeaders, content: bytes, request: Request) -> None:
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
        links = httpx.Response(self.status_code, headers=self.headers.multi_items()).links
        return {str(rel): link for rel, link in links.items()}

    def __repr__(self) -> str:
        return f"<Response [{self.status_code}]>"


def too_large(request: Request, limit: int, what: str) -> ResponseTooLarge:
    return ResponseTooLarge(
        f"{request.method} {request.url.path}: the answer's {what} is larger than max_response_bytes "
        f"({limit:,} bytes): not read further"
    )


def check_length(request: Request, headers: ResponseHeaders, limit: int) -> None:
    """Refuse an answer whose Content-Length already says it is over the limit, before reading it."""
    length = headers.get("content-length")
    if length is not None and length.strip().isdigit() and int(length) > limit:
        raise too_large(request, limit, f"Content-Length ({int(length):,})")


def decoded(request: Request, headers: ResponseHeaders, content: bytes, limit: int) -> bytes:
    """The body with its gzip/deflate content-coding removed, inflating at most ``limit`` bytes (a bomb of
    1 MB that inflates to 1 GB stops at the limit). The headers stay as sent, as httpx keeps them."""
    coding = headers.get("content-encoding", "").strip().lower()
    if coding not in ("gzip", "x-gzip", "deflate") or not content:
        return content
    wbits = 16 + zlib.MAX_WBITS if coding != "deflate" else zlib.MAX_WBITS
    inflater = zlib.decompressobj(wbits)
    try:
        try:
            out = inflater.decompress(content, limit + 1)
        except zlib.error:
            if coding != "deflate":
                raise
            inflater = zlib.decompressobj(-zlib.MAX_WBITS)  # raw deflate, as some servers send it
            out = inflater.decompress(content, limit + 1)
    except zlib.error as exc:  # a cut or corrupt answer: retried as any other broken answer
        raise httpx.RemoteProtocolError(f"bad {coding} response body: {exc}") from exc
    if len(out) > limit:
        raise too_large(request, limit, "decompressed body")
    return out


class Sender(Protocol):
    """One HTTP stack: sends a checked request and reads its whole answer within the limits."""

    limits: Limits

    def send(self, request: Request) -> Response:
        """One attempt; transport failures raise ``httpx.TransportError`` subclasses (the client retries)."""
        ...

    def close(self) -> None: ...


# -- httpx's stack, with the whole-attempt deadline enforced under it


_attempt = threading.local()  # .deadline: monotonic time the current thread's attempt must end by


def _left(timeout: float | None, error: type[Exception]) -> float | None:
    deadline = getattr(_attempt, "deadline", None)
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise error("the attempt's request_timeout ran out")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    """httpcore's socket stream, each read and write bounded by what is left of the attempt: httpx's own
    timeouts bound one read each, so a server trickling a byte at a time would never time out."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        inner = self._inner.start_tls(ssl_context, server_hostname, _left(timeout, httpcore.ConnectTimeout))
        return _DeadlineStream(inner)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _DeadlineBackend(httpcore.SyncBackend):
    def connect_tcp(self, host: str, port: int, timeout: float | None = None, **kwargs: Any) -> Any:  # type: ignore[override]
        stream = super().connect_tcp(host, port, _left(timeout, httpcore.ConnectTimeout), **kwargs)
        return _DeadlineStream(stream)

    def connect_unix_socket(self, path: str, timeout: float | None = None, **kwargs: Any) -> Any:  # type: ignore[override]
        stream = super().connect_unix_socket(path, _left(timeout, httpcore.ConnectTimeout), **kwargs)
        return _DeadlineStream(stream)


def _deadline_transport(**kwargs: Any) -> httpx.HTTPTransport:
    transport = httpx.HTTPTransport(**kwargs)
    pool = transport._pool  # httpcore's pool: its connections are opened through this backend
    if not hasattr(pool, "_network_backend"):
        raise RuntimeError("httpcore changed: cannot bound a whole attempt by request_timeout")
    pool._network_backend = _DeadlineBackend()
    return transport


def httpx_client(
    limits: Limits, max_connections: int, transport: httpx.BaseTransport | None = None
) -> httpx.Client:
    """httpx's client as the engine uses it: HTTP/2 where offered, proxies (``HTTPS_PROXY``, ``HTTP_PROXY``,
    ``ALL_PROXY``, ``NO_PROXY``) and CA settings (``SSL_CERT_FILE``, ``SSL_CERT_DIR``) from the environment,
    as httpx does by default, and every connection under the whole-attempt deadline."""
    pool = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
    mounts: dict[str, httpx.BaseTransport | None] = {}
    if transport is None:
        transport = _deadline_transport(http2=True, limits=pool)
        for pattern, proxy in httpx._utils.get_environment_proxies().items():
            mounts[pattern] = (
                None if proxy is None else _deadline_transport(http2=True, limits=pool, proxy=proxy)
            )
    return httpx.Client(
        transport=transport,
        mounts=mounts,
        timeout=httpx.Timeout(limits.timeout, connect=limits.connect_timeout),
        limits=pool,
        follow_redirects=False,
    )


class HttpxSender:
    """httpx's stack behind the seam; the answer's raw bytes are read here, counted and decoded."""

    def __init__(self, client: httpx.Client, limits: Limits) -> None:
        self.client = client
        self.limits = limits

    def send(self, request: Request) -> Response:
        limit = self.limits.max_response_bytes
        _attempt.deadline = time.monotonic() + self.limits.timeout
        try:
            sent = self.client.build_request(
                request.method, request.target, headers=request.headers, content=request.content
            )
            answer = self.client.send(sent, stream=True)
            try:
                headers = ResponseHeaders(answer.headers.multi_items())
                if answer.is_stream_consumed:  # read already (by an event hook): httpx decoded it
                    return Response(answer.status_code, headers, answer.content, request)
                check_length(request, headers, limit)
                content = _read_raw(request, answer.iter_raw(), limit)
            finally:
                answer.close()
        finally:
            _attempt.deadline = None
        return Response(answer.status_code, headers, decoded(request, headers, content, limit), request)

    def close(self) -> None:
        self.client.close()


def _read_raw(request: Request, chunks: Iterable[bytes], limit: int) -> bytes:
    parts = []
    size = 0
    for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise too_large(request, limit, "body")
        parts.append(chunk)
    return b"".join(parts)
