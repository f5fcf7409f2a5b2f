"""The typed models of the template format's concepts, and what every concept derives from them.

Each concept (pagination, auth, incremental, transformations, response actions, batch results) is one
module holding one small ``msgspec.Struct`` per kind: its fields are the YAML fields, its docstring and
field descriptions are the documentation, its methods are the behaviour. From those classes alone come:

- the JSON Schema of the concept (``specs/template.schema.json``'s ``$defs``, kept in sync by a test),
- the loader's parsing and error messages (``file:line: field: message``),
- the field tables of ``connector docs``/the template guide, and what ``connector validate`` checks.

A new kind is a new class added to its concept's union; nothing else lists kinds.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, get_args

import msgspec

from connector.errors import TemplateError


class Model(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """Base of every template model: unknown fields are errors, values are immutable."""


def describe(text: str, **constraints: Any) -> Any:
    """Field metadata: the description shown in the schema, the guide and editors."""
    return msgspec.Meta(description=text, **constraints)


# ---------------------------------------------------------------- durations

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_SHORT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_ISO = re.compile(r"^P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$")


def parse_duration(value: Any) -> float:
    """Seconds from ``90`` (seconds), ``'30m'``, ``'2d'``, ``'1w'`` or ISO-8601 ``'P1DT12H'``."""
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        text = str(value).strip()
        short = _SHORT.match(text)
        iso = _ISO.match(text.upper()) if text.upper().startswith("P") else None
        if short:
            seconds = float(short[1]) * _UNITS[short[2]]
        elif iso and any(iso.groups()):
            weeks, days, hours, minutes, secs = (float(g) if g else 0.0 for g in iso.groups())
            seconds = weeks * 604800 + days * 86400 + hours * 3600 + minutes * 60 + secs
        else:
            raise ValueError(
                f"not a duration: {value!r} (use seconds, '30m', '12h', '2d', '1w' or 'P1DT12H')"
            )
    if seconds < 0:
        raise ValueError(f"a duration cannot be negative (got {value!r})")
    return seconds


DURATION_SCHEMA = {
    "anyOf": [
        {"type": "number", "minimum": 0},
        {"type": "string", "pattern": r"^(\d+(\.\d+)?\s*[smhdw]|P.+)$"},
    ],
    "description": "Seconds, or '30m', '12h', '2d', '1w', or ISO-8601 'P1DT12H'.",
}


# ---------------------------------------------------------------- parsing with file:line errors

_AT = re.compile(r" - at `\$(?P<path>[^`]*)`$")


def _path_of(text: str) -> list[Any]:
    parts: list[Any] = []
    for match in re.finditer(r"\.([^.\[]+)|\[(\d+)\]", text):
        parts.append(match[1] if match[1] is not None else int(match[2]))
    return parts


def convert(
    value: Any,
    model: Any,
    file: str,
    path: list[Any],
    document: Any,
    line_of: Any,
    field_name: Any,
) -> Any:
    """Parse one block of a template into its model; a problem becomes a TemplateError at its line."""
    members = _members(model)
    if len(members) > 1 and isinstance(value, Mapping) and "type" not in value:
        everything = {name for cls in members for name in field_names(cls)}
        unknown = [key for key in value if key not in everything]
        if unknown:
            full = [*path, unknown[0]]
            message = f"unknown field {unknown[0]!r} (known: {', '.join(sorted(everything))})"
        else:
            full = [*path]
            message = f"missing required field 'type' (one of: {', '.join(kind_names(model))})"
        raise TemplateError(file, field_name(full), message, line_of(document, full))
    try:
        return msgspec.convert(value, model, strict=True)
    except msgspec.ValidationError as exc:
        text = str(exc)
        where = _AT.search(text)
        inner = _path_of(where["path"]) if where else []
        message = _AT.sub("", text)
        named = re.match(r"Object contains unknown field `(.+)`", message)
        if named:
            inner = [*inner, named[1]]
            message = f"unknown field {named[1]!r} (known: {', '.join(known_fields(model, value, inner))})"
        elif message.startswith("Invalid value") and inner and inner[-1] == "type":
            message = f"{message.split(' - ')[0].replace('Invalid value', 'unknown type')} (known: {', '.join(kind_names(model))})"
        elif message.startswith("Object missing required field"):
            message = message.replace("Object missing required field", "missing required field")
        full = [*path, *inner]
        raise TemplateError(file, field_name(full), message, line_of(document, full)) from None


def _tag(cls: Any) -> Any:
    return cls.__struct_config__.tag


def _members(model: Any) -> list[type]:
    args = get_args(model)
    return [a for a in args if isinstance(a, type)] if args else [model]


def kind_names(model: Any) -> list[str]:
    return [str(_tag(cls)) for cls in _members(model) if _tag(cls)]


def kind_of(model: Any, name: str) -> type | None:
    for cls in _members(model):
        if _tag(cls) == name:
            return cls
    return None


def known_fields(model: Any, value: Any, inner: list[Any]) -> list[str]:
    """The fields the block that has an unknown one accepts (for the error message)."""
    node = value
    for key in inner[:-1]:
        node = node[key] if isinstance(node, (Mapping, list)) else None
    cls = None
    members = _members(model)
    if isinstance(node, Mapping) and "type" in node:
        cls = kind_of(model, str(node["type"]))
    if cls is None and len(members) == 1:
        cls = members[0]
    if cls is None:
        return []
    return sorted(field_names(cls))


def field_names(cls: type) -> list[str]:
    info = msgspec.inspect.type_info(cls)
    return [f.encode_name for f in info.fields]  # type: ignore[attr-defined]


def _description(kind: Any) -> str:
    """The description a field's type carries (inside an optional's union too)."""
    if isinstance(kind, msgspec.inspect.Metadata):
        return (kind.extra_json_schema or {}).get("description", "") or _description(kind.type)
    if isinstance(kind, msgspec.inspect.UnionType):
        return next((d for d in map(_description, kind.types) if d), "")
    return ""


def fields_of(cls: type) -> Iterable[tuple[str, str, Any]]:
    """(YAML name, description, default) of a model's fields, for docs."""
    info = msgspec.inspect.type_info(cls)
    for f in info.fields:  # type: ignore[attr-defined]
        default = f.default if f.default is not msgspec.NODEFAULT else None
        yield f.encode_name, _description(f.type), default


# ---------------------------------------------------------------- JSON Schema


def schema_of(model: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The JSON Schema of a model (or union of kinds) and the definitions it refers to."""
    (schema,), defs = msgspec.json.schema_components([model], ref_template="#/$defs/{name}")
    return schema, defs
