"""The crm connection (templates/crm, YAML only) against the HubSpot-style server: reads through POST search
with the paging token in the body, restarted before the result cap and paced under the search rate; batch
upserts and creates whose 207 answers give each record its own outcome."""

from __future__ import annotations

import datetime as dt

import pytest
from family_support import tap, target

from sandbox.families.crm import TOKEN, running_crm

STREAMS = ["contacts", "companies"]
CAP = 1000  # the server's search cap, lowered so that a test needs only a few thousand records to pass it


@pytest.fixture(scope="module")
def crm():
    with running_crm(size=3000, search_cap=CAP) as server:
        yield server


def config(server) -> dict:
    return {"base_url": server.url, "access_token": TOKEN}


def epoch_ms(iso: str) -> int:
    return int(dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


def searches(server, since: int, stream: str) -> list[dict]:
    return [e for e in server.journal(since) if e["path"] == f"/crm/v3/objects/{stream}/search"]


def last_seq(server) -> int:
    entries = server.journal()
    return entries[-1]["seq"] if entries else 0


@pytest.fixture(scope="module")
def full_sync(crm, tmp_path_factory):
    """One sync of every stream, shared by the tests that only read it."""
    since = last_seq(crm)
    return tap("crm", config(crm), tmp_path_factory.mktemp("full")), since


def test_full_sync_reads_past_the_search_cap_once_each_without_a_429(crm, full_sync):
    run, since = full_sync
    for stream in STREAMS:
        truth = {r["id"]: r for r in crm.records(stream)}
        rows = run.records[stream]
        assert len(truth) > CAP, stream  # more than one search may page through
        assert sorted(r["id"] for r in rows) == sorted(truth), stream  # every record exactly once
        for row in rows:  # every property, as the server holds it, and the computed bookmark field
            assert {k: v for k, v in row.items() if k != "hs_lastmodifieddate"} == truth[row["id"]]
            assert row["hs_lastmodifieddate"] == row["properties"]["hs_lastmodifieddate"]
        newest = max(truth.values(), key=lambda r: epoch_ms(r["properties"]["hs_lastmodifieddate"]))
        assert run.bookmark(stream) == newest["properties"]["hs_lastmodifieddate"], stream
        sent = searches(crm, since, stream)
        assert {e["status"] for e in sent} == {200}  # paced under 5 searches a second: no 429
        assert all(int(e["body"].get("after", 0)) < CAP for e in sent)  # never asked past the cap
        starts = [e["body"]["filterGroups"][0]["filters"][0] for e in sent if "after" not in e["body"]]
        assert len(starts) >= 2 and starts[0]["value"] == 0, stream  # restarted from a modification time
        assert all(f["operator"] == "GT" for f in starts)
        values = [a["value"] for a in starts]
        if values[0] == values[1]:  # a first page sent ahead of the stream's turn, read again with the rest
            values = values[1:]
        assert values == sorted(set(values))  # always forward
        assert all(e["body"]["limit"] == 100 for e in sent)
        assert sent[0]["body"]["sorts"] == [{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}]
        assert sent[-1]["at"] - sent[0]["at"] >= 0.9 * (len(sent) - 1) / 4  # 4 a second at most


def test_a_run_resumed_from_every_state_it_printed_loses_nothing(crm, full_sync, tmp_path):
    run, _ = full_sync
    contacts = [(i, r) for i, (stream, r) in enumerate(run.order) if stream == "contacts"]
    first, last = contacts[0][0], contacts[-1][0]
    mid_stream = [(n, s) for n, s in run.states if first < n <= last]
    assert len(mid_stream) >= 2, "expected STATEs during the 3,000 contacts"
    changed = {r["id"]: r["properties"]["hs_lastmodifieddate"] for _, r in contacts}
    for emitted, state in mid_stream:
        bookmark = epoch_ms(state["bookmarks"]["contacts"]["replication_key_value"])
        before = {r["id"] for i, r in contacts if i < emitted}
        resumed = tap("crm", config(crm), tmp_path, streams=["contacts"], state=state).records["contacts"]
        resumed_ids = [r["id"] for r in resumed]
        assert len(resumed_ids) == len(set(resumed_ids))
        assert before | set(resumed_ids) == set(changed)  # nothing lost
        # the resumed run starts after the bookmark: a value whose every record was emitted before the STATE
        assert set(resumed_ids) == {i for i, at in changed.items() if epoch_ms(at) > bookmark}
        assert {i for i, at in changed.items() if epoch_ms(at) <= bookmark} <= before


def test_an_incremental_run_reads_only_what_changed_after_the_bookmark(crm, tmp_path):
    first = tap("crm", config(crm), tmp_path, streams=["companies"])
    crm.advance(5)
    touched = crm.touch("companies", 4)
    since = last_seq(crm)
    second = tap("crm", config(crm), tmp_path, streams=["companies"], state=first.last_state)
    assert sorted(r["id"] for r in second.records["companies"]) == sorted(r["id"] for r in touched)
    assert second.bookmark("companies") == touched[0]["properties"]["hs_lastmodifieddate"]
    sent = searches(crm, since, "companies")
    assert sent[0]["body"]["filterGroups"][0]["filters"][0]["value"] == epoch_ms(first.bookmark("companies"))


SCHEMA = {"type": "object", "properties": {n: {"type": ["string", "null"]} for n in
          ("id", "email", "firstname", "lastname", "lifecyclestage", "city")}}  # fmt: skip


def test_a_batch_upsert_gives_each_record_its_own_outcome(crm, tmp_path):
    existing = crm.records("contacts")[0]
    good = [
        {"email": f"upsert.{i}@example.org", "firstname": f"U{i}", "lifecyclestage": "lead"}
        for i in range(120)
    ]
    good.append({"email": existing["properties"]["email"].upper(), "city": "Lisbon"})  # an update, by email
    bad = [
        {"email": "upsert.bad.1@example.org", "lifecyclestage": "not-a-stage"},
        {"email": "not an email", "firstname": "X"},
        {"email": "upsert.bad.2@example.org", "hs_lastmodifieddate": "2020-01-01T00:00:00Z", "city": "Oslo"},
    ]
    records = good[:50] + bad[:2] + good[50:] + bad[2:]
    since = last_seq(crm)
    cfg = {**config(crm), "stream_sinks": {"people": "upsert_contacts"}}
    run = target("crm", cfg, tmp_path, "people", records, SCHEMA)
    assert run.returncode == 0, run.stderr[-2000:]
    rejected = {r["record"]["email"]: r for r in run.rejected}
    assert set(rejected) == {"upsert.bad.1@example.org", "not an email"}  # the read-only field is excluded
    assert "INVALID_OPTION" in rejected["upsert.bad.1@example.org"]["error"]
    assert "not an email is invalid" in rejected["not an email"]["error"]
    assert all(r["status"] == 207 for r in rejected.values())
    by_email = {(r["properties"]["email"] or "").lower(): r for r in crm.records("contacts")}
    for record in good + [bad[2]]:
        assert record["email"].lower() in by_email, record
    assert by_email["upsert.7@example.org"]["properties"]["firstname"] == "U7"
    assert (
        by_email[existing["properties"]["email"].lower()]["id"] == existing["id"]
    )  # updated, not duplicated
    assert by_email[existing["properties"]["email"].lower()]["properties"]["city"] == "Lisbon"
    assert by_email["upsert.bad.2@example.org"]["properties"]["city"] == "Oslo"
    posts = [e for e in crm.journal(since) if e["path"].endswith("/batch/upsert")]
    assert [len(e["body"]["inputs"]) for e in posts] == [100, 24]
    first = posts[0]["body"]["inputs"][0]
    assert first == {"idProperty": "email", "id": "upsert.0@example.org",
                     "properties": {"email": "upsert.0@example.org", "firstname": "U0", "lifecyclestage": "lead"}}  # fmt: skip


def test_a_batch_create_matches_errors_by_trace_id(crm, tmp_path):
    taken = crm.records("contacts")[1]["properties"]["email"]
    records = [{"email": f"create.{i}@example.org", "lastname": f"C{i}"} for i in range(5)]
    records.insert(2, {"email": taken, "lastname": "Dup"})
    records.insert(4, {"email": "create.bad@example.org", "lifecyclestage": "nope"})
    since = last_seq(crm)
    cfg = {**config(crm), "stream_sinks": {"people": "create_contacts"}}
    run = target("crm", cfg, tmp_path, "people", records, SCHEMA)
    assert run.returncode == 0, run.stderr[-2000:]
    rejected = {r["record"]["email"]: r["error"] for r in run.rejected}
    assert set(rejected) == {taken, "create.bad@example.org"}
    assert "already exists" in rejected[taken] and "INVALID_OPTION" in rejected["create.bad@example.org"]
    emails = [r["properties"]["email"] for r in crm.records("contacts")]
    assert all(emails.count(f"create.{i}@example.org") == 1 for i in range(5))
    assert emails.count(taken) == 1
    (post,) = [e for e in crm.journal(since) if e["path"].endswith("/batch/create")]
    assert [i["objectWriteTraceId"] for i in post["body"]["inputs"]] == [r["email"] for r in records]


def test_a_batch_whose_every_input_is_invalid_rejects_each_with_its_own_message(crm, tmp_path):
    records = [{"email": "all.bad@example.org", "lifecyclestage": "nope"}, {"email": "still not an email"}]
    cfg = {**config(crm), "stream_sinks": {"people": "upsert_contacts"}}
    run = target("crm", cfg, tmp_path, "people", records, SCHEMA)
    assert run.returncode == 0, run.stderr[-2000:]
    rejected = {r["record"]["email"]: r for r in run.rejected}
    assert {r["status"] for r in rejected.values()} == {400}  # HubSpot answers 400 when no input was valid
    assert "INVALID_OPTION" in rejected["all.bad@example.org"]["error"]
    assert "still not an email is invalid" in rejected["still not an email"]["error"]
