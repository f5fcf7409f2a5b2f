"""The export connection (templates/export, YAML only) against the Zendesk/Mixpanel-style export server:
tickets by epoch-second start_time with inclusive next pages ended by end_of_stream; events as JSON lines by
whole days in 31-day windows, with a two-day lookback for events that arrive late."""

from __future__ import annotations

import datetime as dt

import pytest
from family_support import tap

from sandbox.families.export import EMAIL, TOKEN, running_export

START = "2026-01-01T00:00:00Z"  # before everything the server holds


@pytest.fixture(scope="module")
def export():
    with running_export(size=2500, per_page=200, events_per_day=40, days=60) as server:
        yield server


def config(server) -> dict:
    return {"base_url": server.url, "email": EMAIL, "api_token": TOKEN, "start_date": START}


def insert_id(event: dict) -> str:
    return event["properties"]["$insert_id"]


def day(seconds: int) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc).date().isoformat()


def visible_events(server, through: str) -> dict[str, dict]:
    """Events the export shows now, up to the last day a run asked for (the server's truth)."""
    now_ms = server.now() * 1000
    return {
        insert_id(e): e
        for e in server.records("events")
        if e["properties"]["mp_processing_time_ms"] <= now_ms and day(e["properties"]["time"]) <= through
    }


def event_requests(server, since: int) -> list[dict]:
    return [e for e in server.journal(since) if e["path"] == "/api/2.0/export/events"]


def last_seq(server) -> int:
    entries = server.journal()
    return entries[-1]["seq"] if entries else 0


@pytest.fixture(scope="module")
def full_sync(export, tmp_path_factory):
    since = last_seq(export)
    return tap("export", config(export), tmp_path_factory.mktemp("full")), since


def test_tickets_equal_the_server_each_once_though_pages_repeat_their_boundary_second(export, full_sync):
    run, since = full_sync
    truth = {t["id"]: t for t in export.records("tickets")}
    rows = run.records["tickets"]
    assert sorted(t["id"] for t in rows) == sorted(truth)  # each once
    for row in rows:
        assert row == {**truth[row["id"]], "url": export.url + truth[row["id"]]["url"]}
    assert run.bookmark("tickets") == max(t["generated_timestamp"] for t in truth.values())
    pages = [e for e in export.journal(since) if e["path"] == "/api/v2/incremental/tickets.json"]
    assert len(pages) >= 10 and {e["status"] for e in pages} == {200}
    assert pages[0]["query"]["start_time"] == [str(int(dt.datetime.fromisoformat(START).timestamp()))]
    # The next pages started at the previous page's last second: the server sent boundary tickets twice.
    starts = [int(e["query"]["start_time"][0]) for e in pages]
    sent_twice = [t for t in truth.values() if t["generated_timestamp"] in starts[1:]]
    assert sent_twice


def test_events_equal_the_visible_events_read_in_windows_of_at_most_31_days(export, full_sync):
    run, since = full_sync
    requests = event_requests(export, since)
    windows = [(e["query"]["from_date"][0], e["query"]["to_date"][0]) for e in requests]
    assert {e["status"] for e in requests} == {200} and len(windows) >= 3
    for (first, last), (following, _) in zip(windows, windows[1:], strict=False):
        span = (dt.date.fromisoformat(last) - dt.date.fromisoformat(first)).days + 1
        assert span <= 31 and dt.date.fromisoformat(following) == dt.date.fromisoformat(last) + dt.timedelta(
            days=1
        )
    truth = visible_events(export, windows[-1][1])
    rows = run.records["events"]
    assert sorted(map(insert_id, rows)) == sorted(truth)
    assert all(r == {**truth[insert_id(r)], "time": truth[insert_id(r)]["properties"]["time"]} for r in rows)
    invisible = [e for e in export.records("events") if insert_id(e) not in truth]
    assert invisible, "expected events that have not arrived yet"


def test_a_later_run_reads_the_late_events_through_its_lookback(export, full_sync, tmp_path):
    first, _ = full_sync
    seen = {insert_id(e) for e in first.records["events"]}
    bookmark = dt.datetime.fromisoformat(first.bookmark("events"))
    export.advance(86400)  # a day on: seeded events of the last two days arrive
    arrived = export.touch("events", 6)  # arriving now, timed up to two days earlier
    since = last_seq(export)
    second = tap("export", config(export), tmp_path, streams=["events"], state=first.last_state)
    requests = event_requests(export, since)
    assert requests[0]["query"]["from_date"] == [(bookmark - dt.timedelta(days=2)).date().isoformat()]
    through = requests[-1]["query"]["to_date"][0]
    truth = visible_events(export, through)
    late = set(truth) - seen
    touched = {insert_id(e) for e in arrived if day(e["properties"]["time"]) <= through}
    assert touched <= late
    assert late - touched  # seeded events that only became visible now
    read = {insert_id(e) for e in second.records["events"]}
    assert late <= read  # every late arrival read, none lost
    assert seen | read == set(truth)


def test_a_run_resumed_from_every_state_it_printed_loses_nothing(export, full_sync, tmp_path):
    run, _ = full_sync
    for stream, identity in (("tickets", lambda r: r["id"]), ("events", insert_id)):
        positions = [i for i, (s, _) in enumerate(run.order) if s == stream]
        mid_stream = [(n, s) for n, s in run.states if positions[0] < n <= positions[-1]]
        assert len(mid_stream) >= 2, stream
        everything = {identity(r) for s, r in run.order if s == stream}
        for emitted, state in mid_stream:
            before = {identity(r) for i, (s, r) in enumerate(run.order) if s == stream and i < emitted}
            resumed = tap("export", config(export), tmp_path, streams=[stream], state=state)
            assert before | {identity(r) for r in resumed.records[stream]} >= everything, (stream, state)


def test_a_later_ticket_run_starts_at_the_bookmark_second_and_reads_the_changes(export, full_sync, tmp_path):
    first, _ = full_sync
    bookmark = first.bookmark("tickets")
    changed = export.touch("tickets", 3)
    export.advance(61)  # the export holds back the changes of the last minute
    since = last_seq(export)
    second = tap("export", config(export), tmp_path, streams=["tickets"], state=first.last_state)
    (page,) = [e for e in export.journal(since) if e["path"] == "/api/v2/incremental/tickets.json"]
    assert page["query"]["start_time"] == [str(bookmark)]  # inclusive: the bookmark second is read again
    at_bookmark = {t["id"] for t in export.records("tickets") if t["generated_timestamp"] == bookmark}
    assert sorted(t["id"] for t in second.records["tickets"]) == sorted(
        {t["id"] for t in changed} | at_bookmark
    )
    assert second.bookmark("tickets") == changed[0]["generated_timestamp"]


def test_a_first_sync_reads_from_the_start_date_not_a_lookback_before_it(export, tmp_path):
    start = dt.datetime.fromtimestamp(export.now(), dt.timezone.utc).date() - dt.timedelta(days=20)
    since = last_seq(export)
    run = tap("export", {**config(export), "start_date": f"{start}T00:00:00Z"}, tmp_path, streams=["events"])
    requests = event_requests(export, since)
    assert requests[0]["query"]["from_date"] == [start.isoformat()]
    assert run.records["events"] and min(day(e["time"]) for e in run.records["events"]) >= start.isoformat()
