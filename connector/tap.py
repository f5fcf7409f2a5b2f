"""The read side: every source template of a connection becomes a singer-sdk stream of one tap.

Streams subclass singer-sdk's plain ``Stream`` (catalog, selection, state, stream maps, metrics) and
take their records from the engine's shared ``ApiClient`` (httpx, budget, retries).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from collections.abc import Generator, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, ClassVar

from singer_sdk import Stream, Tap, metrics
from singer_sdk.mapper import SameRecordTransform
from singer_sdk.singerlib import RecordMessage

from connector import batch_output, jsonio, sdk_compat
from connector.bodies import encode
from connector.builder import BuiltRequest, RequestBuilder
from connector.errors import ConnectorError, HTTPStatusError
from connector.http import ApiClient, Response
from connector.incremental import Incremental, windows
from connector.instants import instant_key, to_datetime
from connector.pagination import PageRequest, Paginator
from connector.plugin import ConnectorPlugin, build_plugin_class
from connector.records import RecordCheck, mark_unwritable
from connector.render import compile_text, dot_path
from connector.responses import ResponseRules
from connector.secrets import REDACTOR
from connector.singer_io import FastWriter
from connector.sync_metrics import sync_timer
from connector.templates import Connection, StreamTemplate
from connector.throttle import Spacing
from connector.transform import Transformer

logger = logging.getLogger("connector.tap")


class StreamOrderError(ConnectorError):
    """A stream declared ascending went backwards: STATE printed before could skip records on resume."""


class TemplateStream(Stream):
    """One source template as a Singer stream."""

    template: ClassVar[StreamTemplate]
    STATE_MSG_FREQUENCY = 1000
    check_sorted = False  # the engine decides when a bookmark moves; see _increment_stream_state

    def __init__(self, tap: ConnectorTap) -> None:
        template = self.template
        super().__init__(tap, schema=template.schema, name=template.name)
        self.primary_keys = template.primary_key
        self.replication_key = template.replication_key
        if template.parent and not template.is_incremental:
            # Nothing to resume per parent: one state for the stream. Otherwise singer-sdk keeps a partition per
            # parent record and prints every one of them after each parent (output growing as the square of
            # the parents), and copies the parent's fields into child records that lack a field of that name.
            self.state_partitioning_keys = []
        self.connector_tap = tap
        self._pending: dict[
            str, tuple[Any, Any]
        ] = {}  # partition -> (value, instant_key) not yet checkpointed
        self._newest: dict[str, Any] = {}
        self._last: dict[str, tuple[Any, Any]] = {}  # partition -> (value, instant_key) of the last record
        self._records_getter = dot_path(template.records)
        self._schema_keys = frozenset(template.schema.get("properties", {}))
        self.record_check = RecordCheck(template.name, template.schema, template.primary_key)
        self._fast: bool | None = None
        self._batch_deselected: frozenset[str] | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._builder: RequestBuilder | None = None  # needs the client's origin: made on first read
        self._rules = ResponseRules(template.on_response)
        self._transformer = Transformer(template.transform)
        self._pace = Spacing(template.requests_per_second) if template.requests_per_second else None
        self._method = ""
        incremental = template.incremental if template.is_incremental else None
        self._incremental: Incremental | None = incremental
        self._unit = incremental.unit() if incremental else "epoch_seconds"
        self._start = compile_text(incremental.start) if incremental and incremental.start else None
        self._end = compile_text(incremental.end) if incremental and incremental.end else None

    # -- output: skip singer-sdk's per-record type conformance when it can change nothing

    def _fast_path(self) -> bool:
        """True when records can be written as parsed: one identity stream map that flattens nothing,
        every property selected. Any mapper that could change a record takes singer-sdk's own path.
        CONNECTOR_FAST_PATH=off takes it always (to compare the two)."""
        if self._fast is None:
            mask = self.mask
            self._fast = (
                os.environ.get("CONNECTOR_FAST_PATH", "on") != "off"
                and len(self.stream_maps) == 1
                and type(self.stream_maps[0]) is SameRecordTransform
                and self.stream_maps[0].stream_alias == self.name
                and not self.stream_maps[0].flattening_enabled
                and all(mask.get(("properties", name), True) for name in self._schema_keys)
            )
        return self._fast

    def _generate_record_messages(self, record: dict) -> Generator[RecordMessage, None, None]:
        if self.template.partitions is not None and "partition" not in self._schema_keys:
            record.pop("partition", None)  # singer-sdk copies the partition context into each record
        # A record parsed from JSON whose top-level keys the schema declares is already conformant:
        # conforming it again costs ~100 us per record (most of a sync's CPU). Anything else takes the SDK path.
        if self._fast_path() and self._schema_keys.issuperset(record):
            yield RecordMessage(
                stream=self.name,
                record=record,
                version=sdk_compat.stream_version(self),
                time_extracted=dt.datetime.now(dt.timezone.utc),
            )
            return
        yield from super()._generate_record_messages(record)

    def post_process(self, row: dict, context: Mapping[str, Any] | None = None) -> dict | None:
        if self._batch_deselected is None:
            self._batch_deselected = batch_output.deselected_properties(
                self.config, self.mask, self._schema_keys
            )
        if self._batch_deselected:  # (only with batch_config: the RECORD path drops them itself)
            return {k: v for k, v in row.items() if k not in self._batch_deselected}
        return row

    def get_sync_timer(self) -> metrics.Timer:
        return sync_timer(self.name)  # a stream stopped after its one record in --test succeeded

    @property
    def is_sorted(self) -> bool:
        # The engine moves bookmarks itself (only to safe values); singer-sdk stores what it is given.
        return self.template.is_incremental

    @property
    def partitions(self) -> list[dict] | None:
        if self.template.partitions is None:
            return None
        values = self.template.partitions.render({"config": self.config})
        if not isinstance(values, list):
            raise ConnectorError(
                f"stream {self.name}: partitions.values must render to a list, got {type(values).__name__}"
            )
        return [{"partition": value} for value in values]

    def generate_child_contexts(
        self, record: dict, context: Mapping[str, Any] | None
    ) -> Iterable[dict | None]:
        if self.child_streams:  # nothing to compute for the (many) streams without children
            yield self.get_child_context(record, context)

    def get_child_context(self, record: dict, context: Mapping[str, Any] | None) -> dict | None:
        fields: set[str] = set()
        for child in self.child_streams:
            fields |= set(child.template.parent_fields or self.template.primary_key)  # type: ignore[attr-defined]
        return {name: record.get(name) for name in sorted(fields)}

    def _scope(self, context: Mapping[str, Any] | None) -> dict[str, Any]:
        context = context or {}
        if self.template.partitions is not None:
            return {"config": self.config, "partition": context.get("partition"), "parent": {}}
        return {"config": self.config, "parent": context}

    # -- state: bookmarks move only to values a resumed run can safely start from

    def _partition(self, context: Mapping[str, Any] | None) -> str:
        return json.dumps(context, sort_keys=True, default=str) if context else ""

    def _set_bookmark(self, value: Any, context: Mapping[str, Any] | None) -> None:
        key = self.replication_key
        assert key is not None
        self.state_manager.increment_state({key: value}, context=context, replication_key=key)

    def _increment_stream_state(
        self, latest_record: dict, *, context: Mapping[str, Any] | None = None
    ) -> None:
        key = self.replication_key
        if not key or not latest_record or self._incremental is None:
            return
        partition = self._partition(context)
        value = latest_record.get(key)
        if value is None:
            return
        if not self._incremental.checkpoints_mid_stream:
            newest = self._newest.get(partition)
            if newest is None or instant_key(value, self._unit) > instant_key(newest, self._unit):
                self._newest[partition] = value
            return
        # Values compare as instants: '10:00Z' and '12:00+02:00' are one value written two ways.
        order = instant_key(value, self._unit)
        last = self._last.get(partition)
        if last is not None and order < last[1]:
            raise StreamOrderError(
                f"stream {self.name}: declared ascending by {key}, but {value!r} came after {last[0]!r}; "
                "a STATE printed during this run could skip records on resume. If the API does not "
                "sort by this field, declare incremental.order: unordered (or descending)"
            )
        # Never checkpoint inside a run of records sharing one value: a resume starts after that value.
        pending = self._pending.get(partition)
        if pending is not None and pending[1] != order:
            self._set_bookmark(pending[0], context)
        self._last[partition] = self._pending[partition] = (value, order)

    def _finish_pass(self, context: Mapping[str, Any] | None, start: Any, window_end: Any) -> None:
        """A pass (or one window) read completely: move the bookmark as far as is now safe."""
        partition = self._partition(context)
        spec = self._incremental
        if spec is None:
            return
        pending = self._pending.pop(partition, None)
        value = pending[0] if pending is not None else None
        if window_end is not None and spec.window is not None:
            value = window_end.isoformat() if hasattr(window_end, "isoformat") else window_end
        elif not spec.checkpoints_mid_stream:
            value = self._newest.pop(partition, None)
        if value is None:
            return
        if start is not None and instant_key(value, self._unit) < instant_key(start, self._unit):
            return  # never move a bookmark backwards
        self._set_bookmark(value, context)

    # -- reading

    def _configured_start(self) -> Any:
        """Where the user asked reading to begin (incremental.start, else the start_date setting)."""
        start = self._start.render({"config": self.config}) if self._start is not None else None
        if start in ("", None):
            start = self.config.get("start_date") if self._start is None else None
        if isinstance(start, dt.datetime):
            start = start.isoformat()
        return start

    def _start_value(self, context: Mapping[str, Any] | None) -> Any:
        value = self.get_starting_replication_key_value(context)
        start = self._configured_start()
        if value is None or (start and instant_key(start, self._unit) > instant_key(value, self._unit)):
            value = start
        if isinstance(value, dt.datetime):
            value = value.isoformat()
        return value

    def _lower_bound(self, start: Any) -> Any:
        """The start of the range read: the lookback before the bookmark, but never before the configured start
        (a first sync reads from the start date, not a lookback before it)."""
        lower = self._incremental.start_after_lookback(start) if self._incremental else start
        floor = self._configured_start()
        if lower is not None and floor and instant_key(lower, self._unit) < instant_key(floor, self._unit):
            return floor
        return lower

    def _fetcher(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"fetch-{self.name}")
        return self._pool

    def _fetch_page(
        self, request: BuiltRequest, target: str, params: dict | None
    ) -> tuple[Response | None, Any]:
        """Send one page's request; (None, None) when a response rule says to ignore the answer."""
        client = self.connector_tap.client
        attempts = 0
        while True:
            attempts += 1
            content, headers = encode(request.body, request.body_format, request.headers)
            response = client.send(
                self._method, target, params=params, headers=headers, content=content, pace=self._pace
            )
            body = self._parse(response) if response.is_success or self._rules.needs_body else None
            decision = (
                self._rules.decide(response.status_code, body, response.headers) if self._rules else None
            )
            if decision is None:
                client.raise_for_status(response)
                return response, body
            action, message = decision
            where = f"{self._method} {response.request.url.path} -> {response.status_code}"
            if action == "accept":
                return response, body
            if action == "ignore":
                logger.warning(
                    "stream %s: %s ignored by a response rule%s",
                    self.name,
                    where,
                    f": {message}" if message else "",
                )
                return None, None
            if action == "retry" and attempts < client.retry.max_attempts:
                client.pause(attempts, f"stream {self.name}: {where}{': ' + message if message else ''}")
                continue
            detail = message or client.error_message(response)
            raise ConnectorError(f"stream {self.name}: {where}: {detail}")

    def _parse(self, response: Response) -> Any:
        if not response.content:
            return None
        try:
            if self.template.response_format == "jsonl":
                return [jsonio.loads(line) for line in response.content.splitlines() if line.strip()]
            return jsonio.loads(response.content)
        except jsonio.JSONDecodeError as exc:
            if not response.is_success:
                return None  # an error page: the status decides, with the API's text as message
            lenient = jsonio.loads_lenient(response.content)  # JSON but for lone surrogate escapes?
            marked = mark_unwritable(lenient, self._records_getter) if lenient is not None else None
            if marked is not None:
                return marked
            raise ConnectorError(
                f"stream {self.name}: {self._method} {response.request.url.path} returned invalid JSON "
                f"({exc}); first bytes: {REDACTOR.shorten(repr(response.content[:400]), 80)}"
            ) from exc

    def _records_of(self, body: Any) -> list[Any]:
        records = self._records_getter(body)
        if records is None:
            return []
        if isinstance(records, dict):
            return [records]
        if not isinstance(records, list):
            raise ConnectorError(
                f"stream {self.name}: records path {self.template.records!r} is a {type(records).__name__}, not a list"
            )
        return records

    def get_records(self, context: Mapping[str, Any] | None) -> Iterable[dict]:
        template = self.template
        if template.partitions is not None and not context:
            return  # no partition values: nothing to read (singer-sdk syncs once without a context)
        client = self.connector_tap.client
        if self._builder is None:
            self._builder = RequestBuilder(template.request, client.origin, self.config)
        scope = self._scope(context)
        spec = self._incremental
        if spec is None:
            yield from self._read_range(context, scope, None, None)
            return
        start = self._start_value(context)
        self._last.pop(self._partition(context), None)
        end = self._end.render({"config": self.config}) if self._end is not None else None
        end_instant = (
            to_datetime(end, self._unit) if end not in (None, "") else dt.datetime.now(dt.timezone.utc)
        )
        for window in windows(spec, self._lower_bound(start), end_instant):
            yield from self._read_range(context, scope, window.start, window.end)
            self._finish_pass(context, start, window.end if spec.window is not None else None)

    def _read_range(
        self, context: Mapping[str, Any] | None, scope: dict[str, Any], lower: Any, upper: Any
    ) -> Iterable[dict]:
        template = self.template
        client = self.connector_tap.client
        spec = self._incremental
        assert self._builder is not None
        bounds = {
            "start": spec.send(lower) if spec else None,
            "end": spec.send_end(upper) if spec and upper is not None else None,
        }
        pagination = template.pagination
        paginator: Paginator | None = None
        key = template.replication_key
        pk = template.primary_key
        restart_after = pagination.restart_after if spec and spec.checkpoints_mid_stream else None
        fetch = self._fetcher()

        def build(page: PageRequest) -> tuple[BuiltRequest, str, dict | None]:
            variables = {**scope, "window": bounds, "bookmark": bounds["start"], "page": page}
            built = self._builder.build(variables, body_context=variables)  # type: ignore[union-attr]
            self._method = built.method
            params = dict(built.params)
            if spec is not None and spec.param and bounds["start"] is not None:
                params[spec.param] = bounds["start"]
            if spec is not None and spec.end_param and bounds["end"] is not None:
                params[spec.end_param] = bounds["end"]
            if page.url:
                return built, page.url, None
            if pagination.in_ == "body":
                body = dict(built.body) if isinstance(built.body, dict) else {}
                body.update(page.params)
                built.body = body
            else:
                params.update(page.params)
            return built, built.url, params

        def request(page: PageRequest) -> Future:
            built, target, params = build(page)
            return fetch.submit(self._fetch_page, built, target, params)

        first_built = self._builder.build(
            {**scope, "window": bounds, "bookmark": bounds["start"], "page": None},
            body_context={**scope, "window": bounds, "bookmark": bounds["start"], "page": None},
        )
        paginator = Paginator.for_params(
            pagination, client.origin, first_built.params, f"stream {self.name}: "
        )
        first = paginator.first()
        pending = request(first)
        page: PageRequest | None = first
        # Ascending streams remember the records of the last value emitted (as an instant: one value may be
        # written in several offsets): a page that starts again at that value (an inclusive next page, a
        # restarted cursor) does not emit them twice.
        dedupe = bool(spec is not None and spec.checkpoints_mid_stream and key and pk)
        boundary: Any = None
        emitted: set = set()
        # The replication values of this pass: the last one read, and the one before its run of ties. A restart
        # begins after the latter, so a run of ties that fills whole pages starts the next pass at its front.
        run_value: Any = None
        run_key: Any = None
        before_run: Any = None
        floor = lower  # where this pass starts, as a replication value
        transformer = self._transformer
        while page is not None:
            response, body = pending.result()
            if response is None:
                break  # ignored by a response rule: nothing more to read here
            records = self._records_of(body)  # all of them: the paginator counts what the API sent
            next_page = paginator.next(page, response, body, records, scope)
            if transformer:  # a record it drops becomes None, so that the others keep their positions
                records = [transformer.apply(r, scope) if isinstance(r, dict) else r for r in records]
            where = f"page {page.number} ({self._method} {response.request.url.path})"
            records = self.record_check.kept(records, where, logger)
            if restart_after and key:
                for record in records:
                    value = record.get(key)
                    order = instant_key(value, self._unit)
                    if order != run_key:
                        before_run, run_value, run_key = run_value, value, order
            # Move the replication cursor instead of paging deeper (deep pages cost more, or are capped). It
            # must move forward: a run of ties longer than a whole pass can only be paged through.
            if (
                next_page is not None
                and restart_after
                and page.number >= restart_after
                and before_run is not None
                and (floor is None or instant_key(before_run, self._unit) > instant_key(floor, self._unit))
            ):
                floor = before_run
                bounds["start"] = spec.send(before_run)  # type: ignore[union-attr]
                next_page = paginator.first()
                run_value = before_run = run_key = None
            if next_page is not None:
                pending = request(next_page)
            if not dedupe:
                yield from records
            else:
                for record in records:
                    value = instant_key(record.get(key), self._unit)
                    identity = tuple(record.get(k) for k in pk)
                    if value != boundary:
                        boundary, emitted = value, {identity}
                    elif identity in emitted:
                        continue
                    else:
                        emitted.add(identity)
                    yield record
            page = next_page


