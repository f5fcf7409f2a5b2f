"""Salesloft's cost-based rate budget: points per minute, deep pages cost more.

A "minute" lasts ``60 / time_scale`` real seconds, so a test at ``time_scale=60`` sees the
budget refill every second. Windows are fixed and start when the budget is (re)configured.
"""

from __future__ import annotations

import math
import time


def page_cost(page: int) -> int:
    """Page 1-100 costs 1, 101-150 costs 3, 151-250 costs 8, 251-500 costs 10, 501+ costs 30."""
    if page <= 100:
        return 1
    if page <= 150:
        return 3
    if page <= 250:
        return 8
    if page <= 500:
        return 10
    return 30


class Budget:
    def __init__(self, per_minute: int, time_scale: float = 1.0, retry_after: bool = True):
        self.per_minute = int(per_minute)
        self.time_scale = float(time_scale)
        self.retry_after = retry_after
        self.charged_total = 0
        self.rejected_total = 0
        self.reset()

    def reset(self) -> None:
        self._start = time.monotonic()
        self._window = 0
        self.used = 0

    @property
    def window_seconds(self) -> float:
        return 60.0 / self.time_scale

    def _roll(self) -> None:
        window = int((time.monotonic() - self._start) / self.window_seconds)
        if window != self._window:
            self._window = window
            self.used = 0

    @property
    def window(self) -> int:
        """Which budget window (a scaled minute since the start or the last reset) it is now."""
        self._roll()
        return self._window

    @property
    def remaining(self) -> int:
        self._roll()
        return max(self.per_minute - self.used, 0)

    def seconds_to_reset(self) -> float:
        self._roll()
        end = self._start + (self._window + 1) * self.window_seconds
        return max(end - time.monotonic(), 0.0)

    def charge(self, cost: int) -> bool:
        """Spend ``cost`` points if the minute has them; False means answer 429."""
        self._roll()
        if cost > self.per_minute - self.used:
            self.rejected_total += 1
            return False
        self.used += cost
        self.charged_total += cost
        return True

    def retry_after_header(self) -> str:
        return str(max(1, math.ceil(self.seconds_to_reset())))
