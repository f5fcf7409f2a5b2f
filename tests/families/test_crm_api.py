"""The CRM sandbox behaves as HubSpot's CRM v3 documents, awkward parts included (checked with plain httpx)."""

from __future__ import annotations

import time
from datetime import datetime

import pytest

from sandbox.families.crm import running_crm

NOW = 1_767_225_600  # 2026-01-01T00:00:00Z
SEARCH = "/crm/v3/objects/contacts/search"
MODIFIED = "hs_lastmodifieddate"


@pytest.fixture(scope="module")
def sb():
    with running_crm(size=120, now=NOW, search_rate=1000) as handle:
        yield handle


def bearer(sb) -> dict:
    return {"Authorization": f"Bearer {sb.credentials['token']}"}


@pytest.fixture
def api(sb):
    with sb.client(headers=bearer(sb)) as client:
        yield client


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


def since(value, op: str = "GTE", direction: str = "ASCENDING", **extra) -> dict:
    return {
        "filterGroups": [{"filters": [{"propertyName": MODIFIED, "operator": op, "value": value}]}],
        "sorts": [{"propertyName": MODIFIED, "direction": direction}],
        "properties": ["email", MODIFIED],
        **extra,
    }


def search_all(api, body: dict, path: str = SEARCH) -> list[dict]:
    rows: list[dict] = []
    while True:
        page = api.post(path, json=body).json()
        rows += page["results"]
        if "paging" not in page:
            return rows
        body = {**body, "after": page["paging"]["next"]["after"]}


def test_a_bearer_token_is_required(sb):
    with sb.client() as anon:
        response = anon.post(SEARCH, json={})
        assert response.status_code == 401
        assert (
            response.json()["category"] == "INVALID_AUTHENTICATION" and response.json()["status"] == "error"
        )
        assert (
            anon.get("/crm/v3/objects/contacts", headers={"Authorization": "Bearer nope"}).status_code == 401
        )


def test_search_filters_and_sorts_by_modification_time_with_string_properties(sb, api):
    truth = sorted(sb.records("contacts"), key=lambda r: (ms(r["properties"][MODIFIED]), int(r["id"])))
    middle = ms(truth[40]["properties"][MODIFIED])
    expected = [r["id"] for r in truth if ms(r["properties"][MODIFIED]) >= middle]
    by_ms = search_all(api, since(str(middle), limit=7))
    assert [r["id"] for r in by_ms] == expected
    by_iso = search_all(api, since(truth[40]["properties"][MODIFIED], limit=200))
    assert [r["id"] for r in by_iso] == expected
    first = by_ms[0]
    assert (
        set(first) == {"id", "properties", "createdAt", "updatedAt", "archived"}
        and first["archived"] is False
    )
    assert first["properties"]["hs_object_id"] == first["id"]
    assert all(isinstance(v, str) for r in by_ms for v in r["properties"].values())
    assert first["properties"][MODIFIED] == first["updatedAt"] and first["updatedAt"].endswith("Z")
    strict = search_all(api, since(str(middle), op="GT"))
    assert [r["id"] for r in strict] == [r["id"] for r in truth if ms(r["properties"][MODIFIED]) > middle]


def test_ties_in_the_modification_time_exist_and_are_ordered_by_id(api):
    rows = search_all(api, since("0", limit=200))
    stamps = [r["properties"][MODIFIED] for r in rows]
    assert len(set(stamps)) < len(stamps), "seeded data shares modification instants"
    for left, right in zip(rows, rows[1:], strict=False):
        if left["properties"][MODIFIED] == right["properties"][MODIFIED]:
            assert int(left["id"]) < int(right["id"])
    descending = search_all(api, since("0", direction="DESCENDING", limit=200))
    assert [r["properties"][MODIFIED] for r in descending] == sorted(stamps, reverse=True)


def test_search_pages_carry_total_and_stop_without_paging(api):
    page = api.post(SEARCH, json={"limit": 50}).json()
    assert page["total"] == len(search_all(api, {"limit": 50})) and page["paging"]["next"]["after"] == "50"
    last = api.post(SEARCH, json={"limit": 50, "after": str(page["total"] - 1)}).json()
    assert len(last["results"]) == 1 and "paging" not in last
    assert "X-HubSpot-RateLimit-Max".lower() not in {k.lower() for k in api.post(SEARCH, json={}).headers}
    default = api.post(SEARCH, json={}).json()["results"]
    assert len(default) == 10 and set(default[0]["properties"]) == {
        "createdate",
        "email",
        "firstname",
        "hs_object_id",
        "lastmodifieddate",
        "lastname",
    }


@pytest.mark.parametrize(
    "body",
    [
        {"limit": 201},
        {"limit": 0},
        {"page": 2},
        {"sorts": [{"propertyName": MODIFIED}, {"propertyName": "createdate"}]},
        {"filterGroups": [{"filters": [{"propertyName": MODIFIED, "operator": "AFTER", "value": "1"}]}]},
        {"filterGroups": [{"filters": [{"propertyName": MODIFIED, "operator": "GT", "value": "yesterday"}]}]},
    ],
)
def test_invalid_searches_are_validation_errors(api, body):
    response = api.post(SEARCH, json=body)
    assert response.status_code == 400 and response.json()["category"] == "VALIDATION_ERROR", response.text


