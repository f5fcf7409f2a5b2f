"""What the family sandboxes share: a threaded HTTP server, the clock, the request journal, fault
injection, rate windows, the ``/__control`` endpoints, the command line and the subprocess runner.

Each server is a ``FamilyApi`` subclass (routes, auth, data, API-shaped errors); this module serves it.
The control endpoints bypass auth, rate limits, faults and the journal:

    GET    /__control/info                  name, clock, credentials, options
    GET    /__control/journal[?since=SEQ]   {"data": [entries], "last_seq": n}
    DELETE /__control/journal               clear it
    GET    /__control/records/<resource>    {"data": [the server's truth]}
    POST   /__control/touch/<resource>      {"count": n} -> {"data": [changed or added records]}
    GET    /__control/faults                {"pending": [...]}
    POST   /__control/faults                {"status": 500|429|503|"reset", "count": n, "path": prefix,
                                             "retry_after": s} or {"next": [status, ...]}
    DELETE /__control/faults                drop pending faults
    GET    /__control/clock                 {"now": epoch seconds}
    POST   /__control/clock                 {"advance": seconds} moves the server's clock forward
    POST   /__control/reset                 regenerate the data from the seed, clear journal and faults

A journal entry: seq, at (server clock), method, path, query ({name: [values]}), headers (lower-case
names; Authorization reduced to its scheme, secrets in the query and JSON body masked), body (parsed
JSON, else text), form (the decoded [name, value] pairs of a form body), status, fault ("reset" or the
injected status, else null).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx

MASK = "***"
JOURNAL_LIMIT = 100_000  # entries kept; the oldest go first
MAX_BODY = 16 * 1024 * 1024
SECRET_NAMES = frozenset({"api_key", "password", "token", "secret", "access_token", "refresh_token"})
UTC = dt.timezone.utc


class ApiError(Exception):
    """An API-shaped error answer, raised anywhere inside a handler."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{status}: {body}")
        self.reply = Reply(status, body, headers or {})


@dataclass
class Request:
    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: bytes
    origin: str

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def params(self) -> dict[str, list[str]]:
        grouped: dict[str, list[str]] = {}
        for name, value in self.query:
            grouped.setdefault(name, []).append(value)
        return grouped

    def param(self, name: str) -> str | None:
        values = self.params().get(name)
        return values[-1] if values else None

    @property
    def content_type(self) -> str:
        return (self.header("content-type") or "").split(";")[0].strip().lower()


@dataclass
class Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"

    def content(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body, separators=(",", ":")).encode()


def iso(seconds: float, timespec: str = "seconds", offset_minutes: int = 0) -> str:
    """An ISO-8601 instant; UTC is written ``Z``, other offsets as ``+HH:MM``."""
    zone = dt.timezone(dt.timedelta(minutes=offset_minutes))
    text = dt.datetime.fromtimestamp(seconds, zone).isoformat(timespec=timespec)
    return text.replace("+00:00", "Z")


def parse_instant(text: str) -> float:
    """ISO-8601 (``Z`` or an offset; naive means UTC) -> epoch seconds. Raises ValueError."""
    moment = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


