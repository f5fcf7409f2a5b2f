"""Singer message output: orjson (numbers exact), buffered, flushed at each STATE so a state never precedes its
records."""

from __future__ import annotations

import atexit
import contextlib
import io
import logging
import sys
from typing import Any

import orjson
from singer_sdk.singerlib.encoding.base import GenericSingerWriter, SingerMessageType
from singer_sdk.singerlib.messages import Message

from connector import jsonio
from connector.secrets import MASK, REDACTOR

logger = logging.getLogger("connector.singer_io")


def _default(value: Any) -> Any:
    return str(value)


class _TextAdapter:
    """For a stdout without a file descriptor or byte buffer (a test's StringIO)."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream

    def write(self, data: bytes) -> None:
        self.stream.write(data.decode())

    def flush(self) -> None:
        self.stream.flush()


def _binary_stdout() -> Any:
    """A buffer of our own on stdout's descriptor: stdout's may be write-through (one syscall per record)."""
    sys.stdout.flush()
    try:
        # 1 MiB: each write to the pipe lets the fetching threads take the interpreter, and taking it back
        # costs the reading thread up to a switch interval; fewer, larger writes keep it reading.
        return open(sys.stdout.fileno(), "wb", buffering=1 << 20, closefd=False)  # noqa: SIM115
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        buffer = getattr(sys.stdout, "buffer", None)
        return buffer if buffer is not None else _TextAdapter(sys.stdout)


class FastWriter(GenericSingerWriter[bytes, Message]):
    """One ``write`` per message into stdout's buffer; one flush per STATE (and at exit)."""

    def __init__(self) -> None:
        self._out = _binary_stdout()
        self._masked_streams: set[str | None] = set()
        atexit.register(self.flush)

    def serialize_message(self, message: Message) -> bytes:
        data = jsonio.dumps(message.to_dict(), default=_default, option=orjson.OPT_APPEND_NEWLINE)
        if REDACTOR.in_json(data):  # a byte search per message; masking only when a secret is there
            data = jsonio.dumps(
                REDACTOR.redact_value(message.to_dict()), default=_default, option=orjson.OPT_APPEND_NEWLINE
            )
            stream = getattr(message, "stream", None)
            if stream not in self._masked_streams:
                self._masked_streams.add(stream)
                logger.warning(
                    "a value equal to a secret setting was masked as %s in a %s message%s",
                    MASK,
                    getattr(message.type, "value", message.type),
                    f" of stream {stream!r}" if stream else "",
                )
        return data

    def write_message(self, message: Message) -> None:
        self._out.write(self.format_message(message))
        if message.type != SingerMessageType.RECORD:
            self._out.flush()

    def flush(self) -> None:
        with contextlib.suppress(ValueError):  # stdout already closed
            self._out.flush()
