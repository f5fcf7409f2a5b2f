"""The write side: every destination template of a connection becomes a singer-sdk sink of one target.

Each record ends accepted or rejected (with the reason, in the rejected-records file); a batch's
requests go out concurrently within the rate budget; a STATE message is emitted by singer-sdk only
after every sink has drained, i.e. after every record before it has its outcome written.
"""

from __future__ import annotations

import base64
import copy
import json
import logging
import sys
from collections import Counter, defaultdict, deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import fastjsonschema
import httpx
import orjson
from singer_sdk import Target
from singer_sdk.exceptions import InvalidRecord, MissingKeyPropertiesError, RecordsWithoutSchemaException
from singer_sdk.io_base import SingerReader
from singer_sdk.singerlib.exceptions import InvalidInputLine
from singer_sdk.sinks import BatchSink
from singer_sdk.sinks.core import JSONSchemaValidator

from connector import changes, jsonio, sdk_compat, webhook
from connector.builder import BuiltRequest, RequestBuilder
from connector.errors import AuthError, ConnectorError, RenderError, RunStopped, UnsafeRequestError
from connector.http import ApiClient, Response, configured_retry, unanswered_attempts
from connector.ordering import object_key
from connector.outcomes import Outcomes, SentRequest, TooManyRejected, unwritable
from connector.plugin import ConnectorPlugin, build_plugin_class, finish_before_exit
from connector.responses import ResponseRules
from connector.results import ItemMatcher
from connector.secrets import safe_headers
from connector.sinkfields import SinkFields
from connector.templates import Connection, Setting, SinkTemplate

logger = logging.getLogger("connector.target")

TARGET_SETTINGS = [
    Setting("sink", "string", "Sink (destination template) used for every incoming stream."),
    Setting("stream_sinks", "object", "Stream name -> sink name, overriding `sink` per stream."),
    Setting(
        "rejected_path",
        "string",
        "JSON Lines file for rejected records (record, status, API error, request).",
        default="rejected.jsonl",
    ),
    Setting(
        "responses_path", "string", "JSON Lines file capturing the API's response to each accepted request."
    ),
    Setting(
        "responses_url",
        "string",
        "URL the API's responses are also POSTed to, as JSON arrays of responses_path's lines (needs "
        "responses_path, which keeps what the webhook cannot take).",
        secret=True,
    ),
    Setting(
        "rejected_url",
        "string",
        "URL rejected records are also POSTed to, as JSON arrays of rejected_path's lines.",
        secret=True,
    ),
    Setting(
        "webhook_headers",
        "object",
        "Headers sent with every webhook POST (your webhook's own auth); never the API's credentials.",
        secret=True,
    ),
    Setting(
        "webhook_batch_size",
        "integer",
        "Outcomes per webhook POST.",
        default=webhook.DEFAULT_BATCH_SIZE,
    ),
    Setting(
        "webhook_timeout",
        "number",
        "Seconds one webhook POST may take in all; retried like the API's requests (max_attempts).",
        default=webhook.DEFAULT_TIMEOUT,
    ),
    Setting(
        "requests_path",
        "string",
        "JSON Lines file recording every request rendered (with dry_run: the plan).",
    ),
    Setting("dry_run", "boolean", "Render and record the requests without sending them.", default=False),
    Setting(
        "max_rejected",
        "integer",
        "Stop the run once more than this many records were rejected (0 = fail fast).",
    ),
    Setting("batch_records", "integer", "Records buffered per sink before its requests are sent."),
    Setting("concurrency", "integer", "Requests in flight per sink (default: the template's)."),
    *changes.SETTINGS,
]


UNUSED_SDK_SETTINGS = ("add_record_metadata", "load_method", "batch_size_rows")


@dataclass
class Item:
    """One record on its way: the record as received and what the body sees (minus excluded)."""

    index: int
    record: dict[str, Any]
    body: dict[str, Any]


def _payload(response: Response) -> Any:
    try:
        return jsonio.loads(response.content) if response.content else None
    except jsonio.JSONDecodeError:
        return response.text


