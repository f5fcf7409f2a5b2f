"""List and fetch endpoints over real HTTP: paging, filters, sort, ids, suffixes, 404s."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest


def instant(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def read_all(api, path, **params):
    out, page = [], 1
    while True:
        body = api.get(path, params={**params, "page": page}).raise_for_status().json()
        out.extend(body["data"])
        paging = body["metadata"]["paging"]
        assert paging["current_page"] == page
        assert paging["prev_page"] == (page - 1 if page > 1 else None)
        if paging["next_page"] is None:
            return out
        assert paging["next_page"] == page + 1
        page += 1


@pytest.mark.parametrize("per_page", [100, 7])
def test_paging_to_the_end_returns_exactly_the_records(sb, api, per_page):
    got = read_all(api, "/v2/people.json", per_page=per_page, sort_by="updated_at", sort_direction="ASC")
    expected = sb.records("people")
    assert len(got) == len(expected)
    assert sorted(r["id"] for r in got) == sorted(r["id"] for r in expected)
    keys = [(instant(r["updated_at"]), r["id"]) for r in got]
    assert keys == sorted(keys), "ascending by updated_at, ties by id"


def test_every_paged_stream_reads_to_the_end(sb, api):
    for path, name in [
        ("/v2/accounts", "accounts"),
        ("/v2/activities/calls", "calls"),
        ("/v2/action_details/call_instructions", "call_instructions"),
        ("/v2/calendar/events", "calendar_events"),
        ("/v2/external/mappings", "external_mappings"),
        ("/v2/opportunities", "opportunities"),
    ]:
        got = read_all(api, path, per_page=100)
        assert sorted(r["id"] for r in got) == sorted(r["id"] for r in sb.records(name)), path


def test_paging_counts_only_when_asked(api, sb):
    total = len(sb.records("people"))
    plain = api.get("/v2/people.json", params={"per_page": 100}).json()["metadata"]
    assert "total_count" not in plain["paging"] and "total_pages" not in plain["paging"]
    assert plain["paging"] == {"per_page": 100, "current_page": 1, "next_page": 2, "prev_page": None}
    counted = api.get("/v2/people.json", params={"per_page": 100, "include_paging_counts": "true"}).json()[
        "metadata"
    ]
    assert counted["paging"]["total_count"] == total
    assert counted["paging"]["total_pages"] == (total + 99) // 100
    assert counted["sorting"] == {"sort_by": "updated_at", "sort_direction": "DESC"}


def test_default_page_size_and_sort(api):
    body = api.get("/v2/people.json").json()
    assert len(body["data"]) == 25 and body["metadata"]["paging"]["per_page"] == 25
    keys = [(instant(r["updated_at"]), r["id"]) for r in body["data"]]
    assert keys == sorted(keys, reverse=True), "updated_at DESC by default"


def test_a_page_past_the_end_is_empty(api):
    body = api.get("/v2/people.json", params={"per_page": 100, "page": 50}).json()
    assert body["data"] == [] and body["metadata"]["paging"]["next_page"] is None


@pytest.mark.parametrize(
    "params", [{"per_page": 101}, {"per_page": 0}, {"per_page": "x"}, {"page": 0}, {"page": "two"}]
)
def test_out_of_range_paging_is_422(api, params):
    response = api.get("/v2/people.json", params=params)
    assert response.status_code == 422
    assert set(response.json()["errors"]) <= {"per_page", "page"}


def _instants(sb, name, field="updated_at"):
    return sorted({instant(r[field]) for r in sb.records(name)})


def test_updated_at_filters_compare_instants_with_microseconds_in_any_offset(sb, api):
    people = sb.records("people")
    pivot_record = sorted(people, key=lambda r: instant(r["updated_at"]))[len(people) // 2]
    pivot = instant(pivot_record["updated_at"])
    spellings = [
        pivot_record["updated_at"],
        pivot.astimezone(timezone.utc).isoformat().replace("+00:00", "Z"),
        pivot.astimezone(timezone(timedelta(hours=9))).isoformat(),
        pivot.astimezone(timezone(timedelta(hours=-7))).isoformat(timespec="microseconds"),
    ]
    for op, keep in (
        ("gt", lambda t: t > pivot),
        ("gte", lambda t: t >= pivot),
        ("lt", lambda t: t < pivot),
        ("lte", lambda t: t <= pivot),
    ):
        expected = sorted(r["id"] for r in people if keep(instant(r["updated_at"])))
        for spelled in spellings:
            got = read_all(api, "/v2/people", per_page=100, **{f"updated_at[{op}]": spelled})
            assert sorted(r["id"] for r in got) == expected, f"{op} {spelled}"
    # one microsecond matters
    after = (pivot + timedelta(microseconds=1)).isoformat()
    got = read_all(api, "/v2/people", per_page=100, **{"updated_at[gte]": after})
    assert pivot_record["id"] not in {r["id"] for r in got}


def test_a_range_and_created_at_filters(sb, api):
    people = sb.records("people")
    lo, hi = _instants(sb, "people")[40], _instants(sb, "people")[-40]
    got = read_all(
        api,
        "/v2/people",
        per_page=100,
        **{"updated_at[gt]": lo.isoformat(), "updated_at[lte]": hi.isoformat()},
    )
    assert sorted(r["id"] for r in got) == sorted(
        r["id"] for r in people if lo < instant(r["updated_at"]) <= hi
    )
    c = _instants(sb, "people", "created_at")[100]
    for op, keep in (
        ("gt", lambda t: t > c),
        ("gte", lambda t: t >= c),
        ("lt", lambda t: t < c),
        ("lte", lambda t: t <= c),
    ):
        got = read_all(api, "/v2/people", per_page=100, sort_by="id", **{f"created_at[{op}]": c.isoformat()})
        assert sorted(r["id"] for r in got) == sorted(
            r["id"] for r in people if keep(instant(r["created_at"]))
        ), op


def test_ties_in_updated_at_are_ordered_by_id(sb, api):
    got = read_all(api, "/v2/people", per_page=10, sort_by="updated_at", sort_direction="ASC")
    by_stamp = {}
    for r in got:
        by_stamp.setdefault(r["updated_at"], []).append(r["id"])
    tied = [ids for ids in by_stamp.values() if len(ids) > 1]
    assert tied and all(ids == sorted(ids) for ids in tied)


@pytest.mark.parametrize("bad", ["yesterday", "2024-13-01T00:00:00Z", "2024-03-05T14:22:31.123456 05:00"])
def test_an_unparseable_timestamp_is_422(api, bad):
    response = api.get("/v2/people", params={"updated_at[gt]": bad})
    assert response.status_code == 422 and "updated_at" in response.json()["errors"]


def test_ids_filter_in_all_spellings(sb, api):
    ids = [r["id"] for r in sb.records("people")[:3]]
    for query in (
        "&".join(f"ids[]={i}" for i in ids),
        "ids=" + ",".join(str(i) for i in ids),
        f"ids[]={ids[0]}&ids[]={ids[1]},{ids[2]}",
    ):
        body = api.get(f"/v2/people.json?{query}&ids[]=999").json()
        assert sorted(r["id"] for r in body["data"]) == ids, query
    assert api.get("/v2/people.json", params={"ids[]": [ids[0]], "per_page": 1}).json()["metadata"][
        "filtering"
    ]["ids"]


def test_sort_by_id_created_at_and_other_fields(sb, api):
    asc = read_all(api, "/v2/accounts", per_page=100, sort_by="id", sort_direction="ASC")
    assert [r["id"] for r in asc] == sorted(r["id"] for r in sb.records("accounts"))
    desc = read_all(api, "/v2/accounts", per_page=100, sort_by="id", sort_direction="desc")
    assert [r["id"] for r in desc] == [r["id"] for r in reversed(asc)]
    created = read_all(api, "/v2/accounts", per_page=100, sort_by="created_at", sort_direction="ASC")
    keys = [instant(r["created_at"]) for r in created]
    assert keys == sorted(keys)
    names = [
        r["name"].lower()
        for r in read_all(api, "/v2/accounts", per_page=100, sort_by="name", sort_direction="ASC")
    ]
    assert names == sorted(names)


def test_invalid_sort_is_422(api):
    assert api.get("/v2/people", params={"sort_by": "shoe_size"}).status_code == 422
    assert api.get("/v2/people", params={"sort_direction": "SIDEWAYS"}).status_code == 422


def test_unknown_params_are_ignored(api):
    plain = api.get("/v2/people.json", params={"per_page": 50}).json()["data"]
    noisy = api.get(
        "/v2/people.json",
        params={"per_page": 50, "flavour": "mint", "x[y]": "1", "limit_paging_counts": "true"},
    ).json()["data"]
    assert plain == noisy


def test_json_suffix_and_trailing_slash_are_optional(api):
    a = api.get("/v2/people.json", params={"per_page": 5}).json()
    b = api.get("/v2/people", params={"per_page": 5}).json()
    c = api.get("/v2/people/", params={"per_page": 5}).json()
    assert a == b == c
    record = a["data"][0]
    assert (
        api.get(f"/v2/people/{record['id']}.json").json()
        == api.get(f"/v2/people/{record['id']}").json()
        == {"data": record}
    )


def test_groups_are_not_paged(sb, api):
    body = api.get("/v2/groups.json", params={"per_page": 1, "page": 3}).json()
    assert len(body["data"]) == len(sb.records("groups"))
    assert "paging" not in body["metadata"]


def test_get_by_id_and_404(sb, api):
    for name, path in (
        ("accounts", "/v2/accounts"),
        ("calls", "/v2/activities/calls"),
        ("opportunities", "/v2/opportunities"),
        ("bulk_jobs", "/v2/bulk_jobs"),
    ):
        record = sb.records(name)[0]
        assert api.get(f"{path}/{record['id']}.json").json() == {"data": record}
    for missing in (
        "/v2/people/1",
        "/v2/people/99999999.json",
        "/v2/people/abc",
        "/v2/no_such_thing",
        "/v2/people/1/2/3",
    ):
        response = api.get(missing)
        assert response.status_code == 404 and response.json() == {"error": "Not Found"}, missing


def test_string_ids_are_fetched_filtered_and_sorted_as_strings(sb, api):
    """Team templates (UUIDs) and calendar events (provider ids): by id, by ids[], paged by updated_at."""
    for name, path in (("team_templates", "/v2/team_templates"), ("calendar_events", "/v2/calendar/events")):
        records = sb.records(name)
        first, second = records[0], records[1]
        assert api.get(f"{path}/{first['id']}.json").json() == {"data": first}
        assert api.get(f"{path}/{first['id']}x.json").status_code == 404
        listed = api.get(f"{path}.json", params={"ids[]": [first["id"], second["id"], "nope"]}).json()["data"]
        assert sorted(r["id"] for r in listed) == sorted([first["id"], second["id"]])
    templates = sb.records("team_templates")
    since = read_all(api, "/v2/team_templates", per_page=5, sort_by="updated_at", sort_direction="ASC")
    assert sorted(r["id"] for r in since) == sorted(r["id"] for r in templates)
    after = api.get(
        "/v2/team_templates.json", params={"updated_at[gt]": since[-1]["updated_at"], "per_page": 100}
    ).json()["data"]
    assert after == []  # a bound past the last one, ties by the string id included


def test_me_and_equality_filters(sb, api):
    me = api.get("/v2/me.json").json()["data"]
    assert me["id"] == sb.records("users")[0]["id"]
    person = next(p for p in sb.records("people") if p["account"])
    by_email = api.get("/v2/people", params={"email_addresses[]": person["email_address"].upper()}).json()[
        "data"
    ]
    assert [p["id"] for p in by_email] == [person["id"]]
    by_account = read_all(api, "/v2/people", per_page=100, account_id=person["account"]["id"])
    assert person["id"] in {p["id"] for p in by_account}
    assert all(p["account"]["id"] == person["account"]["id"] for p in by_account)


def test_bulk_jobs_page_by_id_cursor(sb, api):
    jobs = sb.records("bulk_jobs")
    first = api.get("/v2/bulk_jobs", params={"per_page": 2}).json()
    assert [j["id"] for j in first["data"]] == [j["id"] for j in jobs[:2]]
    assert "current_page" not in first["metadata"]["paging"]
    rest = api.get("/v2/bulk_jobs", params={"per_page": 100, "id[gt]": jobs[1]["id"]}).json()["data"]
    assert [j["id"] for j in rest] == [j["id"] for j in jobs[2:]]
    done = [j for j in jobs if j["state"] == "done"]
    results, cursor = [], 0
    while True:
        page = api.get(
            f"/v2/bulk_jobs/{done[0]['id']}/results", params={"per_page": 3, "id[gt]": cursor}
        ).json()["data"]
        if not page:
            break
        results += page
        cursor = page[-1]["id"]
    assert len(results) == done[0]["total"]
    assert all(set(r) == {"id", "status", "error", "record", "resource"} for r in results)
