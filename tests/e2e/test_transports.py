"""Both HTTP stacks end to end: httpx's (the default, HTTP/2 where offered) and the lean wire (`http_transport: wire`)."""

from __future__ import annotations

import pytest
from helpers import by_id, logged_json, run_tap, run_target, singer_lines, tap_config


@pytest.fixture(scope="module")
def sb():
    from sandbox.testing import running_sandbox

    with running_sandbox(
        budget=100_000, time_scale=60, faults="rate=0.05,seed=3,kinds=500,429,reset,burst=1"
    ) as handle:
        yield handle


@pytest.mark.parametrize("transport", ["wire", "httpx"])
def test_a_sync_reads_every_record_through_either_stack(sb, tmp_path, transport):
    run = run_tap(
        tap_config(sb, http_transport=transport, max_backoff_seconds=0.05),
        tmp_path,
        streams=["people", "accounts", "cadences", "cadence_steps"],
    )
    for stream in ("people", "accounts", "cadences"):
        assert by_id(run.records[stream]) == by_id(sb.records(stream)), stream
    assert run.records["cadence_steps"]


@pytest.mark.parametrize("transport", ["wire", "httpx"])
def test_a_target_writes_and_rejects_through_either_stack(sb, tmp_path, transport):
    taken = sb.records("accounts")[0]["domain"]
    records = [{"name": f"{transport} {i}", "domain": f"{transport}-{i}.example"} for i in range(40)]
    records.append({"name": "Duplicate", "domain": taken})  # create_account: 422, the domain is taken
    run = run_target(
        {**tap_config(sb, http_transport=transport, max_backoff_seconds=0.05), "sink": "create_account"},
        tmp_path,
        singer_lines("accounts", records),
    )
    assert run.returncode == 0, run.stderr[-3000:]
    present = {a["domain"] for a in sb.records("accounts")}
    assert {r["domain"] for r in records[:-1]} <= present
    (rejected,) = run.rejected
    assert rejected["status"] == 422 and rejected["record"]["domain"] == taken
    assert "domain" in rejected["error"] and "taken" in rejected["error"], rejected["error"]
    summary = logged_json(run.stderr, "Target summary: ")
    assert (summary["accepted"], summary["rejected"]) == (40, 1)
    assert summary["http"]["retries"] >= 1  # the faults were met and got past
