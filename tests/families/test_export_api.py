"""The export sandbox behaves as Zendesk's incremental ticket export and Mixpanel's event export document,
awkward parts included (checked with plain httpx)."""

from __future__ import annotations

import json

import pytest

from sandbox.families.export import running_export

NOW = 1_767_225_600  # 2026-01-01T00:00:00Z: "today" is 2026-01-01
TICKETS = "/api/v2/incremental/tickets.json"
EVENTS = "/api/2.0/export/events"


@pytest.fixture(scope="module")
def sb():
    with running_export(size=150, per_page=20, now=NOW) as handle:
        yield handle


def basic(sb) -> tuple[str, str]:
    """Zendesk's API-token form of Basic auth: ``{email}/token`` and the token."""
    return f"{sb.credentials['email']}/token", sb.credentials["token"]


@pytest.fixture
def api(sb):
    with sb.client(auth=basic(sb)) as client:
        yield client


def export_tickets(api, start: int = 0, **params) -> tuple[list[dict], list[dict]]:
    """All pages from ``start`` as a client must read them: follow next_page until end_of_stream."""
    pages, url = [], None
    for _ in range(500):
        body = api.get(url).json() if url else api.get(TICKETS, params={"start_time": start, **params}).json()
        pages.append(body)
        if body["end_of_stream"]:
            return [t for p in pages for t in p["tickets"]], pages
        url = body["next_page"]
    raise AssertionError(f"no end of stream after 500 pages (last: {url})")


def lines(response) -> list[dict]:
    assert response.status_code == 200, response.text
    return [json.loads(line) for line in response.text.splitlines()]


def test_basic_email_token_or_bearer_authentication(sb, api):
    assert api.get(TICKETS, params={"start_time": 0}).status_code == 200
    with sb.client() as anon:
        token = sb.credentials["token"]
        assert (
            anon.get(
                TICKETS, params={"start_time": 0}, headers={"Authorization": f"Bearer {token}"}
            ).status_code
            == 200
        )
        refused = anon.get(TICKETS, params={"start_time": 0}, auth=(sb.credentials["email"], token))
        assert refused.status_code == 401 and refused.json() == {"error": "Couldn't authenticate you"}
        assert (
            anon.get(EVENTS, params={"from_date": "2025-12-01", "to_date": "2025-12-02"}).status_code == 401
        )


def test_ticket_pages_are_ascending_and_repeat_the_boundary_second(sb, api):
    rows, pages = export_tickets(api)
    stamps = [t["generated_timestamp"] for t in rows]
    assert stamps == sorted(stamps)
    for page, following in zip(pages, pages[1:], strict=False):
        assert page["next_page"].startswith(sb.url) and f"start_time={page['end_time']}" in page["next_page"]
        if page["count"] <= 20:
            assert page["end_time"] == page["tickets"][-1]["generated_timestamp"]
            assert following["tickets"][0]["generated_timestamp"] == page["end_time"], "starts inclusive"
    assert len(rows) > len({t["id"] for t in rows}), "records of a boundary second come twice"
    latest = {}
    for ticket in rows:
        latest[ticket["id"]] = ticket
    truth = {t["id"]: t for t in sb.records("tickets")}
    assert set(latest) == set(truth)
    assert all(latest[i]["updated_at"] == truth[i]["updated_at"] for i in truth)
    assert (
        pages[-1]["end_of_stream"]
        and pages[-1]["count"] < 20
        and all(not p["end_of_stream"] for p in pages[:-1])
    )
    assert {t["status"] for t in rows} >= {"deleted"}, "deleted tickets are exported too"


def test_a_second_holding_more_than_a_page_is_returned_whole(api):
    _, pages = export_tickets(api)
    big = [p for p in pages if p["count"] > 20]
    assert big, "the seeded bulk update puts more than a page of tickets in one second"
    second = {t["generated_timestamp"] for t in big[0]["tickets"]}
    assert len(second) == 1 and big[0]["end_time"] == second.pop() + 1, (
        "the next page starts after that second"
    )


def test_start_time_is_required_not_too_recent_and_end_time_is_ignored(sb, api):
    assert api.get(TICKETS).status_code == 400
    assert api.get(TICKETS, params={"start_time": "yesterday"}).status_code == 400
    recent = api.get(TICKETS, params={"start_time": int(sb.now()) - 30})
    assert recent.status_code == 400 and recent.json()["error"] == "StartTimeTooRecent"
    assert api.get(TICKETS, params={"start_time": int(sb.now()) - 120}).status_code == 200
    start = sb.records("tickets")[50]["generated_timestamp"]
    bounded = api.get(TICKETS, params={"start_time": start, "end_time": start + 1}).json()
    assert bounded == api.get(TICKETS, params={"start_time": start}).json()
    assert any(t["generated_timestamp"] > start + 1 for t in bounded["tickets"])


