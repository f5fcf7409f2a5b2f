"""The read side: every source template of a connection becomes a singer-sdk stream of one tap.

Streams subclass singer-sdk's plain ``Stream`` (catalog, selection, state, stream maps, metrics) and
take their records from the engine's shared ``ApiClient`` (httpx, budget, retries).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import os
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from functools import cached_property
from typing import Any, ClassVar

from singer_sdk import Stream, Tap, metrics
from singer_sdk.mapper import SameRecordTransform
from singer_sdk.singerlib import RecordMessage

from connector import batch_output, jsonio, sdk_compat, streamparams
from connector.bodies import encode
from connector.builder import BuiltRequest, RequestBuilder
from connector.errors import ConnectorError, HTTPStatusError
from connector.http import ApiClient, Response
from connector.incremental import Incremental, windows
from connector.instants import instant_key, to_datetime
from connector.pagination import Known, PageRequest, Paginator
from connector.plugin import ConnectorPlugin, build_plugin_class
from connector.records import RecordCheck, mark_unwritable
from connector.render import compile_text, dot_path
from connector.responses import ResponseRules
from connector.secrets import REDACTOR
from connector.serverclock import ServerClock
from connector.singer_io import FastWriter
from connector.sync_metrics import sync_timer
from connector.templates import Connection, Setting, StreamTemplate
from connector.transform import Transformer

logger = logging.getLogger("connector.tap")


# The keys of the state partitions the engine makes: a value (or a batch of them) of `partitions`, the user's filters.
_PARTITION_KEYS = frozenset({"partition", "stream_params"})


class StreamOrderError(ConnectorError):
    """A stream declared ascending went backwards: STATE printed before could skip records on resume."""


class _EndAheadOfServer(Exception):
    """A range's end, taken from the local clock, lies past the API's present: read the range again."""


# How often one pass may start again because its list changed while it was read, without getting further.
MAX_UNSTEADY_READS = 5


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
        if (template.parent or template.partitions is not None) and not template.is_incremental:
            # Nothing to resume per parent or per value: one state for the stream. Otherwise singer-sdk keeps a
            # partition per parent record (or value) and prints every one of them after each (output growing as
            # the square of them), and copies the parent's fields into child records that lack a field of that name.
            self.state_partitioning_keys = []
        self.connector_tap = tap
        self._pending: dict[
            str, tuple[Any, Any]
        ] = {}  # partition -> (value, instant_key) not yet checkpointed
        self._newest: dict[str, Any] = {}
        self._last: dict[str, tuple[Any, Any]] = {}  # partition -> (value, instant_key) of the last record
        # partition -> (bookmark, context): safe to resume from, put into the state when a STATE is written
        self._safe: dict[str, tuple[Any, Mapping[str, Any] | None]] = {}
        self._records_getter = dot_path(template.records)
        self._schema_keys = frozenset(template.schema.get("properties", {}))
        self.record_check = RecordCheck(template.name, template.schema, template.primary_key)
        self._fast: bool | None = None
        self._batch_deselected: frozenset[str] | None = None
        self._builder: RequestBuilder | None = None  # needs the client's origin: made on first read
        self._rules = ResponseRules(template.on_response)
        self._transformer = Transformer(template.transform)
        self._pace = tap.spacings.get(template.requests_per_second, template.rate_shared)
        self._method = ""
        incremental = template.incremental if template.is_incremental else None
        self._incremental: Incremental | None = incremental
        self._unit = incremental.unit() if incremental else "epoch_seconds"
        self._start = compile_text(incremental.start) if incremental and incremental.start else None
        self._end = compile_text(incremental.end) if incremental and incremental.end else None
        self._ends: dict[str, tuple[dt.datetime, bool]] = {}  # partition -> (its range's end, vouched for)

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

    def _process_record(
        self,
        record: dict,
        child_context: Mapping[str, Any] | None = None,
        partition_context: Mapping[str, Any] | None = None,
    ) -> None:
        # singer-sdk copies a state partition's keys into records lacking them: a batch of ids or the user's
        # filters would become a field of every record (and take each off the fast path).
        if not partition_context and not self.child_streams:
            return  # nothing to copy into the record, no child to read for it
        if partition_context and not _PARTITION_KEYS.isdisjoint(partition_context):
            partition_context = {k: v for k, v in partition_context.items() if k not in _PARTITION_KEYS}
        super()._process_record(record, child_context=child_context, partition_context=partition_context)

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
        filters = self.connector_tap.stream_params.get(self.name)
        # A filtered read keeps a bookmark of its own: one moved past records the filter left out would
        # skip them once the filter changes or goes.
        own = {"stream_params": filters} if filters and self.template.is_incremental else {}
        spec = self.template.partitions
        if spec is None:
            return [own] if own else None
        # A setting the connection declares but the config leaves unset is None: no values, nothing read.
        declared = {s.name: None for s in self.connector_tap.connection.settings}
        values = spec.values.render({"config": {**declared, **self.config}})
        if values is None:
            values = []
        if not isinstance(values, list):
            raise ConnectorError(
                f"stream {self.name}: partitions.values must render to a list, got {type(values).__name__}"
            )
        for index, value in enumerate(values):
            if not isinstance(value, (str, int, float)) or isinstance(value, bool):
                raise ConnectorError(
                    f"stream {self.name}: partitions.values item {index} is a {type(value).__name__} "
                    f"({str(value)[:60]!r}); each value must be a string or a number"
                )
        values = list({str(value): value for value in values}.values())  # read a value listed twice once
        if spec.batch:
            values = [values[i : i + spec.batch] for i in range(0, len(values), spec.batch)]
        return [{"partition": value, **own} for value in values]

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
        return {"config": self.config, "parent": context if self.template.parent else {}}

    # -- state: bookmarks move only to values a resumed run can safely start from

    def _partition(self, context: Mapping[str, Any] | None) -> str:
        return json.dumps(context, sort_keys=True, default=str) if context else ""

    def _set_bookmark(self, value: Any, context: Mapping[str, Any] | None) -> None:
        key = self.replication_key
        assert key is not None
        self.state_manager.increment_state({key: value}, context=context, replication_key=key)

    def settle_bookmarks(self) -> None:
        """Put the safe bookmarks kept aside since the last STATE into the state (see _increment_stream_state)."""
        while self._safe:
            _, (value, context) = self._safe.popitem()
            self._set_bookmark(value, context)

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
        # Never checkpoint inside a run of records sharing one value: a resume starts after that value. The
        # bookmark is kept aside and put into the state only before a STATE is written (every 1000 records, at
        # a stream's end): moving it in singer-sdk's state for every record cost a microsecond each.
        pending = self._pending.get(partition)
        if pending is not None and pending[1] != order:
            if not self._safe:
                self.connector_tap.unsettled.add(self)
            self._safe[partition] = (pending[0], context)
        self._last[partition] = self._pending[partition] = (value, order)

    def _finish_pass(self, context: Mapping[str, Any] | None, start: Any, window_end: Any) -> None:
        """A pass (or one window) read completely: move the bookmark as far as is now safe."""
        self.settle_bookmarks()
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
        # The bookmark as the state holds it when this read begins. (singer-sdk's own starting value is only
        # written once a stream's sync has begun; a read sent ahead of its turn must see the same value.)
        value = None
        self.settle_bookmarks()
        if self.replication_method != "FULL_TABLE":  # (a catalog may ask for a full read)
            state = self.get_context_state(context)
            if state.get("replication_key") == self.replication_key:
                value = state.get("replication_key_value") or None
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
            if response.is_success and not self._rules:
                return response, _UNREAD  # parsed by the thread that takes the answer: see PageAnswer
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
        spec = self.template.partitions
        if spec is None:
            yield from self._read(context)
            return
        if not context or "partition" not in context:
            return  # no values (singer-sdk reads a stream without partitions once, unpartitioned)
        if spec.key is None:
            yield from self._read(context)
            return
        value = context["partition"]
        wanted = value if isinstance(value, list) else [value]
        seen: set[str] = set()
        for record in self._read(context):
            seen.add(str(record.get(spec.key)))
            yield record
        missing = [v for v in wanted if str(v) not in seen]
        if missing:
            logger.warning(
                "stream %s: no record with %s %s (not found, or not visible to these credentials)",
                self.name,
                spec.key,
                ", ".join(map(str, missing)),
            )

    def _read(self, context: Mapping[str, Any] | None) -> Iterable[dict]:
        scope = self._scope(context)
        spec = self._incremental
        if spec is None:
            yield from self._read_range(context, scope, None, None)
            return
        partition = self._partition(context)
        start, ranges = self._ranges(context)
        self._last.pop(partition, None)
        try:
            while True:
                try:
                    for window in ranges:
                        vouched = self._range_end(context)[1]
                        yield from self._read_range(context, scope, window.start, window.end, vouched)
                        self._finish_pass(context, start, window.end if spec.window is not None else None)
                    return
                except _EndAheadOfServer:
                    # Nothing of this range was emitted: read it again, to the server's present now known.
                    clock = self.connector_tap.client.clock
                    self._ends[partition] = (clock.now(), True)
                    logger.info(
                        "stream %s: the local clock runs ahead of the API's (its Date header): "
                        "this range now ends at the API's time",
                        self.name,
                    )
                    ranges = iter(windows(spec, window.start, self._ends[partition][0]))
        finally:
            self._ends.pop(partition, None)

    def _ranges(self, context: Mapping[str, Any] | None) -> tuple[Any, Iterator[Any]]:
        """Where an incremental read starts (the bookmark or the configured start), and the windows it reads."""
        spec = self._incremental
        assert spec is not None
        start = self._start_value(context)
        return start, iter(windows(spec, self._lower_bound(start), self._range_end(context)[0]))

    def _range_end(self, context: Mapping[str, Any] | None) -> tuple[dt.datetime, bool]:
        """Where this run's read of ``context`` ends (the template's ``end``, else the API's present), and
        whether that end is vouched for (the server's clock was known). Taken once per read, so that a read
        sent ahead of its turn asks for the same range."""
        partition = self._partition(context)
        known = self._ends.get(partition)
        if known is None:
            end = self._end.render({"config": self.config}) if self._end is not None else None
            if end not in (None, ""):
                known = (to_datetime(end, self._unit), True)
            else:
                clock = self.connector_tap.client.clock
                known = (clock.now(), clock.known)
            self._ends[partition] = known
        return known

    def _bounds(self, lower: Any, upper: Any) -> dict[str, Any]:
        spec = self._incremental
        return {
            "start": spec.send(lower) if spec else None,
            "end": spec.send_end(upper) if spec and upper is not None else None,
        }

    def _page_request(
        self, scope: dict[str, Any], bounds: dict[str, Any], page: PageRequest | None
    ) -> tuple[BuiltRequest, str, dict | None]:
        """The request for one page of a range (``page`` None: without the paging params, to read them)."""
        if self._builder is None:
            self._builder = RequestBuilder(
                self.template.request,
                self.connector_tap.client.origin,
                self.config,
                extra_params=self.connector_tap.stream_params.get(self.name),
            )
        spec = self._incremental
        variables = {**scope, "window": bounds, "bookmark": bounds["start"], "page": page}
        built = self._builder.build(variables, body_context=variables)
        self._method = built.method
        params = dict(built.params)
        if page is None:
            return built, built.url, params
        if spec is not None and spec.param and bounds["start"] is not None:
            params[spec.param] = bounds["start"]
        if spec is not None and spec.end_param and bounds["end"] is not None:
            params[spec.end_param] = bounds["end"]
        if page.url:
            return built, page.url, None
        if self.template.pagination.in_ == "body":
            body = dict(built.body) if isinstance(built.body, dict) else {}
            body.update(page.params)
            built.body = body
        else:
            params.update(page.params)
        return built, built.url, params

    def _send(self, request: tuple[BuiltRequest, str, dict | None]) -> Future:
        """Send one page's request from the run's fetching threads: its answer to come."""
        return PageAnswer(self.connector_tap.fetch_pool.submit(self._fetch_page, *request), self._parse)

    def _submit(self, scope: dict[str, Any], bounds: dict[str, Any], page: PageRequest) -> Future:
        return self._send(self._page_request(scope, bounds, page))

    def _first_page(
        self, scope: dict[str, Any], bounds: dict[str, Any]
    ) -> tuple[Paginator, PageRequest, tuple[BuiltRequest, str, dict | None]]:
        """A range's paginator, its first page and that page's request (whose identity tells a read sent
        ahead of its turn from another)."""
        _, _, params = self._page_request(scope, bounds, None)  # (the page size it asks for)
        paginator = Paginator.for_params(
            self.template.pagination, self.connector_tap.client.origin, params or {}, f"stream {self.name}: "
        )
        first = paginator.first()
        return paginator, first, self._page_request(scope, bounds, first)

    def first_request(self, context: Mapping[str, Any] | None) -> tuple[tuple, Future] | None:
        """Send the first page of this stream's read for ``context`` now, while other reads go on, as it
        would be sent when its turn comes: (the request's identity, its answer to come)."""
        scope = self._scope(context)
        lower = upper = None
        if self._incremental is not None:
            _, ranges = self._ranges(context)
            window = next(ranges, None)
            if window is None:
                return None
            lower, upper = window.start, window.end
        _, _, request = self._first_page(scope, self._bounds(lower, upper))
        return _identity(*request), self._send(request)

    def contexts_read_with(self, records: list[Any], context: Mapping[str, Any] | None) -> list[tuple]:
        """The child reads these records will lead to, in the order they will come: (stream, context)."""
        children = [c for c in self.child_streams if c.selected or c.has_selected_descendents]
        if not children:
            return []
        return [
            (child, self.get_child_context(record, context))
            for record in records
            if isinstance(record, dict)
            for child in children
        ]

    def _read_range(
        self,
        context: Mapping[str, Any] | None,
        scope: dict[str, Any],
        lower: Any,
        upper: Any,
        vouched: bool = True,
    ) -> Iterable[dict]:
        template = self.template
        spec = self._incremental
        bounds = self._bounds(lower, upper)
        pagination = template.pagination
        key = template.replication_key
        pk = template.primary_key
        restart_after = pagination.restart_after if spec and spec.checkpoints_mid_stream else None
        width = self.connector_tap.max_concurrency
        # Pages requested before their turn, by page key: those the answers so far prove exist (a page count,
        # a record total). Answers are still read in page order, and a page is only used when paging reaches
        # it by the ordinary rules; anything else is dropped.
        ahead: dict[tuple, Future] = {}

        def request(page: PageRequest) -> Future:
            early = ahead.pop(page.key(), None)
            if early is not None:
                return early
            drop(ahead)  # paging went elsewhere than foreseen: what was requested early is not used
            return self._submit(scope, bounds, page)

        def plan(page: PageRequest, known: Known, cap: int | None, step: int = 2) -> None:
            """Request the pages from ``step`` pages after ``page`` on that what is ``known`` says exist, up to
            ``width`` in flight, never past ``cap`` (where a restart may begin a new pass)."""
            while len(ahead) < width - 1:
                later = paginator.later(page, known, step)
                if later is None or (cap is not None and later.number > cap):
                    return
                if later.key() not in ahead:
                    ahead[later.key()] = self._submit(scope, bounds, later)
                step += 1

        paginator, first, first_request = self._first_page(scope, bounds)
        # The first page may have been sent while earlier streams were read: its answer is used if it was
        # the same request and it is the whole pass (an older first page followed by newer ones could miss
        # records that moved between them).
        reads = self.connector_tap.reads
        pending = reads.take(self.name, _identity(*first_request))
        early_first = pending is not None
        if pending is None:
            pending = self._send(first_request)
        if context is None or self.template.partitions is not None:
            reads.after(self)
        page: PageRequest | None = first
        cap = restart_after if restart_after and key else None
        # Ascending streams remember the records of the last value emitted (as an instant: one value may be
        # written in several offsets): a page that starts again at that value (an inclusive next page, a
        # restarted cursor) does not emit them twice.
        dedupe = bool(spec is not None and spec.checkpoints_mid_stream and key and pk)
        # A pass reads one list only if nothing moved in it meanwhile: each page's record total must be the
        # first page's. When it is not, rows may have shifted across a page boundary (one removed before the
        # pages read moves the next page's first row onto the page already read). An ascending stream then
        # reads on from its last safe value; any other reads the pass again, skipping the keys it emitted.
        counted = pagination.total is not None
        first_total: int | None = None
        unsteady = 0  # passes started again without getting further
        seen_keys: set | None = set() if counted and pk and not dedupe else None
        boundary: Any = None
        emitted: set = set()
        # The replication values of this pass: the last one read, and the one before its run of ties. A restart
        # begins after the latter, so a run of ties that fills whole pages starts the next pass at its front.
        run_value: Any = None
        run_key: Any = None
        before_run: Any = None
        floor = lower  # where this pass starts, as a replication value

        def move_floor() -> bool:
            """Start a new pass after the value before the last run of ties read, if that is further on than
            where this pass started (a run of ties longer than a whole pass can only be paged through)."""
            nonlocal floor, run_value, before_run, run_key
            if before_run is None or (
                floor is not None and instant_key(before_run, self._unit) <= instant_key(floor, self._unit)
            ):
                return False
            floor = before_run
            bounds["start"] = spec.send(before_run)  # type: ignore[union-attr]
            run_value = before_run = run_key = None
            return True

        transformer = self._transformer
        try:
            while page is not None:
                response, body = pending.result()
                if response is None:
                    break  # ignored by a response rule: nothing more to read here
                if (
                    not vouched
                    and page.number == 1
                    and upper is not None
                    and ServerClock.ahead(to_datetime(upper, self._unit), response.headers.get("date"))
                ):
                    raise _EndAheadOfServer
                records = self._records_of(body)  # all of them: the paginator counts what the API sent
                next_page = paginator.next(page, response, body, records, scope)
                if early_first:
                    early_first = False
                    if next_page is not None:  # more pages to come: read the first again, with them
                        page = paginator.first()
                        pending = self._submit(scope, bounds, page)
                        continue
                if counted:
                    total = paginator.known(body).records
                    if page.number == 1:
                        first_total = total
                    elif total is not None and first_total is not None and total != first_total:
                        drop(ahead)
                        unsteady += 1
                        changed = (
                            f"stream {self.name}: the list changed while it was read (page {page.number} "
                            f"counts {total} records, page 1 counted {first_total})"
                        )
                        if dedupe and move_floor():
                            unsteady = 0
                        elif not dedupe and seen_keys is None:
                            raise ConnectorError(
                                f"{changed}: rows may have shifted past a page boundary, and without a "
                                "primary key the stream cannot be read again without duplicates; stopping"
                            )
                        if unsteady > MAX_UNSTEADY_READS:
                            raise ConnectorError(
                                f"{changed}, and kept changing over {MAX_UNSTEADY_READS} new reads; stopping "
                                "rather than risk missing records that moved between pages"
                            )
                        logger.info(
                            "%s: rows may have shifted past a page boundary; reading again %s",
                            changed,
                            f"after {floor!r}" if dedupe and floor is not None else "from the first page",
                        )
                        run_value = before_run = run_key = None
                        page = paginator.first()
                        pending = self._submit(scope, bounds, page)
                        continue
                if transformer:  # a record it drops becomes None, so that the others keep their positions
                    records = [transformer.apply(r, scope) if isinstance(r, dict) else r for r in records]
                where = f"page {page.number} ({self._method} {response.request.url.path})"
                records = self.record_check.kept(records, where, logger)
                if self.child_streams:
                    reads.queue(self.contexts_read_with(records, context))
                if (restart_after or counted) and key:
                    for record in records:
                        value = record.get(key)
                        order = instant_key(value, self._unit)
                        if order != run_key:
                            before_run, run_value, run_key = run_value, value, order
                restarted = False
                # Move the replication cursor instead of paging deeper (deep pages cost more, or are capped).
                if next_page is not None and restart_after and page.number >= restart_after and move_floor():
                    drop(ahead)
                    next_page = paginator.first()
                    restarted = True
                if next_page is not None:
                    pending = request(next_page)
                    if width > 1 and restarted:
                        # The new pass reads on from about here: the pages the old count says are left are
                        # requested with its first (its own count confirms them, or paging drops them).
                        plan(next_page, paginator.known(body).after(page.number - 1), cap, step=1)
                    elif width > 1:
                        plan(page, paginator.known(body), cap)
                if not dedupe and seen_keys is None:
                    yield from records
                else:
                    for record in records:
                        identity = tuple(record.get(k) for k in pk)
                        if seen_keys is not None:
                            if identity in seen_keys:
                                continue
                            seen_keys.add(identity)
                        if dedupe:
                            value = instant_key(record.get(key), self._unit)
                            if value != boundary:
                                boundary, emitted = value, {identity}
                            elif identity in emitted:
                                continue
                            else:
                                emitted.add(identity)
                        yield record
                page = next_page
        finally:  # the pass ended, failed or was abandoned (--test stops after one record)
            drop(ahead)
            pending.cancel()
            if self.child_streams:
                reads.forget(self.child_streams)


_UNREAD = object()  # a body left for PageAnswer to parse


class PageAnswer(Future):
    """A page's answer to come, its JSON parsed by the thread that takes it, not by the fetching thread.

    Parsed ahead, up to max_concurrency pages of records wait as objects until their turn, out of the cache of
    the core that checks and writes them; parsed at their turn they are in it (measured: about 9 % less CPU
    per record read, and pages sent early but not used are never parsed). The same errors come at the same
    point: when the answer is taken."""

    def __init__(self, fetch: Future, parse: Callable[[Response], Any]) -> None:
        super().__init__()
        self._fetch = fetch
        self._parse = parse
        self._body: Any = _UNREAD

    def result(self, timeout: float | None = None) -> tuple[Response | None, Any]:
        response, body = self._fetch.result(timeout)
        if body is not _UNREAD:
            return response, body
        if self._body is _UNREAD:
            self._body = self._parse(response)
        return response, self._body

    def cancel(self) -> bool:
        return self._fetch.cancel()

    def cancelled(self) -> bool:
        return self._fetch.cancelled()

    def done(self) -> bool:
        return self._fetch.done()


def _identity(built: BuiltRequest, target: str, params: dict | None) -> tuple:
    """What makes two page requests the same request."""
    query = tuple(sorted((k, repr(v)) for k, v in (params or {}).items()))
    return (built.method, target, query, repr(built.body), tuple(sorted(built.headers.items())))


def drop(futures: dict[tuple, Future]) -> None:
    """Forget requests sent early whose answers will not be read: those not started are never sent."""
    for future in futures.values():
        future.cancel()
    futures.clear()


class ConnectorTap(ConnectorPlugin, Tap):
    """A tap whose streams are the source templates of one connection."""

    message_writer_class = FastWriter
    _fetch_pool: ThreadPoolExecutor | None = None
    _reads: ReadAhead | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.unsettled: set[TemplateStream] = set()  # streams holding bookmarks not yet in the state
        super().__init__(*args, **kwargs)
        sdk_compat.settle_before_state(self, self.settle_bookmarks)

    def settle_bookmarks(self) -> None:
        """Put every stream's safe bookmarks into the state: whichever stream (or a signal) writes a STATE, it
        holds the bookmarks as they stand."""
        while self.unsettled:
            self.unsettled.pop().settle_bookmarks()

    @property
    def client(self) -> ApiClient:
        if self._client is None:
            self._client = self.make_client(max_connections=64)  # (max_concurrency's bound)
        return self._client

    @property
    def max_concurrency(self) -> int:
        """Requests in flight at once for the whole run: the setting, else enough to spend the rate budget
        at up to a second of latency (its requests per second, 2 to 16), else 4."""
        configured = self.config.get("max_concurrency")
        if configured:
            return int(configured)
        limit = self.client.rate_limit
        if limit.budget and limit.window_seconds:
            return max(2, min(16, math.ceil(limit.budget / limit.window_seconds)))
        return 4

    @property
    def fetch_pool(self) -> ThreadPoolExecutor:
        """The threads every stream's requests are sent from: at most max_concurrency in flight."""
        if self._fetch_pool is None:
            self._fetch_pool = ThreadPoolExecutor(self.max_concurrency, thread_name_prefix="fetch")
        return self._fetch_pool

    @cached_property
    def stream_params(self) -> dict[str, dict[str, Any]]:
        """The query parameters of the stream_params setting, per stream."""
        return streamparams.check(self.connection, self.config)

    def discover_streams(self) -> list[Stream]:
        classes = stream_classes(self.connection)
        return [cls(self) for cls in classes.values()]

    @property
    def reads(self) -> ReadAhead:
        """Reads sent ahead of their turn: only within a sync of the selected streams (not in --test, nor for
        commands reading one stream)."""
        if self._reads is None:
            self._reads = ReadAhead(self, width=1)
        return self._reads

    def close(self) -> None:
        """End the run's reading, then close its connections."""
        self._stop_reading()
        if self._client is not None:
            self._client.close()

    def _stop_reading(self) -> None:
        """Reads not sent are dropped, those in flight are awaited (their log lines come before the run's last
        line, and the HTTP summary counts them)."""
        if self._reads is not None:
            self._reads.drop()
        if self._fetch_pool is not None:
            self._fetch_pool.shutdown(wait=True, cancel_futures=True)
            self._fetch_pool = None

    @classmethod
    def cb_test(cls, *args: Any, **kwargs: Any) -> None:
        """``--test`` runs from a CLI callback, before ``invoke``: its failures end the same way."""
        with cls._one_line_errors():
            super().cb_test(*args, **kwargs)

    def run_connection_test(self) -> bool:  # type: ignore[misc]  # final in singer-sdk: listed in sdk_compat
        """``--test``: one record of every stream, as singer-sdk does, without the ERROR line singer-sdk logs
        for each stream it stops on purpose after that record; a real failure stops the test with one line."""
        streamparams.check(self.connection, self.config)  # an unknown stream or filter: before any request
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
            self.close()
        logger.info("Connection test passed: %d streams answered", len(self.streams))
        return passed

    def sync_all(self) -> None:  # type: ignore[misc]  # final in singer-sdk: listed in sdk_compat
        batch_output.check(self.config)
        streamparams.check(self.connection, self.config)  # an unknown stream or filter: before any request
        self._reads = ReadAhead(self, width=self.max_concurrency)
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
            self._stop_reading()
            if self._client is not None:
                logger.info("HTTP summary: %s", json.dumps(self._client.stats.as_dict()))
            self.close()


class ReadAhead:
    """First pages sent before their turn: of the streams synced after the current one, of each partition,
    and of the child reads of the parent records just read. The Singer output keeps its order (one stream at
    a time, children after their parent record); only the requests overlap, max_concurrency at most. An
    answer is used when its turn comes if the stream builds the very same request then."""

    def __init__(self, tap: ConnectorTap, width: int) -> None:
        self.tap = tap
        self.width = width
        self.limit = self.width  # answers kept waiting for their turn
        self._sent: dict[tuple[str, tuple], Future] = {}
        self._queue: deque[tuple[TemplateStream, Mapping[str, Any] | None]] = deque()
        self._queued: set[str] = set()  # top-level streams already queued or read

    def after(self, current: TemplateStream) -> None:
        """``current`` begins: queue the reads of the next top-level streams (each of their partitions)."""
        self._queued.add(current.name)
        if self.width < 2:
            return
        order = [
            s
            for s in self.tap.streams.values()
            if isinstance(s, TemplateStream)
            and (s.selected or s.has_selected_descendents)
            and not s.parent_stream_type
        ]
        names = [s.name for s in order]
        if current.name not in names:
            return
        index = names.index(current.name)
        for stream in order[index + 1 : index + 1 + self.width]:
            if stream.name not in self._queued:
                self._queued.add(stream.name)
                partitions = stream.partitions  # (a partitioned stream without values reads nothing)
                contexts: list[Mapping[str, Any] | None] = (
                    [None] if stream.template.partitions is None else [*(partitions or [])]
                )
                self.queue([(stream, context) for context in contexts])

    def queue(self, reads: list[tuple]) -> None:
        if self.width < 2 or not reads:
            return
        self._queue.extend(reads)
        self._send()

    def take(self, name: str, identity: tuple) -> Future | None:
        """The answer to come for ``name``'s first page, if it was sent early as this same request."""
        future = self._sent.pop((name, identity), None)
        self._send()
        return future

    def drop(self) -> None:
        """The run ends: nothing more is sent, and answers not taken are not awaited."""
        self._queue.clear()
        for future in self._sent.values():
            future.cancel()
        self._sent.clear()

    def forget(self, streams: list[Any]) -> None:
        """A parent's read ended: child reads sent or queued for it are no longer awaited."""
        names = {s.name for s in streams}
        self._queue = deque(item for item in self._queue if item[0].name not in names)
        for key in [k for k in self._sent if k[0] in names]:
            self._sent.pop(key).cancel()

    def _send(self) -> None:
        while self._queue and len(self._sent) < self.limit:
            stream, context = self._queue.popleft()
            try:
                sent = stream.first_request(context)
            except Exception as exc:  # reported with its own context when the read's turn comes
                logger.debug("stream %s: not read ahead: %s", stream.name, exc)
                continue
            if sent is None:
                continue
            if (stream.name, sent[0]) in self._sent:  # the same read twice (two parents, one child read)
                sent[1].cancel()
            else:
                self._sent[(stream.name, sent[0])] = sent[1]


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


TAP_SETTINGS = [
    Setting(
        "max_concurrency",
        "integer",
        "Requests in flight at once (pages of one stream known in advance, and streams read ahead), all "
        "within the one rate budget. Default: the budget's requests per second, from 2 to 16 (4 without one).",
    ),
]


def build_tap_class(connection: Connection) -> type[ConnectorTap]:
    return build_plugin_class(ConnectorTap, connection, "tap", TAP_SETTINGS)