def _json_safe(value: Any) -> Any:
    try:
        return jsonio.loads(jsonio.dumps(value, option=orjson.OPT_NON_STR_KEYS, default=str))
    except jsonio.JSONEncodeError as exc:
        return unwritable(value, exc)


class FastValidator(JSONSchemaValidator):
    """Records are checked by a schema compiled to Python (fastjsonschema, ~1 us a record); a record it
    refuses is checked again by jsonschema, whose error names the field. Same verdicts, a tenth of the cost."""

    def __init__(self, schema: dict, *, validate_formats: bool = False) -> None:
        super().__init__(schema, validate_formats=validate_formats)
        try:
            self._compiled: Any = fastjsonschema.compile(schema, use_formats=validate_formats)
        except Exception:  # a schema it cannot compile: jsonschema alone, as singer-sdk does
            self._compiled = None

    def validate(self, record: dict) -> None:
        if self._compiled is not None:
            try:
                self._compiled(record)
                return
            except fastjsonschema.JsonSchemaValueException:
                pass
        super().validate(record)


class TemplateSink(BatchSink):
    """Records -> rendered requests (one per record, or batched) -> outcomes."""

    template: SinkTemplate

    def __init__(self, target: ConnectorTarget, stream_name: str, schema: dict, key_properties: Any) -> None:
        self.template = target.sink_template_for(stream_name)
        self.connector_target = target
        super().__init__(target, stream_name, schema, key_properties)
        self._invalid: str | None = None
        self._stopped = False
        self.outcomes = target.outcomes
        self.client = target.client
        self._builder = (
            RequestBuilder(self.template.request, self.client.origin, target.config)
            if self.template.request is not None
            else None
        )
        self._concurrency = int(target.config.get("concurrency") or self.template.concurrency)
        self._rules = ResponseRules(self.template.on_response)
        self._matcher = ItemMatcher(self.template.results) if self.template.results else None
        self._pace = target.spacings.get(self.template.requests_per_second, self.template.rate_shared)
        self._pool = ThreadPoolExecutor(
            max_workers=self._concurrency, thread_name_prefix=f"sink-{stream_name}"
        )
        self._fields = SinkFields(self.template)
        self._object_key = object_key(self.template)
        self.changes = target.change_tracking.for_sink(self.template)  # changes_only: None when off

    def get_validator(self) -> JSONSchemaValidator | None:
        if self.validate_schema:
            return FastValidator(self.schema, validate_formats=self.validate_field_string_format)
        return None

    @property
    def max_size(self) -> int:
        configured = self.connector_target.config.get("batch_records")
        if configured:
            return int(configured)
        if self.template.max_records:
            return int(self.template.max_records)
        return max(1000, self.template.batch_size * self.template.concurrency * 4)

    # -- validation: a bad record is rejected, never fatal

    def _validate_and_parse(self, record: dict) -> dict:
        self._invalid = None
        validator = sdk_compat.record_validator(self)
        if validator is not None:
            try:
                validator.validate(record)
            except InvalidRecord as exc:
                path = ".".join(str(p) for p in getattr(exc.__cause__, "absolute_path", ()))
                detail = f"{path}: {exc.error_message}" if path else exc.error_message
                self._invalid = f"record does not match the stream's schema: {detail}"
                return record
        self._invalid = self._fields.type_error(record)
        if self._invalid is not None:
            return record
        try:
            self._parse_timestamps_in_record(
                record=record, schema=self.schema, treatment=self.datetime_error_treatment
            )
        except Exception as exc:  # a bad timestamp is one record's problem
            self._invalid = f"bad timestamp: {exc}"
        return record

    def _singer_validate_message(self, record: dict) -> None:
        missing = [k for k in self.key_properties if k not in record]
        if missing:
            raise MissingKeyPropertiesError(
                f"a RECORD of stream {self.stream_name!r} lacks its key properties {missing} "
                f"(declared by its SCHEMA message): the upstream tap broke the Singer protocol"
            )

    def process_record(self, record: dict, context: dict) -> None:
        if self._invalid is not None:
            self._reject_invalid(record)
            return
        context.setdefault("records", []).append(record)
        context["checked"] = True  # validated on the way in (records of a BATCH file are not: see below)

    # -- sending

    def process_batch(self, context: dict) -> None:
        self.connector_target.drains += 1
        records: list[dict] = context.get("records", [])
        if records and not context.get("checked"):
            records = self._check_batch_file_records(records)
        if not records:
            return
        items = []
        for index, record in enumerate(records):
            id_field = self.template.id_field
            if id_field and record.get(id_field) in (None, ""):
                self.outcomes.reject(
                    self.stream_name,
                    _json_safe(record),
                    sink=self.template.name,
                    kind="missing_id",
                    error=f"record has no {id_field!r} (the sink's id_field): not sent",
                )
                continue
            body = self._fields.body(record)
            items.append(Item(index, record, body))
        if not items:
            self.outcomes.flush()
            context["records"] = []
            return
        if self.changes is not None:
            self.changes.begin(items)
        try:
            if self.template.kind == "bulk_job":
                from connector.bulk import item_requests, run_bulk_job

                if self.changes is not None:
                    render = item_requests(self)
                    items = [item for item in items if not self._unchanged(item, render(item))]
                if items:
                    run_bulk_job(self, items)
            else:
                self._send_requests(items)
        finally:
            self.outcomes.flush()
            if self.changes is not None:
                self.changes.commit()  # after the outcomes: a crash in between re-sends, never skips
        context["records"] = []

    def _unchanged(self, item: Item, built: BuiltRequest) -> bool:
        """changes_only: the API last accepted this very request for this record, so it is not sent."""
        assert self.changes is not None
        if self.changes.unchanged(item, built):
            self.outcomes.skip_unchanged(self.stream_name)
            return True
        return False

    def _check_batch_file_records(self, records: list[dict]) -> list[dict]:
        """Records read from a BATCH message's files reach process_batch without passing through
        process_record: check them here, as every other record is checked."""
        kept = []
        for record in records:
            if not isinstance(record, dict):
                self.outcomes.reject(
                    self.stream_name,
                    {"value": _json_safe(record)},
                    error=f"a line of a BATCH file is not a JSON object ({type(record).__name__})",
                    sink=self.template.name,
                    kind="invalid",
                )
                continue
            self._validate_and_parse(record)
            if self._invalid is not None:
                self._reject_invalid(record)
                continue
            kept.append(record)
        return kept

    def _reject_invalid(self, record: dict) -> None:
        """A record that failed the stream's schema (``_validate_and_parse`` said why)."""
        self.outcomes.reject(
            self.stream_name,
            _json_safe(record),
            error=self._invalid or "does not match the sink's record schema",
            sink=self.template.name,
            kind="invalid",
        )

    def _batch_items(self, bodies: list[dict[str, Any]]) -> list[Any]:
        """What the records of a batched body are: each record, or what ``batch.item`` makes of it."""
        item = self.template.batch_item
        if item is None:
            return bodies
        config = self.connector_target.config
        return [
            item.render({"config": config, "record": body, "stream": self.stream_name}) for body in bodies
        ]

    def _render(self, item: Item) -> BuiltRequest:
        assert self._builder is not None
        return self._builder.build(
            {"record": item.record, "stream": self.stream_name},
            body_context={
                "record": item.body,
                "records": self._batch_items([item.body]),
                "stream": self.stream_name,
            },
            default_body=item.body,
        )

    def _send_requests(self, items: list[Item]) -> None:
        groups: dict[tuple, list[tuple[Item, BuiltRequest]]] = defaultdict(list)
        id_field = self.template.id_field
        for item in items:
            try:
                built = self._render(item)
            except (RenderError, UnsafeRequestError) as exc:
                self.outcomes.reject(
                    self.stream_name,
                    _json_safe(item.record),
                    error=f"cannot render request: {exc}",
                    sink=self.template.name,
                    kind="render",
                )
                continue
            if self.changes is not None and self._unchanged(item, built):
                continue
            if self.template.batch_size == 1:
                # Records about the same object go out one after another, in input order: the last one wins.
                key = ("id", self._object_key(item.record)) if id_field else ("n", item.index)
                groups[key].append((item, built))
            else:
                key = built.target_key() + tuple(str(item.record.get(f)) for f in self.template.group_by)
                groups[key].append((item, built))
        chains: deque[list[list[tuple[Item, BuiltRequest]]]] = deque()
        for members in groups.values():  # each chain's requests are sent in order; chains run concurrently
            size = self.template.batch_size
            chains.append([members[start : start + size] for start in range(0, len(members), size)])
        # A few workers take chains off one queue, rather than a future per chain: a future and the wake-up
        # of the thread waiting on it cost more CPU than a small request does.
        workers = [
            self._pool.submit(self._send_chains, chains) for _ in range(min(self._concurrency, len(chains)))
        ]
        for worker in workers:
            error = worker.result()
            if error is not None:
                raise error

    def _send_chains(self, chains: deque[list[list[tuple[Item, BuiltRequest]]]]) -> Exception | None:
        """Send chains until none is left (run by each worker); the first fatal error is returned."""
        while True:
            try:
                chain = chains.popleft()
            except IndexError:
                return None
            for members in chain:
                error = self._send_group(members)
                if error is not None:
                    return error

    def _send_group(self, members: list[tuple[Item, BuiltRequest]]) -> Exception | None:
        """Send one request for these records (run in the pool); a fatal error is returned, not raised."""
        if self._stopped:
            return None  # the run is stopping: these records get no outcome, and no STATE covers them
        try:
            self._send_one(members)
        except (TooManyRejected, AuthError, RunStopped) as exc:
            self._stopped = True
            return exc
        return None

    def _send_one(self, members: list[tuple[Item, BuiltRequest]]) -> None:
        built = members[0][1]
        if len(members) > 1:
            bodies = [item.body for item, _ in members]
            assert self._builder is not None
            try:
                built = self._builder.build(
                    {"record": members[0][0].record, "stream": self.stream_name},
                    body_context={
                        "record": bodies[0],
                        "records": self._batch_items(bodies),
                        "stream": self.stream_name,
                    },
                    default_body=bodies,
                )
            except RenderError as exc:
                self._reject_all(
                    [item.record for item, _ in members], f"cannot render request: {exc}", "render"
                )
                return
        records = [item.record for item, _ in members]

        def shown() -> SentRequest:  # only built when someone will read it: a rejection or the requests file
            return SentRequest(
                built.method,
                built.url,
                built.params or None,
                self.client.visible_headers(built.headers),
                _json_safe(built.body) if built.body is not None else None,
            )

        if self.outcomes.records_requests:
            self.outcomes.record_request(self.stream_name, shown(), len(records))
        try:
            content, headers = built.encoded()
        except RenderError as exc:
            self._reject_all(records, str(exc), "render")
            return
        if self.connector_target.dry_run:
            self.outcomes.accept(self.stream_name, len(records))
            return
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self.client.send(
                    built.method,
                    built.url,
                    params=built.params or None,
                    headers=headers,
                    content=content,
                    pace=self._pace,
                )
            except (AuthError, RunStopped):
                raise
            except RenderError as exc:  # a header or URL that is not valid HTTP: refused before sending
                self._reject_all(records, f"cannot render request: {exc}", "render", shown())
                return
            except (ConnectorError, httpx.HTTPError) as exc:  # retries exhausted, unsafe redirect, ...
                self._reject_all(records, f"{type(exc).__name__}: {exc}", "transport", shown())
                return
            decision = None
            if self._rules:
                decision = self._rules.decide(response.status_code, _payload(response), response.headers)
            if decision is not None and decision[0] == "retry" and attempt < self.client.retry.max_attempts:
                self.client.pause(
                    attempt, f"sink {self.template.name}: {response.status_code} {decision[1]}".strip()
                )
                continue
            break
        accepted = response.status_code in self.template.accept
        message = ""
        if decision is not None:
            action, message = decision
            accepted = action in ("accept", "ignore")
        # A refused request whose answer lists no items (403 {"error": "forbidden"}) rejects every record with
        # the API's message, like a sink without per-item results; one that lists them is read item by item.
        if self._matcher is not None and (
            accepted or (400 <= response.status_code < 500 and self._matcher.lists_items(_payload(response)))
        ):
            self._item_outcomes(members, response, accepted, message, shown)
            return
        if accepted:
            self.outcomes.accept(self.stream_name, len(records), response=self._captured(built, response))
            if self.changes is not None:
                for item, _ in members:
                    self.changes.accepted(item)
            return
        error = message or self.client.error_message(response)
        sent = shown()
        if self.changes is not None:
            for item, _ in members:
                self.changes.refused(item, response.status_code, unanswered=unanswered_attempts(response))
        self._reject_all(records, error, "api", sent, response.status_code)

    def _reject_all(
        self,
        records: list[dict[str, Any]],
        error: str,
        kind: str,
        request: SentRequest | None = None,
        status: int | None = None,
    ) -> None:
        """The same outcome for every record of one request."""
        for record in records:
            self.outcomes.reject(
                self.stream_name,
                _json_safe(record),
                status=status,
                error=error,
                request=request,
                sink=self.template.name,
                kind=kind,
            )

    def stop_sending(self) -> None:
        """Let the requests on the wire finish; send no other."""
        self._stopped = True
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _captured(self, built: BuiltRequest, response: Response, item: Any = None) -> dict[str, Any] | None:
        if not self.connector_target.capture_responses:
            return None
        captured = {
            "stream": self.stream_name,
            "sink": self.template.name,
            "status": response.status_code,
            "request": {"method": built.method, "url": built.url},
            "response": _payload(response),
            "headers": safe_headers(response.headers.items()),  # cookies and credentials masked
        }
        if item is not None:
            captured["item"] = item
        return captured

    def _item_outcomes(
        self,
        members: list[tuple[Item, BuiltRequest]],
        response: Response,
        accepted: bool,
        message: str,
        shown: Any,
    ) -> None:
        """A batched answer that speaks of each item: every record gets its own outcome."""
        assert self._matcher is not None
        id_field = self.template.id_field
        ids = [item.record.get(id_field) if id_field else None for item, _ in members]
        outcomes = self._matcher.outcomes(_payload(response), ids)
        general = message or ("" if accepted else self.client.error_message(response))
        sent = None
        built = members[0][1]
        for (item, _), outcome in zip(members, outcomes, strict=True):
            if accepted and outcome.accepted:
                self.outcomes.accept(
                    self.stream_name, 1, response=self._captured(built, response, outcome.result)
                )
                if self.changes is not None:
                    self.changes.accepted(item)
                continue
            sent = sent or shown()
            if self.changes is not None and outcome.kind != "unconfirmed":
                # None: the item failed inside an answer that was accepted as a whole
                status = None if accepted else response.status_code
                self.changes.refused(item, status, unanswered=unanswered_attempts(response))
            self.outcomes.reject(
                self.stream_name,
                _json_safe(item.record),
                status=response.status_code,
                error=(outcome.message if not outcome.accepted else "") or general,
                request=sent,
                sink=self.template.name,
                kind=outcome.kind or "api",
            )

    def clean_up(self) -> None:
        self._pool.shutdown(wait=True)
        super().clean_up()


