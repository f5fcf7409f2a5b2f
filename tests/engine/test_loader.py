"""The loader: templates validated against the format, errors naming file, line and field."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from connector.errors import TemplateErrors
from connector.templates import load_bundled, load_connection

CONNECTION = """\
name: demo
base_url: "{{ config.base_url }}"
settings:
  - {name: base_url, type: string, default: "http://127.0.0.1:1"}
  - {name: api_key, type: string, secret: true}
auth:
  - {type: bearer, when: config.api_key, token: "{{ config.api_key }}"}
stream_defaults:
  records: data
  params: {per_page: 50}
sink_defaults:
  accept: [200, 201]
"""

SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "name": {"type": ["string", "null"]},
        "updated_at": {"type": ["string", "null"], "format": "date-time"},
    },
}


def make_connection(
    tmp_path: Path,
    streams: dict[str, str] | None = None,
    sinks: dict[str, str] | None = None,
    connection: str = CONNECTION,
) -> Path:
    root = tmp_path / "demo"
    (root / "streams").mkdir(parents=True)
    (root / "sinks").mkdir()
    (root / "specs").mkdir()
    (root / "connection.yaml").write_text(connection)
    (root / "specs" / "things.json").write_text(json.dumps(SCHEMA))
    for name, text in (streams or {}).items():
        (root / "streams" / f"{name}.yaml").write_text(textwrap.dedent(text))
    for name, text in (sinks or {}).items():
        (root / "sinks" / f"{name}.yaml").write_text(textwrap.dedent(text))
    return root


def errors_of(root: Path) -> list[str]:
    with pytest.raises(TemplateErrors) as info:
        load_connection(root)
    return [str(e) for e in info.value.errors]


THINGS = """\
name: things
url: /v1/things
primary_key: [id]
schema: things.json
replication_key: updated_at
incremental: {param: "updated_at[gt]"}
"""


def test_bundled_salesloft_loads_every_template():
    connection = load_bundled("salesloft")
    assert len(connection.streams) >= 30
    assert {"accounts", "people", "bulk_job_results", "opportunities", "external_mappings"} <= set(
        connection.streams
    )
    assert {"upsert_account", "update_account", "bulk_upsert_people", "raw_request"} <= set(connection.sinks)
    assert connection.streams["bulk_job_results"].parent == "bulk_jobs"


def test_defaults_are_inherited_and_overridable(tmp_path):
    root = make_connection(tmp_path, streams={"things": THINGS + "params: {sort: asc}\n"})
    stream = load_connection(root).streams["things"]
    assert stream.records == "data"
    assert set(stream.request.params) == {"per_page", "sort"}


def test_malformed_yaml_names_file_and_line(tmp_path):
    root = make_connection(tmp_path, streams={"things": "name: things\nurl: [unclosed\n"})
    (message,) = errors_of(root)
    assert message.startswith(f"{root / 'streams' / 'things.yaml'}:")
    assert "invalid YAML" in message


def test_unknown_field_is_named_with_its_line(tmp_path):
    root = make_connection(tmp_path, streams={"things": THINGS + "pagniation: {type: none}\n"})
    (message,) = errors_of(root)
    assert message.startswith(f"{root / 'streams' / 'things.yaml'}:7: pagniation: unknown field 'pagniation'")


def test_wrong_type_and_bound_are_reported_per_field(tmp_path):
    sink = """\
    name: put_thing
    method: PUT
    url: /v1/things/{{ record.id }}
    batch: {size: 0}
    accept: "200"
    """
    root = make_connection(tmp_path, sinks={"put_thing": sink})
    messages = errors_of(root)
    assert any(":4: batch.size: 0 is less than the minimum of 1" in m for m in messages), messages
    assert any(":5: accept: '200' is not of type 'array'" in m for m in messages), messages


def test_jinja_syntax_error_names_the_field(tmp_path):
    sink = "name: put_thing\nmethod: PUT\nurl: /v1/things/{{ record.id }\n"
    root = make_connection(tmp_path, sinks={"put_thing": sink})
    (message,) = errors_of(root)
    assert ":3: url: Jinja syntax error" in message


def test_missing_record_schema_is_reported(tmp_path):
    root = make_connection(tmp_path, streams={"things": THINGS.replace("things.json", "nope.json")})
    (message,) = errors_of(root)
    assert "schema: record schema" in message and "nope.json" in message and "does not exist" in message


def test_id_field_must_exist_in_the_record_schema(tmp_path):
    sink = (
        "name: put_thing\nmethod: PUT\nurl: /v1/things/{{ record.uid }}\nid_field: uid\nschema: things.json\n"
    )
    root = make_connection(tmp_path, sinks={"put_thing": sink})
    (message,) = errors_of(root)
    assert ":4: id_field: 'uid' is not a property" in message


def test_url_must_be_a_path_on_the_connection(tmp_path):
    sink = "name: leak\nmethod: POST\nurl: https://evil.example/collect\n"
    root = make_connection(tmp_path, sinks={"leak": sink})
    (message,) = errors_of(root)
    assert ":3: url: must be a path starting with '/'" in message


def test_unknown_parent_and_all_errors_at_once(tmp_path):
    child = THINGS.replace("name: things", "name: parts") + "parent: widgets\n"
    bad = "name: bad\nprimary_key: [id]\n"  # no url
    root = make_connection(tmp_path, streams={"parts": child, "bad": bad})
    messages = errors_of(root)
    assert any("parent: unknown parent stream 'widgets'" in m for m in messages)
    assert any("'url' is a required property" in m for m in messages)


def test_batched_sink_needs_an_explicit_body(tmp_path):
    sink = "name: many\nmethod: POST\nurl: /v1/things\nbatch: {size: 10}\n"
    root = make_connection(tmp_path, sinks={"many": sink})
    (message,) = errors_of(root)
    assert "body: a batched sink" in message
