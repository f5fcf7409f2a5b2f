"""Per-item results of a batched request, mapped back to each record's own outcome.

An API answering one request for many records (``207 Multi-Status``, or 200 with an ``errors`` array) says
which items failed, by their position in the batch or by their id. Each record then gets its own outcome:
named by an error -> rejected with that item's message; named by a success -> accepted. A record the answer
does not name is accepted only when every error could be matched to a record; otherwise the engine cannot
tell whether it was applied, and it is rejected as ``unconfirmed`` with the unmatched errors, never
counted as accepted on a guess.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from connector.kinds import Model, describe
from connector.render import Compiled, compile_condition, dot_path


class ItemResults(Model, kw_only=True, frozen=True):
    """Where a batched answer lists its items, and how an item names its record."""

    errors: Annotated[str, describe("Dot path to the array of failed items.")] | None = None
    results: (
        Annotated[
            str, describe("Dot path to the array of per-item results (successes, or all items with 'ok').")
        ]
        | None
    ) = None
    ok: (
        Annotated[str, describe("Jinja condition over item: the item succeeded (for mixed results arrays).")]
        | None
    ) = None
    index: Annotated[str, describe("Dot path in an item to its position in the batch (0-based).")] | None = (
        None
    )
    id: (
        Annotated[
            str,
            describe("Dot path in an item to the record's id_field value (a list: any of its values)."),
        ]
        | None
    ) = None
    message: (
        Annotated[str, describe("Dot path in an error item to its message (default: the whole item).")] | None
    ) = None

    def __post_init__(self) -> None:
        if not (self.errors or self.results):
            raise ValueError("results needs 'errors' or 'results' (where the items are)")
        if not (self.index or self.id):
            raise ValueError("results needs 'index' or 'id' (how an item names its record)")
        if self.ok and not self.results:
            raise ValueError("'ok' applies to the items of 'results'")


@dataclass
class ItemOutcome:
    accepted: bool
    message: str = ""
    kind: str | None = None  # rejection kind when not the API's own (e.g. unconfirmed)
    result: Any = None


class ItemMatcher:
    """Compiled ``results`` of a sink: ``outcomes(body, ids)`` gives each record of a batch its outcome."""

    def __init__(self, spec: ItemResults, normalise: Callable[[Any], str] = str) -> None:
        self.spec = spec
        self._errors = dot_path(spec.errors) if spec.errors else None
        self._results = dot_path(spec.results) if spec.results else None
        self._ok: Compiled | None = compile_condition(spec.ok) if spec.ok else None
        self._index = dot_path(spec.index) if spec.index else None
        self._id = dot_path(spec.id) if spec.id else None
        self._message = dot_path(spec.message) if spec.message else None
        self._normalise = normalise

    def lists_items(self, body: Any) -> bool:
        """True when the answer has per-item results or errors at all (a refused request often has neither)."""
        for getter in (self._errors, self._results):
            found = getter(body) if getter is not None else None
            if isinstance(found, list) and found:
                return True
        return False

    def _positions(self, item: Any, ids: list[Any]) -> list[int]:
        if self._index is not None:
            value = self._index(item)
            if isinstance(value, list):
                value = value[0] if value else None
            try:
                position = int(value) if value is not None and not isinstance(value, bool) else -1
            except (TypeError, ValueError):
                position = -1
            if 0 <= position < len(ids):
                return [position]
        if self._id is not None:
            named = self._id(item)
            values = named if isinstance(named, list) else [named]
            wanted = {self._normalise(v) for v in values if v is not None}
            return [
                i
                for i, record_id in enumerate(ids)
                if record_id is not None and self._normalise(record_id) in wanted
            ]
        return []

    def _text(self, item: Any) -> str:
        found = self._message(item) if self._message is not None else None
        if found is None:
            found = item
        return found if isinstance(found, str) else _compact(found)

    def outcomes(self, body: Any, ids: list[Any]) -> list[ItemOutcome]:
        """One outcome per record of the batch, in order; ``ids`` are the records' id_field values."""
        named: dict[int, ItemOutcome] = {}
        unmatched: list[str] = []
        failed_items: list[Any] = list((self._errors(body) if self._errors else None) or [])
        succeeded_items: list[Any] = []
        for item in (self._results(body) if self._results else None) or []:
            if self._ok is not None and not self._ok.render({"item": item}):
                failed_items.append(item)
            else:
                succeeded_items.append(item)
        for item in failed_items:
            positions = self._positions(item, ids)
            if not positions:
                unmatched.append(self._text(item))
            for position in positions:
                named[position] = ItemOutcome(False, self._text(item))
        for item in succeeded_items:
            for position in self._positions(item, ids):
                named.setdefault(position, ItemOutcome(True, result=item))
        confirm_by_result = self._results is not None and self._ok is None and self._errors is None
        outcomes = []
        for position in range(len(ids)):
            if position in named:
                outcomes.append(named[position])
            elif unmatched:
                outcomes.append(
                    ItemOutcome(
                        False,
                        "the answer reports errors it does not tie to a record, so this record's outcome is "
                        f"unknown: {'; '.join(unmatched)[:500]}",
                        kind="unconfirmed",
                    )
                )
            elif confirm_by_result or (self._ok is not None):
                outcomes.append(
                    ItemOutcome(False, "the answer has no result for this record", kind="unconfirmed")
                )
            else:
                outcomes.append(ItemOutcome(True))
        return outcomes


def _compact(value: Any) -> str:
    import orjson

    try:
        return orjson.dumps(value).decode()[:500]
    except TypeError:
        return str(value)[:500]
