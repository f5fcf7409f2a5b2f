"""Write endpoints with Salesloft's semantics: 200 creates and updates, 204 deletes, 422s."""

from __future__ import annotations

from datetime import datetime

import pytest


def instant(value: str) -> datetime:
    return datetime.fromisoformat(value)


def errors(response):
    assert response.status_code == 422, response.text
    return response.json()["errors"]


# -- accounts ------------------------------------------------------------------------------------


def test_account_create_update_delete(sb, api):
    created = api.post(
        "/v2/accounts.json", json={"name": "Acme Rockets", "domain": "acmerockets.test", "tags": ["VIP"]}
    )
    assert created.status_code == 200
    account = created.json()["data"]
    assert account["name"] == "Acme Rockets" and account["tags"] == ["VIP"] and account["id"] > 0
    assert account["created_at"] == account["updated_at"]
    assert account["owner"]["id"] == sb.records("users")[0]["id"]
    assert api.get(f"/v2/accounts/{account['id']}").json()["data"] == account

    updated = api.put(
        f"/v2/accounts/{account['id']}.json", json={"industry": "Aerospace", "custom_fields": {"Tier": "A"}}
    )
    assert updated.status_code == 200
    after = updated.json()["data"]
    assert (
        after["industry"] == "Aerospace"
        and after["custom_fields"] == {"Tier": "A"}
        and after["name"] == "Acme Rockets"
    )
    assert instant(after["updated_at"]) > instant(account["updated_at"])
    assert after["created_at"] == account["created_at"]

    deleted = api.delete(f"/v2/accounts/{account['id']}")
    assert deleted.status_code == 204 and deleted.content == b""
    assert api.delete(f"/v2/accounts/{account['id']}").status_code == 204, "deleting again succeeds"
    assert api.get(f"/v2/accounts/{account['id']}").status_code == 404
    assert api.put(f"/v2/accounts/{account['id']}", json={"name": "x"}).status_code == 404
    assert api.delete("/v2/accounts/39999999").status_code == 404, "an id that never existed"


def test_account_validation(sb, api):
    existing = sb.records("accounts")[0]
    assert errors(api.post("/v2/accounts", json={"domain": "new.test"})) == {"name": ["can't be blank"]}
    assert errors(api.post("/v2/accounts", json={"name": "No Domain", "domain": " "})) == {
        "domain": ["can't be blank"]
    }
    dup = api.post("/v2/accounts", json={"name": "Copy", "domain": existing["domain"].upper()})
    assert errors(dup) == {"domain": ["has already been taken"]}
    assert "account_tier_id" in errors(
        api.post("/v2/accounts", json={"name": "A", "domain": "a.test", "account_tier_id": 1})
    )
    assert "crm_id_type" in errors(
        api.post("/v2/accounts", json={"name": "A", "domain": "a.test", "crm_id": "001X"})
    )
    other = sb.records("accounts")[1]
    assert errors(api.put(f"/v2/accounts/{other['id']}", json={"domain": existing["domain"]})) == {
        "domain": ["has already been taken"]
    }
    assert len(sb.records("accounts")) == 120, "nothing was written"


def test_form_encoded_and_query_string_bodies(sb, api):
    form = api.post(
        "/v2/accounts.json",
        data={
            "name": "Form Co",
            "domain": "formco.test",
            "tags[]": ["a", "b"],
            "custom_fields[Segment]": "SMB",
            "do_not_contact": "true",
        },
    )
    assert form.status_code == 200, form.text
    account = form.json()["data"]
    assert (
        account["tags"] == ["a", "b"]
        and account["custom_fields"] == {"Segment": "SMB"}
        and account["do_not_contact"] is True
    )
    query = api.post("/v2/accounts.json", params={"name": "Query Co", "domain": "queryco.test"})
    assert query.status_code == 200 and query.json()["data"]["domain"] == "queryco.test"
    assert errors(
        api.post("/v2/accounts.json", data={"name": "Bad", "domain": "bad.test", "do_not_contact": "perhaps"})
    )
    assert (
        api.post(
            "/v2/accounts.json", content=b"{not json", headers={"content-type": "application/json"}
        ).status_code
        == 400
    )


def test_deleting_an_account_removes_its_people_from_it(sb, api):
    person = next(p for p in sb.records("people") if p["account"])
    account_id = person["account"]["id"]
    assert api.delete(f"/v2/accounts/{account_id}").status_code == 204
    after = api.get(f"/v2/people/{person['id']}").json()["data"]
    assert after["account"] is None and instant(after["updated_at"]) > instant(person["updated_at"])


