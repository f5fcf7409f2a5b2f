"""Query strings and request bodies, parsed the way a Rails API (Salesloft) reads them.

Two views exist: the flat ``{"ids[]": ["1", "2"]}`` dict of lists that the journal records and
list filters read, and the nested ``{"ids": ["1", "2"], "custom_fields": {"Region": "EU"}}``
parameters that write handlers read (query string merged with a JSON or form body).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

import orjson

from sandbox.wire import Request, bad_request

FlatQuery = dict[str, list[str]]

_KEY_PART = re.compile(r"\[([^\]]*)\]")


def flat_query(query_string: str) -> FlatQuery:
    out: FlatQuery = {}
    for key, value in parse_qsl(query_string, keep_blank_values=True):
        out.setdefault(key, []).append(value)
    return out


def nest(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """``a[b]=1&c[]=2&c[]=3`` -> ``{"a": {"b": "1"}, "c": ["2", "3"]}``."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        bracket = key.find("[")
        if bracket <= 0:
            root[key] = value
            continue
        parts = [key[:bracket], *_KEY_PART.findall(key[bracket:])]
        node: Any = root
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            nxt = None if last else parts[i + 1]
            if isinstance(node, list):
                if last:
                    node.append(value)
                    break
                child = {} if nxt != "" else []
                node.append(child)
                node = child
                continue
            if last:
                if part == "":
                    break
                node[part] = value
                break
            if nxt == "":
                node = node.setdefault(part, [])
                if not isinstance(node, list):
                    break
            else:
                child = node.get(part)
                if not isinstance(child, dict):
                    child = {}
                    node[part] = child
                node = child
    return root


def parse_body(request: Request) -> Any:
    """The parsed body (JSON or form), ``None`` when empty. Raises 400 on unparseable JSON."""
    body = request.body
    if not body or not body.strip():
        return None
    ctype = request.headers.get("content-type", "")
    if "x-www-form-urlencoded" in ctype:
        return nest(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    if "json" in ctype or body.lstrip()[:1] in (b"{", b"["):
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            raise bad_request("Malformed JSON body") from None
    return nest(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


def write_params(request: Request, body: Any) -> dict[str, Any]:
    """Query-string parameters overlaid by body parameters (Salesloft accepts both)."""
    params = nest(parse_qsl(request.query_string, keep_blank_values=True))
    if body is None:
        return params
    if not isinstance(body, dict):
        raise bad_request("Request body must be a JSON object")
    params.update(body)
    return params


# -- reading single values ---------------------------------------------------------------


def first(query: FlatQuery, key: str) -> str | None:
    values = query.get(key)
    return values[-1] if values else None


def many(query: FlatQuery, key: str) -> list[str]:
    """All values of ``key[]``, ``key``, ``key[0]``...; comma-separated values are split."""
    values: list[str] = []
    for name, items in query.items():
        if (
            name == key
            or name == key + "[]"
            or (name.startswith(key + "[") and name[len(key) + 1 : -1].isdigit())
        ):
            for item in items:
                values.extend(v for v in item.split(",") if v != "")
    return values


def as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None


def as_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "1", "t", "yes"):
            return True
        if lowered in ("false", "0", "f", "no"):
            return False
    if isinstance(value, int):
        return bool(value)
    return None


def present(value: Any) -> bool:
    """Rails' ``present?``: not None, not an empty or whitespace string."""
    if value is None:
        return False
    if isinstance(value, str):
        return value.strip() != ""
    return True