def test_changes_of_the_last_minute_are_held_back(sb, api):
    cutoff = max(t["generated_timestamp"] for t in sb.records("tickets"))
    touched = sb.touch("tickets", 2)
    moment = touched[0]["generated_timestamp"]
    assert {t["generated_timestamp"] for t in touched} == {moment} and moment > cutoff
    start = int(sb.now()) - 61
    assert api.get(TICKETS, params={"start_time": start}).json()["tickets"] == []
    sb.advance(61)
    later = api.get(TICKETS, params={"start_time": start}).json()
    assert {t["id"] for t in later["tickets"]} == {t["id"] for t in touched} and later["end_time"] == moment


def test_events_export_whole_utc_days_as_json_lines(sb, api):
    response = api.get(EVENTS, params={"from_date": "2025-12-01", "to_date": "2025-12-03"})
    assert response.headers["content-type"].startswith("text/plain")
    events = lines(response)
    low, high = 1_764_547_200, 1_764_806_400  # 2025-12-01T00:00Z, 2025-12-04T00:00Z
    truth = [e for e in sb.records("events") if low <= e["properties"]["time"] < high]
    assert sorted(e["properties"]["$insert_id"] for e in events) == sorted(
        e["properties"]["$insert_id"] for e in truth
    )
    first = events[0]["properties"]
    assert isinstance(first["time"], int) and first["distinct_id"] and first["$insert_id"]
    times = [e["properties"]["time"] for e in events]
    assert times != sorted(times), "events come in ingestion order, not by time"
    purchases = lines(
        api.get(EVENTS, params={"from_date": "2025-12-01", "to_date": "2025-12-03", "event": '["Purchased"]'})
    )
    assert purchases and {e["event"] for e in purchases} == {"Purchased"}
    assert (
        len(lines(api.get(EVENTS, params={"from_date": "2025-12-01", "to_date": "2025-12-03", "limit": 5})))
        == 5
    )


@pytest.mark.parametrize(
    ("first", "last", "why"),
    [
        ("2025-11-01", "2025-12-02", "at most 31 days"),
        ("2025-12-20", "2026-01-02", "later than today"),
        ("2025-12-03", "2025-12-01", "on or before"),
        ("2025-12-01T00:00:00", "2025-12-02", "YYYY-MM-DD"),
        (None, "2025-12-02", "required"),
    ],
)
def test_events_export_refuses_bad_ranges(api, first, last, why):
    params = {"to_date": last, **({"from_date": first} if first else {})}
    response = api.get(EVENTS, params=params)
    assert response.status_code == 400 and why in response.json()["error"]
    assert api.get(EVENTS, params={"from_date": "2025-12-02", "to_date": "2026-01-01"}).status_code == 200


def test_late_events_appear_in_days_already_exported():
    with running_export(size=20, now=NOW) as sb, sb.client(auth=basic(sb)) as api:
        window = {"from_date": "2025-12-30", "to_date": "2025-12-31"}
        first = {e["properties"]["$insert_id"] for e in lines(api.get(EVENTS, params=window))}
        truth = {e["properties"]["$insert_id"]: e for e in sb.records("events")}
        pending = {
            i
            for i, e in truth.items()
            if e["properties"]["time"] >= 1_767_052_800
            and e["properties"]["mp_processing_time_ms"] > NOW * 1000
        }
        assert pending and not pending & first, "events not yet ingested are invisible"
        sb.advance(2 * 86400)
        second = {e["properties"]["$insert_id"] for e in lines(api.get(EVENTS, params=window))}
        assert second == first | pending
        added = sb.touch("events", 5)
        now = sb.now()
        assert all(now - 2 * 86400 - 1 <= e["properties"]["time"] <= now for e in added)
        recent = lines(api.get(EVENTS, params={"from_date": "2025-12-31", "to_date": "2026-01-03"}))
        assert {e["properties"]["$insert_id"] for e in added} <= {
            e["properties"]["$insert_id"] for e in recent
        }


def test_the_export_rate_limit_answers_429_with_retry_after():
    with running_export(size=5, export_rate=2) as sb, sb.client(auth=basic(sb)) as api:
        statuses = [api.get(TICKETS, params={"start_time": 0}).status_code for _ in range(3)]
        assert statuses == [200, 200, 429]
        limited = api.get(TICKETS, params={"start_time": 0})
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) > 0
