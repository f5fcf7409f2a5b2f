"""Instants in every form APIs use: ISO-8601 (offsets kept), epoch seconds or milliseconds, dates, strftime.

Replication values arrive as the API wrote them (an ISO string with its offset, or a unix time); requests
may need another form. These functions convert both ways; the template filters of the same names use them.
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any

FORMATS = ("iso", "epoch_seconds", "epoch_ms", "date")
_MAX_EPOCH_SECONDS = 253402300799  # 9999-12-31T23:59:59Z


def to_datetime(value: Any, unit: str = "epoch_seconds") -> dt.datetime:
    """Parse an instant; numbers count ``unit`` (epoch_seconds or epoch_ms); naive values are UTC."""
    if isinstance(value, dt.datetime):
        parsed = value
    elif isinstance(value, dt.date):
        parsed = dt.datetime(value.year, value.month, value.day)
    elif isinstance(value, bool):
        raise ValueError(f"not an instant: {value!r}")
    elif isinstance(value, (int, float)) or (isinstance(value, str) and _is_number(value)):
        seconds = float(value) / (1000 if unit == "epoch_ms" else 1)
        if not -_MAX_EPOCH_SECONDS <= seconds <= _MAX_EPOCH_SECONDS:
            raise ValueError(f"not an instant: {value!r} is out of range")
        parsed = dt.datetime.fromtimestamp(seconds, dt.timezone.utc)
    elif isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"not an ISO-8601 instant: {value[:60]!r}") from None
    else:
        raise ValueError(f"not an instant: {type(value).__name__}")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


def _is_number(text: str) -> bool:
    stripped = text.strip()
    if not stripped or len(stripped) > 24 or ":" in stripped:  # (a time of day: no number has a colon)
        return False
    try:
        float(stripped)
    except ValueError:
        return False
    return not stripped.lower().lstrip("+-").startswith(("inf", "nan"))


def format_instant(value: Any, form: str = "iso", unit: str = "epoch_seconds") -> Any:
    """Write an instant as ``form``: iso, epoch_seconds, epoch_ms, date, or a strftime pattern (has a %)."""
    if form == "iso" and isinstance(value, str) and not _is_number(value):
        return value  # as the API or the user wrote it: offsets and precision kept
    instant = to_datetime(value, unit)
    if form == "iso":
        return instant.isoformat()
    if form == "epoch_seconds":
        return int(instant.timestamp())
    if form == "epoch_ms":
        return int(round(instant.timestamp() * 1000))
    if form == "date":
        return instant.date().isoformat()
    if "%" in form:
        return instant.strftime(form)
    raise ValueError(f"unknown instant format {form!r} (use {', '.join(FORMATS)} or a strftime pattern)")


def valid_format(form: str) -> bool:
    return form in FORMATS or "%" in form


def instant_key(value: Any, unit: str = "epoch_seconds") -> Any:
    """A sort key that orders instants by time whatever their form; other values order as themselves."""
    if isinstance(value, str):
        return _text_instant_key(value, unit)  # a record's value is keyed three times: parse it once
    return _instant_key(value, unit)


@functools.lru_cache(maxsize=4096)
def _text_instant_key(value: str, unit: str) -> Any:
    return _instant_key(value, unit)


def _instant_key(value: Any, unit: str) -> Any:
    try:
        return (0, to_datetime(value, unit).timestamp())
    except (ValueError, OverflowError, OSError):
        return (1, str(value))
