"""Where the engine relies on singer-sdk's internals: the one list of them, and accessors for its private state.

singer-sdk has no public hook for a few things the engine needs: writing a parsed record without
re-conforming it (the tap's CPU), checkpointing state only between records of one replication value,
rejecting one bad record instead of stopping the run, passing STATE on after each batch, stopping on
a protocol error after the records before it. Those overrides and reads are listed in TOUCH_POINTS;
``problems()`` says which of them the installed singer-sdk no longer has as the engine uses them, and
tests/engine/test_sdk_compat.py fails with that list. pyproject.toml bounds singer-sdk to the minor
version tested (0.x: a minor release may break these).

Public hooks are used wherever one exists (``process_endofpipe``, ``get_validator``,
``append_builtin_config``, ``run_connection_test``, ``message_reader``); nothing else in the engine
reads a private singer-sdk attribute: it calls the accessors below.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import import_module
from typing import Any

from singer_sdk.helpers._state import StateWriter
from singer_sdk.helpers.types import TapState


@dataclass(frozen=True)
class TouchPoint:
    """A private singer-sdk method the engine overrides or calls, or an attribute it reads."""

    owner: str  # "module:Class"
    name: str
    params: (
        tuple[str, ...] | None
    )  # a method's parameter names after self; None: an attribute set in the class
    used_by: str


TOUCH_POINTS: tuple[TouchPoint, ...] = (
    TouchPoint(
        "singer_sdk.plugin_base:PluginBase",
        "_validate_config",
        ("raise_errors",),
        "plugin.py: config errors never quote a secret setting's value",
    ),
    TouchPoint(
        "singer_sdk.streams.core:Stream",
        "_generate_record_messages",
        ("record",),
        "tap.py: records written as parsed when no mapper could change them",
    ),
    TouchPoint(
        "singer_sdk.streams.core:Stream",
        "_increment_stream_state",
        ("latest_record", "context"),
        "tap.py: no checkpoint inside a group of records sharing a replication value",
    ),
    TouchPoint("singer_sdk.streams.core:Stream", "_stream_version", None, "tap.py: RECORD messages' version"),
    TouchPoint(
        "singer_sdk.tap_base:Tap",
        "_state_writer",
        None,
        "tap.py: bookmarks put into the state before each STATE",
    ),
    TouchPoint(
        "singer_sdk.helpers._state:StateWriter",
        "write_state",
        ("state",),
        "tap.py: bookmarks put into the state before each STATE",
    ),
    TouchPoint(
        "singer_sdk.streams.core:Stream",
        "_process_record",
        ("record", "child_context", "partition_context"),
        "tap.py: a state partition's value list or filters are not copied into records",
    ),
    TouchPoint(
        "singer_sdk.target_base:Target",
        "_process_record_message",
        ("message_dict",),
        "target.py: protocol errors stop the run after the records before them; STATE after each batch",
    ),
    TouchPoint(
        "singer_sdk.target_base:Target",
        "_process_schema_message",
        ("message_dict",),
        "target.py: an unusable SCHEMA is one clear line",
    ),
    TouchPoint(
        "singer_sdk.target_base:Target",
        "_process_state_message",
        ("message_dict",),
        "target.py: STATE passed on once every record before it has its outcome",
    ),
    TouchPoint(
        "singer_sdk.target_base:Target",
        "_write_state_message",
        ("state",),
        "target.py: the same STATE is not written twice",
    ),
    TouchPoint(
        "singer_sdk.plugin_base:BaseSingerReader",
        "_assert_line_requires",
        ("message_dict", "requires"),
        "target.py: a RECORD lacking stream or record",
    ),
    TouchPoint("singer_sdk.target_base:Target", "_latest_state", None, "latest_state()"),
    TouchPoint("singer_sdk.target_base:Target", "_sinks_active", None, "sinks_holding_records()"),
    TouchPoint("singer_sdk.target_base:Target", "_sinks_to_clear", None, "sinks_holding_records()"),
    TouchPoint(
        "singer_sdk.sinks.core:Sink",
        "_validate_and_parse",
        ("record",),
        "target.py: a record failing a schema is rejected, not fatal",
    ),
    TouchPoint(
        "singer_sdk.sinks.core:Sink",
        "_singer_validate_message",
        ("record",),
        "target.py: a record lacking its key properties stops the run with its stream named",
    ),
    TouchPoint(
        "singer_sdk.sinks.core:Sink",
        "_parse_timestamps_in_record",
        ("record", "schema", "treatment"),
        "target.py: timestamps parsed as singer-sdk does",
    ),
    TouchPoint("singer_sdk.sinks.core:Sink", "_validator", None, "target.py: the record validator"),
    TouchPoint(
        "singer_sdk.tap_base:Tap",
        "run_connection_test",
        (),
        "tap.py (singer-sdk marks it final): --test without an ERROR line per deliberate stop",
    ),
    TouchPoint(
        "singer_sdk.tap_base:Tap",
        "sync_all",
        (),
        "tap.py (singer-sdk marks it final): the HTTP summary, API errors in one line",
    ),
    TouchPoint("singer_sdk.plugin_base:PluginBase", "_config", None, "plugin.py: the secrets to redact"),
    TouchPoint(
        "singer_sdk.target_base:Target",
        "_handle_termination",
        ("signum", "frame"),
        "plugin.py: SIGTERM/SIGINT end every wait at once",
    ),
    TouchPoint(
        "singer_sdk.tap_base:Tap",
        "_handle_termination",
        ("signum", "frame"),
        "plugin.py: SIGTERM/SIGINT end every wait at once",
    ),
    TouchPoint(
        "singer_sdk.singerlib.encoding.base:GenericSingerReader",
        "_current_message",
        None,
        "target.py: the reader keeps the line being processed",
    ),
    TouchPoint(
        "singer_sdk.singerlib.encoding.base:GenericSingerReader",
        "process_lines",
        ("file_input", "callbacks"),
        "target.py: one bad message is rejected with its line number, not fatal",
    ),
)


def _owner(spec: str) -> type:
    module, _, name = spec.partition(":")
    return getattr(import_module(module), name)


def problems() -> list[str]:
    """What of TOUCH_POINTS the installed singer-sdk lacks or changed; empty when all is as the engine expects."""
    found = []
    for point in TOUCH_POINTS:
        where = f"{point.owner.replace(':', '.')}.{point.name} (used by {point.used_by})"
        try:
            owner = _owner(point.owner)
        except (ImportError, AttributeError) as exc:
            found.append(f"{where}: {point.owner} is gone ({exc})")
            continue
        if point.params is None:
            sources = "".join(
                inspect.getsource(c) for c in owner.__mro__ if c.__module__.startswith("singer_sdk")
            )
            if f"self.{point.name} " not in sources and f"self.{point.name}:" not in sources:
                found.append(f"{where}: no longer set by {owner.__name__}")
            continue
        method = getattr(owner, point.name, None)
        if method is None:
            found.append(f"{where}: no longer exists")
            continue
        params = tuple(p for p in inspect.signature(method).parameters if p not in ("self", "cls"))
        if params != point.params:
            found.append(f"{where}: parameters are now {params}, the engine passes {point.params}")
    return found


# -- accessors: the engine's only reads of singer-sdk's private state


def latest_state(target: Any) -> dict | None:
    """The last STATE the target received (not yet necessarily written)."""
    return target._latest_state


def sinks_holding_records(target: Any) -> Iterable[Any]:
    """Every sink that may still hold records: the active ones and those a new SCHEMA retired."""
    return (*target._sinks_active.values(), *target._sinks_to_clear)


def stream_version(stream: Any) -> int | None:
    """The table version a stream's RECORD messages carry (set when ACTIVATE_VERSION is on)."""
    return stream._stream_version


class _SettlingStateWriter(StateWriter):
    """singer-sdk's STATE writer (a STATE only when the state changed), calling ``settle`` first."""

    def __init__(self, message_writer: Any, settle: Callable[[], None]) -> None:
        super().__init__(message_writer)
        self._settle = settle

    def write_state(self, state: TapState) -> None:
        self._settle()
        super().write_state(state)


def settle_before_state(tap: Any, settle: Callable[[], None]) -> None:
    """Call ``settle`` before every STATE the tap writes (its streams', the run's, a signal's) is compared with
    the last one and written."""
    tap._state_writer = _SettlingStateWriter(tap.message_writer, settle)


def record_validator(sink: Any) -> Any:
    """The validator singer-sdk made for a sink from ``get_validator()``, or None."""
    return sink._validator