# -- people --------------------------------------------------------------------------------------


def test_person_create_update_delete(sb, api):
    account = sb.records("accounts")[0]
    created = api.post(
        "/v2/people.json",
        json={
            "email_address": "Ada@Lovelace.test",
            "first_name": "Ada",
            "last_name": "Lovelace",
            "account_id": account["id"],
            "custom_fields": {"Lead Source": "Referral"},
            "tags": ["vip"],
        },
    )
    assert created.status_code == 200, created.text
    person = created.json()["data"]
    assert person["account"] == {"id": account["id"], "_href": f"{sb.url}/v2/accounts/{account['id']}"}
    assert (
        person["display_name"] == "Ada Lovelace"
        and person["full_email_address"] == "Ada Lovelace <Ada@Lovelace.test>"
    )
    assert (
        person["custom_fields"] == {"Lead Source": "Referral"}
        and person["person_company_name"] == account["name"]
    )
    updated = api.put(
        f"/v2/people/{person['id']}", json={"title": "Countess", "custom_fields": {"Region": "EMEA"}}
    ).json()["data"]
    assert updated["title"] == "Countess" and updated["custom_fields"] == {
        "Lead Source": "Referral",
        "Region": "EMEA",
    }
    assert instant(updated["updated_at"]) > instant(person["updated_at"])
    assert api.delete(f"/v2/people/{person['id']}").status_code == 204
    assert api.delete(f"/v2/people/{person['id']}").status_code == 204
    assert api.get(f"/v2/people/{person['id']}").status_code == 404
    # the email is free again
    assert api.post("/v2/people", json={"email_address": "ada@lovelace.test"}).status_code == 200


def test_person_validation(sb, api):
    existing = sb.records("people")[0]
    assert errors(api.post("/v2/people", json={"first_name": "Nobody"})) == {
        "email_address": ["can't be blank"]
    }
    assert errors(api.post("/v2/people", json={"phone": "555-0100"})) == {"email_address": ["can't be blank"]}
    assert api.post("/v2/people", json={"phone": "555-0100", "last_name": "Phoneonly"}).status_code == 200
    assert errors(api.post("/v2/people", json={"email_address": existing["email_address"].upper()})) == {
        "email_address": ["has already been taken"]
    }
    assert errors(api.post("/v2/people", json={"email_address": "not-an-email"})) == {
        "email_address": ["is invalid"]
    }
    assert errors(api.post("/v2/people", json={"email_address": "a@b.test", "account_id": 123})) == {
        "account_id": ["is invalid"]
    }
    assert "job_seniority" in errors(
        api.post("/v2/people", json={"email_address": "a@b.test", "job_seniority": "wizard"})
    )
    other = sb.records("people")[1]
    assert errors(api.put(f"/v2/people/{other['id']}", json={"email_address": existing["email_address"]}))
    assert (
        api.put(f"/v2/people/{other['id']}", json={"email_address": other["email_address"]}).status_code
        == 200
    )


# -- upserts -------------------------------------------------------------------------------------


def test_person_upsert_by_email_id_and_crm_id(sb, api):
    created = api.post(
        "/v2/person_upserts.json",
        json={"upsert_key": "email_address", "email_address": "grace@hopper.test", "first_name": "Grace"},
    )
    assert created.status_code == 200
    body = created.json()["data"]
    assert body["upsert_type"] == "create" and body["person"]["first_name"] == "Grace"
    again = api.post(
        "/v2/person_upserts",
        json={"upsert_key": "email_address", "email_address": "GRACE@hopper.test", "title": "Admiral"},
    ).json()["data"]
    assert again["upsert_type"] == "update" and again["person"]["id"] == body["person"]["id"]
    assert again["person"]["title"] == "Admiral" and again["person"]["first_name"] == "Grace"
    by_id = api.post(
        "/v2/person_upserts", json={"upsert_key": "id", "id": body["person"]["id"], "last_name": "Hopper"}
    ).json()["data"]
    assert by_id["upsert_type"] == "update" and by_id["person"]["last_name"] == "Hopper"
    assert (
        api.post(
            "/v2/person_upserts", json={"upsert_key": "id", "id": 60999999, "last_name": "X"}
        ).status_code
        == 404
    )
    crm = api.post(
        "/v2/person_upserts",
        json={
            "upsert_key": "crm_id",
            "crm_id": "003ABC",
            "crm_id_type": "salesforce",
            "email_address": "crm@x.test",
        },
    ).json()["data"]
    assert crm["upsert_type"] == "create"
    crm2 = api.post(
        "/v2/person_upserts",
        json={"upsert_key": "crm_id", "crm_id": "003ABC", "crm_id_type": "salesforce", "title": "CTO"},
    ).json()["data"]
    assert crm2["upsert_type"] == "update" and crm2["person"]["id"] == crm["person"]["id"]
    assert "upsert_key" in errors(api.post("/v2/person_upserts", json={"upsert_key": "phone", "phone": "1"}))
    assert errors(api.post("/v2/person_upserts", json={"upsert_key": "email_address"})) == {
        "email_address": ["can't be blank"]
    }
    # no upsert_key: a create, so an existing email is a 422
    assert errors(api.post("/v2/person_upserts", json={"email_address": "grace@hopper.test"})) == {
        "email_address": ["has already been taken"]
    }


