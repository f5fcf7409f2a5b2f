"""``connector values CONNECTION STREAM --config FILE``: the value/label pairs a stream's records offer.

The records are read as the tap reads them (same requests, auth, pacing, pagination, parents and
partitions), then reduced to distinct pairs (``connector.choices``) and printed as a table or JSON.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from connector import jsonio
from connector.choices import Choices, collect, default_choices, resolve
from connector.preview import suggest
from connector.tap import ConnectorTap, TemplateStream, build_tap_class
from connector.templates import Connection
from connector.workspace import CommandError, load


def stream_records(tap: ConnectorTap, stream: TemplateStream) -> Iterator[dict]:
    """Every record of a stream: once per partition, or once per parent record for a child stream."""
    template = stream.template
    if template.parent:
        parent = tap.streams[template.parent]
        assert isinstance(parent, TemplateStream)
        keys = template.parent_fields or parent.template.primary_key
        for record in stream_records(tap, parent):
            yield from stream.get_records({name: record.get(name) for name in keys})
        return
    partitions: list[dict] | None = stream.partitions
    for context in partitions if partitions is not None else [None]:
        yield from stream.get_records(context)


def _check_field(connection: Connection, stream: str, option: str, path: str | None) -> None:
    properties = connection.streams[stream].schema.get("properties") or {}
    head = (path or "").split(".")[0]
    if properties and head not in properties:
        known = ", ".join(sorted(properties))
        raise CommandError(f"{option} {path}: {stream} records have no field {head!r} (fields: {known})")


def _table(rows: list[tuple[Any, Any]], one_column: bool) -> str:
    """Aligned columns; one when the label is the value itself."""
    if one_column:
        return "\n".join(["VALUE", *(_cell(v) for v, _ in rows)])
    cells = [("VALUE", "LABEL"), *((_cell(v), _cell(label)) for v, label in rows)]
    width = max(len(value) for value, _ in cells)
    return "\n".join(f"{value.ljust(width)}  {label}".rstrip() for value, label in cells)


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return "".join(ch if ch.isprintable() else " " for ch in text)


def main(
    connection_spec: str,
    stream_name: str,
    config_path: str,
    value: str | None = None,
    label: str | None = None,
    as_json: bool = False,
    limit: int | None = None,
) -> int:
    connection = load(connection_spec)
    if stream_name not in connection.streams:
        raise CommandError(
            suggest(stream_name, connection)
            if stream_name not in connection.sinks
            else f"{stream_name} is a sink; values reads a stream"
        )
    if not Path(config_path).is_file():
        raise CommandError(f"config file {config_path} does not exist")
    template = connection.streams[stream_name]
    defaults = default_choices(template.primary_key, (template.schema.get("properties") or {}).keys())
    choices: Choices = resolve(template.values, defaults, value, label)
    _check_field(connection, stream_name, "--value", choices.value)
    _check_field(connection, stream_name, "--label", choices.label)

    tap = build_tap_class(connection)(config=[config_path], parse_env_config=False)
    stream = tap.streams[stream_name]
    assert isinstance(stream, TemplateStream)
    try:
        pairs = collect(stream_records(tap, stream), choices, limit)
    finally:
        tap.close()
    if as_json:
        rows = [{"value": v, "label": label} for v, label in pairs.rows]
        sys.stdout.write(jsonio.dumps(rows).decode() + "\n")
    elif pairs.rows:
        print(_table(pairs.rows, one_column=choices.label == choices.value))
    summary = (
        f"{stream_name}: {len(pairs.rows)} distinct {choices.value}/{choices.label} pairs "
        f"from {pairs.records} records"
    )
    if pairs.without_value:
        summary += f"; {pairs.without_value} records without a {choices.value} left out"
    if pairs.limited:
        summary += f"; stopped at --limit {limit}, more may exist"
    print(summary, file=sys.stderr)
    return 0
