"""Incremental reads: where the bookmark goes in a request, in which form, and what order records come in.

The order decides which STATE is safe. ``ascending`` streams checkpoint as they read (never inside a run of
records sharing one value); ``descending`` and ``unordered`` streams keep the bookmark they started from
until the whole pass is read, then move it to the newest value seen, so a run resumed from any STATE they
printed re-reads instead of skipping. Date windows (``window``) checkpoint at each window's end, whatever
the order inside a window. A stream declared ascending that goes backwards stops with an error.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from connector.instants import format_instant, to_datetime
from connector.kinds import Model, describe, parse_duration

Duration = Annotated[float | str, describe("Seconds, or '30m', '12h', '2d', '1w', or ISO-8601 'P1DT12H'.")]


class Incremental(Model, kw_only=True, frozen=True):
    """How a stream reads only what changed since the last run (with ``replication_key``)."""

    param: (
        Annotated[str, describe("Query parameter taking the start of the range ('updated_at[gt]', 'since').")]
        | None
    ) = None
    end_param: (
        Annotated[str, describe("Query parameter taking the end of the range (the window's end, or now).")]
        | None
    ) = None
    format: Annotated[
        str,
        describe(
            "Form of the values sent: iso (as the records carry them), epoch_seconds, epoch_ms, date, "
            "or a strftime pattern ('%Y-%m-%d %H:%M:%S')."
        ),
    ] = "iso"
    record_format: Annotated[
        Literal["iso", "epoch_seconds", "epoch_ms"],
        describe("Form of the replication values in the records (numbers are seconds unless epoch_ms)."),
    ] = "iso"
    order: Annotated[
        Literal["ascending", "descending", "unordered"],
        describe(
            "Order of records by replication key as the API returns them. Only ascending streams checkpoint "
            "mid-stream; the others move their bookmark when a pass (or a window) is complete."
        ),
    ] = "ascending"
    lookback: Duration | None = None
    window: Duration | None = None
    start: (
        Annotated[
            str,
            describe(
                "Jinja for the first run's start when there is no bookmark (default: the start_date setting)."
            ),
        ]
        | None
    ) = None
    end: (
        Annotated[str, describe("Jinja for the end of the range (default: now). Windows stop there.")] | None
    ) = None

    def __post_init__(self) -> None:
        for name in ("lookback", "window"):
            value = getattr(self, name)
            if value is not None:
                seconds = parse_duration(value)
                if name == "window" and seconds <= 0:
                    raise ValueError("window must be longer than 0 seconds")

    @property
    def lookback_seconds(self) -> float:
        return parse_duration(self.lookback) if self.lookback is not None else 0.0

    @property
    def window_seconds(self) -> float | None:
        return parse_duration(self.window) if self.window is not None else None

    @property
    def checkpoints_mid_stream(self) -> bool:
        return self.order == "ascending" and self.window is None

    def unit(self) -> str:
        return "epoch_ms" if self.record_format == "epoch_ms" else "epoch_seconds"

    def send(self, value: Any) -> Any:
        """A bookmark or window bound in the form the API takes."""
        if value is None:
            return None
        return format_instant(value, self.format, self.unit())

    def send_end(self, value: Any) -> Any:
        """A range's end as sent: exclusive, except that a date-only end names the last whole day included."""
        if value is None:
            return None
        if self.format == "date":
            return (to_datetime(value, self.unit()) - dt.timedelta(microseconds=1)).date().isoformat()
        return self.send(value)

    def start_after_lookback(self, value: Any) -> Any:
        if value is None or not self.lookback_seconds:
            return value
        return to_datetime(value, self.unit()) - dt.timedelta(seconds=self.lookback_seconds)


@dataclass
class Window:
    start: Any  # an instant as a datetime, or the bookmark as stored (None: no lower bound)
    end: Any  # None: open (now)
    last: bool


def windows(spec: Incremental, start: Any, end: dt.datetime) -> Iterator[Window]:
    """The ranges one pass reads: one open range, or steps of ``window`` from start to end."""
    step = spec.window_seconds
    if step is None or start is None:
        yield Window(start, end if spec.end_param else None, True)
        return
    lower = to_datetime(start, spec.unit())
    if spec.format == "date":  # date-only APIs read whole days: windows begin at midnight
        lower = lower.replace(hour=0, minute=0, second=0, microsecond=0)
    if lower >= end:
        yield Window(lower, end, True)
        return
    while lower < end:
        upper = min(lower + dt.timedelta(seconds=step), end)
        yield Window(lower, upper, upper >= end)
        lower = upper


def incremental_note(key: str, spec: Incremental) -> str:
    """One line for docs and previews."""
    parts = []
    if spec.param:
        parts.append(f"?{spec.param}= the last {key} synced ({spec.format}; or the start_date setting)")
    else:
        parts.append(f"by {key}, bookmark in the request body or URL")
    if spec.end_param:
        parts.append(f"?{spec.end_param}= the range's end")
    if spec.window is not None:
        parts.append(f"windows of {spec.window}")
    if spec.lookback is not None:
        parts.append(f"lookback {spec.lookback}")
    parts.append(f"order {spec.order}")
    return "incremental: " + ", ".join(parts)
