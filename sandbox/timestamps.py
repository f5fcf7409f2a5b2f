"""Instants as integer microseconds since the epoch, rendered the way Salesloft does.

Records keep their timestamps as strings (``2024-03-05T14:22:31.123456-05:00``); the store keeps
the same instants as integers so filters compare with microsecond precision whatever the offset.
"""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta, timezone

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
ONE_US = timedelta(microseconds=1)

# The offsets generated data is rendered in (US, UTC, Europe, India).
OFFSETS = tuple(timezone(timedelta(minutes=m)) for m in (-300, -240, -420, 0, 60, 330, -360, 120))
# Writes are stamped in the team's zone.
TEAM_TZ = OFFSETS[0]


class InvalidInstant(ValueError):
    pass


def to_us(dt: datetime) -> int:
    return (dt - EPOCH) // ONE_US


def render(us: int, tz: timezone = TEAM_TZ) -> str:
    """``2024-03-05T14:22:31.123456-05:00``: always microseconds, always an offset."""
    return (EPOCH + timedelta(microseconds=us)).astimezone(tz).isoformat(timespec="microseconds")


def render_date(us: int, tz: timezone = TEAM_TZ) -> str:
    return (EPOCH + timedelta(microseconds=us)).astimezone(tz).date().isoformat()


def parse(value: str) -> int:
    """An ISO-8601 instant (any offset, ``Z``, or none = UTC; or a bare date) -> microseconds.

    Fractions beyond microseconds are truncated. A space where the offset sign should be (an
    unencoded ``+`` in a query string) is rejected rather than guessed at.
    """
    text = value.strip()
    if not text or " " in text:
        raise InvalidInstant(value)
    if len(text) == 10:
        try:
            d = date.fromisoformat(text)
        except ValueError:
            raise InvalidInstant(value) from None
        return to_us(datetime(d.year, d.month, d.day, tzinfo=timezone.utc))
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    text = _trim_fraction(text)
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInstant(value) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return to_us(dt)


def _trim_fraction(text: str) -> str:
    dot = text.find(".", 17)
    if dot < 0:
        return text
    end = dot + 1
    while end < len(text) and text[end].isdigit():
        end += 1
    digits = text[dot + 1 : end]
    if len(digits) == 6:
        return text
    return text[: dot + 1] + (digits[:6] if len(digits) > 6 else digits.ljust(6, "0")) + text[end:]


class Clock:
    """Hands out write timestamps: wall-clock now, but strictly increasing and always later
    than anything already in the data set, so every write and touch is visible to an
    ``updated_at[gt]`` poller."""

    def __init__(self) -> None:
        self._last = 0

    def observe(self, us: int) -> None:
        if us > self._last:
            self._last = us

    def now_us(self) -> int:
        now = time.time_ns() // 1000
        self._last = now if now > self._last else self._last + 1
        return self._last

    def now(self) -> tuple[int, str]:
        us = self.now_us()
        return us, render(us)
