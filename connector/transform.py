"""Record transformations a stream applies, in order, to each record it reads (before state and output).

``add_fields`` computes fields with Jinja (the parent's fields on child records, a cursor taken from a nested
value, a constant); ``remove_fields`` drops fields by dot path; ``rename_fields`` moves them; ``keep``
filters records with a condition. Steps are compiled once; a record the steps cannot handle fails the stream
with the record's position, never silently.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Annotated, Any

from connector.kinds import Model, describe
from connector.render import Compiled, CompiledValue, compile_condition


class AddFields(Model, tag="add_fields", tag_field="type", kw_only=True, frozen=True):
    """Set fields to computed values: Jinja over record, parent, partition and config."""

    fields: Annotated[
        dict[str, Any], describe("Field name (dot path for nested) -> value; strings are Jinja templates.")
    ]

    def compile(self) -> Callable[[dict, Mapping[str, Any]], dict | None]:
        values = [(name.split("."), CompiledValue(value)) for name, value in self.fields.items()]

        def add(record: dict, context: Mapping[str, Any]) -> dict:
            scope = {**context, "record": record}
            for path, value in values:
                _set(record, path, value.render(scope))
            return record

        return add


class RemoveFields(Model, tag="remove_fields", tag_field="type", kw_only=True, frozen=True):
    """Drop fields (dot paths); a missing field is no error."""

    fields: Annotated[list[str], describe("Dot paths of the fields to drop.")]

    def compile(self) -> Callable[[dict, Mapping[str, Any]], dict | None]:
        paths = [name.split(".") for name in self.fields]

        def remove(record: dict, context: Mapping[str, Any]) -> dict:
            for path in paths:
                node: Any = record
                for key in path[:-1]:
                    node = node.get(key) if isinstance(node, dict) else None
                if isinstance(node, dict):
                    node.pop(path[-1], None)
            return record

        return remove


class RenameFields(Model, tag="rename_fields", tag_field="type", kw_only=True, frozen=True):
    """Rename top-level fields."""

    fields: Annotated[dict[str, str], describe("Old name -> new name.")]

    def compile(self) -> Callable[[dict, Mapping[str, Any]], dict | None]:
        pairs = list(self.fields.items())

        def rename(record: dict, context: Mapping[str, Any]) -> dict:
            for old, new in pairs:
                if old in record:
                    record[new] = record.pop(old)
            return record

        return rename


class Keep(Model, tag="keep", tag_field="type", kw_only=True, frozen=True):
    """Keep only the records for which a condition holds (the others are counted and logged, not written)."""

    when: Annotated[str, describe("Jinja condition over record, parent, partition and config.")]

    def compile(self) -> Callable[[dict, Mapping[str, Any]], dict | None]:
        condition: Compiled = compile_condition(self.when)

        def keep(record: dict, context: Mapping[str, Any]) -> dict | None:
            return record if condition.render({**context, "record": record}) else None

        return keep


Transformation = AddFields | RemoveFields | RenameFields | Keep


def _set(record: dict, path: list[str], value: Any) -> None:
    node = record
    for key in path[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            child = {}
            node[key] = child
        node = child
    node[path[-1]] = value


class Transformer:
    """The compiled steps of one stream; ``apply`` returns the record, or None when a step filtered it out."""

    def __init__(self, steps: list[Any]) -> None:
        self.steps = [step.compile() for step in steps]
        self.dropped = 0

    def __bool__(self) -> bool:
        return bool(self.steps)

    def apply(self, record: dict, context: Mapping[str, Any]) -> dict | None:
        for step in self.steps:
            result = step(record, context)
            if result is None:
                self.dropped += 1
                return None
            record = result
        return record
