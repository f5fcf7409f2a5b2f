"""Shared steps of every write: blank records from the schema, typed field assignment from
request parameters, reference checks, and storing with fresh timestamps."""

from __future__ import annotations

from typing import Any

from sandbox.params import as_bool, as_int, present
from sandbox.resources import CATALOG
from sandbox.state import State
from sandbox.store import Record
from sandbox.wire import blank, invalid, not_found

PROTECTED = frozenset({"id", "created_at", "updated_at", "counts"})


def blank_record(state: State, resource: str) -> Record:
    return dict.fromkeys(state.schemas[resource]["properties"])


def _types(prop: dict) -> set[str]:
    kind = prop.get("type", [])
    return {kind} if isinstance(kind, str) else set(kind)


def _is_ref(prop: dict) -> bool:
    props = prop.get("properties")
    return "object" in _types(prop) and props is not None and set(props) <= {"id", "_href"}


def coerce(name: str, prop: dict, value: Any) -> Any:
    """A request value (JSON-typed, or a string from a form/query) -> the field's declared type."""
    if value is None:
        return None
    kinds = _types(prop)
    if "boolean" in kinds:
        flag = as_bool(value)
        if flag is None:
            raise invalid(name, "must be true or false")
        return flag
    if "integer" in kinds:
        number = as_int(value)
        if number is None:
            raise invalid(name, "must be an integer")
        return number
    if "number" in kinds:
        try:
            return float(value)
        except (TypeError, ValueError):
            raise invalid(name, "must be a number") from None
    if "array" in kinds:
        if isinstance(value, str):
            return [value] if value else []
        if isinstance(value, list):
            return value
        raise invalid(name, "must be an array")
    if "object" in kinds:
        if isinstance(value, dict):
            return value
        raise invalid(name, "must be an object")
    if isinstance(value, dict | list):
        raise invalid(name, "must be a string")
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def assign(
    state: State, resource: str, record: Record, params: dict[str, Any], skip: set[str] = frozenset()
) -> None:
    """Copy every parameter that names a plain (non-reference) field of the schema."""
    props = state.schemas[resource]["properties"]
    for name, value in params.items():
        if name in PROTECTED or name in skip:
            continue
        prop = props.get(name)
        if prop is None or _is_ref(prop):
            continue
        if name == "custom_fields":
            merged = dict(record.get("custom_fields") or {})
            merged.update(custom_fields(value))
            record["custom_fields"] = merged
            continue
        record[name] = coerce(name, prop, value)


def custom_fields(value: Any) -> dict[str, Any]:
    """``{"Region": "EU"}`` or ``[{"key": "Region", "value": "EU"}]`` -> a dict."""
    if value is None or value == "":
        return {}
    if isinstance(value, dict):
        return {str(k): v for k, v in value.items()}
    if isinstance(value, list):
        out = {}
        for item in value:
            if not isinstance(item, dict) or ("key" not in item and "name" not in item):
                raise invalid("custom_fields", "must be an object of field names to values")
            out[str(item.get("key", item.get("name")))] = item.get("value")
        return out
    raise invalid("custom_fields", "must be an object of field names to values")


def set_ref(
    state: State, record: Record, params: dict[str, Any], param: str, field: str, resource: str
) -> bool:
    """Point ``record[field]`` at ``params[param]`` if given (422 when that record does not exist;
    an empty value clears it). Returns whether the parameter was present."""
    if param not in params:
        return False
    raw = params[param]
    if not present(raw):
        record[field] = None
        return True
    record_id = as_int(raw)
    if not state.exists(resource, record_id):
        raise invalid(param, "is invalid")
    record[field] = state.ref(resource, record_id)
    return True


def required(params: dict[str, Any], *names: str) -> None:
    for name in names:
        if not present(params.get(name)):
            raise blank(name)


def existing_id(state: State, params: dict[str, Any], param: str, resource: str) -> int:
    """A required id parameter that must name an existing record (422 otherwise)."""
    if not present(params.get(param)):
        raise blank(param)
    record_id = as_int(params[param])
    if not state.exists(resource, record_id):
        raise invalid(param, "is invalid")
    return record_id  # type: ignore[return-value]


def path_id(state: State, resource: str, raw: str) -> Record:
    """The record a ``/v2/<resource>/<id>`` path names, or 404."""
    record_id = raw if CATALOG[resource].string_ids else as_int(raw)
    record = state.store[resource].get(record_id) if record_id is not None else None
    if record is None:
        raise not_found()
    return record


def conform(state: State, resource: str, record: Record) -> Record:
    """Keep exactly the schema's fields, in its order (records of the API's resources never carry
    undeclared keys; the sandbox's own write-only stores keep whatever was sent)."""
    if CATALOG[resource].paging == "internal":
        return record
    props = state.schemas[resource]["properties"]
    if record.keys() == props.keys():
        return record
    return {name: record.get(name) for name in props}


def insert(state: State, resource: str, record: Record) -> Record:
    """Store a new record with the next id and fresh timestamps; returns the stored record."""
    table = state.store[resource]
    us, stamp = state.clock.now()
    record["id"] = table.allocate_id()
    if "created_at" in record:
        record["created_at"] = stamp
    if "updated_at" in record:
        record["updated_at"] = stamp
    return table.insert(conform(state, resource, record), us, us)


def save(state: State, resource: str, record: Record) -> Record:
    """Store a changed record with a bumped updated_at; returns the stored record."""
    us, stamp = state.clock.now()
    if "updated_at" in record:
        record["updated_at"] = stamp
    return state.store[resource].replace(conform(state, resource, record), us)


def delete(state: State, resource: str, raw_id: str) -> Record | None:
    """Delete by path id. Deleting again is a success (Salesloft: "can be called multiple times
    successfully"), an id that never existed is 404. Returns the deleted record, if any."""
    table = state.store[resource]
    record_id = as_int(raw_id)
    if record_id is None:
        raise not_found()
    if record_id in table.tombstones:
        return None
    record = table.delete(record_id)
    if record is None:
        raise not_found()
    return record
