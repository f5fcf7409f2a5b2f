"""In-memory tables: records by id, kept sorted by updated_at and created_at for bisect filters."""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterable, Iterator
from typing import Any

from sandbox.resources import CATALOG, Resource

Record = dict[str, Any]
MAX_ID = 1 << 62
MAX_STRING_ID = "\U0010ffff"  # sorts after every string id


class Table:
    def __init__(self, resource: Resource, fields: Iterable[str]):
        self.resource = resource
        self.name = resource.name
        self.fields = tuple(fields)
        self.has_updated = "updated_at" in self.fields
        self.has_created = "created_at" in self.fields
        self.records: dict[int, Record] = {}
        self._keys: dict[str, dict[int, int]] = {"updated_at": {}, "created_at": {}}
        self._index: dict[str, list[tuple[int, int]]] = {"updated_at": [], "created_at": []}
        self._sorted_ids: list[int] | None = None
        self._field_orders: dict[tuple[str, int], list[int]] = {}
        self.tombstones: set[int] = set()
        self.next_id = resource.first_id
        self.version = 0

    # -- bulk load ---------------------------------------------------------------------

    def load(self, rows: list[tuple[Record, int, int]]) -> None:
        """Replace the contents with ``(record, updated_us, created_us)`` rows."""
        self.records = {row[0]["id"]: row[0] for row in rows}
        up = {rec["id"]: u for rec, u, _ in rows}
        cr = {rec["id"]: c for rec, _, c in rows}
        self._keys = {"updated_at": up, "created_at": cr}
        self._index = {
            "updated_at": sorted((u, i) for i, u in up.items()),
            "created_at": sorted((c, i) for i, c in cr.items()),
        }
        self.tombstones.clear()
        numbers = [i for i in self.records if isinstance(i, int)]
        self.next_id = max(numbers, default=self.resource.first_id - 1) + 1
        self._changed()

    # -- reads -------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.records)

    def __contains__(self, record_id: object) -> bool:
        return record_id in self.records

    def get(self, record_id: int) -> Record | None:
        return self.records.get(record_id)

    def key(self, field: str, record_id: int) -> int:
        return self._keys[field][record_id]

    def index(self, field: str) -> list[tuple[int, int]]:
        """``[(instant_us, id), ...]`` ascending; ties are ordered by id."""
        return self._index[field]

    def sorted_ids(self) -> list[int]:
        if self._sorted_ids is None:
            self._sorted_ids = sorted(self.records)
        return self._sorted_ids

    def ordered_by(self, field: str) -> list[int]:
        """Ids ascending by a record field (nulls last, ties by id); cached until a change."""
        cache_key = (field, self.version)
        order = self._field_orders.get(cache_key)
        if order is None:
            self._field_orders.clear()

            def sort_key(i: int) -> tuple:
                value = self.records[i].get(field)
                if isinstance(value, dict):
                    value = value.get("id")
                if value is None:
                    return (1, 0, "", i)
                if isinstance(value, bool | int | float):
                    return (0, float(value), "", i)
                return (0, 0, str(value).lower(), i)

            order = sorted(self.records, key=sort_key)
            self._field_orders[cache_key] = order
        return order

    def values(self) -> Iterator[Record]:
        for record_id in self.sorted_ids():
            yield self.records[record_id]

    # -- writes ------------------------------------------------------------------------

    def allocate_id(self) -> int:
        record_id = self.next_id
        self.next_id += 1
        return record_id

    def insert(self, record: Record, updated_us: int = 0, created_us: int = 0) -> Record:
        record_id = record["id"]
        if record_id in self.records:
            raise KeyError(f"{self.name} {record_id} exists")
        self.records[record_id] = record
        self._set_key("updated_at", record_id, updated_us)
        self._set_key("created_at", record_id, created_us)
        if record_id >= self.next_id:
            self.next_id = record_id + 1
        self.tombstones.discard(record_id)
        self._changed()
        return record

    def replace(self, record: Record, updated_us: int | None = None) -> Record:
        """Store a new version of a record (and its new updated_at instant, if given)."""
        record_id = record["id"]
        self.records[record_id] = record
        if updated_us is not None:
            old = self._keys["updated_at"].get(record_id)
            if old is not None:
                index = self._index["updated_at"]
                pos = bisect_left(index, (old, record_id))
                if pos < len(index) and index[pos] == (old, record_id):
                    del index[pos]
            self._set_key("updated_at", record_id, updated_us)
        self.version += 1
        self._field_orders.clear()
        return record

    def delete(self, record_id: int) -> Record | None:
        record = self.records.pop(record_id, None)
        if record is None:
            return None
        for field in ("updated_at", "created_at"):
            old = self._keys[field].pop(record_id, None)
            if old is not None:
                index = self._index[field]
                pos = bisect_left(index, (old, record_id))
                if pos < len(index) and index[pos] == (old, record_id):
                    del index[pos]
        self.tombstones.add(record_id)
        self._changed()
        return record

    def _set_key(self, field: str, record_id: int, us: int) -> None:
        self._keys[field][record_id] = us
        insort(self._index[field], (us, record_id))

    def _changed(self) -> None:
        self.version += 1
        self._sorted_ids = None
        self._field_orders.clear()


def key_range(index: list[tuple[int, int]], bounds: dict[str, int]) -> tuple[int, int]:
    """``[lo, hi)`` positions in a sorted index for gt/gte/lt/lte bounds on the instant."""
    lo, hi = 0, len(index)
    first: Any = -1
    last: Any = MAX_ID
    if index and isinstance(index[0][1], str):
        first, last = "", MAX_STRING_ID
    if "gt" in bounds:
        lo = max(lo, bisect_right(index, (bounds["gt"], last)))
    if "gte" in bounds:
        lo = max(lo, bisect_left(index, (bounds["gte"], first)))
    if "lt" in bounds:
        hi = min(hi, bisect_left(index, (bounds["lt"], first)))
    if "lte" in bounds:
        hi = min(hi, bisect_right(index, (bounds["lte"], last)))
    return lo, max(lo, hi)


class Store:
    """All tables, by resource name."""

    def __init__(self, schemas: dict[str, dict]):
        self.schemas = schemas
        self.tables: dict[str, Table] = {}
        for name, resource in CATALOG.items():
            fields = list(schemas.get(name, {}).get("properties", {}))
            self.tables[name] = Table(resource, fields)

    def __getitem__(self, name: str) -> Table:
        return self.tables[name]

    def __contains__(self, name: object) -> bool:
        return name in self.tables