class ConnectorTap(ConnectorPlugin, Tap):
    """A tap whose streams are the source templates of one connection."""

    message_writer_class = FastWriter

    @property
    def client(self) -> ApiClient:
        if self._client is None:
            self._client = self.make_client()
        return self._client

    def discover_streams(self) -> list[Stream]:
        classes = stream_classes(self.connection)
        return [cls(self) for cls in classes.values()]

    @classmethod
    def cb_test(cls, *args: Any, **kwargs: Any) -> None:
        """``--test`` runs from a CLI callback, before ``invoke``: its failures end the same way."""
        with cls._one_line_errors():
            super().cb_test(*args, **kwargs)

    def run_connection_test(self) -> bool:  # type: ignore[misc]  # final in singer-sdk: listed in sdk_compat
        """``--test``: one record of every stream, as singer-sdk does, without the ERROR line singer-sdk logs
        for each stream it stops on purpose after that record; a real failure stops the test with one line."""
        quiet = _DeliberateAbortFilter()
        loggers = {stream.logger for stream in self.streams.values()}
        for stream_logger in loggers:
            stream_logger.addFilter(quiet)
        try:
            passed = super().run_connection_test()
        except HTTPStatusError as exc:
            raise ConnectorError(f"connection test failed: {exc}") from exc
        finally:
            for stream_logger in loggers:
                stream_logger.removeFilter(quiet)
            if self._client is not None:
                self._client.close()
        logger.info("Connection test passed: %d streams answered", len(self.streams))
        return passed

    def sync_all(self) -> None:  # type: ignore[misc]  # final in singer-sdk: listed in sdk_compat
        batch_output.check(self.config)
        try:
            super().sync_all()
        except HTTPStatusError as exc:
            raise ConnectorError(str(exc)) from exc
        finally:
            skipped = {
                s.name: dict(s.record_check.skipped)
                for s in self.streams.values()
                if isinstance(s, TemplateStream) and s.record_check.skipped
            }
            if skipped:
                logger.warning("Records skipped: %s", json.dumps(skipped))
            if self._client is not None:
                logger.info("HTTP summary: %s", json.dumps(self._client.stats.as_dict()))
                self._client.close()


class _DeliberateAbortFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("An unhandled error occurred while syncing")


def stream_classes(connection: Connection) -> dict[str, type[TemplateStream]]:
    classes: dict[str, type[TemplateStream]] = {}
    for name, template in connection.streams.items():
        classes[name] = type(
            f"{name.title().replace('_', '')}Stream", (TemplateStream,), {"template": template}
        )
    for name, template in connection.streams.items():
        if template.parent:
            classes[name].parent_stream_type = classes[template.parent]
    return classes


def build_tap_class(connection: Connection) -> type[ConnectorTap]:
    return build_plugin_class(ConnectorTap, connection, "tap")
