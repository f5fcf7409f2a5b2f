"""Keeping secrets out of logs, errors and files: every known secret value is masked on the way out."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from typing import Any

MASK = "***"


class Redactor:
    """Knows the secret values of this run (config secrets, tokens issued during it) and masks them."""

    def __init__(self) -> None:
        self._values: set[str] = set()
        self._lock = threading.Lock()

    def add(self, *values: Any) -> None:
        with self._lock:
            for value in values:
                if isinstance(value, str) and len(value) >= 4:
                    self._values.add(value)

    def redact(self, text: str) -> str:
        for value in self._values:
            if value in text:
                text = text.replace(value, MASK)
        return text

    def redact_value(self, value: Any) -> Any:
        """Mask secrets inside a JSON-like structure."""
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, dict):
            return {k: self.redact_value(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.redact_value(v) for v in value]
        return value


REDACTOR = Redactor()

SENSITIVE_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key"})


def safe_headers(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Headers fit to show a user or write to a file: credentials masked."""
    return {k: (MASK if k.lower() in SENSITIVE_HEADERS else REDACTOR.redact(v)) for k, v in headers}


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = REDACTOR.redact(message)
        if masked != message or record.args:
            record.msg = masked
            record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = REDACTOR.redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


_installed = False


def install_logging_filter() -> None:
    """Attach the redacting filter to every handler of the root logger (and to new records)."""
    global _installed
    if _installed:
        return
    _installed = True
    redacting = RedactingFilter()
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        redacting.filter(record)
        return record

    logging.setLogRecordFactory(factory)
