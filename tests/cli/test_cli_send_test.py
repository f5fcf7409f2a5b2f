"""``connector send-test``: one record, sent for real to a local server, with the API's answer shown."""

from __future__ import annotations

import pytest
from cli_support import run_cli, write_json, write_jsonl

from sandbox.helpdesk import running_helpdesk


@pytest.fixture
def helpdesk(tmp_path):
    with running_helpdesk(tickets=5) as server:
        yield server, write_json(tmp_path / "config.json", server.config())


def test_accepted_record_shows_request_and_response(helpdesk, tmp_path):
    server, config = helpdesk
    records = write_jsonl(
        tmp_path / "r.jsonl", [{"ticket_id": 2, "body": "first"}, {"ticket_id": 3, "body": "second"}]
    )
    result = run_cli(
        "send-test",
        "add_comment",
        "-c",
        "helpdesk",
        "--input",
        str(records),
        "--config",
        str(config),
        "--record",
        "2",
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert server.api_key not in out
    assert f"POST {server.url}/api/v1/tickets/3/comments" in out
    assert "X-Api-Key: ***" in out
    assert "<-- 201 Created" in out
    assert '"body": "second"' in out
    assert out.rstrip().endswith("Result: accepted (1 request)")
    sent = [e for e in server.journal() if e.method == "POST"]
    assert len(sent) == 1 and sent[0].body == {"comment": {"body": "second"}}  # ONE record only


def test_api_rejection_exits_1_with_the_api_error(helpdesk, tmp_path):
    server, config = helpdesk
    records = write_jsonl(tmp_path / "r.jsonl", [{"ticket_id": 999, "body": "x"}])
    result = run_cli(
        "send-test", "add_comment", "-c", "helpdesk", "--input", str(records), "--config", str(config)
    )
    assert result.returncode == 1
    assert "<-- 404 Not Found" in result.stdout
    assert "Result: REJECTED (404): api: ticket 999 not found" in result.stdout


def test_record_without_id_field_is_not_sent(helpdesk, tmp_path):
    server, config = helpdesk
    records = write_jsonl(tmp_path / "r.jsonl", [{"body": "no ticket id"}])
    result = run_cli(
        "send-test", "add_comment", "-c", "helpdesk", "--input", str(records), "--config", str(config)
    )
    assert result.returncode == 1
    assert (
        "Result: REJECTED: missing_id: record has no 'ticket_id' (the sink's id_field): not sent"
        in result.stdout
    )
    assert "Nothing was sent." in result.stdout
    assert server.journal() == []


def test_usage_errors(helpdesk, tmp_path):
    server, config = helpdesk
    records = write_jsonl(tmp_path / "r.jsonl", [{"ticket_id": 1, "body": "x"}])
    stream = run_cli(
        "send-test", "tickets", "-c", "helpdesk", "--input", str(records), "--config", str(config)
    )
    assert stream.returncode == 2 and "tickets is a stream; send-test takes a sink" in stream.stderr
    beyond = run_cli(
        "send-test",
        "add_comment",
        "-c",
        "helpdesk",
        "--input",
        str(records),
        "--config",
        str(config),
        "--record",
        "5",
    )
    assert beyond.returncode == 2 and "has 1 usable records; --record must be 1 to 1 (got 5)" in beyond.stderr
    missing = run_cli(
        "send-test",
        "add_comment",
        "-c",
        "helpdesk",
        "--input",
        str(records),
        "--config",
        str(tmp_path / "none.json"),
    )
    assert missing.returncode == 2 and "none.json does not exist" in missing.stderr
    no_key = write_json(tmp_path / "nokey.json", {"base_url": server.url})
    refused = run_cli(
        "send-test", "add_comment", "-c", "helpdesk", "--input", str(records), "--config", str(no_key)
    )
    assert refused.returncode == 1 and "no credentials in the config: set api_token" in refused.stderr
    assert server.journal() == []


def test_send_test_against_the_salesloft_sandbox(tmp_path):
    from sandbox.testing import running_sandbox

    with running_sandbox() as sandbox:
        config = write_json(tmp_path / "c.json", {"base_url": sandbox.url, "api_key": sandbox.api_key})
        records = write_jsonl(
            tmp_path / "a.jsonl", [{"domain": "send-test.example", "name": "Send Test Inc"}]
        )
        result = run_cli("send-test", "upsert_account", "--input", str(records), "--config", str(config))
        assert result.returncode == 0, result.stdout + result.stderr
        assert "Authorization: ***" in result.stdout and sandbox.api_key not in result.stdout
        assert '"upsert_type": "create"' in result.stdout
        assert any(a["domain"] == "send-test.example" for a in sandbox.records("accounts"))
        writes = [e for e in sandbox.journal() if e["method"] == "POST"]
        assert len(writes) == 1