class Clock:
    """The server's now: wall time plus what ``/__control/clock`` advanced it by.

    ``anchor`` is where generated data ends: ``--now`` when given (then the clock starts there), else
    the start of the current UTC day, so the same seed gives the same data all day.
    """

    def __init__(self, now: float | None = None) -> None:
        real = time.time()
        self.offset = 0.0 if now is None else now - real
        day = dt.datetime.fromtimestamp(real, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        self.anchor = now if now is not None else day.timestamp()

    def now(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> float:
        self.offset += seconds
        return self.now()


class RateWindow:
    """At most ``limit`` hits per ``seconds`` per key, over a sliding window of real time."""

    def __init__(self, limit: int, seconds: float) -> None:
        self.limit = limit
        self.seconds = seconds
        self._hits: dict[str, deque[float]] = {}

    def hit(self, key: str) -> bool:
        """Count one hit; False when it is over the limit (an over-limit hit is not counted)."""
        if self.limit <= 0:
            return True
        now = time.monotonic()
        hits = self._hits.setdefault(key, deque())
        while hits and hits[0] <= now - self.seconds:
            hits.popleft()
        if len(hits) >= self.limit:
            return False
        hits.append(now)
        return True

    def remaining(self, key: str) -> int:
        return max(0, self.limit - len(self._hits.get(key, ())))


class Faults:
    """Queued faults: each answers the next request whose path starts with its prefix."""

    STATUSES = (429, 500, 502, 503, 504, "reset")

    def __init__(self) -> None:
        self.pending: list[dict[str, Any]] = []

    def add(self, spec: dict[str, Any]) -> None:
        statuses = spec["next"] if "next" in spec else [spec.get("status", 500)] * int(spec.get("count", 1))
        for status in statuses:
            if status not in self.STATUSES:
                raise ValueError(f"fault status must be one of {self.STATUSES} (got {status!r})")
            self.pending.append(
                {"status": status, "path": spec.get("path") or "/", "retry_after": spec.get("retry_after")}
            )

    def take(self, path: str) -> dict[str, Any] | None:
        for index, fault in enumerate(self.pending):
            if path.startswith(fault["path"]):
                return self.pending.pop(index)
        return None


Route = tuple[str, str, Callable[..., Reply]]


class FamilyApi:
    """One fake API: subclasses set ``name``, generate data, list routes and shape their errors."""

    name = "family"
    description = ""
    default_port = 0
    default_size = 100

    def __init__(self, options: argparse.Namespace, clock: Clock) -> None:
        self.options = options
        self.clock = clock
        self.generate()

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """Flags of this API beyond --port, --seed, --size, --now."""

    def generate(self) -> None:
        """(Re)build the data from ``options.seed`` and ``options.size``."""
        raise NotImplementedError

    def routes(self) -> list[Route]:
        raise NotImplementedError

    def authenticate(self, request: Request) -> str:
        """The caller's identity (for per-caller limits); raise ApiError(401) when unauthenticated."""
        raise NotImplementedError

    def records(self, resource: str) -> list[dict[str, Any]]:
        raise KeyError(resource)

    def touch(self, resource: str, count: int) -> list[dict[str, Any]]:
        raise KeyError(resource)

    def error(self, status: int, message: str) -> Reply:
        """An error answer in this API's shape (used for 404/405 and injected faults)."""
        return Reply(status, {"error": message})

    def credentials(self) -> dict[str, Any]:
        return {}

    def handle(self, request: Request) -> Reply:
        """Route a request: authentication first (as real APIs do, even for unknown paths)."""
        caller = self.authenticate(request)
        path_known = False
        for method, pattern, handler in self.routes():
            match = re.fullmatch(pattern, request.path)
            if match is None:
                continue
            path_known = True
            if method == request.method:
                return handler(request, caller, *match.groups())
        if path_known:
            return self.error(405, f"{request.method} is not allowed on {request.path}")
        return self.error(404, f"Unrecognized request URL ({request.method}: {request.path})")


def _mask(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: (MASK if k.lower() in SECRET_NAMES else _mask(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask(v) for v in value]
    return value


def _journal_body(request: Request) -> Any:
    if not request.body:
        return None
    text = request.body.decode("utf-8", "replace")
    if "json" in request.content_type:
        try:
            return _mask(json.loads(text))
        except ValueError:
            return text
    return text


def journal_entry(request: Request, reply: Reply, fault: Any, at: float) -> dict[str, Any]:
    headers = dict(request.headers)
    if "authorization" in headers:
        headers["authorization"] = headers["authorization"].split(" ", 1)[0] + " " + MASK
    query: dict[str, list[str]] = {}
    for name, value in request.query:
        query.setdefault(name, []).append(MASK if name.lower() in SECRET_NAMES else value)
    entry = {
        "at": at,
        "method": request.method,
        "path": request.path,
        "query": query,
        "headers": headers,
        "body": _journal_body(request),
        "status": reply.status,
        "fault": fault,
    }
    if request.content_type == "application/x-www-form-urlencoded":
        pairs = parse_qsl(request.body.decode("utf-8", "replace"), keep_blank_values=True)
        entry["form"] = [[k, MASK if k.lower() in SECRET_NAMES else v] for k, v in pairs]
        if any(k.lower() in SECRET_NAMES for k, _ in pairs):
            entry["body"] = urlencode(entry["form"])
    return entry


class FamilyServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, api: FamilyApi, verbose: bool = False) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.api = api
        self.verbose = verbose
        self.lock = threading.RLock()
        self.faults = Faults()
        self.entries: deque[dict[str, Any]] = deque(maxlen=JOURNAL_LIMIT)
        self.seq = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def record(self, entry: dict[str, Any]) -> None:
        with self.lock:
            self.seq += 1
            self.entries.append({"seq": self.seq, **entry})

    def serve(self, request: Request) -> tuple[Reply | None, Any]:
        """The API's answer, or (None, "reset") when the connection is to be dropped."""
        with self.lock:
            fault = self.faults.take(request.path)
            if fault is not None:
                status = fault["status"]
                if status == "reset":
                    return None, "reset"
                reply = self.api.error(status, "injected fault")
                if fault["retry_after"] is not None:
                    reply.headers["Retry-After"] = str(fault["retry_after"])
                return reply, status
            try:
                return self.api.handle(request), None
            except ApiError as error:
                return error.reply, None

    def control(self, request: Request) -> Reply:
        parts = request.path.split("/")[2:]
        try:
            body = json.loads(request.body) if request.body else {}
        except ValueError as exc:
            return Reply(400, {"error": f"control body is not JSON: {exc}"})
        with self.lock:
            try:
                return self._control(request.method, parts, body, request)
            except KeyError as exc:
                return Reply(404, {"error": f"unknown resource {exc.args[0]!r}"})
            except (TypeError, ValueError) as exc:
                return Reply(400, {"error": str(exc)})

    def _control(self, method: str, parts: list[str], body: Any, request: Request) -> Reply:
        api = self.api
        if parts == ["info"] and method == "GET":
            options = {k: v for k, v in vars(api.options).items() if k != "verbose"}
            return Reply(
                200,
                {
                    "name": api.name,
                    "now": api.clock.now(),
                    "credentials": api.credentials(),
                    "options": options,
                },
            )
        if parts == ["journal"] and method == "GET":
            since = int(request.param("since") or 0)
            return Reply(200, {"data": [e for e in self.entries if e["seq"] > since], "last_seq": self.seq})
        if parts == ["journal"] and method == "DELETE":
            self.entries.clear()
            return Reply(204)
        if len(parts) == 2 and parts[0] == "records" and method == "GET":
            return Reply(200, {"data": api.records(parts[1])})
        if len(parts) == 2 and parts[0] == "touch" and method == "POST":
            count = int(body.get("count", 1))
            if not 0 <= count <= 100_000:
                raise ValueError(f"count must be between 0 and 100000 (got {count})")
            return Reply(200, {"data": api.touch(parts[1], count)})
        if parts == ["faults"] and method == "POST":
            self.faults.add(body)
            return Reply(200, {"pending": self.faults.pending})
        if parts == ["faults"] and method == "GET":
            return Reply(200, {"pending": self.faults.pending})
        if parts == ["faults"] and method == "DELETE":
            self.faults.pending.clear()
            return Reply(204)
        if parts == ["clock"] and method == "GET":
            return Reply(200, {"now": api.clock.now()})
        if parts == ["clock"] and method == "POST":
            seconds = float(body.get("advance", 0))
            if seconds < 0:
                raise ValueError("the clock only moves forward (advance must be >= 0)")
            return Reply(200, {"now": api.clock.advance(seconds)})
        if parts == ["reset"] and method == "POST":
            api.generate()
            self.entries.clear()
            self.faults.pending.clear()
            return Reply(200, {"ok": True})
        return Reply(404, {"error": f"no control endpoint {method} {request.path}"})


class _Handler(BaseHTTPRequestHandler):
    server: FamilyServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's signature
        if self.server.verbose:
            super().log_message(format, *args)

    def _serve(self) -> None:
        parts = urlsplit(self.path)
        host = self.headers.get("Host") or f"127.0.0.1:{self.server.server_address[1]}"
        try:
            body = self._body()
        except ValueError as exc:  # a bad length or chunk, or too large: answered, then the connection closes
            self.close_connection = True
            self._send(
                Reply(413 if "over" in str(exc) else 400, {"error": f"unreadable request body: {exc}"})
            )
            return
        request = Request(
            self.command,
            parts.path,
            parse_qsl(parts.query, keep_blank_values=True),
            {name.lower(): value for name, value in self.headers.items()},
            body,
            f"http://{host}",
        )
        if request.path.startswith("/__control/"):
            self._send(self.server.control(request))
            return
        if self.server.api.options.latency:
            time.sleep(self.server.api.options.latency)  # (this connection's thread only)
        try:
            reply, fault = self.server.serve(request)
        except Exception as exc:  # a bug in a fake API must show, not hang the client
            self.log_error("unhandled error: %r", exc)
            reply, fault = Reply(500, {"error": f"sandbox bug: {exc!r}"}), None
        self.server.record(journal_entry(request, reply or Reply(0), fault, self.server.api.clock.now()))
        if reply is None:
            self.close_connection = True
            return
        self._send(reply)

    def _body(self) -> bytes:
        """The request body, sent with Content-Length or chunked; over MAX_BODY the connection closes."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks, total = [], 0
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                total += size
                if total > MAX_BODY:
                    raise ValueError(f"body over {MAX_BODY} bytes")
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):  # trailers
                pass
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise ValueError(f"body over {MAX_BODY} bytes")
        return self.rfile.read(length) if length > 0 else b""

    def _send(self, reply: Reply) -> None:
        content = reply.content()
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if reply.status != 204:
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        if reply.status != 204:
            self.wfile.write(content)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve


def _instant_arg(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return parse_instant(text)


def ready_prefix(name: str) -> str:
    return f"{name} sandbox listening on "


def build_parser(api_class: type[FamilyApi]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"python -m sandbox.families.{api_class.name}", description=api_class.description
    )
    parser.add_argument(
        "--port",
        type=int,
        default=api_class.default_port,
        help=f"port on 127.0.0.1 (0 = any free port; default {api_class.default_port})",
    )
    parser.add_argument("--seed", type=int, default=7, help="seed of the generated data (default 7)")
    parser.add_argument(
        "--size",
        type=int,
        default=api_class.default_size,
        help=f"number of main records to generate (default {api_class.default_size})",
    )
    parser.add_argument(
        "--now",
        type=_instant_arg,
        default=None,
        help="start the clock at this instant (epoch seconds or ISO-8601); default: the wall clock",
    )
    parser.add_argument(
        "--latency",
        type=float,
        default=0.0,
        help="real seconds every API answer takes (only its own connection waits; default 0)",
    )
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    api_class.add_arguments(parser)
    return parser


def main(api_class: type[FamilyApi], argv: list[str] | None = None) -> int:
    """Serve ``api_class`` until interrupted, after printing the ready line with its URL."""
    options = build_parser(api_class).parse_args(argv)
    api = api_class(options, Clock(options.now))
    try:
        server = FamilyServer(options.port, api, options.verbose)
    except OSError as exc:
        print(f"{api_class.name}: cannot listen on 127.0.0.1:{options.port}: {exc}", file=sys.stderr)
        return 1
    print(f"{ready_prefix(api_class.name)}{server.url} {json.dumps(api.credentials())}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


class ControlError(RuntimeError):
    pass


class FamilySandbox:
    """A handle on a running family server: its URL, credentials and control endpoints."""

    def __init__(self, url: str, process: Any, stderr: list[str]) -> None:
        self.url = url
        self.process = process
        self.stderr = stderr
        self._http = httpx.Client(base_url=url, timeout=30.0, trust_env=False)
        info = self._call("GET", "info")
        self.name: str = info["name"]
        self.credentials: dict[str, Any] = info["credentials"]

    def client(self, **kwargs: Any) -> httpx.Client:
        """A plain httpx client on the server, without credentials (caller closes it)."""
        kwargs.setdefault("timeout", 30.0)
        return httpx.Client(base_url=self.url, trust_env=False, **kwargs)

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._http.request(method, f"/__control/{path}", **kwargs)
        if response.status_code >= 400:
            raise ControlError(f"{method} /__control/{path}: {response.status_code} {response.text}")
        return response.json() if response.content else None

    def journal(self, since: int = 0) -> list[dict[str, Any]]:
        return self._call("GET", "journal", params={"since": since})["data"]

    def clear_journal(self) -> None:
        self._call("DELETE", "journal")

    def records(self, resource: str) -> list[dict[str, Any]]:
        return self._call("GET", f"records/{resource}")["data"]

    def touch(self, resource: str, count: int = 1) -> list[dict[str, Any]]:
        return self._call("POST", f"touch/{resource}", json={"count": count})["data"]

    def fault(
        self, status: int | str = 500, count: int = 1, path: str = "/", retry_after: Any = None
    ) -> None:
        spec = {"status": status, "count": count, "path": path, "retry_after": retry_after}
        self._call("POST", "faults", json=spec)

    def clear_faults(self) -> None:
        self._call("DELETE", "faults")

    def now(self) -> float:
        return self._call("GET", "clock")["now"]

    def advance(self, seconds: float) -> float:
        return self._call("POST", "clock", json={"advance": seconds})["now"]

    def reset(self) -> None:
        self._call("POST", "reset")

    def close(self) -> None:
        self._http.close()


def command(module: str, options: dict[str, Any]) -> list[str]:
    """``python -m <module> --port 0 ...``: each option ``foo_bar=v`` becomes ``--foo-bar v``."""
    argv = [sys.executable, "-m", module, "--port", str(options.pop("port", 0))]
    for key, value in options.items():
        flag = "--" + key.replace("_", "-")
        if value is True:
            argv.append(flag)
        elif value is not None and value is not False:
            argv += [flag, str(value)]
    return argv


@contextmanager
def running(module: str, name: str, startup_timeout: float = 30.0, **options: Any) -> Iterator[FamilySandbox]:
    """Start ``python -m <module>`` on a free 127.0.0.1 port as a subprocess; stop it on exit."""
    from sandbox.testing import serving_process

    with serving_process(command(module, options), ready_prefix(name), startup_timeout) as (url, proc, err):
        handle = FamilySandbox(url, proc, err)
        try:
            yield handle
        finally:
            handle.close()
