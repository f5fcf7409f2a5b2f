"""Singer message output: orjson, buffered, flushed at each STATE so a state never precedes its records."""

from __future__ import annotations

import atexit
import contextlib
import decimal
import sys
from typing import Any

import orjson
from singer_sdk.singerlib.encoding.base import GenericSingerWriter, SingerMessageType
from singer_sdk.singerlib.messages import Message


def _default(value: Any) -> Any:
    if isinstance(value, decimal.Decimal) and value.is_finite():
        return int(value) if value == value.to_integral_value() else float(value)
    return str(value)


class FastWriter(GenericSingerWriter[bytes, Message]):
    """One ``write`` per message into stdout's buffer; one flush per STATE (and at exit)."""

    def __init__(self) -> None:
        self._out = sys.stdout.buffer
        atexit.register(self.flush)

    def serialize_message(self, message: Message) -> bytes:
        return orjson.dumps(message.to_dict(), default=_default, option=orjson.OPT_APPEND_NEWLINE)

    def write_message(self, message: Message) -> None:
        self._out.write(self.format_message(message))
        if message.type != SingerMessageType.RECORD:
            self._out.flush()

    def flush(self) -> None:
        with contextlib.suppress(ValueError):  # stdout already closed
            self._out.flush()
