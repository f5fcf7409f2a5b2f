"""``connector preview``: what a sink would send (nothing is sent), what a stream asks for first."""

from __future__ import annotations

import json

from cli_support import isolated_templates, run_cli, write_json, write_jsonl

HELPDESK_CONFIG = {"base_url": "https://helpdesk.example.com", "api_token": "hd-secret-token-123"}


def test_sink_preview_shows_each_request_and_masks_secrets(tmp_path):
    records = write_jsonl(
        tmp_path / "records.jsonl",
        [
            {"id": 7, "status": "solved", "created_at": "2024-01-01T00:00:00Z", "subject": "Printer on fire"},
            {"status": "open"},
            "not json",
            {
                "type": "RECORD",
                "stream": "tickets",
                "record": {"id": 8, "priority": "urgent", "_sdc_extracted_at": "2024-01-01T00:00:00Z"},
            },
        ],
    )
    config = write_json(tmp_path / "config.json", HELPDESK_CONFIG)
    result = run_cli(
        "preview", "update_ticket", "-c", "helpdesk", "--input", str(records), "--config", str(config)
    )
    assert result.returncode == 1, result.stderr  # some records would be rejected
    out = result.stdout
    assert "hd-secret-token-123" not in out
    assert out.startswith(
        "Preview of sink update_ticket (helpdesk): nothing is sent.\n"
        "  id_field id; excludes created_at, id, updated_at; 1 record per request\n"
    )
    assert ": 3 records and 1 unreadable line -> 2 requests carrying 2 records; 2 rejected." in out
    first = out[out.index("--- request 1 of 2 (1 record)") : out.index("--- request 2 of 2")]
    assert first.splitlines()[1:6] == [
        "PATCH https://helpdesk.example.com/api/v1/tickets/7",
        "Accept: application/json",
        "Content-Type: application/json",
        "X-Api-Key: ***",
        "",
    ]
    body = json.loads("\n".join(first.splitlines()[6:]))
    assert body == {"ticket": {"status": "solved", "subject": "Printer on fire"}}  # id, created_at excluded
    second = out[out.index("--- request 2 of 2") :]
    assert "PATCH https://helpdesk.example.com/api/v1/tickets/8" in second
    assert "_sdc_extracted_at" not in second  # Singer metadata is never sent
    assert "line 2: missing_id: record has no 'id' (the sink's id_field): not sent" in out
    assert (
        "line 3: bad_input: invalid JSON: invalid literal, expected 'null': line 1 column 1 (char 0)" in out
    )


def test_batched_sink_groups_records_into_requests(tmp_path):
    records = write_jsonl(tmp_path / "tickets.jsonl", [{"subject": f"t{i}", "id": i} for i in range(150)])
    result = run_cli("preview", "import_tickets", "-c", "helpdesk", "--input", str(records), "--json")
    assert result.returncode == 0, result.stderr
    preview = json.loads(result.stdout)
    assert [r["records"] for r in preview["requests"]] == [100, 50]
    assert preview["requests"][0]["url"] == "http://127.0.0.1:8566/api/v1/tickets/import"
    assert preview["requests"][0]["body"]["tickets"][0] == {"subject": "t0"}
    assert len(preview["requests"][1]["body"]["tickets"]) == 50
    assert preview["rejected"] == []


def test_render_error_is_a_rejection(tmp_path):
    env = isolated_templates(tmp_path, "helpdesk")
    (tmp_path / "templates/helpdesk/sinks/strict.yaml").write_text(
        'name: strict\nurl: /api/v1/tickets\nbody: {subject: "{{ record.subject.upper() }}"}\n'
    )
    records = write_jsonl(tmp_path / "r.jsonl", [{"subject": "ok"}, {"other": 1}])
    result = run_cli("preview", "strict", "-c", "helpdesk", "--input", str(records), env=env, cwd=tmp_path)
    assert result.returncode == 1
    assert '"subject": "OK"' in result.stdout
    assert "line 2: render: cannot render request:" in result.stdout
    assert "has no attribute 'subject'" in result.stdout


def test_salesloft_default_base_url_and_bearer_masked(tmp_path):
    records = write_jsonl(tmp_path / "a.jsonl", [{"domain": "acme.example", "name": "Acme", "id": 3}])
    result = run_cli("preview", "upsert_account", "--input", str(records))
    assert result.returncode == 0, result.stderr
    assert "POST https://api.salesloft.com/v2/account_upserts.json?upsert_key=domain" in result.stdout
    assert "Authorization: ***" in result.stdout


