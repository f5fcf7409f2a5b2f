"""Running a connection's real target or tap inside the CLI's process while watching its HTTP traffic.

``preview`` hands the engine a transport that answers every request itself, so nothing leaves the
machine; ``send-test`` uses the network and records what the API answered. Either way the engine's
own code renders, excludes, batches and rejects: what the commands show is what a run would do.
"""

from __future__ import annotations

import io
import json
import logging
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from connector import jsonio
from connector.errors import ConnectorError, UnsafeRequestError
from connector.http import ApiClient
from connector.secrets import REDACTOR, safe_headers
from connector.tap import build_tap_class
from connector.target import build_target_class
from connector.templates import Connection

PLACEHOLDER_CREDENTIAL = "placeholder-credential"  # noqa: S105 - shown masked, never a real secret


@dataclass
class Exchange:
    """One HTTP request as it went on the wire, and the answer if there was one."""

    method: str
    url: str
    headers: dict[str, str]
    content: bytes
    status: int | None = None
    response_headers: dict[str, str] = field(default_factory=dict)
    response_content: bytes = b""
    records: int | None = None  # records carried by the request, when the target said

    @property
    def body(self) -> Any:
        return _decode(self.content, self.headers.get("content-type", ""))

    @property
    def response_body(self) -> Any:
        return _decode(self.response_content, self.response_headers.get("content-type", ""))

    def masked(self) -> Exchange:
        """The same exchange fit to print: credentials and known secret values masked."""
        return Exchange(
            self.method,
            REDACTOR.redact(self.url),
            safe_headers(self.headers.items()),
            REDACTOR.redact(self.content.decode("utf-8", "replace")).encode(),
            self.status,
            safe_headers(self.response_headers.items()),
            REDACTOR.redact(self.response_content.decode("utf-8", "replace")).encode(),
            self.records,
        )


def _decode(content: bytes, content_type: str) -> Any:
    if not content:
        return None
    text = content.decode("utf-8", "replace")
    if "json" in content_type or text[:1] in "{[":
        try:
            return jsonio.loads(content)  # numbers as they were sent
        except jsonio.JSONDecodeError:
            return text
    return text


@dataclass
class SinkRun:
    exchanges: list[Exchange]
    rejected: list[dict[str, Any]]  # rows of the rejected-records file
    accepted: int


class Recorder:
    """httpx event hooks that keep every request and its response (read once, kept raw; masked later)."""

    def __init__(self) -> None:
        self.exchanges: list[Exchange] = []

    def on_response(self, response: httpx.Response) -> None:
        response.read()
        request = response.request
        self.exchanges.append(
            Exchange(
                request.method,
                str(request.url),
                {k.lower(): v for k, v in request.headers.items()},
                request.content,
                response.status_code,
                {k.lower(): v for k, v in response.headers.items()},
                response.content,
            )
        )


class StopAfterFirst(Exception):
    """Raised by the offline transport once it has seen the request a stream preview is after."""


