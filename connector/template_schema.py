"""``specs/template.schema.json``: the template format for editors and the loader, with every concept's part
generated from its model (``connector.kinds``). Run ``python -m connector.template_schema --write`` after
changing a model; a test fails while the committed file differs from what the models say.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from connector.auth import Auth
from connector.choices import Choices
from connector.incremental import Incremental
from connector.kinds import DURATION_SCHEMA, schema_of
from connector.pagination import Pagination
from connector.responses import ResponseRule
from connector.results import ItemResults
from connector.transform import Transformation

# Concept name in $defs -> its model; the loader validates these blocks with the model itself.
CONCEPTS: dict[str, Any] = {
    "pagination": Pagination,
    "auth": Auth,
    "incremental": Incremental,
    "transformation": Transformation,
    "response_rule": ResponseRule,
    "item_results": ItemResults,
    "values": Choices,
}

_REF = "#/$defs/{}"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF.format(name)}


def concept_defs() -> dict[str, Any]:
    defs: dict[str, Any] = {}
    for name, model in CONCEPTS.items():
        schema, members = schema_of(model)
        defs.update(members)
        defs[name] = {k: v for k, v in schema.items()}
    for definition in defs.values():  # durations accept numbers or '2d'-style strings
        for prop in definition.get("properties", {}).values():
            if (
                prop.get("anyOf")
                and {"type": "number"} in prop["anyOf"]
                and {"type": "string"} in prop["anyOf"]
            ):
                prop.pop("anyOf")
                prop.update(DURATION_SCHEMA)
            elif any(
                isinstance(option, dict)
                and option.get("anyOf")
                and {"type": "number"} in option["anyOf"]
                and {"type": "string"} in option["anyOf"]
                for option in prop.get("anyOf", [])
            ):
                prop.pop("anyOf")
                prop.update({"anyOf": [DURATION_SCHEMA, {"type": "null"}]})
    return defs


_PARTITIONS = {
    "type": "object",
    "additionalProperties": False,
    "required": ["values"],
    "properties": {
        "values": {
            "description": "Jinja rendering to a list (e.g. '{{ config.account_ids }}'): the stream is read once "
            "per value, available to its request as {{ partition }}, with its own bookmark.",
            "type": ["string", "array"],
        },
        "batch": {
            "type": "integer",
            "minimum": 1,
            "description": "Values per read: {{ partition }} is then a list of up to this many values, for an "
            "API filter taking many at once (ids[]=1&ids[]=2); state is kept for the stream, not per value.",
        },
        "key": {
            "type": "string",
            "description": "The record field carrying the value (id): values no record answered for are named "
            "in a warning.",
        },
    },
    "description": "Read the stream once per value of a list (an unset or empty list reads nothing).",
}
_FILTERS = {
    "type": "array",
    "items": {
        "anyOf": [
            {"type": "string", "minLength": 1},
            {
                "type": "object",
                "additionalProperties": False,
                "required": ["name"],
                "properties": {
                    "name": {"type": "string", "minLength": 1},
                    "description": {"type": "string"},
                },
            },
        ]
    },
    "description": "Query parameters users may pass through the tap's stream_params setting: a name, or "
    "{name, description}. A name ending in [] takes a list, sent as repeated name[]= (users write it without []).",
}
_RATE = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "requests_per_second": {
            "type": "number",
            "exclusiveMinimum": 0,
            "description": "This endpoint's own limit, kept beside the connection's rate budget.",
        },
        "shared": {
            "type": "string",
            "description": "A name for a limit several endpoints count against together (all of an API's "
            "searches): every template naming it shares one pace in a run.",
        },
    },
    "description": "A rate limit of this endpoint only.",
}


def _point_concepts_at_defs(node: Any) -> None:
    """Every inline ``pagination`` block of the hand-written parts refers to the one generated definition."""
    if isinstance(node, dict):
        props = node.get("properties")
        if isinstance(props, dict) and "pagination" in props and node is not None:
            props["pagination"] = _ref("pagination")
        for value in node.values():
            _point_concepts_at_defs(value)
    elif isinstance(node, list):
        for value in node:
            _point_concepts_at_defs(value)


def build(base: dict[str, Any]) -> dict[str, Any]:
    """The full schema: the hand-written document parts of ``base`` plus every generated concept."""
    schema = json.loads(json.dumps(base))
    defs = schema["$defs"]
    for name in list(defs):
        if name not in ("connection", "stream", "sink"):
            del defs[name]
    _point_concepts_at_defs({k: defs[k] for k in ("connection", "stream", "sink")})
    stream = defs["stream"]["properties"]
    stream.pop("incremental_param", None)
    stream["incremental"] = _ref("incremental")
    stream["transform"] = {
        "type": "array",
        "items": _ref("transformation"),
        "description": "Steps applied in order to each record read.",
    }
    stream["on_response"] = {
        "type": "array",
        "items": _ref("response_rule"),
        "description": "Rules for answers by status or content (ignore, retry, fail, accept).",
    }
    stream["partitions"] = _PARTITIONS
    stream["filters"] = _FILTERS
    stream["values"] = _ref("values")
    stream["response_format"] = {
        "enum": ["json", "jsonl"],
        "description": "How answers are written: one JSON document (default), or JSON Lines (one record a line).",
    }
    stream["rate_limit"] = _RATE
    stream["primary_key"] = {
        "type": "array",
        "items": {"type": "string"},
        "description": "Fields identifying a record; empty or absent for streams without one.",
    }
    defs["stream"]["required"] = [r for r in defs["stream"].get("required", []) if r != "primary_key"]
    sink = defs["sink"]["properties"]
    sink["results"] = _ref("item_results")
    sink["on_response"] = stream["on_response"]
    sink["rate_limit"] = _RATE
    connection = defs["connection"]["properties"]
    connection["auth"] = {
        "type": "array",
        "items": _ref("auth"),
        "description": "Methods tried in order; the first whose `when` condition holds applies.",
    }
    defs.update(concept_defs())
    return schema


def main(argv: list[str] | None = None) -> int:
    from connector.templates import TEMPLATE_SCHEMA

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true", help="rewrite the schema file")
    args = parser.parse_args(argv)
    path = Path(TEMPLATE_SCHEMA)
    current = json.loads(path.read_text())
    built = build(current)
    text = json.dumps(built, indent=2) + "\n"
    if args.write:
        path.write_text(text)
        return 0
    if path.read_text() != text:
        sys.stderr.write(f"{path} is out of date: run python -m connector.template_schema --write\n")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
