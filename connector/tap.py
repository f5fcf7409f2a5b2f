"""The read side: every source template of a connection becomes a singer-sdk stream of one tap.

Streams subclass singer-sdk's plain ``Stream`` (catalog, selection, state, stream maps, metrics) and
take their records from the engine's shared ``ApiClient`` (httpx, budget, retries).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, ClassVar

import orjson
from singer_sdk import Stream, Tap, metrics
from singer_sdk.mapper import SameRecordTransform
from singer_sdk.singerlib import RecordMessage

from connector import batch_output, sdk_compat
from connector.builder import RequestBuilder
from connector.errors import ConnectorError, HTTPStatusError
from connector.http import ApiClient, Response
from connector.pagination import PageRequest, Paginator
from connector.plugin import ConnectorPlugin, build_plugin_class
from connector.render import dot_path
from connector.singer_io import FastWriter
from connector.sync_metrics import sync_timer
from connector.templates import Connection, StreamTemplate

logger = logging.getLogger("connector.tap")


def parse_instant(value: Any) -> Any:
    """Order replication values by instant when they are timestamps (offsets differ)."""
    if isinstance(value, str):
        try:
            return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    return value


class TemplateStream(Stream):
    """One source template as a Singer stream."""

    template: ClassVar[StreamTemplate]
    STATE_MSG_FREQUENCY = 1000
    check_sorted = False  # sorted by instant, not by string; see _increment_stream_state

    def __init__(self, tap: ConnectorTap) -> None:
        template = self.template
        super().__init__(tap, schema=template.schema, name=template.name)
        self.primary_keys = template.primary_key
        self.replication_key = template.replication_key
        self.connector_tap = tap
        self._pending: dict[str, Any] = {}
        self._records_getter = dot_path(template.records)
        self._schema_keys = frozenset(template.schema.get("properties", {}))
        self._fast: bool | None = None
        self._batch_deselected: frozenset[str] | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._builder: RequestBuilder | None = None  # needs the client's origin: made on first read
        self._method = ""

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

    def _generate_record_messages(self, record: dict) -> Iterable[RecordMessage]:
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

    def post_process(self, row: dict, context: dict | None = None) -> dict | None:
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
        return bool(self.template.replication_key and self.template.incremental_param)

    def generate_child_contexts(self, record: dict, context: dict | None) -> Iterable[dict | None]:
        if self.child_streams:  # nothing to compute for the (many) streams without children
            yield self.get_child_context(record, context)

    def get_child_context(self, record: dict, context: dict | None) -> dict | None:
        fields: set[str] = set()
        for child in self.child_streams:
            fields |= set(child.template.parent_fields or self.template.primary_key)
        return {name: record.get(name) for name in sorted(fields)}

    # -- state: never checkpoint the middle of a group of records sharing one replication value

    def _increment_stream_state(self, latest_record: dict, *, context: dict | None = None) -> None:
        key = self.replication_key
        if not key or not latest_record:
            return
        partition = json.dumps(context, sort_keys=True, default=str) if context else ""
        value = latest_record.get(key)
        pending = self._pending.get(partition)
        if pending is not None and pending[0] != value:
            super()._increment_stream_state(pending[1], context=context)
        self._pending[partition] = (value, {key: value})

    def _commit_pending(self, context: dict | None) -> None:
        partition = json.dumps(context, sort_keys=True, default=str) if context else ""
        pending = self._pending.pop(partition, None)
        if pending is not None:
            super()._increment_stream_state(pending[1], context=context)

    # -- reading

    def _start_value(self, context: dict | None) -> Any:
        value = self.get_starting_replication_key_value(context)
        start_date = self.config.get("start_date")
        if value is None or (start_date and parse_instant(start_date) > parse_instant(value)):
            value = start_date
        if isinstance(value, dt.datetime):
            value = value.isoformat()
        return value

    def _fetcher(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"fetch-{self.name}")
        return self._pool

    def _fetch_page(self, target: str, params: dict | None, headers: dict) -> tuple[Response, Any]:
        client = self.connector_tap.client
        response = client.send(self._method, target, params=params, headers=headers)
        client.raise_for_status(response)
        try:
            return response, (orjson.loads(response.content) if response.content else None)
        except orjson.JSONDecodeError as exc:
            raise ConnectorError(
                f"stream {self.name}: {self._method} {response.request.url.path} returned invalid JSON "
                f"({exc}); first bytes: {response.content[:80]!r}"
            ) from exc

    def _records_of(self, body: Any) -> list[dict]:
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

    def get_records(self, context: dict | None) -> Iterable[dict]:
        template = self.template
        client = self.connector_tap.client
        if self._builder is None:
            self._builder = RequestBuilder(template.request, client.origin, self.config)
        built = self._builder.build({"parent": context or {}})
        self._method, url, base_params, headers = built.method, built.url, dict(built.params), built.headers
        start = (
            self._start_value(context) if template.replication_key and template.incremental_param else None
        )
        if start is not None:
            base_params[template.incremental_param] = start
        spec = template.pagination
        page_size = base_params.get(spec.size_param or "per_page") if spec.type != "none" else None
        paginator = Paginator(spec, client.origin, int(page_size) if page_size else None)
        restart_after = spec.restart_after if spec.type == "page_number" and self.is_sorted else None
        key = template.replication_key
        pk = template.primary_key
        # The next page is fetched in the background while this one's records are processed.
        fetch = self._fetcher()

        def request(page: PageRequest) -> Future:
            target = page.url or url
            params = None if page.url else {**base_params, **page.params}
            return fetch.submit(self._fetch_page, target, params, headers)

        page: PageRequest | None = paginator.first()
        pending = request(page)
        skip_value: Any = None  # records of this value and key were emitted before the cursor moved
        skip_keys: set = set()
        while page is not None:
            response, body = pending.result()
            records = self._records_of(body)
            next_page = paginator.next(page, response, body, records)
            next_skip_value, next_skip_keys = skip_value, skip_keys
            if next_page is not None and restart_after and page.number >= restart_after and key and records:
                # Cursor-poller: move the replication cursor instead of paging deeper (deep pages cost more).
                last = records[-1].get(key)
                earlier = [r.get(key) for r in records if r.get(key) != last]
                if earlier:
                    next_skip_value = last
                    next_skip_keys = {tuple(r.get(k) for k in pk) for r in records if r.get(key) == last}
                    base_params[template.incremental_param] = max(earlier, key=parse_instant)
                    next_page = paginator.first()
            if next_page is not None:
                pending = request(next_page)
            for record in records:
                if (
                    skip_value is not None
                    and record.get(key) == skip_value
                    and tuple(record.get(k) for k in pk) in skip_keys
                ):
                    continue
                yield record
            page, skip_value, skip_keys = next_page, next_skip_value, next_skip_keys
        self._commit_pending(context)


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

    def run_connection_test(self) -> bool:
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

    def sync_all(self) -> None:
        batch_output.check(self.config)
        try:
            super().sync_all()
        except HTTPStatusError as exc:
            raise ConnectorError(str(exc)) from exc
        finally:
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
