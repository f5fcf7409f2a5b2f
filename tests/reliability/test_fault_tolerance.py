"""Injected faults (5xx, 429 bursts, dropped connections, slow and truncated answers) change nothing a user gets.

A tap sync under faults emits exactly the records of a clean sync; a target run under faults gives every
record an outcome, creates nothing twice through its upsert sinks and rejects no record for a transient
fault alone. Faults are drawn by the sandbox from fixed seeds; every kind must actually have been injected.
"""

from __future__ import annotations

import json

import pytest
from helpers import logged_json, run_tap, run_target, tap_config
from reliability_support import (
    FAULT_KINDS,
    as_lines,
    by_key,
    fault_spec,
    faults,
    faults_injected,
    singer_messages,
)

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
    clean = run_tap(tap_config(sb, rate_window_seconds=1), tmp_path, streams=STREAMS)
    with faults(sb, TAP_FAULTS):
        faulty = run_tap(tap_config(sb, **FAST_RETRIES), tmp_path, streams=STREAMS, check=False)
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
        assert set(got) == set(expected), (
            f"{stream}: {len(set(expected) - set(got))} missing, {len(set(got) - set(expected))} unexpected"
        )
        assert got == expected, f"{stream}: record content differs from the clean sync"
        compared += len(expected)
    assert faulty.states[-1] == clean.states[-1], "a resumed run would not start where a clean one would"

    summary = logged_json(faulty.stderr, "HTTP summary: ")
    assert summary["throttled"] == injected["429"]
    figures(
        requests=len(journal),
        faults=injected,
        records_compared=compared,
        records_lost=lost,
        retries=summary["retries"],
        throttled=summary["throttled"],
        paced_wait_seconds=summary["paced_wait_seconds"],
    )


def _people(prefix: str, count: int) -> list[dict]:
    return [
        {
            "email_address": f"{prefix}{i}@faults.example",
            "first_name": f"First{i}",
            "last_name": f"Last {prefix}",
        }
        for i in range(count)
    ]


def test_a_target_run_under_faults_accounts_for_every_record_and_creates_nothing_twice(sb, tmp_path, figures):
    accounts = [
        {"name": f"Fault Co {i}", "domain": f"fault-{i}.example", "industry": "Testing"} for i in range(300)
    ]
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
    config = {
        **tap_config(sb, **FAST_RETRIES),
        "stream_sinks": {
            "accounts": "upsert_account",
            "people": "upsert_person",
            "bulk_people": "bulk_upsert_people",
        },
    }
    with faults(sb, TARGET_FAULTS):
        run = run_target(config, tmp_path, as_lines(messages))
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
    assert sorted(a["domain"] for a in accounts_now) == sorted(a["domain"] for a in accounts), (
        "duplicate or lost"
    )
    names = {a["domain"]: a["name"] for a in accounts_now}
    assert names == {a["domain"]: a["name"] for a in accounts}
    people_now = [p for p in sb.records("people") if p["email_address"].lower().endswith("@faults.example")]
    emails = sorted(p["email_address"].lower() for p in people_now)
    assert emails == sorted(p["email_address"] for p in people + bulk), "a person was created twice or lost"
    sent = {p["email_address"]: (p["first_name"], p["last_name"]) for p in people + bulk}
    assert {p["email_address"]: (p["first_name"], p["last_name"]) for p in people_now} == sent
    assert run.states == [messages[-1]["value"]]
    figures(
        requests=len(journal),
        faults=injected,
        records_in=inputs,
        accepted=summary["accepted"],
        rejected_invalid=summary["rejected"],
        records_lost=len(sent) + len(accounts) - len(people_now) - len(accounts_now),
        retries=summary["http"]["retries"],
        throttled=summary["http"]["throttled"],
        bulk_job_data_posts=sum(1 for e in journal if e["path"].endswith("/job_data")),
        paced_wait_seconds=summary["http"]["paced_wait_seconds"],
    )
    assert json.dumps(run.rejected).count(sb.api_key) == 0


# The bulk flow makes about ten requests (create, three uploads, start, polls, failed results): faults at 30%
# so that, with this seed, an upload and the start are answered with a cut body after the API applied them.
BULK_FAULTS = fault_spec(rate=0.3, seed=10)


def test_a_bulk_job_under_faults_maps_every_record_to_its_real_outcome(sb, tmp_path, figures):
    people = _people("bulkjob.", 12_000)
    bad = {
        i: {"email_address": f"bulkjob-not-an-email-{i}", "last_name": "Bad"} for i in range(0, 12_000, 1_000)
    }
    for i, record in bad.items():
        people[i] = record
    config = {**tap_config(sb, **FAST_RETRIES), "sink": "bulk_upsert_people"}
    with faults(sb, BULK_FAULTS):
        run = run_target(config, tmp_path, as_lines(singer_messages("people", people, ["email_address"])))
    journal = sb.journal()
    assert run.returncode == 0, run.stderr[-3000:]
    hit = {
        (e["method"], "job_data" if e["path"].endswith("/job_data") else "job", e["fault"])
        for e in journal
        if e["fault"]
    }
    assert {("POST", "job_data", "truncate"), ("PUT", "job", "truncate")} <= hit, hit

    summary = logged_json(run.stderr, "Target summary: ")
    assert summary["accepted"] + summary["rejected"] == len(people)
    # Only the invalid records are rejected, with the API's reason: a start the API applied but whose answer
    # was lost is not a reason to hand 12,000 applied records back as failed.
    assert sorted(r["record"]["email_address"] for r in run.rejected) == sorted(
        r["email_address"] for r in bad.values()
    )
    assert all(r["reason"] == "api" and "email_address" in r["error"] for r in run.rejected), run.rejected[:2]
    good = sorted(p["email_address"] for i, p in enumerate(people) if i not in bad)
    now = sorted(
        p["email_address"].lower() for p in sb.records("people") if p["email_address"].startswith("bulkjob.")
    )
    assert now == good, "a person was created twice or lost"
    figures(
        requests=len(journal),
        faults=faults_injected(journal),
        records_in=len(people),
        accepted=summary["accepted"],
        rejected_invalid=summary["rejected"],
        records_lost=len(good) - len(now),
    )


def test_the_summary_counts_every_request_the_api_saw(sb, tmp_path, figures):
    with faults(sb, fault_spec(rate=0.1, seed=5, kinds=["reset", "truncate"])):
        run = run_tap(tap_config(sb, **FAST_RETRIES), tmp_path, streams=["people"])
    journal = sb.journal()
    injected = faults_injected(journal)
    summary = logged_json(run.stderr, "HTTP summary: ")
    figures(
        requests=len(journal),
        reported_requests=summary["requests"],
        faults=injected,
        reported_transport_errors=summary["transport_errors"],
    )
    assert injected.get("reset") and injected.get("truncate"), injected
    assert summary["requests"] == len(journal)
    assert summary["transport_errors"] == summary["retries"] == sum(injected.values())
    assert summary["cost"] == sum(
        e["cost"] for e in journal if e["fault"] is None
    )  # cut answers carry no cost
