"""Bad input gets a precise message: broken templates when they load, bad records and lines when they arrive.

Template checks already covered by tests/engine/test_loader.py (malformed stream YAML, unknown top-level
field, wrong types in a sink, a Jinja error in a URL, a stream's missing record schema) are not repeated.
"""

from __future__ import annotations

import base64
import json
import subprocess
import textwrap
from pathlib import Path

import pytest
from helpers import BIN, logged_json, run_tap, run_target, tap_config, write_json
from reliability_support import RecordingServer, as_lines, singer_messages

from connector.errors import ConnectorError, TemplateError, TemplateErrors
from connector.templates import load_connection

CONNECTION = """\
name: reltest
description: A connection of the reliability tests, on the Salesloft sandbox.
base_url: "{{ config.base_url }}"
settings:
  - {name: base_url, type: string}
  - {name: api_key, type: string, secret: true}
auth:
  - {type: bearer, when: config.api_key, token: "{{ config.api_key }}"}
rate_limit:
  budget: 600
  window_seconds: 60
  cost_header: x-ratelimit-endpoint-cost
  remaining_header: x-ratelimit-remaining-minute
stream_defaults:
  records: data
sink_defaults:
  accept: [200, 201, 204]
"""
SCHEMA = {"type": "object", "properties": {"id": {"type": "integer"}, "name": {"type": ["string", "null"]}}}


