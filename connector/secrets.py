"""Keeping secrets out of logs, errors and files: every known secret value is masked on the way out."""

from __future__ import annotations

import base64
import json
import logging
import re
import threading
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, quote_plus

MASK = "***"
MIN_SECRET = 4  # shorter values are not masked in text: they would mask ordinary words
_MIN_BASE64_CORE = 6


def _secret_texts(value: Any) -> list[str]:
    """The text forms of a secret setting's value: a number is a secret as much as a string is."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, bool) or value is None:
        return []
    if isinstance(value, (int, float)):
        return [repr(value), str(value)]
    if isinstance(value, (list, tuple)):
        return [text for item in value for text in _secret_texts(item)]
    if isinstance(value, dict):
        return [text for item in value.values() for text in _secret_texts(item)]
    return [str(value)]


def _lower_hex(text: str) -> str:
    return re.sub(r"%[0-9A-F]{2}", lambda m: m.group().lower(), text)


def _base64_cores(secret: bytes) -> set[str]:
    """The base64 characters that only the secret's bytes decide, at each of the three alignments it can have
    inside a longer value (``user:secret`` of Basic auth): whatever surrounds it, they appear."""
    cores = set()
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + secret + b"\0\0").decode()
        first, last = -(-8 * offset // 6), 8 * (offset + len(secret)) // 6
        core = encoded[first:last]
        if len(core) >= _MIN_BASE64_CORE:
            cores.update({core, core.replace("+", "-").replace("/", "_")})
    return cores


def spellings(secret: str) -> set[str]:
    """Every way the secret is written in text we may print: raw, URL-encoded (any case of hex), JSON-escaped
    (with or without ``\\/`` and ``\\uXXXX`` escapes of non-ASCII), and in base64 (alone or inside
    ``user:secret``)."""
    quoted = {quote(secret, safe=""), quote(secret), quote_plus(secret), quote_plus(secret, safe="/")}
    quoted |= {_lower_hex(q) for q in quoted}
    escaped = {json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1]}
    escaped |= {e.replace("/", "\\/") for e in escaped}
    raw = secret.encode("utf-8", "surrogatepass")
    return {secret, *quoted, *escaped, *_base64_cores(raw)}


def _escaped_pattern(secret: str) -> re.Pattern[str]:
    """The secret with any of its characters escaped as JSON or URL-encoded, mixed as an encoder may mix them."""

    def hex_any_case(code: str) -> str:
        return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else c for c in code)

    parts = []
    for char in secret:
        options = [re.escape(char)]
        utf16 = char.encode("utf-16-be", "surrogatepass")
        options.append(
            "".join("\\\\u" + hex_any_case(utf16[i : i + 2].hex()) for i in range(0, len(utf16), 2))
        )
        options.append("".join("%" + hex_any_case(f"{b:02x}") for b in char.encode("utf-8", "surrogatepass")))
        if char == " ":
            options.append("\\+")
        if char in '/"\\':
            options.append("\\\\" + re.escape(char))
        parts.append("(?:" + "|".join(options) + ")")
    return re.compile("".join(parts))


class Redactor:
    """Knows the secret values of this run (config secrets, tokens issued during it) and masks them in every
    encoding they can take in what we print."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()
        self._spellings: list[str] = []  # longest first, so a longer spelling is masked whole
        self._json_bytes: list[bytes] = []  # how each secret looks inside JSON we write
        self._patterns: list[re.Pattern[str]] = []
        self._longest = 0
        self._lock = threading.Lock()

    def add(self, *values: Any) -> None:
        with self._lock:
            for value in values:
                for secret in _secret_texts(value):
                    if len(secret) < MIN_SECRET or secret in self._secrets:
                        continue
                    self._secrets.add(secret)
                    found = spellings(secret)
                    self._spellings = sorted({*self._spellings, *found}, key=len, reverse=True)
                    self._longest = max(self._longest, *(len(s) for s in found))
                    self._json_bytes.append(
                        json.dumps(secret, ensure_ascii=False)[1:-1].encode("utf-8", "surrogatepass")
                    )
                    self._patterns.append(_escaped_pattern(secret))

    def redact(self, text: str) -> str:
        for spelling in self._spellings:
            if spelling in text:
                text = text.replace(spelling, MASK)
        if self._patterns and ("%" in text or "\\" in text):
            for pattern in self._patterns:
                text = pattern.sub(MASK, text)
        return text

    def shorten(self, text: str, limit: int) -> str:
        """At most ``limit`` characters of ``text``, masked first: a cut never leaves a secret's prefix."""
        return self.redact(text[: limit + self._longest])[:limit]

    def in_json(self, data: bytes) -> bool:
        """Whether JSON text we wrote holds a secret (cheap enough to ask of every message: no generator, as it is
        asked once per record)."""
        return any(map(data.__contains__, self._json_bytes))

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
