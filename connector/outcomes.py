"""Where every record ends: accepted (optionally with the API's response) or rejected, with the reason.

Files are JSON Lines, flushed before the target may emit a STATE message that covers the record; a
webhook (``connector/webhook.py``) is one more output of the same lines. Secrets are masked before
anything is written.
"""

from __future__ import annotations

import datetime as dt
import logging
import reprlib
import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import orjson

from connector import jsonio
from connector.errors import ConnectorError
from connector.secrets import REDACTOR
from connector.webhook import Webhook

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


class OutcomeOutput(Protocol):
    """Where outcomes of one kind go, each as its JSON text: a JSON Lines file, a webhook."""

    def write(self, line: bytes) -> None: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


class JsonLinesFile:
    """An outcome file: one JSON object a line, kept open for the run."""

    def __init__(self, path: str) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._handle = open(path, "ab")  # noqa: SIM115 - kept open for the run, closed by close()

    def write(self, line: bytes) -> None:
        self._handle.write(line + b"\n")

    def flush(self) -> None:
        self._handle.flush()

    def close(self) -> None:
        self._handle.close()


class Outcomes:
    """Counts and outputs for one target run, shared by all of its sinks (thread-safe).

    Rejections and responses each go to a file and, when the user asks, to a webhook: the same JSON text
    to both, secrets masked. Files are written first and flushed first: they keep what a webhook misses.
    """

    def __init__(
        self,
        rejected_path: str | None,
        responses_path: str | None = None,
        requests_path: str | None = None,
        max_rejected: int | None = None,
        webhooks: Mapping[str, Webhook] | None = None,
    ) -> None:
        self.accepted: Counter[str] = Counter()
        self.rejected: Counter[str] = Counter()
        self.unchanged: Counter[str] = Counter()  # records not sent: the API already has them (changes_only)
        self.reasons: Counter[str] = Counter()
        self.max_rejected = max_rejected
        self._lock = threading.Lock()
        self.webhooks = dict(webhooks or {})  # setting name (responses_url, rejected_url) -> webhook
        self._files = {
            path: JsonLinesFile(path) for path in (rejected_path, responses_path, requests_path) if path
        }
        self._rejected = self._outputs_of(rejected_path, "rejected_url")
        self._responses = self._outputs_of(responses_path, "responses_url")
        self._requests = self._outputs_of(requests_path, None)
        self.rejected_path = rejected_path

    def accept(self, stream: str, count: int = 1, *, response: dict[str, Any] | None = None) -> None:
        with self._lock:
            self.accepted[stream] += count
            if self._responses and response is not None:
                _write(self._responses, response)

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
            if self._rejected:
                _write(self._rejected, entry)
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
        return bool(self._requests)

    def record_request(self, stream: str, request: SentRequest, records: int) -> None:
        if self._requests:
            with self._lock:
                _write(self._requests, {"stream": stream, "records": records, **request.as_dict()})

    def flush(self) -> None:
        """Files, then webhooks: when this returns, every outcome so far is in its file and was POSTed (or
        its webhook was given up)."""
        with self._lock:
            for output in self._outputs():
                output.flush()

    def close(self) -> None:
        self.flush()
        for output in self._outputs():
            output.close()

    def stop(self) -> None:
        """The run is stopping: webhooks make no more waits between attempts."""
        for webhook in self.webhooks.values():
            webhook.stop()

    def undelivered(self) -> list[str]:
        """For each webhook that did not take every outcome, how many it missed and where they are."""
        return [report for webhook in self.webhooks.values() if (report := webhook.report())]

    def _outputs_of(self, path: str | None, webhook: str | None) -> list[OutcomeOutput]:
        outputs: list[OutcomeOutput] = [self._files[path]] if path else []
        if webhook in self.webhooks:
            outputs.append(self.webhooks[webhook])
        return outputs

    def _outputs(self) -> list[OutcomeOutput]:
        return [*self._files.values(), *self.webhooks.values()]

    def summary(self) -> dict[str, Any]:
        summary: dict[str, Any] = {
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
        if self.webhooks:
            summary["webhooks"] = {name: webhook.summary() for name, webhook in self.webhooks.items()}
        return summary


def _write(outputs: list[OutcomeOutput], value: dict[str, Any]) -> None:
    """One outcome to each of its outputs, as the same masked JSON text."""
    line = _dumps(REDACTOR.redact_value(value))
    for output in outputs:
        output.write(line)
