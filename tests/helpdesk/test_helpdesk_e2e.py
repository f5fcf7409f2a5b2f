"""The second connection, end to end: templates only, its own local server, every paging style Salesloft
does not use (body cursor, offset, next URL, Link header), incremental state, and all its sinks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_support import run_cli, write_json, write_jsonl

from sandbox.helpdesk import running_helpdesk


@pytest.fixture
def helpdesk():
    with running_helpdesk(tickets=75) as server:
        yield server


def tap(config: Path, *args: str, cwd: Path) -> tuple[dict[str, list[dict]], list[dict]]:
    result = run_cli("tap", "helpdesk", "--config", str(config), *args, cwd=cwd)
    assert result.returncode == 0, result.stderr[-3000:]
    records: dict[str, list[dict]] = {}
    states = []
    for line in result.stdout.splitlines():
        message = json.loads(line)
        if message["type"] == "RECORD":
            records.setdefault(message["stream"], []).append(message["record"])
        elif message["type"] == "STATE":
            states.append(message["value"])
    return records, states


def read_once(requests) -> list:
    """A stream's requests, less a first page sent ahead of the stream's turn and read again with the rest
    (the tap does so when the stream has more pages)."""
    requests = list(requests)
    if len(requests) > 1 and requests[0].query == requests[1].query:
        return requests[1:]
    return requests


def ids(rows: list[dict]) -> list:
    return sorted(r["id"] for r in rows)


def test_full_sync_reads_every_record_through_every_paging_style(helpdesk, tmp_path):
    config = write_json(tmp_path / "config.json", helpdesk.config())
    records, states = tap(config, cwd=tmp_path)
    for stream in ("tickets", "comments", "agents", "tags"):
        assert ids(records[stream]) == ids(helpdesk.records(stream)), stream
    journal = helpdesk.journal()
    assert all(e.status == 200 for e in journal)
    tickets = read_once(e for e in journal if e.path == "/api/v1/tickets")
    assert len(tickets) == 2 and "cursor" in tickets[1].query  # 75 tickets, 50 a page, opaque cursor
    agents = [e.query.get("offset") for e in read_once(e for e in journal if e.path == "/api/v1/agents")]
    assert agents == [["0"], ["5"], ["10"]]  # 12 agents, 5 a page, stops on the short page
    tags = read_once(e for e in journal if e.path == "/api/v1/tags")
    assert len(tags) == 3 and "page_token" in tags[1].query  # next URL from the body
    comment_pages = [e for e in journal if e.path.endswith("/comments") and e.query.get("page") == ["2"]]
    assert comment_pages  # Link: rel="next" followed
    assert states[-1]["bookmarks"]["tickets"]["replication_key_value"] == max(
        t["updated_at"] for t in helpdesk.records("tickets")
    )


def test_incremental_sync_reads_only_changed_tickets(helpdesk, tmp_path):
    config = write_json(tmp_path / "config.json", helpdesk.config())
    _, states = tap(config, "--streams", "tickets", cwd=tmp_path)
    changes = write_jsonl(
        tmp_path / "changes.jsonl", [{"id": 3, "status": "solved"}, {"id": 9, "priority": "urgent"}]
    )
    target_config = write_json(tmp_path / "target.json", helpdesk.config(sink="update_ticket"))
    result = run_cli(
        "target", "helpdesk", "--config", str(target_config), stdin=_singer("tickets", changes), cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    state = write_json(tmp_path / "state.json", states[-1])
    records, _ = tap(config, "--streams", "tickets", "--state", str(state), cwd=tmp_path)
    assert ids(records["tickets"]) == [3, 9]
    changed = {r["id"]: r for r in records["tickets"]}
    assert changed[3]["status"] == "solved" and changed[9]["priority"] == "urgent"


def _singer(stream: str, path: Path) -> str:
    lines = [
        json.dumps(
            {
                "type": "SCHEMA",
                "stream": stream,
                "key_properties": [],
                "schema": {"type": "object", "properties": {}, "additionalProperties": True},
            }
        )
    ]
    lines += [
        json.dumps({"type": "RECORD", "stream": stream, "record": json.loads(line)})
        for line in path.read_text().splitlines()
    ]
    return "\n".join(lines) + "\n"


def test_every_sink_writes_or_rejects_with_a_reason(helpdesk, tmp_path):
    streams = {
        "new_tickets": [
            {"subject": "VPN down", "priority": "high", "id": 999, "created_at": "2020-01-01T00:00:00Z"},
            {"priority": "low"},
        ],  # no subject: the API says 422
        "imports": [{"subject": f"Imported {i}", "external_id": f"ext-{i}"} for i in range(130)],
        "edits": [{"id": 1, "status": "pending"}, {"id": 4242, "status": "open"}, {"status": "closed"}],
        "notes": [{"ticket_id": 2, "body": "Called the customer"}, {"ticket_id": 2}],
        "removals": [{"id": 5}],
    }
    lines = []
    for stream, rows in streams.items():
        lines.append(
            json.dumps(
                {
                    "type": "SCHEMA",
                    "stream": stream,
                    "key_properties": [],
                    "schema": {"type": "object", "properties": {}, "additionalProperties": True},
                }
            )
        )
        lines += [json.dumps({"type": "RECORD", "stream": stream, "record": row}) for row in rows]
    config = write_json(
        tmp_path / "target.json",
        helpdesk.config(
            rejected_path=str(tmp_path / "rejected.jsonl"),
            stream_sinks={
                "new_tickets": "create_ticket",
                "imports": "import_tickets",
                "edits": "update_ticket",
                "notes": "add_comment",
                "removals": "delete_ticket",
            },
        ),
    )
    before = {t["id"] for t in helpdesk.records("tickets")}
    result = run_cli(
        "target", "helpdesk", "--config", str(config), stdin="\n".join(lines) + "\n", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    tickets = {t["id"]: t for t in helpdesk.records("tickets")}
    created = [t for i, t in tickets.items() if i not in before]
    assert len(created) == 131  # one create + 130 imported
    vpn = next(t for t in created if t["subject"] == "VPN down")
    assert vpn["priority"] == "high" and vpn["id"] != 999  # excluded attributes never reached the body
    assert tickets[1]["status"] == "pending"
    assert 5 not in tickets
    imports = [e for e in helpdesk.journal() if e.path == "/api/v1/tickets/import"]
    assert [len(e.body["tickets"]) for e in imports] == [100, 30]  # batched, within the API's limit
    assert any(c["body"] == "Called the customer" for c in helpdesk.records("comments"))
    rejected = [json.loads(line) for line in (tmp_path / "rejected.jsonl").read_text().splitlines()]
    reasons = sorted((r["stream"], r["reason"], r["status"], r["error"]) for r in rejected)
    assert reasons == [
        ("edits", "api", 404, "ticket 4242 not found"),
        ("edits", "missing_id", None, "record has no 'id' (the sink's id_field): not sent"),
        ("new_tickets", "api", 422, "subject is required"),
        ("notes", "api", 422, "comment body is required"),
    ]


def test_the_server_runs_as_a_command():
    import subprocess
    import sys

    process = subprocess.Popen(
        [sys.executable, "-m", "sandbox.helpdesk", "--port", "0", "--tickets", "3"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline()
        assert line.startswith("Helpdesk sandbox listening on http://127.0.0.1:")
        assert "(X-Api-Key: helpdesk-key, 3 tickets)" in line
    finally:
        process.terminate()
        process.wait(timeout=10)
