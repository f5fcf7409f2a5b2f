"""An endpoint's own request rate (a search endpoint at 5 requests a second), beside the connection's budget.

Templates that name the same ``shared`` limit (every search endpoint of an API counting against one limit)
share one spacing in a run, whether their requests come one stream at a time or overlap."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class Spacing:
    """Spaces the starts of requests at least ``1 / per_second`` apart, across every thread that shares it."""

    def __init__(self, per_second: float) -> None:
        if not per_second > 0:
            raise ValueError(f"requests_per_second must be above 0 (got {per_second!r})")
        self.interval = 1.0 / per_second
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self, sleep: Callable[[float], None] = time.sleep) -> None:
        """Wait for this request's turn; ``sleep`` may end the wait early (a run stopping)."""
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            sleep(start - now)


class Spacings:
    """The endpoint limits of one run: a template's own, or the one it shares with others by name."""

    def __init__(self) -> None:
        self._shared: dict[str, Spacing] = {}
        self._lock = threading.Lock()

    def get(self, per_second: float | None, shared: str | None = None) -> Spacing | None:
        if not per_second:
            return None
        if shared is None:
            return Spacing(per_second)
        with self._lock:
            spacing = self._shared.get(shared)
            if spacing is None:
                spacing = self._shared[shared] = Spacing(per_second)
            else:  # templates sharing a limit but stating it differently: the slowest holds for all
                spacing.interval = max(spacing.interval, 1.0 / per_second)
            return spacing
