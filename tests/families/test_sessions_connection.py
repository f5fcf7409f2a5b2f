"""The sessions connection (templates/sessions, YAML only) against the session-login server: a login for a
short-lived token renewed as it expires (or an API key in the query), page numbers stopped by the total, a
child stream whose 403/404 parents are skipped, a header cursor, and batch writes answered per input index."""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
import time

import pytest
from family_support import tap, target

from sandbox.families.sessions import API_KEY, PASSWORD, USERNAME, running_sessions

TTL = 2  # seconds a session lives: a run outlives several
LATENCY = 0.2  # seconds each answer takes, so that a run overlapping its requests still outlives a session


@pytest.fixture(scope="module")
def sessions():
    with running_sessions(size=30, audit_size=2500, token_ttl=TTL, latency=LATENCY) as server:
        yield server


def login_config(server) -> dict:
    return {"base_url": server.url, "username": USERNAME, "password": PASSWORD}


def key_config(server) -> dict:
    return {"base_url": server.url, "api_key": API_KEY}


def last_seq(server) -> int:
    entries = server.journal()
    return entries[-1]["seq"] if entries else 0


def instant(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def readable(project: dict) -> bool:
    return project["status"] != "archived" and project["visibility"] != "restricted"


def http_summary(stderr: str) -> dict:
    return json.loads(re.findall(r"HTTP summary: (\{.*\})", stderr)[-1])


@pytest.fixture(scope="module")
def full_sync(sessions, tmp_path_factory):
    since = last_seq(sessions)
    return tap("sessions", login_config(sessions), tmp_path_factory.mktemp("full")), since


def test_full_sync_equals_the_server_and_skips_forbidden_and_archived_projects(sessions, full_sync):
    run, since = full_sync
    projects = sessions.records("projects")
    assert sorted(r["id"] for r in run.records["projects"]) == [p["id"] for p in projects]
    assert run.records["projects"] == sorted(projects, key=lambda p: p["id"])
    keys = {p["id"]: p["key"] for p in projects}
    expected = [
        {**m, "project_key": keys[m["project_id"]]}
        for m in sessions.records("members")
        if readable(next(p for p in projects if p["id"] == m["project_id"]))
    ]
    assert sorted(run.records["members"], key=lambda m: m["id"]) == sorted(expected, key=lambda m: m["id"])
    assert sorted(r["id"] for r in run.records["audit"]) == sorted(a["id"] for a in sessions.records("audit"))
    journal = sessions.journal(since)
    skipped = {
        int(e["path"].split("/")[4]): e["status"]
        for e in journal
        if e["path"].endswith("/members") and e["status"] != 200
    }
    assert skipped == {
        p["id"]: 404 if p["status"] == "archived" else 403 for p in projects if not readable(p)
    }
    assert skipped, "expected archived and restricted projects in the seeded data"
    by_status = http_summary(run.stderr)["by_status"]  # the skipped children are counted
    assert by_status.get("403", 0) + by_status.get("404", 0) == len(skipped)


def test_project_pages_stop_at_the_total_without_asking_for_an_empty_page(tmp_path):
    with running_sessions(size=200) as server:
        run = tap("sessions", key_config(server), tmp_path, streams=["projects"])
        assert [p["id"] for p in run.records["projects"]] == list(range(1, 201))
        pages = [e["query"] for e in server.journal() if e["path"] == "/api/v1/projects"]
        assert [(q["page"], q["page_size"]) for q in pages] == [(["1"], ["100"]), (["2"], ["100"])]


def test_a_child_stream_without_bookmarks_keeps_no_state_per_parent(full_sync):
    run, _ = full_sync
    # A STATE per parent, each listing every parent read so far, grows as the square of the parents.
    assert len(run.states) < 10
    assert "members" not in run.last_state.get("bookmarks", {}) or not run.last_state["bookmarks"]["members"]
    # The parent's fields reach a member only through the template's add_fields, never injected by name.
    assert "not found in catalog schema" not in run.stderr
    assert all(
        set(m) == {"id", "project_id", "project_key", "email", "role", "added_at"}
        for m in run.records["members"]
    )


def test_the_session_is_renewed_as_it_expires(sessions, full_sync):
    run, since = full_sync
    journal = sessions.journal(since)
    logins = [e for e in journal if e["path"] == "/api/v1/login"]
    data = [e for e in journal if e["path"] != "/api/v1/login"]
    assert len(logins) > 1 and {e["status"] for e in logins} == {200}
    assert journal[-1]["at"] - journal[0]["at"] > TTL  # the run outlived a session
    assert {e["headers"].get("authorization") for e in data} == {"Session ***"}
    assert all("api_key" not in e["query"] for e in data)
    assert {e["status"] for e in data} <= {200, 403, 404}  # renewed in time: no request was refused for it


def test_a_session_that_expires_on_the_server_mid_run_is_renewed_and_the_page_read_again(sessions, tmp_path):
    since = last_seq(sessions)
    done: dict = {}
    worker = threading.Thread(target=lambda: done.update(run=tap("sessions", login_config(sessions), tmp_path, streams=["projects", "members"])))  # fmt: skip
    worker.start()
    deadline = time.monotonic() + 60
    while (
        sum(e["path"].endswith("/members") for e in sessions.journal(since)) < 5
        and time.monotonic() < deadline
    ):
        time.sleep(0.05)
    sessions.advance(TTL + 1)  # the server's clock jumps: the session in use is now expired there
    worker.join(120)
    run = done["run"]
    expected = [m for m in sessions.records("members") if readable(next(p for p in sessions.records("projects") if p["id"] == m["project_id"]))]  # fmt: skip
    assert sorted(m["id"] for m in run.records["members"]) == sorted(m["id"] for m in expected)
    journal = sessions.journal(since)
    # Only the requests in flight when the session expired are refused (max_concurrency: 4 by default
    # without a rate budget); each is read again with a new session.
    refused = [i for i, e in enumerate(journal) if e["status"] == 401]
    assert 1 <= len(refused) <= 4
    assert any(e["path"] == "/api/v1/login" for e in journal[refused[0] :])
    for index in refused:
        again = [e for e in journal[index + 1 :] if e["path"] == journal[index]["path"]]
        assert any(e["query"] == journal[index]["query"] and e["status"] in (200, 403, 404) for e in again)


def test_the_api_key_alternative_goes_in_the_query_and_logs_in_never(sessions, tmp_path):
    since = last_seq(sessions)
    run = tap("sessions", key_config(sessions), tmp_path, streams=["projects", "members"])
    assert len(run.records["projects"]) == len(sessions.records("projects"))
    journal = sessions.journal(since)
    assert journal and all(e["query"].get("api_key") == ["***"] for e in journal)
    assert all("authorization" not in e["headers"] for e in journal)
    # with both configured, the first method of the list (the login) is the one used
    since = last_seq(sessions)
    tap("sessions", {**login_config(sessions), "api_key": API_KEY}, tmp_path, streams=["projects"])
    journal = sessions.journal(since)
    assert journal[0]["path"] == "/api/v1/login" and all("api_key" not in e["query"] for e in journal)


def test_an_audit_run_resumed_from_every_state_it_printed_loses_nothing(sessions, full_sync, tmp_path):
    run, _ = full_sync
    positions = [i for i, (s, _) in enumerate(run.order) if s == "audit"]
    mid_stream = [(n, s) for n, s in run.states if positions[0] < n <= positions[-1]]
    assert len(mid_stream) >= 2, "expected STATEs during the 2,500 audit entries"
    at = {r["id"]: instant(r["at"]) for s, r in run.order if s == "audit"}
    for emitted, state in mid_stream:
        bookmark = instant(state["bookmarks"]["audit"]["replication_key_value"])
        before = {r["id"] for i, (s, r) in enumerate(run.order) if s == "audit" and i < emitted}
        resumed = tap("sessions", key_config(sessions), tmp_path, streams=["audit"], state=state).records[
            "audit"
        ]
        ids = [r["id"] for r in resumed]
        assert len(ids) == len(set(ids)) and before | set(ids) == set(at)  # nothing lost, nothing twice
        # since is exclusive: the resumed run reads what is after the bookmark, a value read completely before
        assert set(ids) == {i for i, moment in at.items() if moment > bookmark}
        assert {i for i, moment in at.items() if moment <= bookmark} <= before


def test_an_incremental_audit_run_sends_the_bookmark_as_since(sessions, full_sync, tmp_path):
    first, _ = full_sync
    sessions.advance(5)
    added = sessions.touch("audit", 3)
    since = last_seq(sessions)
    second = tap("sessions", key_config(sessions), tmp_path, streams=["audit"], state=first.last_state)
    assert sorted(r["id"] for r in second.records["audit"]) == sorted(a["id"] for a in added)
    (page,) = [e for e in sessions.journal(since) if e["path"] == "/api/v1/audit"]
    assert page["query"]["since"] == [first.bookmark("audit")] and page["query"]["limit"] == ["200"]


SCHEMA = {"type": "object", "properties": {"project_id": {"type": "integer"}, "email": {"type": ["string", "null"]},
          "role": {"type": ["string", "null"]}}}  # fmt: skip


def test_member_batches_give_each_record_its_own_outcome(sessions, tmp_path):
    projects = sessions.records("projects")
    members = sessions.records("members")
    open_ids = [
        p["id"] for p in projects if readable(p) and any(m["project_id"] == p["id"] for m in members)
    ][:2]
    closed = next(p for p in projects if p["visibility"] == "restricted" and p["status"] != "archived")
    current = next(m for m in members if m["project_id"] == open_ids[0])
    records = [
        {"project_id": open_ids[i % 2], "email": f"new{i}@example.com", "role": "editor"} for i in range(60)
    ]
    records[3] = {"project_id": open_ids[1], "email": "not-an-email", "role": "viewer"}
    records[10] = {"project_id": open_ids[0], "email": "role@example.com", "role": "owner"}
    records[20] = {"project_id": open_ids[0], "email": current["email"], "role": "viewer"}
    records[21] = {"project_id": open_ids[1], "email": None}
    records.append({"project_id": closed["id"], "email": "blocked@example.com"})
    since = last_seq(sessions)
    cfg = {**login_config(sessions), "stream_sinks": {"people": "add_members"}}
    run = target("sessions", cfg, tmp_path, "people", records, SCHEMA)
    assert run.returncode == 0, run.stderr[-2000:]
    rejected = {r["record"]["email"]: r for r in run.rejected}
    assert set(rejected) == {
        "not-an-email",
        "role@example.com",
        current["email"],
        None,
        "blocked@example.com",
    }
    assert rejected["not-an-email"]["error"] == "'not-an-email' is not an email address"
    assert rejected["role@example.com"]["error"] == "role must be one of viewer, editor, admin (got 'owner')"
    assert "is already a member" in rejected[current["email"]]["error"]
    assert rejected[None]["error"] == "email is required"
    assert (
        rejected["blocked@example.com"]["status"] == 403
        and "forbidden" in rejected["blocked@example.com"]["error"]
    )
    members = {(m["project_id"], m["email"]): m for m in sessions.records("members")}
    good = [r for r in records if r["email"] and r["email"].startswith("new")]
    assert all(members[(r["project_id"], r["email"])]["role"] == "editor" for r in good)
    posts = [e for e in sessions.journal(since) if e["path"].endswith("/members/batch")]
    assert sorted(len(e["body"]["members"]) for e in posts) == [1, 30, 30]  # one request per project
    (first,) = [e for e in posts if e["path"] == f"/api/v1/projects/{open_ids[0]}/members/batch"]
    assert first["body"]["members"][0] == {"email": "new0@example.com", "role": "editor"}


def test_a_state_inside_entries_of_one_instant_written_in_different_offsets_loses_none(tmp_path):
    # 990 seeded entries, then 30 logged at one instant, each written in one of six offsets: the STATE printed
    # after the 1,000th record falls inside that instant, whose entries look like different values as text.
    with running_sessions(size=5, audit_size=990) as server:
        tied = server.touch("audit", 30)
        assert len({e["at"] for e in tied}) > 1 and len({instant(e["at"]) for e in tied}) == 1
        first = tap("sessions", key_config(server), tmp_path, streams=["audit"])
        (emitted, state), *_ = [(n, s) for n, s in first.states if 0 < n < len(first.order)]
        assert emitted == 1000
        before = {r["id"] for _, r in first.order[:emitted]}
        resumed = tap("sessions", key_config(server), tmp_path, streams=["audit"], state=state)
        assert before | {r["id"] for r in resumed.records.get("audit", [])} == {
            a["id"] for a in server.records("audit")
        }
