"""Injected faults (5xx, 429 bursts, dropped connections, slow and truncated answers) change nothing a user gets.

A tap sync under faults emits exactly the records of a clean sync; a target run under faults gives every
record an outcome, creates nothing twice through its upsert sinks and rejects no record for a transient
fault alone. Faults are drawn by the sandbox from fixed seeds; every kind must actually have been injected.
"""

from __future__ import annotations

import json

import pytest
from helpers import run_tap, run_target, tap_config
from reliability_support import FAULT_KINDS, as_lines, by_key, fault_spec, faults_injected, logged_json, singer_messages

from connector.templates import load_bundled

CONNECTION = load_bundled("salesloft")
STREAMS = ["people", "accounts", "cadences", "notes", "tasks", "bulk_jobs", "bulk_job_results"]
SIZES = {"people": 12_000, "accounts": 3_000, "notes": 2_000, "tasks": 2_000}

# Faults at a few percent of requests; a slow answer (1.2 s) outlasts the 1 s request timeout.
TAP_FAULTS = fault_spec(rate=0.06, seed=11)
TARGET_FAULTS = fault_spec(rate=0.05, seed=3)
FAST_RETRIES = {"request_timeout": 1.0, "max_backoff_seconds": 0.5, "rate_window_seconds": 1}


@pytest.fixture(scope="module")
def sb():
    from sandbox.testing import running_sandbox

    with running_sandbox(sizes=SIZES, time_scale=60, bulk_latency=0.05) as handle:
        yield handle


def test_a_sync_under_faults_emits_exactly_the_records_of_a_clean_sync(sb, tmp_path, figures):
    sb.configure(faults="rate=0")
    clean = run_tap(tap_config(sb), tmp_path, streams=STREAMS)
    sb.clear_journal()
    sb.configure(faults=TAP_FAULTS)
    try:
        faulty = run_tap(tap_config(sb, **FAST_RETRIES), tmp_path, streams=STREAMS, check=False)
    finally:
        sb.configure(faults="rate=0")
    journal = sb.journal()
    injected = faults_injected(journal)
    assert faulty.returncode == 0, faulty.stderr[-3000:]
    assert set(injected) == set(FAULT_KINDS), f"the seed must exercise every kind of fault, got {injected}"

    compared = lost = 0
    for stream in STREAMS:
        key = tuple(CONNECTION.streams[stream].primary_key)
        expected = by_key(clean.records.get(stream, []), key)
        got = by_key(faulty.records.get(stream, []), key)
        assert expected, f"the clean sync read no {stream}"
        lost += len(set(expected) - set(got))
        assert set(got) == set(expected), f"{stream}: {len(set(expected) - set(got))} missing, " \
                                          f"{len(set(got) - set(expected))} unexpected"
        assert got == expected, f"{stream}: record content differs from the clean sync"
        compared += len(expected)
    assert faulty.states[-1] == clean.states[-1], "a resumed run would not start where a clean one would"

    summary = logged_json(faulty.stderr, "HTTP summary: ")
    failed = sum(1 for e in journal if e["fault"] or e["status"] != 200)
    assert summary["retries"] >= failed, (summary, injected)
    assert summary["throttled"] == sum(1 for e in journal if e["status"] == 429)
    figures(requests=len(journal), faults=injected, records_compared=compared, records_lost=lost,
            retries=summary["retries"], throttled=summary["throttled"],
            paced_wait_seconds=summary["paced_wait_seconds"])


def _people(prefix: str, count: int) -> list[dict]:
    return [{"email_address": f"{prefix}{i}@faults.example", "first_name": f"First{i}", "last_name": f"Last {prefix}"}
            for i in range(count)]


def test_a_target_run_under_faults_accounts_for_every_record_and_creates_nothing_twice(sb, tmp_path, figures):
    accounts = [{"name": f"Fault Co {i}", "domain": f"fault-{i}.example", "industry": "Testing"} for i in range(300)]
    bad_accounts = [{"domain": f"no-name-{i}.example"} for i in range(5)]  # 422: name can't be blank
    people = _people("upsert.", 300)
    bad_people = [{"email_address": f"upsert-not-an-email-{i}", "last_name": "Bad"} for i in range(5)]
    bulk = _people("bulk.", 1_000)
    bad_bulk = [{"email_address": f"bulk-not-an-email-{i}", "last_name": "Bad"} for i in range(5)]
    messages = [
        *singer_messages("accounts", accounts[:150] + bad_accounts + accounts[150:], ["domain"]),
        *singer_messages("people", people[:100] + bad_people + people[100:], ["email_address"]),
        *singer_messages("bulk_people", bulk[:500] + bad_bulk + bulk[500:], ["email_address"]),
        {"type": "STATE", "value": {"bookmarks": {"everything": {"sent": True}}}},
    ]
    inputs = sum(1 for m in messages if m["type"] == "RECORD")
    config = {**tap_config(sb, **FAST_RETRIES),
              "stream_sinks": {"accounts": "upsert_account", "people": "upsert_person",
                               "bulk_people": "bulk_upsert_people"}}
    sb.clear_journal()
    sb.configure(faults=TARGET_FAULTS)
    try:
        run = run_target(config, tmp_path, as_lines(messages))
    finally:
        sb.configure(faults="rate=0")
    journal = sb.journal()
    injected = faults_injected(journal)
    assert run.returncode == 0, run.stderr[-3000:]
    assert set(injected) == set(FAULT_KINDS), f"the seed must exercise every kind of fault, got {injected}"

    summary = logged_json(run.stderr, "Target summary: ")
    assert summary["accepted"] + summary["rejected"] == inputs == len(run.rejected) + summary["accepted"]
    # Only the records the API refused on their merits are rejected: never for a 5xx, a 429 or the network.
    rejected = {r["record"].get("email_address") or r["record"].get("domain"): r for r in run.rejected}
    invalid = {r.get("email_address") or r.get("domain") for r in bad_accounts + bad_people + bad_bulk}
    assert set(rejected) == invalid, [(r["reason"], r["status"], r["error"]) for r in run.rejected]
    for row in rejected.values():
        assert row["reason"] == "api" and row["status"] in (422, None), row
        assert "email_address" in row["error"] or "name" in row["error"], row

    accounts_now = [a for a in sb.records("accounts") if a["domain"].startswith(("fault-", "no-name-"))]
    assert sorted(a["domain"] for a in accounts_now) == sorted(a["domain"] for a in accounts), "duplicate or lost"
    names = {a["domain"]: a["name"] for a in accounts_now}
    assert names == {a["domain"]: a["name"] for a in accounts}
    people_now = [p for p in sb.records("people") if p["email_address"].lower().endswith("@faults.example")]
    emails = sorted(p["email_address"].lower() for p in people_now)
    assert emails == sorted(p["email_address"] for p in people + bulk), "a person was created twice or lost"
    sent = {p["email_address"]: (p["first_name"], p["last_name"]) for p in people + bulk}
    assert {p["email_address"]: (p["first_name"], p["last_name"]) for p in people_now} == sent
    assert run.states == [messages[-1]["value"]]
    figures(requests=len(journal), faults=injected, records_in=inputs, accepted=summary["accepted"],
            rejected_invalid=summary["rejected"], records_lost=len(sent) + len(accounts) - len(people_now)
            - len(accounts_now), retries=summary["http"]["retries"], throttled=summary["http"]["throttled"],
            bulk_job_data_posts=sum(1 for e in journal if e["path"].endswith("/job_data")),
            paced_wait_seconds=summary["http"]["paced_wait_seconds"])
    assert json.dumps(run.rejected).count(sb.api_key) == 0
