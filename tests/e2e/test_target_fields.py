"""What target-salesloft sends of a record: the sink schema's properties, never Singer metadata, and
only values of the declared types (the real target CLI against the sandbox)."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_support import isolated_templates
from helpers import run_target, singer_lines

WAREHOUSE_ROW = {
    "warehouse_loaded_at": "2024-05-01 10:00:00",
    "_sdc_extracted_at": "2024-05-01T10:00:00Z",
    "_sdc_filename": "/home/analyst/exports/accounts.jsonl",
    "_sdc_stream": "accounts",
    "_sdc_sequence": 17,
}


@pytest.fixture(scope="module")
def sb():
    from sandbox.testing import running_sandbox

    with running_sandbox() as handle:
        yield handle


def write(sb, tmp_path: Path, sink: str, records: list[dict]):
    sb.clear_journal()
    config = {"base_url": sb.url, "api_key": sb.api_key, "sink": sink}
    run = run_target(config, tmp_path, singer_lines("input", records))
    assert run.returncode == 0, run.stderr[-3000:]
    return run, [e for e in sb.journal() if e["method"] != "GET"]


def test_a_sink_with_a_schema_sends_only_its_declared_properties(sb, tmp_path):
    row = {"domain": "fields.example.com", "name": "Fields", "description": "kept", **WAREHOUSE_ROW}
    run, writes = write(sb, tmp_path, "upsert_account", [row])
    assert [w["body"] for w in writes] == [
        {"domain": "fields.example.com", "name": "Fields", "description": "kept"}
    ]
    assert run.rejected == []
    dropped = [line for line in run.stderr.splitlines() if "not sending" in line]
    assert len(dropped) == 1 and "warehouse_loaded_at" in dropped[0] and "_sdc" not in dropped[0], dropped


def test_write_only_parameters_the_template_declares_are_sent(sb, tmp_path):
    owner = sb.records("users")[0]["id"]
    row = {"email_address": "owned@example.com", "first_name": "Owned", "owner_id": owner, **WAREHOUSE_ROW}
    _, writes = write(sb, tmp_path, "upsert_person", [row])
    assert [w["body"] for w in writes] == [
        {"email_address": "owned@example.com", "first_name": "Owned", "owner_id": owner}
    ]


def test_a_sink_without_a_schema_sends_every_column_but_singer_metadata(sb, tmp_path):
    person = sb.records("people")[0]
    row = {"person_id": person["id"], "type": "other", "title": "Imported", **WAREHOUSE_ROW}
    _, writes = write(sb, tmp_path, "create_activity", [row])
    assert [w["body"] for w in writes] == [
        {
            "person_id": person["id"],
            "type": "other",
            "title": "Imported",
            "warehouse_loaded_at": "2024-05-01 10:00:00",
        }
    ]


def test_a_value_of_the_wrong_type_is_rejected_as_invalid_and_not_sent(sb, tmp_path):
    rows = [
        {"email_address": "typed-1@example.com", "first_name": "Wrong", "do_not_contact": "yes"},
        {"email_address": "typed-2@example.com", "first_name": "Right", "do_not_contact": True},
    ]
    run, writes = write(sb, tmp_path, "upsert_person", rows)
    assert [w["body"]["email_address"] for w in writes] == ["typed-2@example.com"]
    assert len(run.rejected) == 1
    rejected = run.rejected[0]
    assert rejected["reason"] == "invalid" and rejected["record"]["email_address"] == "typed-1@example.com"
    assert "people.json" in rejected["error"] and "do_not_contact" in rejected["error"]
    assert "'yes' is not of type" in rejected["error"]


def test_unknown_properties_pass_sends_undeclared_columns_but_never_singer_metadata(
    sb, tmp_path, monkeypatch
):
    env = isolated_templates(tmp_path, "salesloft")
    sink = tmp_path / "templates" / "salesloft" / "sinks" / "upsert_account.yaml"
    sink.write_text(sink.read_text() + "unknown_properties: pass\n")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    row = {"domain": "pass.example.com", "name": "Pass", **WAREHOUSE_ROW}
    _, writes = write(sb, tmp_path, "upsert_account", [row])
    assert [w["body"] for w in writes] == [
        {"domain": "pass.example.com", "name": "Pass", "warehouse_loaded_at": "2024-05-01 10:00:00"}
    ]
