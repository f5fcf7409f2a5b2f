"""Shared tools of the reliability tests: CLI processes read line by line, summaries, fault counts."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from helpers import BIN, TAP, TARGET, catalog_for, write_json

FAULT_KINDS = ("500", "502", "503", "429", "reset", "slow", "truncate")


def fault_spec(
    rate: float, seed: int, kinds: Iterable[str] = FAULT_KINDS, delay: float = 1.2, burst: int = 3
) -> str:
    return f"rate={rate},seed={seed},kinds={','.join(kinds)},delay={delay},burst={burst}"


@contextmanager
def faults(sandbox: Any, spec: str) -> Iterator[None]:
    """Inject faults into the sandbox for the run inside (journal cleared first); none after, even on failure."""
    sandbox.clear_journal()
    sandbox.configure(faults=spec)
    try:
        yield
    finally:
        sandbox.configure(faults="rate=0")


def faults_injected(journal: list[dict]) -> dict[str, int]:
    """Fault kind -> requests that got it, as the sandbox journaled them."""
    return dict(sorted(Counter(e["fault"] for e in journal if e["fault"]).items()))


def singer_messages(
    stream: str, records: list[dict], key_properties: list[str] | None = None, schema: dict | None = None
) -> list[dict]:
    schema = schema or {"type": "object", "properties": {}, "additionalProperties": True}
    return [
        {"type": "SCHEMA", "stream": stream, "schema": schema, "key_properties": key_properties or []},
        *({"type": "RECORD", "stream": stream, "record": r} for r in records),
    ]


def as_lines(messages: list[dict]) -> str:
    return "".join(json.dumps(m) + "\n" for m in messages)


def canonical(record: dict) -> str:
    return json.dumps(record, sort_keys=True)


def by_key(records: list[dict], key: tuple[str, ...] = ("id",)) -> dict[tuple, str]:
    """Primary key -> canonical content; duplicates of a key are an error of the run being checked."""
    out: dict[tuple, str] = {}
    for record in records:
        pk = tuple(record[k] for k in key)
        assert pk not in out, f"record {pk} emitted twice"
        out[pk] = canonical(record)
    return out


class SingerProcess:
    """A tap or target process whose stdout is read line by line while it runs (to kill it mid-stream)."""

    def __init__(
        self, argv: list[str], stdin_path: Path | None = None, env: dict[str, str] | None = None
    ) -> None:
        self._stdin = open(stdin_path, "rb") if stdin_path else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(
            argv,
            stdin=self._stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, **(env or {})},
        )
        self.lines: list[dict] = []
        self._queue: queue.Queue[dict | None] = queue.Queue()
        self._stderr: list[bytes] = []
        threading.Thread(target=self._read_stdout, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()

    def _read_stdout(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            if raw.endswith(b"\n"):  # a line cut by a kill is not a message
                self._queue.put(json.loads(raw))
        self._queue.put(None)

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        for raw in self.process.stderr:
            self._stderr.append(raw)

    def read_until(self, done: Callable[[list[dict]], bool], timeout: float = 120) -> None:
        """Take messages until ``done(lines)`` holds (or the output ends)."""
        deadline = time.monotonic() + timeout
        while not done(self.lines):
            message = self._queue.get(timeout=max(0.01, deadline - time.monotonic()))
            if message is None:
                return
            self.lines.append(message)

    def kill(self) -> None:
        """SIGKILL: no clean-up, no flush, as a crash or an OOM kill would end it."""
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)
        self.read_until(lambda _lines: False, timeout=30)  # what it wrote before dying reached the pipe
        self._close()

    def wait(self, timeout: float = 300) -> int:
        code = self.process.wait(timeout=timeout)
        self.read_until(lambda _lines: False, timeout=30)
        self._close()
        return code

    def _close(self) -> None:
        if self._stdin is not subprocess.DEVNULL:
            self._stdin.close()

    @property
    def stderr(self) -> str:
        return b"".join(self._stderr).decode("utf-8", "replace")


def start_tap(config: dict, tmp_path: Path, streams: list[str], state: dict | None = None) -> SingerProcess:
    config_path = write_json(tmp_path / "tap-config.json", config)
    argv = [TAP, "--config", str(config_path), "--catalog", str(catalog_for(streams, tmp_path, config_path))]
    if state is not None:
        argv += ["--state", str(write_json(tmp_path / "state.json", state))]
    return SingerProcess(argv)


def start_target(config: dict, tmp_path: Path, stdin: str, name: str = "target") -> SingerProcess:
    config_path = write_json(tmp_path / f"{name}-config.json", config)
    input_path = tmp_path / f"{name}-input.jsonl"
    input_path.write_text(stdin)
    return SingerProcess([TARGET, "--config", str(config_path)], stdin_path=input_path)


def records_of(lines: list[dict], stream: str) -> list[dict]:
    return [m["record"] for m in lines if m["type"] == "RECORD" and m["stream"] == stream]


class RecordingServer:
    """A local HTTP server that records every request (method, path, headers) and answers from ``routes``.

    ``routes`` maps ``"METHOD /path"`` (or ``"METHOD /path?query"``, tried first) to ``(status, headers,
    json_body)`` (bytes are sent as they are); anything else is a 404. Used as a
    misbehaving API (cross-origin ``next`` links and redirects) and as the "other host" that must see nothing.
    """

    def __init__(self, routes: dict[str, tuple[int, dict[str, str], Any]] | None = None) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.routes = routes or {}
        self.requests: list[dict[str, Any]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                path = self.path.split("?", 1)[0]
                server.requests.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "headers": dict(self.headers),
                        "body": body.decode("utf-8", "replace"),
                    }
                )
                status, headers, payload = server.routes.get(
                    f"{self.command} {self.path}",  # a route with its query first, then the path alone
                    server.routes.get(f"{self.command} {path}", (404, {}, {"error": "nope"})),
                )
                data = (
                    payload
                    if isinstance(payload, bytes)
                    else json.dumps(payload).encode()
                    if payload is not None
                    else b""
                )
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _answer

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


# -- a small connection of our own, for servers that misbehave on purpose

HOSTILE_API_KEY = "hostile-test-key-7c2e"
HOSTILE_CONNECTION = """\
name: hostile
description: An API served by a hostile server, for the reliability tests.
base_url: "{{ config.base_url }}"
settings:
  - {name: base_url, type: string}
  - {name: api_key, type: string, secret: true}