def offline_transport(answer: Callable[[httpx.Request], httpx.Response]) -> httpx.MockTransport:
    """A transport that never touches the network; OAuth token requests get a made-up token."""

    def handle(request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and b"grant_type=" in request.content:
            return httpx.Response(200, json={"access_token": "offline-access-token", "expires_in": 7200})
        return answer(request)

    return httpx.MockTransport(handle)


def offline_config(connection: Connection, config: Mapping[str, Any]) -> dict[str, Any]:
    """The user's config, with a placeholder credential when there is none, so auth headers show (masked)."""
    live = dict(config)
    switches = [name for m in connection.auth for name in m.settings_read()]
    if switches and not any(live.get(name) for name in switches):
        static = [m for m in connection.auth if not m.renews]
        preferred = [name for m in static for name in m.settings_read()] or switches
        live[preferred[0]] = PLACEHOLDER_CREDENTIAL
        REDACTOR.add(PLACEHOLDER_CREDENTIAL)
    return live


def make_client(
    connection: Connection, config: Mapping[str, Any], transport: httpx.BaseTransport | None
) -> ApiClient:
    try:
        return ApiClient(connection, config, transport=transport, max_connections=4)
    except UnsafeRequestError as exc:
        raise ConnectorError(f"{exc}: set base_url in the config (--config)") from None


@contextmanager
def quiet_logs(level: int = logging.ERROR) -> Iterator[None]:
    """singer-sdk and the engine log at INFO for pipelines; a command prints its own summary instead."""
    previous = logging.root.manager.disable
    logging.disable(level - 1)
    try:
        yield
    finally:
        logging.disable(previous)


def run_sink(
    connection: Connection,
    sink: str,
    messages: list[dict[str, Any]],
    config: Mapping[str, Any],
    *,
    offline: bool,
    answer: Callable[[httpx.Request], httpx.Response] | None = None,
) -> SinkRun:
    """Feed Singer messages to the connection's target with every stream going to ``sink``.

    Offline, ``answer`` makes up the API's responses (default: 200 with ``{}``); it may raise
    ``StopAfterFirst`` to end the run where a preview has seen enough.
    """
    recorder = Recorder()
    base = build_target_class(connection)
    transport = (
        offline_transport(answer or (lambda request: httpx.Response(200, json={}))) if offline else None
    )

    class WatchedTarget(base):  # type: ignore[valid-type, misc]
        _watched: ApiClient | None = None

        @property
        def client(self) -> ApiClient:
            if self._watched is None:
                client = make_client(connection, dict(self.config), transport) if offline else super().client
                client.http.event_hooks = (
                    {"request": [recorder_request(recorder)], "response": []}
                    if offline
                    else {"request": [], "response": [recorder.on_response]}
                )
                self._watched = client
            return self._watched

    with tempfile.TemporaryDirectory(prefix="connector-") as tmp:
        rejected_path = Path(tmp) / "rejected.jsonl"
        requests_path = Path(tmp) / "requests.jsonl"
        run_config = {
            **(offline_config(connection, config) if offline else config),
            "sink": sink,
            "stream_sinks": {},
            "rejected_path": str(rejected_path),
            "requests_path": str(requests_path),
            "responses_path": None,
            "dry_run": False,
            "max_rejected": None,
            "concurrency": 1,  # one request at a time: the output follows the input's order
            "http_transport": "httpx",  # its event hooks record each exchange for display
        }
        lines = "".join(jsonio.dumps(m, default=str).decode() + "\n" for m in messages)
        with quiet_logs():
            target = WatchedTarget(config=run_config, validate_config=True)
            try:
                target.listen(io.StringIO(lines))
            except StopAfterFirst:
                pass
            finally:
                target.finish()
                if target._watched is not None:
                    target._watched.close()
        rejected = _read_jsonl(rejected_path)
        planned = _read_jsonl(requests_path)
        summary = target.outcomes.summary()
    exchanges = recorder.exchanges
    if offline and len(planned) == len(exchanges):
        for exchange, plan in zip(exchanges, planned, strict=True):
            exchange.records = plan.get("records")
    return SinkRun(exchanges, rejected, int(summary.get("accepted", 0)))


def first_stream_request(
    connection: Connection, stream: str, config: Mapping[str, Any], parent: Mapping[str, Any] | None = None
) -> Exchange:
    """The first request a stream would make, caught before it leaves the process."""
    recorder = Recorder()

    def answer(request: httpx.Request) -> httpx.Response:
        raise StopAfterFirst()

    base = build_tap_class(connection)
    live = offline_config(connection, config)

    class WatchedTap(base):  # type: ignore[valid-type, misc]
        _watched: ApiClient | None = None

        @property
        def client(self) -> ApiClient:
            if self._watched is None:
                self._watched = make_client(connection, dict(self.config), offline_transport(answer))
                self._watched.http.event_hooks = {"request": [recorder_request(recorder)], "response": []}
            return self._watched

    with quiet_logs():
        tap = WatchedTap(config=live, validate_config=True)
        try:
            for _ in tap.streams[stream].get_records(dict(parent) if parent else None):
                break
        except StopAfterFirst:
            pass
        finally:
            tap.close()  # its fetching threads, then its client
            if tap._watched is not None:
                tap._watched.close()
    if not recorder.exchanges:
        raise ConnectorError(f"stream {stream!r} made no request")
    return recorder.exchanges[0]


def recorder_request(recorder: Recorder) -> Callable[[httpx.Request], None]:
    def on_request(request: httpx.Request) -> None:
        if b"grant_type=" in request.content:
            return
        recorder.exchanges.append(
            Exchange(
                request.method,
                str(request.url),
                {k.lower(): v for k, v in request.headers.items()},
                request.content,
            )
        )

    return on_request


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