def test_account_upsert_by_domain_and_id(sb, api):
    existing = sb.records("accounts")[0]
    updated = api.post(
        "/v2/account_upserts.json",
        json={"upsert_key": "domain", "domain": existing["domain"], "name": "Renamed"},
    ).json()["data"]
    assert (
        updated == {"account": updated["account"], "upsert_type": "update"}
        and updated["account"]["id"] == existing["id"]
    )
    assert updated["account"]["name"] == "Renamed"
    created = api.post(
        "/v2/account_upserts", data={"upsert_key": "domain", "domain": "brandnew.test", "name": "Brand New"}
    ).json()["data"]
    assert created["upsert_type"] == "create"
    assert (
        api.post(
            "/v2/account_upserts", json={"upsert_key": "id", "id": 1, "name": "x", "domain": "x.test"}
        ).status_code
        == 404
    )
    assert errors(
        api.post("/v2/account_upserts", json={"upsert_key": "domain", "domain": "nameless.test"})
    ) == {"name": ["can't be blank"]}


# -- tasks, notes and the rest ---------------------------------------------------------------------


def test_task_idempotency_key_returns_the_first_task(sb, api):
    person, user = sb.records("people")[0], sb.records("users")[0]
    payload = {
        "subject": "Call back",
        "person_id": person["id"],
        "user_id": user["id"],
        "task_type": "call",
        "due_date": "2025-06-15",
        "current_state": "scheduled",
        "idempotency_key": "sync-42",
    }
    first = api.post("/v2/tasks.json", json=payload)
    second = api.post("/v2/tasks.json", json={**payload, "subject": "Different"})
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    tasks = sb.records("tasks")
    assert (
        sum(
            t["subject"] in ("Call back", "Different")
            and t["person"]["id"] == person["id"]
            and t["due_date"] == "2025-06-15"
            for t in tasks
        )
        == 1
    )
    task = first.json()["data"]
    assert task["due_date"] == "2025-06-15" and task["current_state"] == "scheduled"
    done = api.put(f"/v2/tasks/{task['id']}", json={"current_state": "completed"}).json()["data"]
    assert done["current_state"] == "completed" and done["completed_at"]
    missing = errors(api.post("/v2/tasks", json={"subject": "x"}))
    assert list(missing) == ["person_id"]
    assert "person_id" in errors(
        api.post("/v2/tasks", json={**payload, "idempotency_key": None, "person_id": 5})
    )


def test_notes(sb, api):
    person = sb.records("people")[0]
    note = api.post(
        "/v2/notes",
        json={
            "content": "Met at the expo",
            "associated_with_type": "Person",
            "associated_with_id": person["id"],
        },
    ).json()["data"]
    assert note["associated_with"]["id"] == person["id"] and note["associated_type"] == "person"
    assert (
        api.put(f"/v2/notes/{note['id']}", json={"content": "Edited"}).json()["data"]["content"] == "Edited"
    )
    assert errors(api.put(f"/v2/notes/{note['id']}", json={"content": ""})) == {"content": ["can't be blank"]}
    assert errors(
        api.post(
            "/v2/notes", json={"content": "x", "associated_with_type": "person", "associated_with_id": 42}
        )
    )
    assert errors(
        api.post(
            "/v2/notes",
            json={"content": "x", "associated_with_type": "deal", "associated_with_id": person["id"]},
        )
    )
    assert api.delete(f"/v2/notes/{note['id']}").status_code == 204