def test_bulk_job_sink_preview_shows_the_flow(tmp_path):
    records = write_jsonl(
        tmp_path / "people.jsonl", [{"email_address": f"p{i}@x.example", "id": i} for i in range(3)]
    )
    result = run_cli("preview", "bulk_upsert_people", "--input", str(records), "--json")
    assert result.returncode == 0, result.stderr
    preview = json.loads(result.stdout)
    steps = [(r["method"], r["url"].removeprefix("https://api.salesloft.com")) for r in preview["requests"]]
    assert steps == [
        ("POST", "/v2/bulk_jobs"),
        ("POST", "/v2/bulk_jobs/{job.id}/job_data"),
        ("PUT", "/v2/bulk_jobs/{job.id}"),
    ]
    assert preview["requests"][1]["body"] == {
        "data": [{"email_address": f"p{i}@x.example"} for i in range(3)]
    }
    assert any("until `response.data.state == 'done'`" in note for note in preview["notes"])


def test_stream_preview_shows_the_first_request():
    result = run_cli("preview", "tickets", "-c", "helpdesk")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[:6] == [
        "Preview of stream tickets (helpdesk): nothing is sent.",
        "",
        "--- first request",
        "GET http://127.0.0.1:8566/api/v1/tickets?limit=50",
        "Accept: application/json",
        "X-Api-Key: ***",
    ]
    assert "next pages: cursor (`cursor` from `meta.next_cursor`)" in result.stdout


def test_child_stream_preview_shows_parent_placeholders(tmp_path):
    config = write_json(tmp_path / "c.json", {"start_date": "2024-02-01T00:00:00Z"})
    result = run_cli("preview", "comments", "-c", "helpdesk", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert "GET http://127.0.0.1:8566/api/v1/tickets/{parent.id}/comments?per_page=2" in result.stdout
    assert "runs once per tickets record" in result.stdout
    tickets = run_cli("preview", "tickets", "-c", "helpdesk", "--config", str(config))
    assert "updated_since=2024-02-01T00%3A00%3A00Z" in tickets.stdout


def test_unknown_name_suggests_close_ones():
    result = run_cli("preview", "update_tiket", "-c", "helpdesk")
    assert result.returncode == 2
    assert "helpdesk has no sink or stream 'update_tiket'. Did you mean update_ticket?" in result.stderr


def test_sink_needs_input_and_input_must_exist(tmp_path):
    no_input = run_cli("preview", "update_ticket", "-c", "helpdesk")
    assert no_input.returncode == 2
    assert "update_ticket is a sink: give the records to preview with --input FILE.jsonl" in no_input.stderr
    missing = run_cli("preview", "update_ticket", "-c", "helpdesk", "--input", str(tmp_path / "nope.jsonl"))
    assert missing.returncode == 2
    assert "nope.jsonl does not exist" in missing.stderr


def test_bad_config_file(tmp_path):
    (tmp_path / "c.json").write_text("{not json")
    records = write_jsonl(tmp_path / "r.jsonl", [{"id": 1}])
    result = run_cli(
        "preview",
        "update_ticket",
        "-c",
        "helpdesk",
        "--input",
        str(records),
        "--config",
        str(tmp_path / "c.json"),
    )
    assert result.returncode == 2
    assert "c.json is not valid JSON: line 1:" in result.stderr


def test_connection_that_fails_validation(tmp_path):
    env = isolated_templates(tmp_path, "helpdesk")
    (tmp_path / "templates/helpdesk/sinks/broken.yaml").write_text(
        "name: broken\nurl: /x\nbatch: {size: 0}\n"
    )
    result = run_cli("preview", "tickets", "-c", "helpdesk", env=env, cwd=tmp_path)
    assert result.returncode == 2
    assert "the helpdesk templates do not load (1 errors; run `connector validate helpdesk`)" in result.stderr
    assert (
        "templates/helpdesk/sinks/broken.yaml:3: batch.size: 0 is less than the minimum of 1" in result.stderr
    )


def test_sink_preview_reads_lines_as_bytes_and_keeps_numbers_exact(tmp_path):
    """A line that is not UTF-8 is one unreadable line; numbers reach the body digit for digit."""
    from decimal import Decimal

    env = isolated_templates(tmp_path, "helpdesk")
    (tmp_path / "templates/helpdesk/sinks/numbers.yaml").write_text(
        'name: numbers\nurl: /api/v1/tickets/import\nbatch: {size: 100}\nbody: {tickets: "{{ records }}"}\n'
    )
    records = tmp_path / "records.jsonl"
    records.write_bytes(
        b'{"subject": "exact", "amount": 12345678901234567.89, "count": 123456789012345678901234567890}\n'
        b'{"subject": "caf\xe9"}\n'
    )
    result = run_cli(
        "preview", "numbers", "-c", "helpdesk", "--input", str(records), "--json", env=env, cwd=tmp_path
    )
    assert result.returncode == 1, result.stderr  # the unreadable line is a rejection
    preview = json.loads(result.stdout, parse_float=Decimal)
    (request,) = preview["requests"]
    assert request["body"]["tickets"] == [
        {
            "subject": "exact",
            "amount": Decimal("12345678901234567.89"),
            "count": 123456789012345678901234567890,
        }
    ]
    assert [(r["line"], r["reason"], r["error"]) for r in preview["rejected"]] == [
        (2, "bad_input", "not UTF-8: byte 0xe9 at column 17")
    ]
