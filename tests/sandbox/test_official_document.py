"""Every list endpoint of Salesloft's official OpenAPI document, field by field and type by type:
the stream that reads it, its record schema, and what the sandbox serves.

A warehouse types its columns from the record schemas; a schema that says integer where the API
sends a UUID types the column wrong. So the document's declared type of every field (nested objects
and array items too) is what the schemas declare and what the sandbox serves, with no exceptions.
The one liberty is the format of timestamps the document marks ``date`` while its own example
carries a time (see reference/salesloft/README.md), and the fields a template adds itself.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from connector.templates import load_bundled
from sandbox.testing import Sandbox

ROOT = Path(__file__).resolve().parents[2]
OFFICIAL = ROOT / "reference" / "salesloft" / "openapi-v2-2023-12.json"
DOCUMENT = json.loads(OFFICIAL.read_text())
COMPONENTS = DOCUMENT["components"]["schemas"]
# GETs without an array answer that are streams too: the team (one object), and the activity
# history, a paged list the document describes as one object.
SINGLE_OBJECTS = {"/v2/team.json", "/v2/activity_histories"}
# List endpoints no stream reads, and why.
NOT_STREAMS = {
    # The records a bulk job was given, read back by the bulk sinks themselves.
    "/v2/bulk_jobs/{bulk_jobs_id}/job_data": "bulk job input",
}
DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?([+-]\d{2}:\d{2}|Z)$")
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _component(ref: str) -> str:
    return ref.rsplit("/", 1)[1]


def _endpoints() -> dict[str, str]:
    """Path -> the component its GET answers with, for every list endpoint (and SINGLE_OBJECTS)."""
    out = {}
    for path, operations in DOCUMENT["paths"].items():
        get = operations.get("get")
        if not get:
            continue
        schema = get["responses"]["200"]["content"]["*/*"]["schema"]
        if schema.get("type") == "array":
            out[path] = _component(schema["items"]["$ref"])
        elif path in SINGLE_OBJECTS:
            out[path] = _component(schema["$ref"])
    return out


ENDPOINTS = _endpoints()
CONNECTION = load_bundled("salesloft")


def _normal(url: str) -> str:
    """``/v2/bulk_jobs/{{ parent.id }}/results`` and ``/v2/bulk_jobs/{bulk_jobs_id}/results.json`` -> one form."""
    url = re.sub(r"\{\{[^}]*\}\}|\{[^}]*\}", "{}", url)
    return url.removesuffix(".json")


STREAMS_BY_URL: dict[str, list] = {}
for _stream in CONNECTION.streams.values():
    STREAMS_BY_URL.setdefault(_normal(_stream.raw["url"]), []).append(_stream)


def _streams_of(path: str) -> list:
    """Every stream reading this endpoint (a filtered stream reads the same records as its list)."""
    return STREAMS_BY_URL.get(_normal(path), [])


def _added_fields(stream) -> set[str]:
    """Fields the template adds to the API's records (transform add_fields)."""
    return {
        name
        for step in stream.raw.get("transform", [])
        if step.get("type") == "add_fields"
        for name in step.get("fields", {})
    }


def _resolve(prop: dict) -> dict:
    """A property with its ``$ref`` replaced by the component it names."""
    if "$ref" in prop:
        return {"type": "object", **COMPONENTS[_component(prop["$ref"])]}
    return prop


def _declared_format(prop: dict) -> str | None:
    fmt = prop.get("format")
    if fmt == "date" and "T" in str(prop.get("example", "")):
        return "date-time"  # the document's own example carries a time
    return fmt if fmt in ("date", "date-time") else None


def _schema_differences(where: str, doc: dict, mine: dict, top: bool = False) -> list[str]:
    """How a record schema property differs from the document's property (empty: none)."""
    doc = _resolve(doc)
    declared = doc.get("type", "string")
    kinds = mine.get("type", [])
    kinds = {kinds} if isinstance(kinds, str) else set(kinds)
    out = []
    if kinds - {"null"} != {declared}:
        out.append(f"{where}: type {sorted(kinds - {'null'})}, the document says {declared}")
    if mine.get("format") != _declared_format(doc):
        out.append(f"{where}: format {mine.get('format')}, the document says {_declared_format(doc)}")
    if declared == "object" and "properties" in doc:
        out += _fields_differences(where, doc["properties"], mine.get("properties") or {})
    elif declared == "object" and mine.get("properties"):
        out.append(f"{where}: declares properties the document does not")
    if declared == "array":
        items = doc.get("items") or {}
        if items:
            out += _schema_differences(f"{where}[]", items, mine.get("items") or {})
    return out