@pytest.mark.parametrize(
    "path, create, update",
    [
        (
            "/v2/custom_fields",
            {"name": "Favourite Colour", "field_type": "person"},
            {"name": "Favorite Color"},
        ),
        ("/v2/person_stages", {"name": "Hot"}, {"name": "Very Hot"}),
        ("/v2/imports", {"name": "Trade show list"}, {"name": "Trade show list (final)"}),
        (
            "/v2/saved_list_views",
            {"name": "My hot list", "view": "people", "view_params": '{"stage": "hot"}'},
            {"name": "Cold list"},
        ),
    ],
)
def test_simple_crud_resources(sb, api, path, create, update):
    created = api.post(path, json=create)
    assert created.status_code == 200, created.text
    record = created.json()["data"]
    assert record["name"] == create["name"]
    changed = api.put(f"{path}/{record['id']}.json", json=update).json()["data"]
    assert changed["name"] == update["name"]
    assert api.delete(f"{path}/{record['id']}").status_code == 204
    assert api.get(f"{path}/{record['id']}").status_code == 404


def test_simple_resource_validation(sb, api):
    assert errors(api.post("/v2/custom_fields", json={"field_type": "person"})) == {
        "name": ["can't be blank"]
    }
    assert "field_type" in errors(
        api.post("/v2/custom_fields", json={"name": "x", "field_type": "spaceship"})
    )
    stage = sb.records("person_stages")[0]
    assert errors(api.post("/v2/person_stages", json={"name": stage["name"].upper()})) == {
        "name": ["has already been taken"]
    }
    assert "view" in errors(api.post("/v2/saved_list_views", json={"name": "x", "view": "cats"}))


def test_cadence_membership_from_query_params(sb, api):
    members = sb.records("cadence_memberships")
    busy = {(m["person"]["id"], m["cadence"]["id"]) for m in members}
    person = next(
        p
        for p in sb.records("people")
        if all((p["id"], c["id"]) not in busy for c in sb.records("cadences")[:1])
    )
    cadence = sb.records("cadences")[0]
    created = api.post(
        "/v2/cadence_memberships.json", params={"person_id": person["id"], "cadence_id": cadence["id"]}
    )
    assert created.status_code == 200, created.text
    membership = created.json()["data"]
    assert membership["currently_on_cadence"] is True and membership["current_state"] == "active"
    assert membership["person"]["id"] == person["id"] and membership["cadence"]["id"] == cadence["id"]
    again = api.post(
        "/v2/cadence_memberships.json", json={"person_id": person["id"], "cadence_id": cadence["id"]}
    )
    assert errors(again) == {"person_id": ["is already an active member of this cadence"]}
    assert api.delete(f"/v2/cadence_memberships/{membership['id']}").status_code == 204
    ended = api.get(f"/v2/cadence_memberships/{membership['id']}").json()["data"]
    assert ended["currently_on_cadence"] is False
    back = api.post(
        "/v2/cadence_memberships", params={"person_id": person["id"], "cadence_id": cadence["id"]}
    ).json()["data"]
    assert back["id"] == membership["id"] and back["currently_on_cadence"] is True
    assert errors(api.post("/v2/cadence_memberships", params={"person_id": person["id"]})) == {
        "cadence_id": ["can't be blank"]
    }
    assert errors(
        api.post("/v2/cadence_memberships", params={"person_id": 1, "cadence_id": cadence["id"]})
    ) == {"person_id": ["is invalid"]}


def test_calls_and_activities(sb, api):
    person = sb.records("people")[0]
    disposition = sb.records("call_dispositions")[0]["name"]
    call = api.post(
        "/v2/activities/calls.json",
        json={
            "person_id": person["id"],
            "to": "+1 555 0100",
            "duration": 95,
            "disposition": disposition,
            "notes": "Left a voicemail",
        },
    ).json()["data"]
    assert call["called_person"]["id"] == person["id"] and call["duration"] == 95 and call["note"]
    note = api.get(f"/v2/notes/{call['note']['id']}").json()["data"]
    assert note["content"] == "Left a voicemail" and note["call"]["id"] == call["id"]
    assert "disposition" in errors(
        api.post(
            "/v2/activities/calls", json={"person_id": person["id"], "disposition": "Abducted by aliens"}
        )
    )
    assert errors(api.post("/v2/activities/calls", json={"to": "1"})) == {"person_id": ["can't be blank"]}

    task = next(t for t in sb.records("tasks") if t["current_state"] == "scheduled")
    activity = api.post("/v2/activities.json", json={"task_id": task["id"]})
    assert activity.status_code == 200 and activity.json()["data"]["task_id"] == task["id"]
    assert api.get(f"/v2/tasks/{task['id']}").json()["data"]["current_state"] == "completed"
    assert errors(api.post("/v2/activities.json", json={"task_id": task["id"]})) == {
        "task_id": ["has already been completed"]
    }
    assert errors(api.post("/v2/activities.json", json={"note": "nothing to complete"})) == {
        "action_id": ["can't be blank"]
    }
    assert len(sb.records("activities")) == 1