MAX_NESTING = 200
"""Deepest nesting of a Singer message the target accepts. The JSON writer stops at 255 levels, and a record
is written again inside a request body and a rejected-records line: the rest is their room."""

PREVIEW_CHARS = 2000  # of a bad line, escaped, in its rejection
KEPT_BYTES = 65536  # of a bad line, as base64, in its rejection


def nesting_depth(value: Any, limit: int) -> int:
    """Levels of objects and arrays in ``value``, counted up to ``limit + 1`` (then it stops looking)."""
    deepest = 0
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        if depth > deepest:
            deepest = depth
            if deepest > limit:
                return deepest
        pending.extend((child, depth + 1) for child in children)
    return deepest


def binary_lines(file_input: Any) -> Iterator[bytes]:
    """Input lines as bytes: a byte that is not UTF-8 is then one bad line, not a crash of the reader."""
    source = file_input if file_input is not None else sys.stdin
    binary = getattr(source, "buffer", None)
    if binary is not None:
        yield from binary
        return
    for line in source:  # a text stream without bytes beneath it (a test's StringIO)
        if isinstance(line, bytes):
            yield line
            continue
        try:
            yield line.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            yield line.encode("utf-8", "surrogatepass")


def bad_line_record(number: int, line: bytes) -> dict[str, Any]:
    """What a rejection keeps of a line that could not be read: an escaped preview anyone can read, and the
    raw bytes as base64 (both bounded)."""
    raw = line.rstrip(b"\r\n")
    kept = {
        "line_number": number,
        "line": raw[: PREVIEW_CHARS * 4].decode("utf-8", "backslashreplace")[:PREVIEW_CHARS],
        "line_base64": base64.b64encode(raw[:KEPT_BYTES]).decode("ascii"),
        "line_bytes": len(raw),
    }
    if len(raw) > KEPT_BYTES:
        kept["line_truncated"] = True
    return kept


