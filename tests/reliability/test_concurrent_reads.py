"""Reads with many requests in flight give what a one-at-a-time read gives: the same records, each once, the
same final STATE, Singer order kept (one stream at a time), every STATE a safe resume point, and no 429
brought on by the engine's own pacing. The sandbox answers after a latency (with jitter, so answers come
back out of order) and injects faults."""

from __future__ import annotations

import json
import time
from collections import Counter

import pytest
from helpers import run_tap, settle, tap_config
from reliability_support import by_key, fault_spec, faults, faults_injected, records_of, start_tap

SIZES = {"people": 15_000, "accounts": 1_500, "cadences": 40, "notes": 500}
SCALED = {"rate_window_seconds": 1}  # the sandbox's minute lasts one second (time_scale 60)


@pytest.fixture(scope="module")
def sb():
    from sandbox.testing import running_sandbox

    with running_sandbox(sizes=SIZES, time_scale=60, latency=0.02, latency_jitter=0.03) as handle:
        yield handle


def stream_runs(messages: list[dict]) -> list[str]:
    """The streams of the RECORD messages in output order, each run of one stream once."""
    runs: list[str] = []
    for message in messages:
        if message["type"] == "RECORD" and (not runs or runs[-1] != message["stream"]):
            runs.append(message["stream"])
    return runs


def read_both(sb, tmp_path, state: dict | None = None) -> dict:
    """The same sync with the default settings and one request at a time: runs, peaks and request counts."""
    runs = {}
    for name, extra in (("concurrent", {}), ("sequential", {"max_concurrency": 1})):
        folder = tmp_path / name
        folder.mkdir(parents=True)
        sb.clear_journal()
        run = run_tap(tap_config(sb, **SCALED, **extra), folder, state=state)
        runs[name] = (run, sb.stats()["peak_in_flight"], len(sb.journal()))
    return runs


def assert_same_output(concurrent, sequential) -> None:
    assert set(concurrent.records) == set(sequential.records)
    for stream, records in sequential.records.items():
        got = concurrent.records[stream]
        assert Counter(json.dumps(r, sort_keys=True) for r in got) == Counter(
            json.dumps(r, sort_keys=True) for r in records
        ), stream
    assert concurrent.states[-1] == sequential.states[-1]
    # One stream at a time in both, children right after their parent's records, in the same order.
    assert stream_runs(concurrent.messages) == stream_runs(sequential.messages)


def test_a_concurrent_sync_emits_what_a_one_at_a_time_sync_emits(sb, tmp_path):
    runs = read_both(sb, tmp_path / "full")
    (concurrent, peak, requests), (sequential, one, one_at_a_time) = runs["concurrent"], runs["sequential"]
    assert one == 1
    assert peak > 4, "the default settings should overlap requests"
    assert_same_output(concurrent, sequential)
    # What overlapping costs: at most a first page read again per stream of several pages.
    multi_page = sum(1 for records in sequential.records.values() if len(records) > 100)
    assert one_at_a_time <= requests <= one_at_a_time + multi_page

    # From the state it printed, with some records changed: the reads sent early start at the bookmarks.
    sb.touch("people", count=30)
    sb.touch("accounts", count=5)
    settle()  # the next read's range ends at the API's present: past these edits
    runs = read_both(sb, tmp_path / "incremental", state=sequential.states[-1])
    (concurrent, _, requests), (sequential, _, one_at_a_time) = runs["concurrent"], runs["sequential"]
    assert len(sequential.records["people"]) >= 30
    assert_same_output(concurrent, sequential)
    assert one_at_a_time <= requests <= one_at_a_time + multi_page


def test_a_concurrent_read_under_faults_misses_nothing_from_any_state_it_printed(sb, tmp_path):
    config = tap_config(sb, **SCALED, request_timeout=1.0, max_backoff_seconds=0.3)
    with faults(sb, fault_spec(rate=0.06, seed=5)):
        sb.clear_journal()
        full = run_tap(config, tmp_path, streams=["people"])
        injected = faults_injected(sb.journal())
    assert sum(injected.values()) >= 5, injected
    expected = by_key(sb.records("people"))
    assert by_key(full.records["people"]) == expected  # each once, as the API has them

    # Resume from STATEs printed a quarter, half and three quarters into the output.
    positions = [i for i, m in enumerate(full.messages) if m["type"] == "STATE"]
    assert len(positions) >= 8, "too few STATE messages to resume from"
    for share in (0.25, 0.5, 0.75):
        at = positions[int(len(positions) * share)]
        before = [m["record"] for m in full.messages[:at] if m["type"] == "RECORD"]
        folder = tmp_path / f"resume-{share}"
        folder.mkdir()
        state = full.messages[at]["value"]
        resumed = run_tap(config, folder, streams=["people"], state=state).records.get("people", [])
        union = {**by_key(before), **by_key(resumed)}
        assert union == expected, f"resuming from the STATE at message {at} lost records"


def test_overlapping_requests_never_overdraw_the_rate_budget(tmp_path):
    from sandbox.testing import running_sandbox

    budget = 20  # points per one-second window: 5,000 people (51 requests) take three windows and more
    with running_sandbox(
        sizes={"people": 5_000}, budget=budget, time_scale=60, latency=0.02, latency_jitter=0.02
    ) as sb:
        sb.configure(budget=budget)
        run = run_tap(tap_config(sb, **SCALED), tmp_path, streams=["people"])
        journal = sb.journal()
        peak = sb.stats()["peak_in_flight"]
    assert len(run.records["people"]) == 5_000
    statuses = Counter(e["status"] for e in journal)
    assert statuses[429] == 0, statuses
    per_window = Counter()
    for entry in journal:
        per_window[entry["window"]] += int(entry.get("cost") or 0)
    assert max(per_window.values()) <= budget
    assert len(per_window) >= 2 and peak > 1


def test_people_edited_and_deleted_during_a_read_leave_no_record_unread(tmp_path):
    """Other users edit and delete people on pages already read while the tap reads on. Each edit or delete
    moves every later person up one place, so without a check the first person of the next page would land
    on a page already read. Every person that was there throughout comes out, each once."""
    import httpx

    from sandbox.testing import running_sandbox

    budget = 20  # points per one-second window: 6,000 people (61 requests) take three seconds and more
    with running_sandbox(
        sizes={"people": 6_000}, budget=budget, time_scale=60, latency=0.02, latency_jitter=0.02
    ) as sb:
        sb.configure(budget=budget)
        before = {p["id"] for p in sb.records("people")}
        tap = start_tap(tap_config(sb, **SCALED), tmp_path, streams=["people"])
        tap.read_until(lambda lines: len(records_of(lines, "people")) >= 1_500)
        read = [r["id"] for r in records_of(tap.lines, "people")]
        edited, deleted = read[100:1000:45], read[50:1000:190]
        sb.touch("people", ids=edited)
        for person in deleted:
            for _ in range(50):  # the deletes share the tap's rate budget: wait out a 429
                answer = httpx.delete(
                    f"{sb.url}/v2/people/{person}", headers={"Authorization": f"Bearer {sb.api_key}"}
                )
                if answer.status_code != 429:
                    break
                time.sleep(0.1)
            assert answer.status_code == 204, answer.text
        assert tap.wait(timeout=120) == 0, tap.stderr[-3000:]
    got = Counter(r["id"] for r in records_of(tap.lines, "people"))
    assert set(got) == before, f"{len(before - set(got))} people never came out"
    assert max(got.values()) == 1, "a person came out twice"
    assert "the list changed while it was read" in tap.stderr
