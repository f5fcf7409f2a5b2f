"""JSON in and out with numbers exact: what a record or an API says is what goes on, digit for digit.

A float parser rounds ``12345678901234567.89`` to ``1.2345678901234568e+16``, and orjson reads an integer
beyond 64 bits as a float. Here integers of any size stay ``int``, and a number a float cannot hold exactly
becomes a ``Decimal`` (a number of at most 15 significant digits, nearly all of them, stays a float at no
extra cost). Writing puts a ``Decimal`` and an integer of any size out as the digits they hold.
"""

from __future__ import annotations

import decimal
import functools
import json
import math
from collections.abc import Callable
from typing import Any

import msgspec
import orjson

JSONEncodeError = orjson.JSONEncodeError


class JSONDecodeError(ValueError):
    """Text that is not one JSON value (or that is nested deeper than the reader goes)."""


def _exact_float(text: str) -> float | decimal.Decimal:
    """A float, unless the float would not denote the number written (too many digits, out of range)."""
    value = float(text)
    if len(text) <= 16 and value and not math.isinf(value):  # at most 15 digits: a double holds them
        return value
    exact = decimal.Decimal(text)
    if math.isfinite(value) and decimal.Decimal(repr(value)) == exact:
        return value
    return exact


_DECODER = msgspec.json.Decoder(float_hook=_exact_float)


def loads(data: bytes | str) -> Any:
    """Parse one JSON document, numbers exact; invalid JSON raises JSONDecodeError with the reason."""
    try:
        return _DECODER.decode(data)
    except (msgspec.DecodeError, RecursionError) as exc:
        reason = str(exc) if isinstance(exc, msgspec.DecodeError) else "nested too deep"
        try:  # orjson names the line and column
            orjson.loads(data)
        except orjson.JSONDecodeError as detail:
            reason = str(detail)
        raise JSONDecodeError(reason) from None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def unreadable(line: bytes, error: Exception) -> str:
    """Why a line could not be parsed, in the reader's words, or where its bytes stop being UTF-8."""
    try:
        line.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"not UTF-8: byte 0x{line[exc.start]:02x} at column {exc.start + 1}"
    return f"invalid JSON: {error}"


def loads_lenient(data: bytes) -> Any:
    """JSON that only lone surrogate escapes (``\\ud83d``) keep from being valid, parsed as Python's reader
    does (numbers exact); None when it is not JSON even so."""
    try:
        return json.loads(data, parse_float=_exact_float, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        return None


def writable(value: Any) -> bool:
    """Whether the JSON writer can write ``value`` (a lone surrogate, or nesting past its limit, it cannot)."""
    try:
        dumps(value)
    except JSONEncodeError:
        return False
    return True


@functools.lru_cache(maxsize=16)  # one per caller's default: not a new function for every record written
def _exact_default(default: Callable[[Any], Any] | None) -> Callable[[Any], Any]:
    def write(value: Any) -> Any:
        if isinstance(value, decimal.Decimal) and value.is_finite():
            return orjson.Fragment(str(value).encode())
        if default is None:
            raise TypeError(f"Type is not JSON serializable: {type(value).__name__}")
        return default(value)

    return write


def _wide_ints_as_digits(value: Any) -> Any:
    """The same value with every integer beyond 64 bits replaced by its digits (orjson writes no wider ones)."""
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**64:
        return orjson.Fragment(int.__repr__(value).encode())
    if isinstance(value, dict):
        return {key: _wide_ints_as_digits(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_wide_ints_as_digits(item) for item in value]
    return value


def dumps(value: Any, *, option: int = 0, default: Callable[[Any], Any] | None = None) -> bytes:
    """orjson's ``dumps`` (same options), with Decimals and integers of any size written exactly."""
    write = _exact_default(default)
    try:
        return orjson.dumps(value, default=write, option=option)
    except orjson.JSONEncodeError as exc:
        if "64-bit" not in str(exc):
            raise
    try:
        widened = _wide_ints_as_digits(value)
    except RecursionError:
        raise orjson.JSONEncodeError("Recursion limit reached") from None
    return orjson.dumps(widened, default=write, option=option)
