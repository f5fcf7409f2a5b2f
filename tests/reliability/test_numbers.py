"""Numbers pass through exactly: what the upstream wrote reaches the API digit for digit, and what the API
sent reaches the RECORD digit for digit (no float rounding, no 64-bit cut)."""

from __future__ import annotations

import json
import subprocess
from decimal import Decimal

import pytest
from helpers import TAP, catalog_for, run_target, singer_lines, tap_config, write_json
from reliability_support import RecordingServer

from connector import jsonio

DECIMAL = "12345678901234567.89"  # a float makes it 1.2345678901234568e+16
WIDE = "123456789012345678901234567890"  # 30 digits: beyond 64 bits
NUMBERS = {"amount": Decimal(DECIMAL), "count": int(WIDE), "plain": 1.5, "small": 42}
NUMBERS_SCHEMA = {
    "type": "object",
    "properties": {
        "amount": {"type": "number"},
        "count": {"type": "integer"},
        "plain": {"type": "number"},
        "small": {"type": "integer"},
    },
}
EXACT = f'"amount":{DECIMAL},"count":{WIDE},"plain":1.5,"small":42'


@pytest.fixture(scope="module")
def sb():
    from sandbox.testing import running_sandbox

    with running_sandbox(bulk_latency=0.05) as handle:
        handle.configure(raw_bodies=True)
        yield handle


def send(sb, tmp_path, sink: str, stream: str, records: list[dict], schema: dict) -> tuple:
    lines = singer_lines(stream, [], schema=schema)
    lines += "".join(
        jsonio.dumps({"type": "RECORD", "stream": stream, "record": r}).decode() + "\n" for r in records
    )
    sb.clear_journal()
    run = run_target({**tap_config(sb), "sink": sink}, tmp_path, lines)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.rejected == [], run.rejected
    return run, [e for e in sb.journal() if e["method"] == "POST"]


def with_numbers(schema_properties: dict) -> dict:
    return {
        "type": "object",
        "properties": {**schema_properties, "custom_fields": NUMBERS_SCHEMA},
    }


def test_numbers_reach_the_api_exactly_one_request_per_record(sb, tmp_path):
    schema = with_numbers({"name": {"type": "string"}, "domain": {"type": "string"}})
    record = {"name": "Exact", "domain": "exact-numbers.example", "custom_fields": NUMBERS}
    _, posts = send(sb, tmp_path, "upsert_account", "accounts", [record], schema)
    (post,) = posts
    assert EXACT in post["raw_body"], post["raw_body"]


def test_numbers_reach_the_api_exactly_in_a_batched_body(sb, tmp_path):
    send(
        sb,
        tmp_path,
        "create_bulk_job",
        "jobs",
        [{"name": "numbers", "type": "person/upsert"}],
        {
            "type": "object",
            "properties": {"name": {"type": "string"}, "type": {"type": "string"}},
        },
    )
    job = max(j["id"] for j in sb.records("bulk_jobs"))
    schema = with_numbers({"bulk_job_id": {"type": "integer"}, "email_address": {"type": "string"}})
    records = [
        {"bulk_job_id": job, "email_address": f"n{i}@example.com", "custom_fields": NUMBERS} for i in range(3)
    ]
    _, posts = send(sb, tmp_path, "create_job_data", "job_data", records, schema)
    (post,) = posts
    assert post["raw_body"].count(EXACT) == 3, post["raw_body"]


def test_numbers_reach_the_api_exactly_through_a_bulk_job(sb, tmp_path):
    schema = with_numbers({"email_address": {"type": "string"}, "first_name": {"type": "string"}})
    records = [
        {"email_address": f"bulk-n{i}@example.com", "first_name": "N", "custom_fields": NUMBERS}
        for i in range(4)
    ]
    _, posts = send(sb, tmp_path, "bulk_upsert_people", "people", records, schema)
    (upload,) = [p for p in posts if p["path"].endswith("/job_data")]
    assert upload["raw_body"].count(EXACT) == 4, upload["raw_body"]


def test_the_tap_writes_what_the_api_sent_digit_for_digit(tmp_path):
    """A 30-digit integer and a 20-significant-digit decimal in a response come out in the RECORD as sent."""
    body = (
        b'{"data": [{"id": 1, "updated_at": "2024-05-01T10:00:00.000000Z", "custom_fields": '
        b'{"wide": 123456789012345678901234567890, "fine": 1234567890.1234567891, "negative": -9.87654321098765432e-5, '
        b'"plain": 0.1}}], "metadata": {"paging": {"next_page": null}}}'
    )
    api = RecordingServer({"GET /v2/accounts.json": (200, {}, body)})
    try:
        config_path = write_json(tmp_path / "tap.json", {"base_url": api.url, "api_key": "k-numbers"})
        catalog = catalog_for(["accounts"], tmp_path, config_path)
        proc = subprocess.run(
            [TAP, "--config", str(config_path), "--catalog", str(catalog)],
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        api.close()
    assert proc.returncode == 0, proc.stderr[-3000:]
    (record_line,) = [line for line in proc.stdout.splitlines() if '"type":"RECORD"' in line]
    assert '"wide":123456789012345678901234567890,"fine":1234567890.1234567891,' in record_line, record_line
    record = json.loads(record_line, parse_float=Decimal)["record"]
    assert record["custom_fields"] == {
        "wide": 123456789012345678901234567890,
        "fine": Decimal("1234567890.1234567891"),
        "negative": Decimal("-9.87654321098765432e-5"),
        "plain": Decimal("0.1"),
    }
