"""``connector preview``: the requests a sink would send for some records, or a stream's first request.

Nothing leaves the machine: the real target (or tap) runs against a transport that answers by itself,
so rendering, excluded attributes, batching and rejections are the engine's own.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from connector import jsonio
from connector.builder import BuiltRequest, RequestBuilder
from connector.errors import ConnectorError
from connector.harness import (
    Exchange,
    StopAfterFirst,
    first_stream_request,
    make_client,
    offline_config,
    run_sink,
)
from connector.incremental import incremental_note
from connector.inputs import Input, read_records
from connector.templates import Connection, SinkTemplate, StreamTemplate
from connector.workspace import CommandError, display, load, read_config, with_defaults

JOB_ID = "{job.id}"
# Headers the HTTP library adds on its own; not what a template author needs to see.
_TRANSPORT_HEADERS = frozenset({"host", "accept-encoding", "connection", "content-length"})
_MARKER = re.compile(r"%7B([a-z_][a-z0-9_.]*)%7D")


@dataclass
class Rejection:
    line: int | None
    reason: str
    error: str
    record: Any = None

    def as_dict(self) -> dict[str, Any]:
        return {"line": self.line, "reason": self.reason, "error": self.error, "record": self.record}


@dataclass
class SinkPreview:
    connection: str
    sink: SinkTemplate
    input_path: str
    records: int
    requests: list[Exchange]
    rejected: list[Rejection]
    notes: list[str] = field(default_factory=list)
    unreadable: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "connection": self.connection,
            "sink": self.sink.name,
            "input": self.input_path,
            "records": self.records,
            "requests": [_exchange_dict(e) for e in self.requests],
            "rejected": [r.as_dict() for r in self.rejected],
            "notes": self.notes,
        }


@dataclass
class StreamPreview:
    connection: str
    stream: StreamTemplate
    request: Exchange
    notes: list[str]

    def as_dict(self) -> dict[str, Any]:
        return {
            "connection": self.connection,
            "stream": self.stream.name,
            "request": _exchange_dict(self.request),
            "notes": self.notes,
        }


def _exchange_dict(exchange: Exchange) -> dict[str, Any]:
    out: dict[str, Any] = {
        "method": exchange.method,
        "url": show_url(exchange.url),
        "headers": shown_headers(exchange.headers),
    }
    if exchange.content:
        out["body"] = exchange.body
    if exchange.records is not None:
        out["records"] = exchange.records
    return out


def show_url(url: str) -> str:
    """Placeholders such as ``{parent.id}`` are percent-encoded in a rendered path; show them plainly."""
    return _MARKER.sub(lambda m: "{" + m.group(1) + "}", url)


def shown_headers(headers: Mapping[str, str]) -> dict[str, str]:
    out = {}
    for name, value in headers.items():
        if name in _TRANSPORT_HEADERS or (
            name == "user-agent" and value.startswith(("python-httpx/", "declarative-connector/"))
        ):
            continue
        out["-".join(part.capitalize() for part in name.split("-"))] = value
    return out


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _rejections(rows: list[dict[str, Any]], data: Input) -> list[Rejection]:
    """Rejected rows of the target, each matched back to the input line it came from."""
    lines: dict[str, list[int]] = {}
    for item in data.records:
        lines.setdefault(_canonical(item.record), []).append(item.line)
    found = [Rejection(n, "bad_input", error) for n, error in data.bad_lines]
    for row in rows:
        candidates = lines.get(_canonical(row.get("record")))
        line = candidates.pop(0) if candidates else None
        found.append(Rejection(line, str(row.get("reason")), str(row.get("error")), row.get("record")))
    return sorted(found, key=lambda r: (r.line is None, r.line or 0))


def _nested(path: str, value: Any) -> Any:
    for key in reversed(path.split(".")):
        value = {key: value}
    return value


def preview_sink(
    connection: Connection, sink: SinkTemplate, data: Input, config: Mapping[str, Any], input_path: str
) -> SinkPreview:
    notes: list[str] = []
    answer = None
    poll = None
    if sink.kind == "bulk_job" and sink.job is not None:
        job = sink.job
        live = offline_config(connection, config)
        client = make_client(connection, live, httpx.MockTransport(lambda r: httpx.Response(200)))
        context = {"job": {"id": JOB_ID}, "stream": sink.name, "records": []}
        try:
            poll = RequestBuilder(job.poll.request, client.origin, live).build(context)
            failures = (
                RequestBuilder(job.failures.request, client.origin, live).build(context)
                if job.failures is not None
                else None
            )
        finally:
            client.close()
        created = _nested(job.create.id or "data.id", JOB_ID)

        def answer(request: httpx.Request) -> httpx.Response:
            if _is(request.method, str(request.url), poll):
                raise StopAfterFirst()
            return httpx.Response(200, json=created)

        notes.append(
            f"then: {poll.method} {show_url(poll.url)} every {job.poll.interval_seconds}s until "
            f"`{job.poll.done.source if job.poll.done else '?'}`"
        )
        if failures is not None:
            notes.append(
                f"then: {failures.method} {show_url(failures.url)} for the failed records only, "
                "each matched back to its input record"
            )
    run = run_sink(connection, sink.name, data.singer_messages(), config, offline=True, answer=answer)
    exchanges = run.exchanges
    if poll is not None and exchanges and _is(exchanges[-1].method, exchanges[-1].url, poll):
        exchanges = exchanges[:-1]  # the preview stops at the first poll, already described in a note
    requests = [e.masked() for e in exchanges]
    return SinkPreview(
        connection.name,
        sink,
        input_path,
        len(data.records),
        requests,
        _rejections(run.rejected, data),
        notes,
        len(data.bad_lines),
    )


def _is(method: str, url: str, built: BuiltRequest) -> bool:
    return method == built.method and url.split("?", 1)[0] == built.url


def _pagination_note(stream: StreamTemplate) -> str:
    spec = stream.pagination
    return "no further pages" if spec.kind == "none" else f"next pages: {spec.summary()}"


def preview_stream(
    connection: Connection, stream: StreamTemplate, config: Mapping[str, Any]
) -> StreamPreview:
    parent = None
    notes = []
    if stream.parent:
        parent_template = connection.streams[stream.parent]
        fields = stream.parent_fields or parent_template.primary_key
        parent = {name: f"{{parent.{name}}}" for name in fields}
        notes.append(
            f"runs once per {stream.parent} record; {', '.join('parent.' + f for f in fields)} shown as placeholders"
        )
    request = first_stream_request(connection, stream.name, config, parent).masked()
    notes.append(_pagination_note(stream))
    if stream.replication_key and stream.incremental:
        notes.append(incremental_note(stream.replication_key, stream.incremental))
    return StreamPreview(connection.name, stream, request, notes)


def format_exchange(exchange: Exchange) -> list[str]:
    lines = [f"{exchange.method} {show_url(exchange.url)}"]
    lines += [f"{name}: {value}" for name, value in shown_headers(exchange.headers).items()]
    if exchange.content:
        body = exchange.body
        lines.append("")
        lines += (
            jsonio.dumps(body, option=orjson.OPT_INDENT_2).decode() if not isinstance(body, str) else body
        ).splitlines()
    return lines


def format_sink_preview(p: SinkPreview) -> str:
    sink = p.sink
    facts = [f"id_field {sink.id_field}" if sink.id_field else "no id_field"]
    if sink.exclude:
        facts.append(f"excludes {', '.join(sorted(sink.exclude))}")
    facts.append(
        "bulk job"
        if sink.kind == "bulk_job"
        else f"{sink.batch_size} record{'s' if sink.batch_size > 1 else ''} per request"
    )
    carried = sum(e.records or 0 for e in p.requests)
    read = _plural(p.records, "record") + (
        f" and {_plural(p.unreadable, 'unreadable line')}" if p.unreadable else ""
    )
    would = _plural(len(p.requests), "request") + (
        f" carrying {_plural(carried, 'record')}" if carried else ""
    )
    out = [
        f"Preview of sink {sink.name} ({p.connection}): nothing is sent.",
        f"  {'; '.join(facts)}",
        f"{p.input_path}: {read} -> {would}; {len(p.rejected)} rejected.",
    ]
    for n, exchange in enumerate(p.requests, start=1):
        count = (
            f" ({exchange.records} record{'s' if exchange.records != 1 else ''})" if exchange.records else ""
        )
        out += ["", f"--- request {n} of {len(p.requests)}{count}"]
        out += format_exchange(exchange)
    for note in p.notes:
        out += ["", note]
    if p.rejected:
        out += ["", f"--- rejected ({len(p.rejected)}), never sent:"]
        for r in p.rejected:
            where = f"line {r.line}" if r.line else "record"
            out.append(f"{where}: {r.reason}: {r.error}")
    return "\n".join(out)


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def format_stream_preview(p: StreamPreview) -> str:
    out = [f"Preview of stream {p.stream.name} ({p.connection}): nothing is sent.", "", "--- first request"]
    out += format_exchange(p.request)
    out += [""] + p.notes
    return "\n".join(out)


def suggest(name: str, connection: Connection) -> str:
    import difflib

    names = sorted({*connection.sinks, *connection.streams})
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.8)
    hint = f" Did you mean {' or '.join(close)}?" if close else ""
    if len(names) <= 20:
        listing = f" Sinks: {', '.join(sorted(connection.sinks))}. Streams: {', '.join(sorted(connection.streams))}."
    else:
        listing = (
            f" See docs/connectors/{connection.name}.md for all {len(connection.sinks)} sinks and "
            f"{len(connection.streams)} streams."
        )
    return f"{connection.name} has no sink or stream {name!r}.{hint}{listing}"


def main(
    name: str, connection_spec: str, input_path: str | None, config_path: str | None, as_json: bool
) -> int:
    """Print a preview; exit 1 when a record would be rejected, so scripts can check their data."""
    connection = load(connection_spec)
    config = with_defaults(connection, read_config(config_path))
    try:
        if name in connection.sinks:
            if not input_path:
                raise CommandError(f"{name} is a sink: give the records to preview with --input FILE.jsonl")
            data = read_records(input_path, name)
            result: SinkPreview | StreamPreview = preview_sink(
                connection, connection.sinks[name], data, config, input_path
            )
        elif name in connection.streams:
            result = preview_stream(connection, connection.streams[name], config)
        else:
            raise CommandError(suggest(name, connection))
    except CommandError:
        raise
    except ConnectorError as exc:
        raise CommandError(display(str(exc)), exit_code=1) from None
    if as_json:
        print(
            jsonio.dumps(
                result.as_dict(), option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS, default=str
            ).decode()
        )
    else:
        print(
            format_sink_preview(result) if isinstance(result, SinkPreview) else format_stream_preview(result)
        )
    return 1 if isinstance(result, SinkPreview) and result.rejected else 0
