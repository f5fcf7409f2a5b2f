"""Where every record ends: accepted (optionally with the API's response) or rejected, with the reason.

Files are JSON Lines, flushed before the target may emit a STATE message that covers the record.
Secrets are masked before anything is written.
"""

from __future__ import annotations

import datetime as dt
import logging
import reprlib
import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson

from connector import jsonio
from connector.errors import ConnectorError
from connector.secrets import REDACTOR

logger = logging.getLogger("connector.outcomes")


class TooManyRejected(ConnectorError):
    """The user's ``max_rejected`` (or fail-fast) limit was passed."""


@dataclass
class SentRequest:
    """A rendered request as the user may see it: no credentials."""

    method: str
    url: str
    params: dict[str, Any] | None = None
    headers: dict[str, str] | None = None
    body: Any = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"method": self.method, "url": self.url}
        if self.params:
            out["params"] = self.params
        if self.headers:
            out["headers"] = self.headers
        if self.body is not None:
            out["body"] = self.body
        return out


_PREVIEW = reprlib.Repr()
_PREVIEW.maxlevel, _PREVIEW.maxdict, _PREVIEW.maxlist, _PREVIEW.maxstring = 12, 50, 50, 2000


def unwritable(value: Any, error: Exception) -> dict[str, str]:
    """A value the JSON writer refused, as something it can write: why, and a bounded, escaped preview."""
    return {
        "unwritable": str(error),
        "preview": _PREVIEW.repr(value).encode("ascii", "backslashreplace").decode(),
    }


def _dumps(value: dict[str, Any]) -> bytes:
    """One JSON line; a field the writer cannot write (nested too deep, a lone surrogate) is kept as a bounded,
    escaped preview instead of losing the line or stopping the run."""
    try:
        return jsonio.dumps(value, option=orjson.OPT_NON_STR_KEYS, default=str)
    except jsonio.JSONEncodeError:
        safe: dict[str, Any] = {}
        for key, item in value.items():
            try:
                jsonio.dumps(item, option=orjson.OPT_NON_STR_KEYS, default=str)
                safe[key] = item
            except jsonio.JSONEncodeError as exc:
                safe[key] = unwritable(item, exc)
        return jsonio.dumps(safe, option=orjson.OPT_NON_STR_KEYS, default=str)


class Outcomes:
    """Counts and files for one target run, shared by all of its sinks (thread-safe)."""

    def __init__(
        self,
        rejected_path: str | None,
        responses_path: str | None = None,
        requests_path: str | None = None,
        max_rejected: int | None = None,
    ) -> None:
        self.accepted: Counter[str] = Counter()
        self.rejected: Counter[str] = Counter()
        self.unchanged: Counter[str] = Counter()  # records not sent: the API already has them (changes_only)
        self.reasons: Counter[str] = Counter()
        self.max_rejected = max_rejected
        self._lock = threading.Lock()
        self._rejected_file = _open(rejected_path)
        self._responses_file = _open(responses_path)
        self._requests_file = _open(requests_path)
        self.rejected_path = rejected_path

    def accept(self, stream: str, count: int = 1, *, response: dict[str, Any] | None = None) -> None:
        with self._lock:
            self.accepted[stream] += count
            if self._responses_file and response is not None:
                self._responses_file.write(_dumps(REDACTOR.redact_value(response)) + b"\n")

    def skip_unchanged(self, stream: str, count: int = 1) -> None:
        """Records not sent because the API last accepted the very same request for them: no file line."""
        with self._lock:
            self.unchanged[stream] += count

    def reject(
        self,
        stream: str,
        record: Any,
        *,
        error: str,
        status: int | None = None,
        request: SentRequest | None = None,
        sink: str | None = None,
        kind: str = "api",
    ) -> None:
        entry = {
            "stream": stream,
            "sink": sink,
            "reason": kind,
            "status": status,
            "error": error,
            "record": record,
            "request": request.as_dict() if request else None,
            "at": dt.datetime.now(dt.timezone.utc).isoformat(),
        }
        with self._lock:
            self.rejected[stream] += 1
            self.reasons[kind] += 1
            if self._rejected_file:
                self._rejected_file.write(_dumps(REDACTOR.redact_value(entry)) + b"\n")
            else:
                logger.error("rejected record of %s: %s", stream, REDACTOR.redact(error))
            total = sum(self.rejected.values())
        if self.max_rejected is not None and total > self.max_rejected:
            self.flush()
            raise TooManyRejected(
                f"{total} records rejected, more than max_rejected={self.max_rejected}; last: {stream}: {error}"
                + (f" (see {self.rejected_path})" if self.rejected_path else "")
            )

    @property
    def records_requests(self) -> bool:
        return self._requests_file is not None

    def record_request(self, stream: str, request: SentRequest, records: int) -> None:
        if self._requests_file:
            with self._lock:
                self._requests_file.write(
                    _dumps(REDACTOR.redact_value({"stream": stream, "records": records, **request.as_dict()}))
                    + b"\n"
                )

    def flush(self) -> None:
        with self._lock:
            for handle in (self._rejected_file, self._responses_file, self._requests_file):
                if handle:
                    handle.flush()

    def close(self) -> None:
        self.flush()
        for handle in (self._rejected_file, self._responses_file, self._requests_file):
            if handle:
                handle.close()

    def summary(self) -> dict[str, Any]:
        return {
            "accepted": sum(self.accepted.values()),
            "rejected": sum(self.rejected.values()),
            "unchanged": sum(self.unchanged.values()),
            "by_stream": {
                s: {
                    "accepted": self.accepted[s],
                    "rejected": self.rejected[s],
                    "unchanged": self.unchanged[s],
                }
                for s in sorted(set(self.accepted) | set(self.rejected) | set(self.unchanged))
            },
            "rejected_reasons": dict(self.reasons),
        }


def _open(path: str | None) -> IO[bytes] | None:
    if not path:
        return None
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return open(path, "ab")  # noqa: SIM115 - kept open for the run, closed by Outcomes.close
