"""The API's clock, as its ``Date`` headers tell it: where "now" is for the end of a range read.

A range that ends at the server's present cannot grow while it is read: a record changed meanwhile gets a
later value and leaves it. The local clock may run ahead of the server's; then records changed during the
read would stay inside the range and move within it, unseen. So a range's end comes from the server's clock:
the latest ``Date`` seen (whole seconds, never ahead of the server) plus the time since it came. Before any
answer has come, the local clock less a margin stands in, and the first answer checks it (``ahead``).
"""

from __future__ import annotations

import datetime as dt
import email.utils
import threading
import time

# Before the server's clock is known, a range ends this far behind the local clock; the first answer's Date
# then confirms that end was not ahead of the server (a Date is whole seconds, and is written after the
# answer was computed: one second for each).
UNKNOWN_MARGIN = dt.timedelta(seconds=2)
# A Date further than this from the local clock is not believed (a broken proxy, a cached answer): ends then
# follow the local clock, less the margin.
BELIEVABLE = dt.timedelta(hours=12)


def parse_date(value: str | None) -> dt.datetime | None:
    """An HTTP ``Date`` header as an aware instant; None when absent, not a date, or not believable."""
    if not value or len(value) > 64:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed.tzinfo is None or abs(parsed - dt.datetime.now(dt.timezone.utc)) > BELIEVABLE:
        return None
    return parsed


class ServerClock:
    """The server's present, never overestimated, from the ``Date`` headers of the answers so far."""

    def __init__(self) -> None:
        self._offset: float | None = (
            None  # server epoch seconds minus local monotonic seconds, the largest seen
        )
        self._header: str | None = None
        self._lock = threading.Lock()

    def observe(self, header: str | None) -> None:
        """Learn from one answer's ``Date`` (cheap when it repeats: headers change once a second)."""
        if header is None or header == self._header:
            return
        self._header = header
        date = parse_date(header)
        if date is None:
            return
        offset = date.timestamp() - time.monotonic()
        with self._lock:
            if self._offset is None or offset > self._offset:
                self._offset = offset

    @property
    def known(self) -> bool:
        return self._offset is not None

    def now(self) -> dt.datetime:
        """The latest instant the server has surely reached (the local clock less a margin while unknown)."""
        local = dt.datetime.now(dt.timezone.utc)
        if self._offset is None:
            return local - UNKNOWN_MARGIN
        server = dt.datetime.fromtimestamp(self._offset + time.monotonic(), dt.timezone.utc)
        return min(local, server)

    @staticmethod
    def ahead(end: dt.datetime, header: str | None) -> bool:
        """True when a range's ``end``, taken before the server's clock was known, may lie past the instant
        the server computed this answer at (its ``Date``, whole seconds, less a second)."""
        date = parse_date(header)
        return date is not None and end > date - dt.timedelta(seconds=1)
