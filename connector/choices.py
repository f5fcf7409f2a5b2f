"""Choices: a stream's records as value/label pairs, the valid values of a field and the text beside them
(owners, stages, cadences, dispositions...), for template and record authors picking what to send.

A stream template may say which fields they are (``values: {value: id, label: name}``); otherwise the
value is the primary key and the label the first usual naming field its record schema declares.
Fields are dot paths, so a nested field (``role.id``, ``custom_fields.Industry``) lists the distinct
values records carry where the API has no list of its own.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Annotated, Any

import orjson

from connector.kinds import Model, describe
from connector.render import dot_path

# Fields that usually name a record, most telling first.
LABEL_FIELDS = (
    "name",
    "display_name",
    "full_name",
    "title",
    "label",
    "subject",
    "email",
    "email_address",
    "key",
)


class Choices(Model, kw_only=True, frozen=True):
    """Which fields of a stream's records are a choice's value and its label (`connector values`)."""

    value: (
        Annotated[str, describe("Dot path of the value a field takes (default: the single primary key).")]
        | None
    ) = None
    label: (
        Annotated[str, describe("Dot path of the text shown beside it (default: name, title, email...).")]
        | None
    ) = None


def default_choices(primary_key: list[str], properties: Iterable[str]) -> Choices:
    """The value and label fields of a stream that declares none."""
    names = list(properties)
    value = primary_key[0] if len(primary_key) == 1 else "id"
    label = next((name for name in LABEL_FIELDS if name in names), value)
    return Choices(value=value, label=label)


def resolve(declared: Choices | None, defaults: Choices, value: str | None, label: str | None) -> Choices:
    """Options given on the command line win over the template's declaration, which wins over defaults."""
    declared = declared or Choices()
    return Choices(
        value=value or declared.value or defaults.value,
        label=label or declared.label or defaults.label,
    )


def _text(value: Any) -> Any:
    """A scalar as it is; an object or a list as its JSON (still one comparable, printable value)."""
    if isinstance(value, (dict, list)):
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    return value


@dataclass
class Pairs:
    """Distinct (value, label) pairs in the order first read, and how many records had no value."""

    rows: list[tuple[Any, Any]] = field(default_factory=list)
    records: int = 0
    without_value: int = 0
    limited: bool = False  # reading stopped at the limit: more pairs may exist


def collect(records: Iterable[dict], choices: Choices, limit: int | None = None) -> Pairs:
    """The distinct pairs of ``records``; with ``limit``, reading stops once that many were found."""
    get_value, get_label = dot_path(choices.value), dot_path(choices.label)
    pairs = Pairs()
    seen: set[tuple[Any, Any]] = set()
    for record in records:
        pairs.records += 1
        value = _text(get_value(record))
        if value is None or value == "":
            pairs.without_value += 1
            continue
        label = _text(get_label(record))
        key = (orjson.dumps(value), orjson.dumps(label))
        if key not in seen:
            seen.add(key)
            pairs.rows.append((value, label))
            if limit is not None and len(pairs.rows) >= limit:
                pairs.limited = True
                break
    return pairs
