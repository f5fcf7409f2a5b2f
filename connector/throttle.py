"""An endpoint's own request rate (a search endpoint at 5 requests a second), beside the connection's budget."""

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