def connection_folder(
    tmp_path: Path,
    *,
    connection: str = CONNECTION,
    streams: dict[str, str] | None = None,
    sinks: dict[str, str] | None = None,
    specs: dict[str, str] | None = None,
) -> Path:
    root = tmp_path / "reltest"
    for folder in ("streams", "sinks", "specs"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    (root / "connection.yaml").write_text(connection)
    (root / "specs" / "things.json").write_text(json.dumps(SCHEMA))
    for name, text in (specs or {}).items():
        (root / "specs" / name).write_text(text)
    for kind, files in (("streams", streams), ("sinks", sinks)):
        for name, text in (files or {}).items():
            (root / kind / f"{name}.yaml").write_text(textwrap.dedent(text))
    return root


def load_errors(root: Path) -> list[str]:
    """The messages a user sees, with the folder shortened to ``reltest``."""
    with pytest.raises(ConnectorError) as info:
        load_connection(root)
    error = info.value
    errors = error.errors if isinstance(error, TemplateErrors) else [error]
    assert all(isinstance(e, TemplateError) for e in errors)
    return [str(e).replace(str(root), "reltest") for e in errors]


# -- templates, when they load


def test_malformed_connection_yaml_names_the_file_and_line(tmp_path):
    root = connection_folder(tmp_path, connection=CONNECTION + "retry:\n\tmax_attempts: 3\n")
    assert load_errors(root) == [
        "reltest/connection.yaml:19: invalid YAML: found character '\\t' that cannot start any token"
    ]


def test_unknown_nested_fields_are_named_with_the_fields_that_exist(tmp_path):
    sink = "name: put_thing\nmethod: PUT\nurl: /v1/things/{{ record.id }}\nbatch: {sise: 10}\n"
    stream = (
        "name: things\nurl: /v1/things\nprimary_key: [id]\nschema: things.json\npagination: {type: cursor, "
        "param: after, from_record: id, sise: 5}\n"
    )
    messages = load_errors(connection_folder(tmp_path, sinks={"put_thing": sink}, streams={"things": stream}))
    assert (
        "reltest/sinks/put_thing.yaml:4: batch.sise: unknown field 'sise' (known: group_by, item, max_records, size)"
        in messages
    )
    assert any(
        m.startswith("reltest/streams/things.yaml:5: pagination.sise: unknown field 'sise' (known: ")
        for m in messages
    ), messages


def test_wrong_types_in_the_connection_are_reported_per_field(tmp_path):
    connection = CONNECTION.replace("budget: 600", "budget: lots") + "retry: {max_attempts: '3'}\n"
    assert load_errors(connection_folder(tmp_path, connection=connection)) == [
        "reltest/connection.yaml:10: rate_limit.budget: 'lots' is not of type 'integer'",
        "reltest/connection.yaml:18: retry.max_attempts: '3' is not of type 'integer'",
    ]


def test_jinja_errors_in_params_headers_and_expressions_name_their_field(tmp_path):
    stream = (
        "name: things\nurl: /v1/things\nprimary_key: [id]\nschema: things.json\nparams: {since: '{% if %}'}\n"
    )
    header = (
        "name: tagged\nmethod: POST\nurl: /v1/things\nheaders: {X-Tag: '{{ record.tag | no_such_filter }}'}\n"
    )
    job = """\
    name: bulk
    kind: bulk_job
    job:
      create: {method: POST, url: /v1/jobs}
      upload: {method: POST, url: '/v1/jobs/{{ job.id }}/data', body: {data: '{{ records }}'}}
      poll: {method: GET, url: '/v1/jobs/{{ job.id }}', done: "response.state =="}
    """
    messages = load_errors(
        connection_folder(tmp_path, streams={"things": stream}, sinks={"tagged": header, "bulk": job})
    )
    assert (
        "reltest/streams/things.yaml:5: params.since: Jinja syntax error: Expected an expression, got 'end of "
        "statement block'" in messages
    )
    assert (
        "reltest/sinks/tagged.yaml:4: headers.X-Tag: Jinja syntax error: No filter named 'no_such_filter'."
        in messages
    )
    assert (
        "reltest/sinks/bulk.yaml:6: job.poll.done: Jinja syntax error: unexpected 'end of template'"
        in messages
    )


def test_a_jinja_error_deep_in_a_body_names_the_key_and_its_line(tmp_path):
    sink = (
        "name: s\nmethod: POST\nurl: /v1/things\nbody:\n  id: '{{ record.id }}'\n  name: '{{ record.name }'\n"
    )
    assert load_errors(connection_folder(tmp_path, sinks={"s": sink})) == [
        "reltest/sinks/s.yaml:6: body.name: Jinja syntax error: unexpected '}'"
    ]


def test_a_sink_whose_record_schema_is_missing_or_not_json_is_reported(tmp_path):
    missing = "name: a\nmethod: POST\nurl: /v1/things\nschema: nope.json\n"
    broken = "name: b\nmethod: POST\nurl: /v1/things\nschema: broken.json\n"
    messages = load_errors(
        connection_folder(
            tmp_path, sinks={"a": missing, "b": broken}, specs={"broken.json": '{"type": "object",'}
        )
    )
    assert (
        "reltest/sinks/a.yaml:4: schema: record schema 'reltest/specs/nope.json' does not exist" in messages
    )
    assert (
        "reltest/sinks/b.yaml:4: schema: record schema 'reltest/specs/broken.json' is not valid JSON: Expecting "
        "property name enclosed in double quotes: line 1 column 19 (char 18)" in messages
    )


def test_a_target_whose_templates_do_not_load_stops_before_reading_input(tmp_path):
    root = connection_folder(
        tmp_path, sinks={"s": "name: s\nmethod: POST\nurl: /v1/things\nbatch: {size: 0}\n"}
    )
    proc = subprocess.run(
        [
            str(BIN / "connector"),
            "target",
            str(root),
            "--config",
            str(write_json(tmp_path / "config.json", {"base_url": "http://127.0.0.1:9", "api_key": "k"})),
        ],
        input="",
        text=True,
        capture_output=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "sinks/s.yaml:4: batch.size: 0 is less than the minimum of 1" in proc.stderr


# -- records, when they are rendered

NOTE_SINK = """\
name: note_about_person
method: POST
url: /v2/notes.json
body:
  content: "{{ record.text }}"
  associated_with_type: person
  associated_with_id: "{{ record.person.id }}"
"""
TYPO_SINK = "name: rename_person\nmethod: PUT\nurl: /v2/people/{{ recrod.id }}.json\n"


@pytest.fixture(scope="module")
def sb():
    from sandbox.testing import running_sandbox

    with running_sandbox() as handle:
        yield handle


def run_connection_target(
    root: Path, config: dict, stdin: str, tmp_path: Path
) -> tuple[subprocess.CompletedProcess, list[dict]]:
    rejected = tmp_path / "rejected.jsonl"
    config_path = write_json(tmp_path / "config.json", {"rejected_path": str(rejected), **config})
    proc = subprocess.run(
        [str(BIN / "connector"), "target", str(root), "--config", str(config_path)],
        input=stdin,
        text=True,
        capture_output=True,
        timeout=120,
    )
    rows = [json.loads(line) for line in rejected.read_text().splitlines()] if rejected.exists() else []
    return proc, rows


def test_an_undefined_variable_at_render_time_rejects_the_record_naming_the_variable(sb, tmp_path):
    root = connection_folder(tmp_path, sinks={"note_about_person": NOTE_SINK, "rename_person": TYPO_SINK})
    person = sb.records("people")[0]["id"]
    messages = [
        *singer_messages(
            "notes", [{"text": "Rendered fine", "person": {"id": person}}, {"text": "Nobody's note"}]
        ),
        *singer_messages("renames", [{"id": person, "title": "Never sent"}]),
    ]
    sb.clear_journal()
    proc, rejected = run_connection_target(
        root,
        {**tap_config(sb), "stream_sinks": {"notes": "note_about_person", "renames": "rename_person"}},
        as_lines(messages),
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    by_text = {r["record"].get("text", r["record"].get("title")): r for r in rejected}
    assert set(by_text) == {"Nobody's note", "Never sent"}
    assert by_text["Nobody's note"]["reason"] == "render"
    assert "'dict object' has no attribute 'person'" in by_text["Nobody's note"]["error"]
    assert (
        by_text["Never sent"]["reason"] == "render"
        and "'recrod' is undefined" in by_text["Never sent"]["error"]
    )
    assert [(e["method"], e["body"]["content"]) for e in sb.journal()] == [("POST", "Rendered fine")]
    assert any(n["content"] == "Rendered fine" for n in sb.records("notes"))


# -- the target's input, line by line

ACCOUNT_SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "domain": {"type": "string"},
        "description": {"type": ["string", "null"]},
    },
}


def send_lines(sb, tmp_path, lines: list[str], **config):
    sb.clear_journal()
    run = run_target({**tap_config(sb), "sink": "upsert_account", **config}, tmp_path, "".join(lines))
    return run, [e for e in sb.journal() if e["method"] == "POST"]


def line(message: dict) -> str:
    return json.dumps(message) + "\n"


def account(name: str) -> dict:
    return {
        "type": "RECORD",
        "stream": "accounts",
        "record": {"name": name, "domain": f"{name.lower()}.example"},
    }


SCHEMA_LINE = line({"type": "SCHEMA", "stream": "accounts", "schema": ACCOUNT_SCHEMA, "key_properties": []})


def test_invalid_json_lines_are_rejected_with_their_line_number_and_the_rest_is_sent(sb, tmp_path):
    lines = [
        SCHEMA_LINE,
        line(account("Before")),
        '{"type": "RECORD", "stream": "accounts", "record": {\n',
        line(account("Between")),
        "[1, 2, 3]\n",
        line(account("After")),
    ]
    run, posts = send_lines(sb, tmp_path, lines)
    assert run.returncode == 0, run.stderr[-3000:]
    assert sorted(p["body"]["name"] for p in posts) == ["After", "Before", "Between"]
    assert [(r["reason"], r["record"]["line_number"]) for r in run.rejected] == [
        ("bad_input", 3),
        ("bad_input", 5),
    ]
    assert run.rejected[0]["error"].startswith("line 3: invalid JSON: ")
    assert run.rejected[0]["record"]["line"].startswith('{"type": "RECORD"')
    assert run.rejected[1]["error"] == "line 5: a Singer message must be a JSON object, got list"
    summary = logged_json(run.stderr, "Target summary: ")
    assert (summary["accepted"], summary["rejected"]) == (3, 2)


def nested(levels: int) -> dict:
    value: dict = {"leaf": 1}
    for _ in range(levels - 1):
        value = {"x": value}
    return value


def test_unreadable_lines_are_each_one_rejection_and_the_run_goes_on_to_its_state(sb, tmp_path):
    """A byte that is not UTF-8, a record nested deeper than the writer can write, a lone surrogate escape
    and a cut line: each is one bad_input rejection keeping the raw line; the records around them are sent
    and the STATE after them is passed on."""
    state = {"bookmarks": {"accounts": {"position": 9}}}
    not_utf8 = (
        b'{"type": "RECORD", "stream": "accounts", "record": {"name": "Caf\xe9", "domain": "cafe.example"}}\n'
    )
    deep = line(
        {"type": "RECORD", "stream": "accounts", "record": {**account("Deep")["record"], "n": nested(300)}}
    )
    surrogate = (
        '{"type": "RECORD", "stream": "accounts", "record": {"name": "\\ud83d", "domain": "s.example"}}\n'
    )
    lines = [
        SCHEMA_LINE.encode(),
        line(account("First")).encode(),
        not_utf8,
        line(account("Second")).encode(),
        deep.encode(),
        line(account("Third")).encode(),
        surrogate.encode(),
        line(account("Fourth")).encode(),
        b'{"type": "RECORD", "stream": "acc\n',
        line({"type": "STATE", "value": state}).encode(),
    ]
    sb.clear_journal()
    run = run_target({**tap_config(sb), "sink": "upsert_account"}, tmp_path, b"".join(lines))
    posts = [e for e in sb.journal() if e["method"] == "POST"]
    assert run.returncode == 0, run.stderr[-3000:]
    assert "Traceback" not in run.stderr
    assert sorted(p["body"]["name"] for p in posts) == ["First", "Fourth", "Second", "Third"]
    assert run.states == [state]
    rejected = run.rejected
    assert [(r["reason"], r["record"]["line_number"]) for r in rejected] == [
        ("bad_input", 3),
        ("bad_input", 5),
        ("bad_input", 7),
        ("bad_input", 9),
    ]
    errors = [r["error"] for r in rejected]
    assert errors[0] == "line 3: not UTF-8: byte 0xe9 at column 65"
    assert errors[1] == "line 5: nested more than 200 levels deep (the most accepted)"
    assert errors[2].startswith("line 7: invalid JSON: ") and "surrogate" in errors[2]
    for row, raw in zip(rejected, (not_utf8, deep.encode(), surrogate.encode()), strict=False):
        assert base64.b64decode(row["record"]["line_base64"]) == raw.rstrip(b"\n"), "the raw line is kept"
    assert rejected[0]["record"]["line"].endswith('"Caf\\xe9", "domain": "cafe.example"}}')
    assert len(rejected[1]["record"]["line"]) == 2000 and rejected[1]["record"]["line_bytes"] > 2100
    summary = logged_json(run.stderr, "Target summary: ")
    assert (summary["accepted"], summary["rejected"]) == (4, 4)


def test_messages_lacking_what_the_protocol_requires_are_rejected_by_line_and_the_rest_is_sent(sb, tmp_path):
    lines = [
        SCHEMA_LINE,
        line(account("Before")),
        line({"type": "RECORD", "stream": "accounts"}),
        line({"type": "RECORD", "record": {"name": "Nowhere", "domain": "nowhere.example"}}),
        line({"stream": "accounts", "record": {"name": "Untyped", "domain": "untyped.example"}}),
        line({"type": "STATE"}),
        line({"type": "BOOKMARK", "value": 1}),
        line(account("After")),
    ]
    run, posts = send_lines(sb, tmp_path, lines)
    assert run.returncode == 0, run.stderr[-3000:]
    assert sorted(p["body"]["name"] for p in posts) == ["After", "Before"]
    assert [(r["reason"], r["error"]) for r in run.rejected] == [
        ("bad_input", "line 3: a RECORD message needs 'record'; it has ['stream', 'type']"),
        ("bad_input", "line 4: a RECORD message needs 'stream'; it has ['record', 'type']"),
        ("bad_input", "line 5: a Singer message needs 'type'; it has ['record', 'stream']"),
        ("bad_input", "line 6: a STATE message needs 'value'; it has ['type']"),
        ("bad_input", "line 7: unknown message type 'BOOKMARK'"),
    ]
    assert "Traceback" not in run.stderr


def test_an_unusable_schema_stops_the_run_after_the_records_before_it_got_their_outcome(sb, tmp_path):
    untyped = {"type": "SCHEMA", "stream": "people", "schema": {"type": "object"}, "key_properties": []}
    run, posts = send_lines(sb, tmp_path, [SCHEMA_LINE, line(account("Earlier")), line(untyped)])
    assert run.returncode == 1
    assert run.stderr.splitlines()[-1] == (
        "target-salesloft: error: line 3: the SCHEMA message for stream 'people' is unusable: "
        "its schema has no 'properties'"
    )
    assert [p["body"]["name"] for p in posts] == ["Earlier"] and run.rejected == []


def test_a_record_before_its_schema_stops_the_run_after_earlier_records_got_their_outcome(sb, tmp_path):
    state = {"bookmarks": {"accounts": {"position": 2}}}
    lines = [
        SCHEMA_LINE,
        line(account("First")),
        line(account("Second")),
        line({"type": "STATE", "value": state}),
        line({"type": "RECORD", "stream": "people", "record": {"email_address": "early@example.com"}}),
        line(account("Never")),
    ]
    run, posts = send_lines(sb, tmp_path, lines)
    assert run.returncode == 1
    assert (
        run.stderr.splitlines()[-1]
        == "target-salesloft: error: RECORD for stream 'people' arrived before its SCHEMA message"
    )
    assert sorted(p["body"]["name"] for p in posts) == ["First", "Second"]
    assert {a["domain"] for a in sb.records("accounts")} >= {"first.example", "second.example"}
    (stopped,) = run.rejected
    assert stopped["reason"] == "no_schema" and stopped["record"] == {"email_address": "early@example.com"}
    assert run.states == [state], "the STATE after the records that were sent, and nothing later"


def test_a_record_failing_its_schema_is_rejected_naming_the_field(sb, tmp_path):
    bad = {"type": "RECORD", "stream": "accounts", "record": {"name": "Typed", "domain": 123}}
    run, posts = send_lines(sb, tmp_path, [SCHEMA_LINE, line(bad), line(account("Fine"))])
    assert run.returncode == 0 and [p["body"]["name"] for p in posts] == ["Fine"]
    (rejected,) = run.rejected
    assert rejected["reason"] == "invalid" and rejected["request"] is None
    assert "domain" in rejected["error"] and "123 is not of type 'string'" in rejected["error"], rejected[
        "error"
    ]


def test_a_record_without_its_id_field_is_rejected_and_never_sent(sb, tmp_path):
    missing = {"type": "RECORD", "stream": "accounts", "record": {"name": "No Domain"}}
    empty = {"type": "RECORD", "stream": "accounts", "record": {"name": "Empty Domain", "domain": ""}}
    run, posts = send_lines(sb, tmp_path, [SCHEMA_LINE, line(missing), line(account("Kept")), line(empty)])
    assert run.returncode == 0, run.stderr[-3000:]
    assert [p["body"]["name"] for p in posts] == ["Kept"], "a record without its id reached the API"
    assert [(r["reason"], r["record"]["name"], r["request"]) for r in run.rejected] == [
        ("missing_id", "No Domain", None),
        ("missing_id", "Empty Domain", None),
    ]
    assert all(r["error"] == "record has no 'domain' (the sink's id_field): not sent" for r in run.rejected)


def test_a_record_without_its_declared_key_stops_the_run_as_a_protocol_error(sb, tmp_path):
    keyed = line(
        {"type": "SCHEMA", "stream": "accounts", "schema": ACCOUNT_SCHEMA, "key_properties": ["domain"]}
    )
    missing = {"type": "RECORD", "stream": "accounts", "record": {"name": "Keyless"}}
    run, posts = send_lines(
        sb, tmp_path, [keyed, line(account("Earlier")), line(missing), line(account("Later"))]
    )
    assert run.returncode == 1
    assert "lacks its key properties ['domain']" in run.stderr.splitlines()[-1]
    assert [p["body"]["name"] for p in posts] == ["Earlier"]
    assert [(r["reason"], r["record"]["name"]) for r in run.rejected] == [("missing_key", "Keyless")]


def test_huge_and_non_ascii_values_arrive_intact(sb, tmp_path):
    huge = "Ünïcødé ✓ 東京 " + "x" * 1_000_000 + " 🚀"
    records = [
        {"name": "Zürich Ærøskøbing Straße", "domain": "unicode-zurich.example", "description": huge},
        {
            "name": "東京株式会社 🚀",
            "domain": "xn--tokyo.example",
            "description": "Ελληνικά \u0000 ‮ RTL \\ \" '",
        },
    ]
    run, posts = send_lines(
        sb,
        tmp_path,
        [SCHEMA_LINE, *(line({"type": "RECORD", "stream": "accounts", "record": r}) for r in records)],
        responses_path=str(tmp_path / "r.jsonl"),
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.rejected == []
    stored = {a["domain"]: a for a in sb.records("accounts") if a["domain"] in {r["domain"] for r in records}}
    for record in records:
        assert stored[record["domain"]]["name"] == record["name"]
        assert stored[record["domain"]]["description"] == record["description"], (
            "a value was altered on the way"
        )
    # records about different objects go out concurrently: compare what was sent, not its order
    assert sorted(p["body"]["description"] for p in posts) == sorted(r["description"] for r in records)


# -- what an API sends the tap, record by record


def test_records_the_tap_cannot_emit_are_skipped_one_by_one_with_a_warning_and_a_count(tmp_path):
    """A non-object in the records array, a record without its primary key, a value of a type its schema does not
    allow, a lone surrogate escape: each of those records is skipped and named; the others are emitted."""

    stamp = "2024-05-01T10:00:0{}.000000Z"
    body = (
        '{"data": ['
        f'{{"id": 1, "name": "First", "updated_at": "{stamp.format(1)}"}}, '
        '"not an object", '
        f'{{"name": "Keyless", "updated_at": "{stamp.format(2)}"}}, '
        f'{{"id": "three", "name": "Mistyped", "updated_at": "{stamp.format(3)}"}}, '
        f'{{"id": 4, "name": "Half an emoji \\ud83d", "updated_at": "{stamp.format(4)}"}}, '
        f'{{"id": 5, "name": "Last", "updated_at": "{stamp.format(5)}"}}'
        '], "metadata": {"paging": {"next_page": null}}}'
    ).encode()
    api = RecordingServer({"GET /v2/accounts.json": (200, {}, body)})
    try:
        tap = run_tap({"base_url": api.url, "api_key": "k-records"}, tmp_path, streams=["accounts"])
    finally:
        api.close()
    assert [r["name"] for r in tap.records["accounts"]] == ["First", "Last"]
    warnings = [
        line.split(" | ")[-1] for line in tap.stderr.splitlines() if "skipped" in line and "record" in line
    ]
    where = "page 1 (GET /v2/accounts.json)"
    assert warnings == [
        f"stream 'accounts': record 2 of {where} is not a JSON object (got str): skipped",
        f"stream 'accounts': record 3 of {where} has no value for its primary key 'id': skipped",
        f"stream 'accounts': record 4 of {where} has 'id' of type str, its schema allows int: skipped",
        f"stream 'accounts': record 5 of {where} holds text that is not valid Unicode (a lone surrogate escape "
        "such as \\ud83d): skipped",
    ]
    assert logged_json(tap.stderr, "Records skipped: ") == {
        "accounts": {"not_object": 1, "missing_key": 1, "wrong_type": 1, "bad_text": 1}
    }
    assert tap.states[-1]["bookmarks"]["accounts"]["replication_key_value"] == stamp.format(5)


# -- sinks a stream cannot have, bodies JSON cannot hold, templates too large to compute


def test_a_schema_for_a_stream_without_a_sink_stops_after_the_records_before_it_and_names_the_setting(
    sb, tmp_path
):
    state = {"bookmarks": {"accounts": {"position": 2}}}
    lines = [
        SCHEMA_LINE,
        line(account("Buffered One")),
        line(account("Buffered Two")),
        line({"type": "STATE", "value": state}),
        line({"type": "SCHEMA", "stream": "contacts", "schema": ACCOUNT_SCHEMA, "key_properties": []}),
        line(account("Never")),
    ]
    sb.clear_journal()
    run = run_target(
        {**tap_config(sb), "stream_sinks": {"accounts": "upsert_account"}}, tmp_path, "".join(lines)
    )
    posts = [e for e in sb.journal() if e["method"] == "POST"]
    assert run.returncode == 1
    (error,) = [line for line in run.stderr.splitlines() if line.startswith("target-salesloft: error: ")]
    assert "line 5: " in error and "'contacts'" in error and "`stream_sinks`" in error, error
    assert sorted(p["body"]["name"] for p in posts) == ["Buffered One", "Buffered Two"]
    assert run.states == [state]


RENDER_CONNECTION_SINKS = {
    "dump_config": "name: dump_config\nmethod: POST\nurl: /v2/notes.json\nbody: '{{ config.items() }}'\n",
    "huge": "name: huge\nmethod: POST\nurl: /v2/notes.json\nbody: {content: \"{{ record.n }}{{ 'a' * 1000000000 }}\"}\n",
    "huge_text": (
        "name: huge_text\nmethod: POST\nurl: /v2/notes.json\n"
        "headers: {X-Pad: \"{{ record.n }}{{ 'a' | center(1000000000) }}\"}\n"
    ),
}
CONSTANT_SINK = (
    "name: constant\nmethod: POST\nurl: /v2/notes.json\nbody: {content: \"{{ 'a' * 1000000000 }}\"}\n"
)


@pytest.mark.parametrize("dry_run", [False, True], ids=["sent", "dry_run"])
def test_a_body_json_cannot_hold_or_a_huge_template_is_a_render_rejection_not_a_crash(sb, tmp_path, dry_run):
    """``{{ config.items() }}`` renders a value of no JSON type; ``'a' * 1000000000`` would take a gigabyte, when
    the templates load (Jinja folds constants) and again per record. Under a 1 GB address-space limit the run
    ends normally, each record rejected with reason render."""
    import resource

    root = connection_folder(tmp_path, sinks=RENDER_CONNECTION_SINKS)
    streams = {"config": "dump_config", "huge": "huge", "text": "huge_text"}
    messages = [m for stream in streams for m in singer_messages(stream, [{"n": 1}, {"n": 2}])]
    config_path = write_json(
        tmp_path / "config.json",
        {
            **tap_config(sb),
            "stream_sinks": streams,
            "rejected_path": str(tmp_path / "rejected.jsonl"),
            "dry_run": dry_run,
        },
    )

    def limit_memory() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    sb.clear_journal()
    proc = subprocess.run(
        [str(BIN / "connector"), "target", str(root), "--config", str(config_path)],
        input=as_lines(messages),
        text=True,
        capture_output=True,
        timeout=120,
        preexec_fn=limit_memory,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    rejected = [json.loads(row) for row in (tmp_path / "rejected.jsonl").read_text().splitlines()]
    assert sorted((r["stream"], r["reason"]) for r in rejected) == sorted(
        (stream, "render") for stream in streams for _ in range(2)
    )
    errors = {r["stream"]: r["error"] for r in rejected}
    assert errors["config"].startswith(
        "cannot write the request body as JSON: Type is not JSON serializable: dict_items"
    )
    assert "repeating a value to more than 1,000,000 is not allowed" in errors["huge"]
    assert "1000000000 is larger than a template may ask for" in errors["text"]
    assert sb.journal() == []
    assert "sandbox-key" not in (tmp_path / "rejected.jsonl").read_text()


def test_validate_does_not_compute_a_huge_template_constant(tmp_path):
    import resource

    sinks = {"huge": RENDER_CONNECTION_SINKS["huge"], "huge_text": RENDER_CONNECTION_SINKS["huge_text"]}
    root = connection_folder(tmp_path, sinks={**sinks, "constant": CONSTANT_SINK})

    def limit_memory() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    proc = subprocess.run(
        [str(BIN / "connector"), "validate", str(root)],
        text=True,
        capture_output=True,
        timeout=120,
        preexec_fn=limit_memory,
    )
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-3000:]
    assert "reltest: 0 streams, 3 sinks" in proc.stdout and "MemoryError" not in proc.stderr


def test_a_bulk_job_body_json_cannot_hold_rejects_the_jobs_records(tmp_path):
    job = """\
    name: bulk
    kind: bulk_job
    job:
      create: {method: POST, url: /v1/jobs, body: {settings: '{{ config.items() }}'}}
      upload: {method: POST, url: '/v1/jobs/{{ job.id }}/data', body: {data: '{{ records }}'}}
      poll: {method: GET, url: '/v1/jobs/{{ job.id }}', done: "response.state == 'done'"}
    """
    root = connection_folder(tmp_path, sinks={"bulk": job})
    config = {"base_url": "http://127.0.0.1:9", "api_key": "k-bulk-config", "sink": "bulk"}
    proc, rejected = run_connection_target(
        root, config, as_lines(singer_messages("things", [{"id": 1}, {"id": 2}])), tmp_path
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert [(r["record"], r["reason"]) for r in rejected] == [({"id": 1}, "api"), ({"id": 2}, "api")]
    assert rejected[0]["error"] == (
        "bulk job not created: cannot write the request body as JSON: Type is not JSON serializable: dict_items"
    )


def test_a_skipped_record_does_not_make_a_full_page_look_short(tmp_path):
    """Paging that ends on a short page counts what the API sent: a full page with a record the tap skips is
    still full, and the next page is read."""
    stream = """\
    name: things
    url: /v1/things
    primary_key: [id]
    schema: things.json
    pagination: {type: page_number, page_param: page, size_param: per_page, size: 3}
    """
    root = connection_folder(tmp_path, streams={"things": stream})
    page_1 = {"data": [{"id": 1, "name": "a"}, "not an object", {"id": 2, "name": "b"}]}
    page_2 = {"data": [{"id": 3, "name": "c"}]}
    api = RecordingServer(
        {
            "GET /v1/things?per_page=3&page=1": (200, {}, page_1),
            "GET /v1/things?per_page=3&page=2": (200, {}, page_2),
        }
    )
    config = write_json(tmp_path / "config.json", {"base_url": api.url, "api_key": "k-pages"})
    try:
        proc = subprocess.run(
            [str(BIN / "connector"), "tap", str(root), "--config", str(config), "--streams", "things"],
            text=True,
            capture_output=True,
            timeout=120,
        )
    finally:
        api.close()
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = [json.loads(line)["record"] for line in proc.stdout.splitlines() if '"type":"RECORD"' in line]
    assert [r["id"] for r in records] == [1, 2, 3], [r["path"] for r in api.requests]
    assert logged_json(proc.stderr, "Records skipped: ") == {"things": {"not_object": 1}}
