"""The tap and target against a hostile server (socket level): smuggling, bombs, floods, trickles, loops.

Each case runs the real CLI (``connector tap|target DIR``) as a process, through both HTTP stacks.
"""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path

import pytest
from helpers import BIN, write_json
from hostile_server import HostileServer, always, answer
from reliability_support import as_lines, singer_messages

API_KEY = "hostile-test-key-7c2e"
TRANSPORTS = ["wire", "httpx"]

CONNECTION = """\
name: hostile
description: An API served by a hostile server, for the reliability tests.
base_url: "{{ config.base_url }}"
settings:
  - {name: base_url, type: string}
  - {name: api_key, type: string, secret: true}
auth:
  - {type: bearer, when: api_key, token: api_key}
retry: {max_attempts: 3, backoff_seconds: 0.01, max_backoff_seconds: 0.01}
stream_defaults:
  records: data
"""
ITEMS = """\
name: items
url: /v1/items
primary_key: [id]
schema: items.json
"""
POST_ITEM = """\
name: post_item
method: POST
url: /v1/items
headers:
  Idempotency-Key: "{{ record.key }}"
"""


def hostile_connection(tmp_path: Path, items: str = ITEMS) -> Path:
    root = tmp_path / "hostile"
    for folder in ("streams", "sinks", "specs"):
        (root / folder).mkdir(parents=True)
    (root / "connection.yaml").write_text(CONNECTION)
    (root / "streams" / "items.yaml").write_text(textwrap.dedent(items))
    (root / "sinks" / "post_item.yaml").write_text(POST_ITEM)
    schema = {
        "type": "object",
        "properties": {"id": {"type": "integer"}, "name": {"type": ["string", "null"]}},
    }
    (root / "specs" / "items.json").write_text(json.dumps(schema))
    return root


def run_connector(
    role: str,
    tmp_path: Path,
    server: HostileServer,
    transport: str,
    *args: str,
    stdin: str = "",
    items: str = ITEMS,
    timeout: float = 120,
    **config: object,
) -> subprocess.CompletedProcess:
    """``connector tap|target`` of the hostile connection against ``server``; ``items``: the stream's YAML."""
    settings = {
        "base_url": server.url,
        "api_key": API_KEY,
        "http_transport": transport,
        "rejected_path": str(tmp_path / "rejected.jsonl"),
        **config,
    }
    config_path = write_json(tmp_path / "config.json", settings)
    root = hostile_connection(tmp_path, items)
    return subprocess.run(
        [str(BIN / "connector"), role, str(root), "--config", str(config_path), *args],
        input=stdin,
        text=True,
        capture_output=True,
        timeout=timeout,
    )


def rejected(tmp_path: Path) -> list[dict]:
    path = tmp_path / "rejected.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


# -- header injection and request smuggling


NEXT_URL = "pagination: {type: next_url, from_response: next}\n"
SMUGGLED = "a\r\nContent-Length: 0\r\n\r\nDELETE /v1/items/999 HTTP/1.1\r\nX-Smuggled: 1"


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize(
    "value", ["a\r\nX-Injected: 1", SMUGGLED, "a\nX-Injected: 1", "a\0b", "a\rX-Injected: 1"]
)
def test_a_record_value_with_a_line_break_in_a_header_is_rejected_as_render_and_never_sent(
    tmp_path, transport, value
):
    records = [{"id": 1, "key": "first"}, {"id": 2, "key": value}, {"id": 3, "key": "third"}]
    with HostileServer(always(answer(201, {"ok": True}))) as server:
        proc = run_connector(
            "target", tmp_path, server, transport, stdin=as_lines(singer_messages("post_item", records))
        )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert server.methods() == ["POST", "POST"], server.raw.decode("latin-1")[-2000:]
    assert sorted(r.header("Idempotency-Key") for r in server.requests) == ["first", "third"]
    assert b"X-Injected" not in server.raw and b"X-Smuggled" not in server.raw and b"DELETE" not in server.raw
    (row,) = rejected(tmp_path)
    assert row["reason"] == "render" and row["record"]["id"] == 2, row
    assert "Idempotency-Key" in row["error"] and "refused before sending" in row["error"], row["error"]
    summary = [line for line in proc.stderr.splitlines() if "Target summary: " in line][-1]
    figures = json.loads(summary.split("Target summary: ", 1)[1])
    assert (figures["accepted"], figures["rejected"], figures["http"]["requests"]) == (2, 1, 2)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_next_link_with_a_line_break_stops_the_tap_with_one_clear_line(tmp_path, transport):
    next_url = "/v1/items?page=2 HTTP/1.1\r\nX-Injected: 1\r\n\r\nDELETE /v1/items/999"
    page = answer(200, {"data": [{"id": 1}], "next": next_url})
    with HostileServer(always(page)) as server:
        proc = run_connector("tap", tmp_path, server, transport, items=ITEMS + NEXT_URL)
    assert proc.returncode == 1
    assert server.methods() == ["GET"]
    assert b"X-Injected" not in server.raw and b"DELETE" not in server.raw
    assert "request URL" in proc.stderr and "refused before sending" in proc.stderr, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