def _fields_differences(
    where: str, doc_props: dict, my_props: dict, added: set[str] = frozenset()
) -> list[str]:
    out = []
    for name in sorted(set(doc_props) | set(my_props)):
        if name not in my_props:
            out.append(f"{where}.{name}: missing (the document declares it)")
        elif name not in doc_props:
            if name not in added:
                out.append(f"{where}.{name}: not in the document")
        else:
            out += _schema_differences(f"{where}.{name}", doc_props[name], my_props[name])
    return out


def _value_differences(where: str, doc: dict, value: Any) -> list[str]:
    """How a served value differs from the document's property (null is any field's unset value)."""
    if value is None:
        return []
    doc = _resolve(doc)
    declared = doc.get("type", "string")
    ok = {
        "string": isinstance(value, str),
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "number": isinstance(value, int | float) and not isinstance(value, bool),
        "boolean": isinstance(value, bool),
        "array": isinstance(value, list),
        "object": isinstance(value, dict),
    }[declared]
    if not ok:
        return [f"{where}: {type(value).__name__} {value!r:.60}, the document says {declared}"]
    fmt = _declared_format(doc)
    if fmt == "date-time" and not DATETIME.match(value):
        return [f"{where}: {value!r} is not a date-time"]
    if fmt == "date" and not DATE.match(value):
        return [f"{where}: {value!r} is not a date"]
    out = []
    if declared == "object" and "properties" in doc:
        for key in value:
            if key not in doc["properties"]:
                out.append(f"{where}.{key}: served, not in the document")
            else:
                out += _value_differences(f"{where}.{key}", doc["properties"][key], value[key])
    if declared == "array" and doc.get("items"):
        for i, item in enumerate(value):
            out += _value_differences(f"{where}[{i}]", doc["items"], item)
    return out


def test_every_list_endpoint_has_a_stream():
    missing = [p for p in ENDPOINTS if p not in NOT_STREAMS and not _streams_of(p)]
    assert not missing, f"list endpoints of the official document without a stream: {missing}"
    assert len(ENDPOINTS) - len(NOT_STREAMS) >= 41


@pytest.mark.parametrize("path", sorted(p for p in ENDPOINTS if p not in NOT_STREAMS))
def test_record_schema_is_the_documents(path: str):
    component = COMPONENTS[ENDPOINTS[path]]
    problems = []
    for stream in _streams_of(path):
        schema = json.loads(stream.schema_file.read_text())
        problems += _fields_differences(
            stream.name, component["properties"], schema["properties"], _added_fields(stream)
        )
        if "id" in schema["properties"]:
            assert "null" not in schema["properties"]["id"]["type"], f"{stream.name}.id is never null"
    assert not problems, "\n".join(problems)


@pytest.fixture(scope="module")
def served(sb_session: Sandbox) -> dict[str, Any]:
    """The first page of every list endpoint, as the sandbox serves it."""
    sb_session.reset()
    sb_session.configure(faults={"rate": 0, "next": []}, budget=600)
    phones = [p["phone"] for p in sb_session.records("people") if p.get("phone")]
    job = next(j["id"] for j in sb_session.records("bulk_jobs") if j["state"] == "done")
    out: dict[str, Any] = {}
    with sb_session.client() as client:
        for path in ENDPOINTS:
            if path in NOT_STREAMS:
                continue
            params: dict[str, Any] = {"per_page": 100}
            if path == "/v2/phone_numbers/caller_ids.json":
                params = {"phone_number": phones[0]}
            out[path] = client.get(path.replace("{bulk_jobs_id}", str(job)), params=params)
    return out


@pytest.mark.parametrize("path", sorted(p for p in ENDPOINTS if p not in NOT_STREAMS))
def test_sandbox_serves_the_documents_fields_and_types(path: str, served: dict[str, Any]):
    component = COMPONENTS[ENDPOINTS[path]]
    response = served[path]
    assert response.status_code == 200, f"{path}: {response.status_code} {response.text[:300]}"
    data = response.json()["data"]
    records = [data] if isinstance(data, dict) else data
    assert records, f"{path}: the sandbox serves no records to compare"
    declared = set(component["properties"])
    problems = []
    for i, record in enumerate(records):
        if set(record) != declared:
            problems.append(
                f"{path}[{i}]: fields missing {sorted(declared - set(record))}, "
                f"not in the document {sorted(set(record) - declared)}"
            )
        for name in declared & set(record):
            problems += _value_differences(f"{path}[{i}].{name}", component["properties"][name], record[name])
    assert not problems, "\n".join(problems[:40])
