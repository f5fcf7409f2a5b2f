"""What the tap checks of each record an API sent before it becomes a RECORD message.

A record that is not a JSON object, lacks its primary key, or holds a value whose type its stream's schema
does not allow is skipped with a warning naming the stream and its place, and counted: a downstream loader
would otherwise fail on it, or merge records without a key into one.
"""

from __future__ import annotations

import decimal
import operator
from collections import Counter
from collections.abc import Callable
from typing import Any

from connector import jsonio

# JSON Schema type -> the Python types the JSON reader gives for it (bool is not an integer here).
_PYTHON_TYPES: dict[str, tuple[type, ...]] = {
    "integer": (int,),
    "number": (int, float, decimal.Decimal),
    "string": (str,),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
    "null": (type(None),),
}
_ANY = tuple(t for types in _PYTHON_TYPES.values() for t in types)
_PLANS = 64  # key sets remembered per stream (an API sends one or a few)


class _AnyType:
    """The types allowed for a property the schema does not declare: any (singer-sdk drops it)."""

    def __contains__(self, _: object) -> bool:
        return True


_UNDECLARED = _AnyType()


class Unwritable:
    """Stands for a record the JSON writer cannot write (a lone surrogate escape in a string): skipped."""


def mark_unwritable(body: Any, records_of: Callable[[Any], Any]) -> Any | None:
    """The body with each record the writer cannot write replaced by an Unwritable, so that only those records
    are skipped rather than the page or the stream; None when its one record is such (nothing to keep)."""
    records = records_of(body)
    if isinstance(records, list):
        records[:] = [r if jsonio.writable(r) else Unwritable() for r in records]
    elif isinstance(records, dict) and not jsonio.writable(records):
        return None
    return body


class RecordCheck:
    """One stream's rules, compiled once: per set of keys a record comes with, the types each key allows, so a
    conforming record costs one membership test per property."""

    def __init__(self, stream: str, schema: dict[str, Any], primary_key: list[str]) -> None:
        self.stream = stream
        self.primary_key = primary_key
        self.skipped: Counter[str] = Counter()
        self._types: dict[str, frozenset[type]] = {}
        for name, prop in (schema.get("properties") or {}).items():
            declared = prop.get("type") if isinstance(prop, dict) else None
            names = [declared] if isinstance(declared, str) else declared
            if names and all(n in _PYTHON_TYPES for n in names):
                self._types[name] = frozenset(t for n in names for t in _PYTHON_TYPES[n])
            else:  # no type, or anyOf and the like: any value
                self._types[name] = frozenset(_ANY)
        self._plans: dict[tuple[str, ...], tuple[Any, ...]] = {}

    def problem(self, record: Any) -> tuple[str, str] | None:
        """``(reason, what is wrong)`` for a record to skip, None for one to emit."""
        if isinstance(record, Unwritable):
            return (
                "bad_text",
                "holds text that is not valid Unicode (a lone surrogate escape such as \\ud83d)",
            )
        if not isinstance(record, dict):
            return "not_object", f"is not a JSON object (got {type(record).__name__})"
        for key in self.primary_key:
            if record.get(key) is None:
                return "missing_key", f"has no value for its primary key {key!r}"
        if self._conforms(record):
            return None
        for name, value in record.items():
            types = self._types.get(name)
            if types is not None and type(value) not in types:
                allowed = " or ".join(sorted(t.__name__ for t in types))
                return (
                    "wrong_type",
                    f"has {name!r} of type {type(value).__name__}, its schema allows {allowed}",
                )
        return None  # (not reached: a record _conforms refused holds a declared property of another type)

    def _conforms(self, record: dict) -> bool:
        """Whether each property's value has a type its schema allows (undeclared ones: any)."""
        keys = tuple(record)
        plan = self._plans.get(keys)
        if plan is None:
            if len(self._plans) >= _PLANS:  # records of ever new keys: no memory grows with them
                self._plans.clear()
            plan = self._plans[keys] = tuple(self._types.get(key, _UNDECLARED) for key in keys)
        return all(map(operator.contains, plan, map(type, record.values())))

    def kept(self, records: list[Any], where: str, logger: Any) -> list[dict]:
        """The records to emit; each other one is counted and named in a warning (None, a record a
        transformation dropped, is left out quietly: the transformation counts those)."""
        out = []
        for position, record in enumerate(records, start=1):
            if record is None:
                continue
            found = self.problem(record)
            if found is None:
                out.append(record)
                continue
            reason, detail = found
            self.skipped[reason] += 1
            logger.warning("stream %r: record %d of %s %s: skipped", self.stream, position, where, detail)
        return out
