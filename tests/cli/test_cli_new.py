"""``connector new stream|sink``: scaffolds that validate, never overwrite, and leave nothing when they fail."""

from __future__ import annotations

import json

import yaml
from cli_support import isolated_templates, run_cli

from sandbox.helpdesk import running_helpdesk


def test_new_stream_validates_and_can_be_previewed(tmp_path):
    env = isolated_templates(tmp_path, "helpdesk")
    result = run_cli(
        "new",
        "stream",
        "macros",
        "-c",
        "helpdesk",
        "--url",
        "/api/v1/macros",
        "--records",
        "macros",
        "--pagination",
        "offset",
        "--replication-key",
        "updated_at",
        "--incremental-param",
        "updated_since",
        env=env,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[:3] == [
        "created templates/helpdesk/streams/macros.yaml",
        "created specs/helpdesk/macros.json",
        "helpdesk: 5 streams, 5 sinks OK",
    ]
    template = yaml.safe_load((tmp_path / "templates/helpdesk/streams/macros.yaml").read_text())
    assert template["url"] == "/api/v1/macros"
    assert template["pagination"]["type"] == "offset"
    schema = json.loads((tmp_path / "specs/helpdesk/macros.json").read_text())
    assert set(schema["properties"]) == {"id", "updated_at"}
    preview = run_cli("preview", "macros", "-c", "helpdesk", env=env, cwd=tmp_path)
    assert "GET http://127.0.0.1:8566/api/v1/macros?limit=100&offset=0" in preview.stdout


def test_new_child_stream_runs_against_the_server(tmp_path):
    """A stream made by `new` reads real records: only YAML (and a schema) was added."""
    env = isolated_templates(tmp_path, "helpdesk")
    (tmp_path / "templates/helpdesk/streams/comments.yaml").unlink()
    result = run_cli(
        "new",
        "stream",
        "ticket_comments",
        "-c",
        "helpdesk",
        "--parent",
        "tickets",
        "--records",
        "",
        "--url",
        "/api/v1/tickets/{{ parent.id }}/comments",
        "--pagination",
        "link_header",
        env=env,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    with running_helpdesk(tickets=4) as server:
        (tmp_path / "c.json").write_text(json.dumps(server.config()))
        tap = run_cli(
            "tap", "helpdesk", "--config", "c.json", "--streams", "ticket_comments", env=env, cwd=tmp_path
        )
        assert tap.returncode == 0, tap.stderr[-2000:]
        got = [json.loads(line) for line in tap.stdout.splitlines()]
        records = [m["record"] for m in got if m["type"] == "RECORD"]
        assert sorted(r["id"] for r in records) == sorted(c["id"] for c in server.records("comments"))


def test_new_sink_guesses_id_field_from_the_url(tmp_path):
    env = isolated_templates(tmp_path, "helpdesk")
    result = run_cli(
        "new",
        "sink",
        "close_ticket",
        "-c",
        "helpdesk",
        "--method",
        "PATCH",
        "--url",
        "/api/v1/tickets/{{ record.id }}",
        "--exclude",
        "id",
        "--schema",
        "tickets.json",
        env=env,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[:2] == [
        "created templates/helpdesk/sinks/close_ticket.yaml",
        "helpdesk: 4 streams, 6 sinks OK",
    ]
    template = yaml.safe_load((tmp_path / "templates/helpdesk/sinks/close_ticket.yaml").read_text())
    assert template["id_field"] == "id" and template["exclude"] == ["id"] and template["method"] == "PATCH"


def test_new_batched_sink_uses_records(tmp_path):
    env = isolated_templates(tmp_path, "helpdesk")
    result = run_cli(
        "new",
        "sink",
        "bulk_tags",
        "-c",
        "helpdesk",
        "--url",
        "/api/v1/tags/bulk",
        "--batch-size",
        "50",
        env=env,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    template = yaml.safe_load((tmp_path / "templates/helpdesk/sinks/bulk_tags.yaml").read_text())
    assert template["batch"] == {"size": 50} and template["body"] == {"records": "{{ records }}"}


def test_refuses_to_overwrite(tmp_path):
    env = isolated_templates(tmp_path, "helpdesk")
    before = (tmp_path / "templates/helpdesk/streams/tickets.yaml").read_text()
    result = run_cli("new", "stream", "tickets", "-c", "helpdesk", "--url", "/x", env=env, cwd=tmp_path)
    assert result.returncode == 2
    assert "templates/helpdesk/streams/tickets.yaml already exists; not overwritten" in result.stderr
    assert (tmp_path / "templates/helpdesk/streams/tickets.yaml").read_text() == before


def test_a_scaffold_that_does_not_validate_leaves_nothing(tmp_path):
    env = isolated_templates(tmp_path, "helpdesk")
    result = run_cli(
        "new",
        "sink",
        "nope",
        "-c",
        "helpdesk",
        "--url",
        "/api/v1/{{ config.missing }}",
        env=env,
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert "the new sink does not validate, nothing was written:" in result.stderr
    assert (
        "templates/helpdesk/sinks/nope.yaml:4: url: config.missing is not a setting of helpdesk"
        in result.stderr
    )
    assert not (tmp_path / "templates/helpdesk/sinks/nope.yaml").exists()


def test_bad_names_and_urls(tmp_path):
    env = isolated_templates(tmp_path, "helpdesk")
    name = run_cli("new", "stream", "Bad-Name", "-c", "helpdesk", "--url", "/x", env=env, cwd=tmp_path)
    assert name.returncode == 2 and "use lower case letters, digits and underscores" in name.stderr
    url = run_cli(
        "new", "sink", "s", "-c", "helpdesk", "--url", "https://elsewhere.example/x", env=env, cwd=tmp_path
    )
    assert url.returncode == 2 and "give a path on the API starting with '/'" in url.stderr
    schema = run_cli(
        "new", "sink", "s", "-c", "helpdesk", "--url", "/x", "--schema", "nope.json", env=env, cwd=tmp_path
    )
    assert schema.returncode == 2 and "--schema nope.json: no such file" in schema.stderr