auth:
  - {type: bearer, when: config.api_key, token: "{{ config.api_key }}"}
retry: {max_attempts: 3, backoff_seconds: 0.01, max_backoff_seconds: 0.01}
stream_defaults:
  records: data
"""
ITEMS = """\
name: items
url: /v1/items
primary_key: [id]
schema: items.json
"""
POST_ITEM = """\
name: post_item
method: POST
url: /v1/items
headers:
  Idempotency-Key: "{{ record.key }}"
"""


def hostile_connection(tmp_path: Path, items: str = ITEMS, sinks: dict[str, str] | None = None) -> Path:
    """A connection with one stream (``items``: its YAML), one sink sending a record value in a header, and
    ``sinks`` (name -> YAML)."""
    root = tmp_path / "hostile"
    for folder in ("streams", "sinks", "specs"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    (root / "connection.yaml").write_text(HOSTILE_CONNECTION)
    (root / "streams" / "items.yaml").write_text(textwrap.dedent(items))
    (root / "sinks" / "post_item.yaml").write_text(POST_ITEM)
    for name, text in (sinks or {}).items():
        (root / "sinks" / f"{name}.yaml").write_text(textwrap.dedent(text))
    schema = {
        "type": "object",
        "properties": {"id": {"type": "integer"}, "name": {"type": ["string", "null"]}},
    }
    (root / "specs" / "items.json").write_text(json.dumps(schema))
    return root


def hostile_argv(
    role: str,
    tmp_path: Path,
    base_url: str,
    transport: str = "httpx",
    items: str = ITEMS,
    sinks: dict[str, str] | None = None,
    **config: Any,
) -> list[str]:
    """``connector tap|target`` of the hostile connection against ``base_url`` (rejected records in
    ``tmp_path/rejected.jsonl``)."""
    settings = {
        "base_url": base_url,
        "api_key": HOSTILE_API_KEY,
        "http_transport": transport,
        "rejected_path": str(tmp_path / "rejected.jsonl"),
        **config,
    }
    config_path = write_json(tmp_path / "config.json", settings)
    root = hostile_connection(tmp_path, items, sinks)
    return [str(BIN / "connector"), role, str(root), "--config", str(config_path)]


def rejected(tmp_path: Path) -> list[dict]:
    """The rows of ``tmp_path/rejected.jsonl``."""
    path = tmp_path / "rejected.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
