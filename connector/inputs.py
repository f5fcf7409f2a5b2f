"""Records for the CLI's sink commands: JSON Lines of plain records or of Singer messages.

Plain records are wrapped in Singer messages of one stream with a permissive schema, so they reach
the sink exactly as records piped from a tap would.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from connector import jsonio
from connector.workspace import CommandError

PERMISSIVE_SCHEMA: dict[str, Any] = {"type": "object", "properties": {}, "additionalProperties": True}

# Singer messages that carry no record, by the field that tells them from a record with a "type" field.
_OTHER_MESSAGES = {"STATE": "value", "ACTIVATE_VERSION": "version", "BATCH": "manifest"}


@dataclass
class InputRecord:
    line: int  # 1-based line of the input file
    stream: str
    record: dict[str, Any]


@dataclass
class Input:
    """What a JSON Lines file holds: records (with their lines), SCHEMA messages, and lines that are not usable."""

    records: list[InputRecord] = field(default_factory=list)
    schemas: dict[str, dict[str, Any]] = field(default_factory=dict)
    bad_lines: list[tuple[int, str]] = field(default_factory=list)

    def singer_messages(self) -> list[dict[str, Any]]:
        """SCHEMA then RECORD messages, every stream with a SCHEMA first (synthesised when missing)."""
        messages: list[dict[str, Any]] = []
        announced: set[str] = set()
        for item in self.records:
            if item.stream not in announced:
                announced.add(item.stream)
                schema = self.schemas.get(item.stream) or {
                    "type": "SCHEMA",
                    "stream": item.stream,
                    "schema": PERMISSIVE_SCHEMA,
                    "key_properties": [],
                }
                messages.append(schema)
            messages.append({"type": "RECORD", "stream": item.stream, "record": item.record})
        return messages


def read_records(path: str, default_stream: str) -> Input:
    """Read a JSON Lines file (numbers exact); a line that is neither a record nor a Singer message is reported,
    not fatal."""
    file = Path(path)
    try:
        data = file.read_bytes()
    except FileNotFoundError:
        raise CommandError(f"input file {path} does not exist") from None
    except OSError as exc:
        raise CommandError(f"cannot read input file {path}: {exc}") from None
    result = Input()
    for number, line in enumerate(
        data.split(b"\n"), start=1
    ):  # bytes: one line that is not UTF-8 is one bad line
        if not line.strip():
            continue
        try:
            value = jsonio.loads(line)
        except jsonio.JSONDecodeError as exc:
            result.bad_lines.append((number, jsonio.unreadable(line, exc)))
            continue
        if not isinstance(value, dict):
            result.bad_lines.append((number, f"expected a JSON object, got {type(value).__name__}"))
            continue
        kind = value.get("type")
        if kind == "RECORD" and isinstance(value.get("record"), dict):
            result.records.append(
                InputRecord(number, str(value.get("stream") or default_stream), value["record"])
            )
        elif kind == "SCHEMA" and isinstance(value.get("schema"), dict):
            result.schemas[str(value.get("stream") or default_stream)] = value
        elif kind in _OTHER_MESSAGES and _OTHER_MESSAGES[kind] in value:
            continue  # state and the like: no records in them
        else:
            result.records.append(InputRecord(number, default_stream, value))
    return result