class LenientReader(SingerReader):
    """Reads Singer messages; a line that cannot be used is rejected with its line number, not fatal."""

    def __init__(self, on_bad_line: Any) -> None:
        super().__init__()
        self.on_bad_line = on_bad_line
        self.line_number = 0

    def deserialize_json(self, line: bytes) -> dict:  # type: ignore[override]
        self.line_number += 1
        try:
            value = jsonio.loads(line)
        except jsonio.JSONDecodeError as exc:
            self.on_bad_line(self.line_number, line, jsonio.unreadable(line, exc))
            return {"type": "_INVALID"}
        if not isinstance(value, dict):
            self.on_bad_line(
                self.line_number, line, f"a Singer message must be a JSON object, got {type(value).__name__}"
            )
            return {"type": "_INVALID"}
        # Counting brackets is cheap and bounds the depth; only a line with many of them is walked.
        if line.count(b"{") + line.count(b"[") > MAX_NESTING:
            depth = nesting_depth(value, MAX_NESTING)
            if depth > MAX_NESTING:
                self.on_bad_line(
                    self.line_number, line, f"nested more than {MAX_NESTING} levels deep (the most accepted)"
                )
                return {"type": "_INVALID"}
        return value

    @staticmethod
    def assert_line_requires(line_dict: dict, requires: set[str]) -> None:
        missing = sorted(requires - set(line_dict))
        if not missing:
            return
        if requires == {"properties"}:
            raise InvalidInputLine("its schema has no 'properties'")
        kind = line_dict.get("type")
        what = f"a {kind} message" if isinstance(kind, str) else "a Singer message"
        raise InvalidInputLine(f"{what} needs {', '.join(map(repr, missing))}; it has {sorted(line_dict)}")

    def process_lines(self, file_input: Any, callbacks: dict) -> Counter[str]:
        """As singer-sdk's, but a message that breaks the protocol alone (a missing key, an unknown type)
        is rejected with its line number instead of ending the run and the records after it."""
        stats: Counter[str] = Counter()
        for line in binary_lines(file_input):
            self._current_message = line  # type: ignore[assignment]  # singer-sdk keeps the raw line: bytes here
            message = self.deserialize_json(line)
            kind = message.get("type")
            if kind == "_INVALID":
                continue
            try:
                self.assert_line_requires(message, {"type"})
                callback = callbacks.get(kind)
                if callback is None:
                    raise InvalidInputLine(f"unknown message type {kind!r}")
                callback(message)
            except InvalidInputLine as exc:
                self.on_bad_line(self.line_number, line, str(exc))
                continue
            stats[str(kind)] += 1
        return stats


