"""The request journal: every /v2 and /oauth request in arrival order, for tests to assert on.

Secrets never enter it: tokens and client secrets in bodies or query strings are replaced by
``"[redacted]"`` and the Authorization header is reduced to whether a bearer was present.
"""

from __future__ import annotations

from collections import deque
from typing import Any
from urllib.parse import urlencode

REDACTED = "[redacted]"
SECRET_KEYS = frozenset(
    {
        "access_token",
        "refresh_token",
        "client_secret",
        "api_key",
        "password",
        "callback_token",
        "code",
        "id_token",
    }
)


def redact(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: (REDACTED if k in SECRET_KEYS else redact(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def redact_query(query: dict[str, list[str]], raw: str) -> tuple[dict[str, list[str]], str]:
    if not any(k in SECRET_KEYS for k in query):
        return query, raw
    safe = {k: ([REDACTED] * len(v) if k in SECRET_KEYS else v) for k, v in query.items()}
    return safe, urlencode([(k, v) for k, values in safe.items() for v in values])


class Journal:
    def __init__(self, limit: int = 200_000):
        self._entries: deque[dict[str, Any]] = deque(maxlen=limit)
        self._seq = 0
        self.raw_bodies = False  # also keep each /v2 body as sent (to check numbers digit for digit)

    def record(self, entry: dict[str, Any]) -> dict[str, Any]:
        self._seq += 1
        entry["seq"] = self._seq
        self._entries.append(entry)
        return entry

    def entries(self, since: int = 0) -> list[dict[str, Any]]:
        return [e for e in self._entries if e["seq"] > since]

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def last_seq(self) -> int:
        return self._seq