def test_filter_groups_are_ored_and_filters_anded(sb, api):
    truth = sb.records("contacts")
    stage_a, stage_b = "lead", "customer"
    body = {
        "filterGroups": [
            {"filters": [{"propertyName": "lifecyclestage", "operator": "EQ", "value": stage_a}]},
            {
                "filters": [
                    {"propertyName": "lifecyclestage", "operator": "EQ", "value": stage_b},
                    {"propertyName": "phone", "operator": "HAS_PROPERTY"},
                ]
            },
        ],
        "limit": 200,
    }
    expected = {
        r["id"]
        for r in truth
        if r["properties"]["lifecyclestage"] == stage_a
        or (r["properties"]["lifecyclestage"] == stage_b and r["properties"]["phone"])
    }
    assert {r["id"] for r in search_all(api, body)} == expected and expected


def test_paging_past_the_result_cap_is_a_400():
    with running_crm(size=50, search_cap=30, search_rate=1000) as sb, sb.client(headers=bearer(sb)) as api:
        page = api.post(SEARCH, json={"limit": 20, "after": "20"}).json()
        assert len(page["results"]) == 10 and page["paging"]["next"]["after"] == "40"
        assert page["total"] == 50
        beyond = api.post(SEARCH, json={"limit": 20, "after": "30"})
        assert beyond.status_code == 400 and beyond.json()["category"] == "VALIDATION_ERROR"
        assert beyond.json()["status"] == "error"


def test_search_is_limited_per_second_with_hubspots_429_body():
    with running_crm(size=5, search_rate=2) as sb, sb.client(headers=bearer(sb)) as api:
        answers = [api.post(SEARCH, json={}) for _ in range(5)]
        assert [a.status_code for a in answers[:2]] == [200, 200]
        body = next(a for a in answers[2:] if a.status_code == 429).json()
        assert body["message"] == "You have reached your secondly limit."
        assert (body["errorType"], body["policyName"], body["status"]) == ("RATE_LIMIT", "SECONDLY", "error")
        assert api.get("/crm/v3/objects/contacts").status_code == 200, "the list endpoint has its own limit"
        time.sleep(1.1)
        assert api.post(SEARCH, json={}).status_code == 200


def test_list_pages_with_an_after_token_and_an_absolute_link(sb, api):
    response = api.get("/crm/v3/objects/companies", params={"limit": 4, "properties": "name,industry"})
    assert response.headers["x-hubspot-ratelimit-max"] == "190"
    body = response.json()
    assert set(body["results"][0]["properties"]) == {
        "name",
        "industry",
        "createdate",
        MODIFIED,
        "hs_object_id",
    }
    seen = [r["id"] for r in body["results"]]
    while "paging" in body:
        link = body["paging"]["next"]["link"]
        assert link.startswith(sb.url) and f"after={body['paging']['next']['after']}" in link
        assert "properties=name,industry" in link and "limit=4" in link
        body = api.get(link).json()
        seen += [r["id"] for r in body["results"]]
    assert seen == [r["id"] for r in sb.records("companies")]
    assert api.get("/crm/v3/objects/companies", params={"limit": 101}).status_code == 400


def upsert(email: str, **properties) -> dict:
    return {"idProperty": "email", "id": email, "properties": properties}


def test_batch_upsert_creates_or_updates_by_email_and_bumps_modification(sb, api):
    existing = sb.records("contacts")[5]
    before = ms(existing["properties"][MODIFIED])
    started = int(sb.now() * 1000)
    inputs = [
        upsert("zz-new@example.com", firstname="New"),
        upsert(existing["properties"]["email"], jobtitle="CEO"),
    ]
    response = api.post("/crm/v3/objects/contacts/batch/upsert", json={"inputs": inputs})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "COMPLETE" and "startedAt" in body and "completedAt" in body
    by_id = {r["id"]: r for r in body["results"]}
    assert by_id[existing["id"]]["new"] is False and by_id[existing["id"]]["properties"]["jobtitle"] == "CEO"
    created = next(r for r in body["results"] if r["new"])
    assert created["properties"]["email"] == "zz-new@example.com"
    assert [r["id"] for r in body["results"]] == sorted((r["id"] for r in body["results"]), key=int)
    assert [r["id"] for r in body["results"]] != [created["id"], existing["id"]], (
        "results are not in input order"
    )
    now = {r["id"]: r for r in sb.records("contacts")}
    assert ms(now[existing["id"]]["properties"][MODIFIED]) >= max(before, started - 1000)
    assert now[existing["id"]]["properties"][MODIFIED] == now[created["id"]]["properties"][MODIFIED]


