"""tap-salesloft as a process against the sandbox: full, incremental, resumed and deep syncs."""

from __future__ import annotations

import datetime as dt
import json
import subprocess

import pytest
from helpers import TAP, by_id, run_tap, settle, tap_config, write_json

from connector.templates import load_bundled

CONNECTION = load_bundled("salesloft")
# Streams of the whole collection: not the ones reading records listed in the config (given records:
# tests/e2e/test_given_records.py; caller IDs: tests/e2e/test_tap_documented_types.py), nor the team
# (one object, no sandbox table; read there too).
TOP_LEVEL = sorted(
    name for name, t in CONNECTION.streams.items() if not t.parent and t.partitions is None and name != "team"
)
# Streams reading a filtered part of a sandbox resource: (resource, which of its records).
FILTERED = {"unlinked_call_data_records": ("call_data_records", lambda record: record.get("call") is None)}


def expected_records(sandbox, name: str) -> list[dict]:
    """What a stream reads in full: its sandbox resource, or the filtered part of one."""
    resource, keep = FILTERED.get(name, (name, lambda record: True))
    return [record for record in sandbox.records(resource) if keep(record)]


def instant(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_full_sync_of_every_stream_equals_the_sandbox(sandbox, tmp_path):
    run = run_tap(tap_config(sandbox), tmp_path)
    assert set(run.records) >= set(TOP_LEVEL) - {n for n in TOP_LEVEL if not expected_records(sandbox, n)}
    for name in TOP_LEVEL:
        expected = by_id(expected_records(sandbox, name))
        got = run.records.get(name, [])
        assert len(got) == len(expected), f"{name}: {len(got)} records, sandbox has {len(expected)}"
        assert by_id(got) == expected, f"{name}: records differ from the sandbox"
    # the child stream: every bulk job's results
    jobs = sandbox.records("bulk_jobs")
    results = run.records.get("bulk_job_results", [])
    assert jobs and results
    assert len({r["id"] for r in results}) == len(results)


def test_timestamps_keep_their_offsets_and_microseconds(sandbox, tmp_path):
    run = run_tap(tap_config(sandbox), tmp_path, streams=["people"])
    sandbox_people = by_id(sandbox.records("people"))
    for record in run.records["people"]:
        assert record["updated_at"] == sandbox_people[record["id"]]["updated_at"]
    final = run.states[-1]["bookmarks"]["people"]
    newest = max(sandbox_people.values(), key=lambda r: (instant(r["updated_at"]), r["id"]))
    assert final["replication_key_value"] == newest["updated_at"]


def test_incremental_run_returns_exactly_the_changed_records(sandbox, tmp_path):
    first = run_tap(tap_config(sandbox), tmp_path, streams=["people", "accounts"])
    state = first.states[-1]
    changed = sandbox.touch("people", count=5)
    changed_accounts = sandbox.touch("accounts", count=2)
    settle()  # the next read's range ends at the API's present: past these edits
    second = run_tap(tap_config(sandbox), tmp_path, streams=["people", "accounts"], state=state)
    assert sorted(r["id"] for r in second.records.get("people", [])) == sorted(r["id"] for r in changed)
    assert sorted(r["id"] for r in second.records.get("accounts", [])) == sorted(
        r["id"] for r in changed_accounts
    )
    third = run_tap(tap_config(sandbox), tmp_path, streams=["people", "accounts"], state=second.states[-1])
    assert third.records == {}


def test_start_date_limits_the_first_sync(sandbox, tmp_path):
    people = sandbox.records("people")
    cut = sorted(instant(p["updated_at"]) for p in people)[len(people) // 2]
    run = run_tap(tap_config(sandbox, start_date=cut.isoformat()), tmp_path, streams=["people"])
    expected = {p["id"] for p in people if instant(p["updated_at"]) > cut}
    assert {r["id"] for r in run.records["people"]} == expected


def test_requests_use_the_cursor_poller_parameters(sandbox, tmp_path):
    sandbox.clear_journal()
    run_tap(tap_config(sandbox), tmp_path, streams=["people"])
    people_requests = [e for e in sandbox.journal() if e["path"].startswith("/v2/people")]
    assert people_requests
    first = people_requests[0]["query"]
    assert first["sort_by"] == ["updated_at"] and first["sort_direction"] == ["ASC"]
    assert first["per_page"] == ["100"]
    assert all(
        "authorization" not in str(e).lower() or "bearer" not in str(e).lower() for e in people_requests
    )


@pytest.fixture(scope="module")
def big_sandbox():
    from sandbox.testing import running_sandbox

    with running_sandbox(sizes={"people": 10_250}) as handle:
        yield handle


def test_deep_sync_moves_the_cursor_instead_of_paging_past_100(big_sandbox, tmp_path):
    big_sandbox.clear_journal()
    run = run_tap(tap_config(big_sandbox), tmp_path, streams=["people"])
    ids = [r["id"] for r in run.records["people"]]
    assert len(ids) == len(set(ids)) == 10_250
    journal = [e for e in big_sandbox.journal() if e["path"].startswith("/v2/people")]
    pages = [int(e["query"].get("page", ["1"])[0]) for e in journal]
    assert max(pages) <= 100, "paged past page 100 (deep pages cost up to 30 points)"
    assert any("updated_at[gt]" in e["query"] for e in journal), "the replication cursor never moved"
    assert all(e["cost"] == 1 for e in journal)
    # state is checkpointed during the stream, not only at its end
    assert len(run.states) >= 5


def test_a_run_resumed_from_a_mid_stream_state_completes_the_stream(big_sandbox, tmp_path):
    full = run_tap(tap_config(big_sandbox), tmp_path, streams=["people"])
    mid = full.states[len(full.states) // 2]
    assert mid["bookmarks"]["people"].get("replication_key_value")
    emitted_before = []
    for message in full.messages:
        if message["type"] == "STATE" and message["value"] == mid:
            break
        if message["type"] == "RECORD":
            emitted_before.append(message["record"]["id"])
    resumed = run_tap(tap_config(big_sandbox), tmp_path, streams=["people"], state=mid)
    union = set(emitted_before) | {r["id"] for r in resumed.records["people"]}
    assert union == {p["id"] for p in big_sandbox.records("people")}
    assert len(resumed.records["people"]) < len(full.records["people"])


def test_bad_credentials_fail_with_a_clear_message_and_no_secret(sandbox, tmp_path):
    run = run_tap(tap_config(sandbox, api_key="wrong-key-987654"), tmp_path, streams=["users"], check=False)
    assert run.returncode == 1
    assert run.stderr.splitlines()[-1] == (
        "tap-salesloft: error: GET /v2/users.json -> 401: Invalid access token"
    )
    assert "wrong-key-987654" not in run.stderr and "Traceback" not in run.stderr


def test_the_connection_test_reads_one_record_of_every_stream_and_fails_in_one_line(sandbox, tmp_path):
    config = write_json(tmp_path / "config.json", tap_config(sandbox))
    passed = subprocess.run(
        [TAP, "--config", str(config), "--test"], capture_output=True, text=True, timeout=300
    )
    assert passed.returncode == 0, passed.stderr[-3000:]
    records = [json.loads(line) for line in passed.stdout.splitlines() if '"RECORD"' in line]
    assert {r["stream"] for r in records} >= set(TOP_LEVEL) - {
        n for n in TOP_LEVEL if not expected_records(sandbox, n)
    }
    assert " ERROR " not in passed.stderr, "a stream stopped on purpose after one record is not an error"
    assert "Connection test passed" in passed.stderr

    refused = write_json(tmp_path / "refused.json", tap_config(sandbox, api_key="wrong-key-135790"))
    failed = subprocess.run(
        [TAP, "--config", str(refused), "--test"], capture_output=True, text=True, timeout=300
    )
    assert failed.returncode == 1
    assert failed.stderr.splitlines()[-1].startswith("tap-salesloft: error: connection test failed: GET /v2/")
    assert failed.stderr.splitlines()[-1].endswith("-> 401: Invalid access token")
    assert "wrong-key-135790" not in failed.stderr and "Traceback" not in failed.stderr


def test_child_stream_reads_each_parents_children_with_the_parent_in_its_template(sandbox, tmp_path):
    sandbox.clear_journal()
    run = run_tap(tap_config(sandbox), tmp_path, streams=["cadences", "cadence_steps"])
    cadences = sandbox.records("cadences")
    steps = run.records["cadence_steps"]
    assert {s["id"] for s in steps} == {s["id"] for s in sandbox.records("steps")}
    assert all(s["cadence"]["id"] in {c["id"] for c in cadences} for s in steps)
    step_requests = [e for e in sandbox.journal() if e["path"].startswith("/v2/steps")]
    assert sorted(int(e["query"]["cadence_id"][0]) for e in step_requests) == sorted(
        c["id"] for c in cadences
    )
    # a child without a bookmark keeps no state per parent (a partition per parent, printed after each one)
    assert not run.states[-1]["bookmarks"].get("cadence_steps", {}).get("partitions")
    assert len(run.states) < len(cadences)