class ConnectorTarget(ConnectorPlugin, Target):
    """A target whose sinks are the destination templates of one connection."""

    default_sink_class = TemplateSink
    fatal_errors = (ConnectorError, MissingKeyPropertiesError, RecordsWithoutSchemaException)

    @classmethod
    def append_builtin_config(cls, config_jsonschema: dict) -> None:
        """singer-sdk's settings, less those that mean nothing to an API target: record metadata (never
        sent), load methods (an API has no table to overwrite), batch_size_rows (``batch_records``)."""
        super().append_builtin_config(config_jsonschema)
        for name in UNUSED_SDK_SETTINGS:
            config_jsonschema["properties"].pop(name, None)

    def __init__(self, *args: Any, config: Any = None, **kwargs: Any) -> None:
        self._outcomes: Outcomes | None = None
        self._change_tracking: changes.ChangeTracking | None = None
        self._emitted_state: dict | None = None
        self.drains = 0  # batches sent so far: a STATE may follow each
        self._finished = False
        self._started = False
        # A run stopped by an error still closes its files and says what happened.
        finish_before_exit(self.finish)
        kwargs.setdefault("message_reader", LenientReader(self._bad_line))
        super().__init__(*args, config=config, **kwargs)
        # A webhook is retried as the API's requests are (max_attempts, max_backoff_seconds).
        self._webhooks = webhook.webhook_configs(
            self.config, configured_retry(self.connection.retry, self.config)
        )
        self._started = True  # a config refused before this point has nothing to finish

    @property
    def dry_run(self) -> bool:
        return bool(self.config.get("dry_run"))

    @property
    def capture_responses(self) -> bool:
        return bool(self.config.get("responses_path"))

    @property
    def outcomes(self) -> Outcomes:
        if self._outcomes is None:
            max_rejected = self.config.get("max_rejected")
            self._outcomes = Outcomes(
                self.config.get("rejected_path", "rejected.jsonl"),
                self.config.get("responses_path"),
                self.config.get("requests_path"),
                int(max_rejected) if max_rejected is not None else None,
                {hook.setting: webhook.Webhook(hook) for hook in self._webhooks},
            )
        return self._outcomes

    @property
    def change_tracking(self) -> changes.ChangeTracking:
        if self._change_tracking is None:
            self._change_tracking = changes.ChangeTracking(self.config, self.connection.name, self.dry_run)
        return self._change_tracking

    @property
    def client(self) -> ApiClient:
        if self._client is None:
            concurrency = int(
                self.config.get("concurrency")
                or max((s.concurrency for s in self.connection.sinks.values()), default=8)
            )
            self._client = self.make_client(
                need_credentials=not self.dry_run, max_connections=max(concurrency, 4)
            )
        return self._client

    def sink_template_for(self, stream_name: str) -> SinkTemplate:
        mapping = self.config.get("stream_sinks") or {}
        name = mapping.get(stream_name) or self.config.get("sink") or stream_name
        try:
            return self.connection.sinks[name]
        except KeyError:
            known = ", ".join(sorted(self.connection.sinks))
            where = (
                f"`stream_sinks` maps it to {name!r}"
                if stream_name in mapping
                else f"`sink` is {name!r}"
                if self.config.get("sink")
                else "neither `stream_sinks` nor `sink` names one, and no sink has the stream's name"
            )
            raise ConnectorError(
                f"no sink {name!r} for stream {stream_name!r} ({where}): map the stream in the "
                f'`stream_sinks` setting, e.g. {{"{stream_name}": "SINK"}}, or set `sink` for every stream; '
                f"sinks: {known}"
            ) from None

    def _bad_line(self, number: int, line: bytes, error: str) -> None:
        logger.error("input line %d rejected: %s", number, error)
        self.outcomes.reject(
            "(input)",
            bad_line_record(number, line),
            error=f"line {number}: {error}",
            kind="bad_input",
        )

    def _process_record_message(self, message_dict: dict) -> None:
        """Protocol violations stop the run, after every record before them got its outcome."""
        self._assert_line_requires(message_dict, requires={"stream", "record"})
        stream = message_dict["stream"]
        if stream not in self.mapper.stream_maps:
            error = f"RECORD for stream {stream!r} arrived before its SCHEMA message"
            self._stop_on(message_dict, "no_schema", error)
            raise RecordsWithoutSchemaException(error)
        drains = self.drains
        try:
            super()._process_record_message(message_dict)
        except MissingKeyPropertiesError as exc:
            self._stop_on(message_dict, "missing_key", str(exc))
            raise
        if self.drains != drains:
            self._checkpoint()

    def _process_schema_message(self, message_dict: dict) -> None:
        """A SCHEMA the target cannot use stops the run (after the records before it): its stream's records
        could not be checked or sent."""
        try:
            super()._process_schema_message(message_dict)
        except ConnectorError as exc:  # no sink for its stream: a config error
            line = getattr(self.message_reader, "line_number", "?")
            error = f"line {line}: {exc}"
            self._stop_on(message_dict, None, error)
            raise ConnectorError(error) from None
        except InvalidInputLine as exc:
            line = getattr(self.message_reader, "line_number", "?")
            error = f"line {line}: the SCHEMA message for stream {message_dict.get('stream')!r} is unusable: {exc}"
            self._stop_on(message_dict, None, error)  # a schema is no record: nothing to reject
            raise ConnectorError(error) from None

    def _process_state_message(self, message_dict: dict) -> None:
        super()._process_state_message(message_dict)
        self._checkpoint()

    def _checkpoint(self) -> None:
        """Pass the latest STATE on as soon as every record received before it has its outcome (all sinks
        drained), rather than only at the end of the input or singer-sdk's 5-minute drain."""
        state = sdk_compat.latest_state(self)
        if state is None or state == self._emitted_state:
            return
        if any(sink.current_size for sink in sdk_compat.sinks_holding_records(self)):
            return
        self._write_state_message(copy.deepcopy(state))

    def _write_state_message(self, state: dict) -> None:
        if state == self._emitted_state:
            return  # the end-of-input drain repeats the last one
        if self._outcomes is not None:
            self._outcomes.flush()  # a STATE covers outcomes written outside a batch too (bad input lines)
        self._emitted_state = state
        super()._write_state_message(state)

    def _stop_on(self, message: dict, kind: str | None, error: str) -> None:
        """Before a protocol error stops the run: every record before it gets its outcome (and the record
        that broke the protocol is rejected with ``kind``, if it is one)."""
        self.drain_all()
        if kind is not None:
            self.outcomes.reject(str(message.get("stream")), message.get("record"), kind=kind, error=error)
        self.outcomes.flush()

    def process_endofpipe(self) -> None:
        super().process_endofpipe()
        self.finish()
        undelivered = self._outcomes.undelivered() if self._outcomes is not None else []
        if undelivered:  # said last, and the exit status says it too: the run is not what was asked
            raise ConnectorError("; ".join(undelivered))

    def _handle_termination(self, signum: int, frame: Any) -> None:
        if self._outcomes is not None:
            self._outcomes.stop()  # no waits between webhook attempts either
        super()._handle_termination(signum, frame)

    def finish(self) -> None:
        """Close the outcome files, log the summary, close the client: at the end of the input, or at exit
        when the run stopped on an error (harmless to call again)."""
        if self._finished or not self._started:
            return
        self._finished = True
        for sink in sdk_compat.sinks_holding_records(self):
            sink.stop_sending()  # a run stopping early: requests on the wire finish and write their outcome
        if self._outcomes is not None:
            self._outcomes.close()
            summary = self._outcomes.summary()
            if self._client is not None:
                summary["http"] = self._client.stats.as_dict()
            logger.info("Target summary: %s", json.dumps(summary))
            for report in self._outcomes.undelivered():
                logger.error("%s", report)
            sys.stderr.flush()
        if self._client is not None:
            self._client.close()
        if self._change_tracking is not None:
            self._change_tracking.close()


def build_target_class(connection: Connection) -> type[ConnectorTarget]:
    return build_plugin_class(ConnectorTarget, connection, "target", TARGET_SETTINGS)