def test_batch_upsert_answers_207_with_per_input_errors_and_400_when_all_fail(sb, api):
    inputs = [
        upsert("ok-1@example.com", firstname="A"),
        upsert("not-an-email", firstname="B"),
        upsert("ok-2@example.com", shoe_size="44"),
        upsert("ok-3@example.com", lifecyclestage="lead"),
    ]
    response = api.post("/crm/v3/objects/contacts/batch/upsert", json={"inputs": inputs})
    assert response.status_code == 207, response.text
    body = response.json()
    assert body["status"] == "COMPLETE" and body["numErrors"] == 2 and len(body["results"]) == 2
    assert [e["context"] for e in body["errors"]] == [{"id": ["not-an-email"]}, {"id": ["ok-2@example.com"]}]
    assert all(e["category"] == "VALIDATION_ERROR" and e["status"] == "error" for e in body["errors"])
    assert "INVALID_EMAIL" in body["errors"][0]["message"] and "shoe_size" in body["errors"][1]["message"]
    emails = {r["properties"]["email"] for r in sb.records("contacts")}
    assert {"ok-1@example.com", "ok-3@example.com"} <= emails and "ok-2@example.com" not in emails
    all_bad = api.post("/crm/v3/objects/contacts/batch/upsert", json={"inputs": [upsert("bad")]})
    assert all_bad.status_code == 400 and all_bad.json()["errors"][0]["context"] == {"id": ["bad"]}
    too_many = [upsert(f"n{i}@example.com") for i in range(101)]
    assert api.post("/crm/v3/objects/contacts/batch/upsert", json={"inputs": too_many}).status_code == 400
    twice = [upsert("same@example.com"), upsert("SAME@example.com")]
    assert api.post("/crm/v3/objects/contacts/batch/upsert", json={"inputs": twice}).status_code == 400


def test_batch_create_errors_carry_the_write_trace_id_or_only_the_property(sb, api):
    taken = sb.records("companies")[0]["properties"]["domain"]
    inputs = [
        {"objectWriteTraceId": "t-0", "properties": {"name": "Fine", "domain": "fine.example.com"}},
        {"objectWriteTraceId": "t-1", "properties": {"name": "Dup", "domain": taken}},
        {"objectWriteTraceId": "t-2", "properties": {"numberofemployees": "many"}},
        {"properties": {"hs_object_id": "5"}},
    ]
    response = api.post("/crm/v3/objects/companies/batch/create", json={"inputs": inputs})
    assert response.status_code == 207, response.text
    body = response.json()
    assert [r["objectWriteTraceId"] for r in body["results"]] == ["t-0"]
    contexts = [e["context"] for e in body["errors"]]
    assert contexts == [
        {"objectWriteTraceId": ["t-1"]},
        {"objectWriteTraceId": ["t-2"]},
        {"propertyName": ["hs_object_id"]},
    ]
    assert body["errors"][0]["category"] == "CONFLICT" and "Existing ID" in body["errors"][0]["message"]
    assert "READ_ONLY_VALUE" in body["errors"][2]["message"]


def test_touch_bumps_records_to_the_server_clock_with_one_shared_instant(sb, api):
    newest = search_all(api, since("0", direction="DESCENDING", limit=1))[0]["properties"][MODIFIED]
    touched = sb.touch("contacts", 3)
    assert len({t["properties"][MODIFIED] for t in touched}) == 1
    assert ms(touched[0]["properties"][MODIFIED]) > ms(newest)
    found = search_all(api, since(newest, op="GT"))
    assert {t["id"] for t in touched} <= {r["id"] for r in found}


def test_with_a_search_lag_writes_reach_search_later_than_reads():
    with (
        running_crm(size=20, now=NOW, search_lag=5, search_rate=1000) as sb,
        sb.client(headers=bearer(sb)) as api,
    ):
        contact = sb.records("contacts")[3]
        newest = max(r["properties"][MODIFIED] for r in sb.records("contacts"))
        inputs = [upsert(contact["properties"]["email"], jobtitle="Pilot"), upsert("late@example.com")]
        assert api.post("/crm/v3/objects/contacts/batch/upsert", json={"inputs": inputs}).status_code == 200
        assert (
            api.get(f"/crm/v3/objects/contacts/{contact['id']}", params={"properties": "jobtitle"}).json()[
                "properties"
            ]["jobtitle"]
            == "Pilot"
        ), "a read by id sees the write at once"
        by_title = {
            "filterGroups": [{"filters": [{"propertyName": "jobtitle", "operator": "EQ", "value": "Pilot"}]}]
        }
        assert search_all(api, since(newest, op="GT")) == [] and search_all(api, by_title) == []
        assert api.post(SEARCH, json={}).json()["total"] == 20, "the new contact is not searchable yet"
        sb.advance(5)
        found = {r["properties"]["email"] for r in search_all(api, since(newest, op="GT"))}
        assert found == {contact["properties"]["email"], "late@example.com"}
        assert [r["id"] for r in search_all(api, by_title)] == [contact["id"]]
