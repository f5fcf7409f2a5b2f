"""Request bodies as bytes: one encoder for every transport, for preview and for send-test alike.

JSON bodies are written by orjson. Form bodies (``body_format: form``) use the bracket notation APIs
that take forms expect for structure: ``metadata[plan]=pro``, ``items[0][price]=p_1``, ``tags[]=a``;
``true``/``false`` for booleans; a field whose value is null is left out (send ``""`` to clear one).
A body that is already a string is sent as it is.
A template's own ``Content-Type`` header is kept.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import quote_plus

import orjson

from connector import jsonio
from connector.errors import RenderError

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
MAX_DEPTH = 32


def _scalar(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (str, int, Decimal)):
        return str(value)
    raise RenderError(f"cannot form-encode a {type(value).__name__}")


def form_pairs(value: Any, prefix: str = "", depth: int = 0) -> list[tuple[str, str]]:
    """Flatten a structure into (key, value) pairs in bracket notation."""
    if depth > MAX_DEPTH:
        raise RenderError(f"form body nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, Mapping):
        pairs: list[tuple[str, str]] = []
        for key, item in value.items():
            if item is None:
                continue  # a field without a value is not sent (an empty value would clear it)
            name = f"{prefix}[{key}]" if prefix else str(key)
            pairs += form_pairs(item, name, depth + 1)
        return pairs
    if isinstance(value, (list, tuple)):
        if not prefix:
            raise RenderError("a form body must be a mapping of names to values, not a list")
        if all(not isinstance(item, (Mapping, list, tuple)) for item in value):
            return [(f"{prefix}[]", _scalar(item)) for item in value]
        pairs = []
        for index, item in enumerate(value):
            pairs += form_pairs(item, f"{prefix}[{index}]", depth + 1)
        return pairs
    if not prefix:
        raise RenderError(f"a form body must be a mapping of names to values, not a {type(value).__name__}")
    return [(prefix, _scalar(value))]


def encode_form(value: Any) -> bytes:
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, bytes):
        return value
    return "&".join(f"{quote_plus(k, safe='[]')}={quote_plus(v)}" for k, v in form_pairs(value)).encode()


def encode_json(value: Any) -> bytes:
    try:
        return jsonio.dumps(value, option=orjson.OPT_NON_STR_KEYS)
    except (jsonio.JSONEncodeError, TypeError) as exc:  # a value JSON has no type for, or nested too deep
        raise RenderError(f"cannot write the request body as JSON: {exc}") from None


def _has(headers: Mapping[str, str], name: str) -> bool:
    lowered = name.lower()
    return any(key.lower() == lowered for key in headers)


def encode_body(
    json_body: Any, form_body: Any, content: bytes | None, headers: Mapping[str, str] | None
) -> tuple[bytes | None, dict[str, str]]:
    """The bytes a request carries and its headers (with a Content-Type unless the template set one)."""
    out = dict(headers or {})
    if content is not None:
        return content, out
    if form_body is not None:
        content, kind = encode_form(form_body), FORM
    elif json_body is not None:
        content, kind = encode_json(json_body), JSON
    else:
        return None, out
    if not _has(out, "content-type"):
        out["Content-Type"] = kind
    return content, out


def encode(
    body: Any, body_format: str, headers: Mapping[str, str] | None
) -> tuple[bytes | None, dict[str, str]]:
    """Encode a rendered template body in its template's format."""
    if body is None:
        return None, dict(headers or {})
    if body_format == "form":
        return encode_body(None, body, None, headers)
    return encode_body(body, None, None, headers)
