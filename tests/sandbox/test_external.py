"""External IDs, opportunities and data-control requests, following Salesloft's guides."""

from __future__ import annotations


def errors(response):
    assert response.status_code == 422, response.text
    return response.json()["errors"]


def test_configurations_and_mappings(sb, api):
    config = api.post("/v2/external/configurations", json={"external_type": "erp", "object_type": "people"})
    assert config.status_code == 201
    assert config.json()["data"]["object_type"] == "people"
    assert errors(
        api.post("/v2/external/configurations", json={"external_type": "erp", "object_type": "people"})
    ) == {"external_type": ["has already been taken"]}
    assert "object_type" in errors(
        api.post("/v2/external/configurations", json={"external_type": "erp", "object_type": "dragons"})
    )
    person = sb.records("people")[5]
    mapping = api.post(
        "/v2/external/mappings.json",
        json={
            "external_type": "erp",
            "object_type": "people",
            "external_id": "E-1",
            "object_id": person["id"],
        },
    )
    assert mapping.status_code == 201
    data = mapping.json()["data"]
    assert (data["external_id"], data["object_id"], data.get("deleted", False)) == (
        "E-1",
        person["id"],
        False,
    )
    assert errors(
        api.post(
            "/v2/external/mappings",
            json={
                "external_type": "erp",
                "object_type": "people",
                "external_id": "E-1",
                "object_id": person["id"],
            },
        )
    ) == {"external_id": ["has already been taken"]}
    assert "external_type" in errors(
        api.post(
            "/v2/external/mappings",
            json={
                "external_type": "nope",
                "object_type": "people",
                "external_id": "E-2",
                "object_id": person["id"],
            },
        )
    )
    assert errors(
        api.post(
            "/v2/external/mappings",
            json={"external_type": "erp", "object_type": "people", "external_id": "E-3", "object_id": 77},
        )
    ) == {"object_id": ["is invalid"]}
    listed = api.get("/v2/external/mappings", params={"external_type": "erp", "external_id": "E-1"}).json()[
        "data"
    ]
    assert [m["id"] for m in listed] == [data["id"]]
    found = api.get("/v2/external/ids/erp/people", params={"external_ids[]": ["E-1", "E-404"]}).json()["data"]
    assert [p["id"] for p in found] == [person["id"]]
    assert api.delete(f"/v2/external/mappings/{data['id']}").status_code == 204
    assert api.get("/v2/external/ids/erp/people", params={"external_ids[]": "E-1"}).json()["data"] == []
    assert api.delete(f"/v2/external/configurations/{config.json()['data']['id']}").status_code == 204
    assert api.get("/v2/external/ids/erp/people").status_code == 404


def test_upsert_person_and_account_by_external_id(sb, api):
    created = api.post(
        "/v2/external/ids/crm/people/CONTACT-9000",
        json={"email_address": "ext@ids.test", "first_name": "Christopher", "city": "Atlanta"},
    )
    assert created.status_code == 201
    person = created.json()["data"]
    updated = api.post("/v2/external/ids/crm/people/CONTACT-9000", json={"title": "Director"})
    assert updated.status_code == 200 and updated.json()["data"]["id"] == person["id"]
    assert updated.json()["data"]["title"] == "Director"
    assert (
        api.get("/v2/external/ids/crm/people", params={"external_ids[]": "CONTACT-9000"}).json()["data"][0][
            "id"
        ]
        == person["id"]
    )
    account = api.post(
        "/v2/external/ids/crm/accounts/ACCT-9000", json={"name": "Ext Co", "domain": "extco.test"}
    )
    assert account.status_code == 201
    # a configuration is required, and users cannot be upserted
    assert "external_type" in errors(
        api.post("/v2/external/ids/unconfigured/people/X", json={"email_address": "u@x.test"})
    )
    assert "object_type" in errors(api.post("/v2/external/ids/crm/users/X", json={}))
    # validation of the proxied create still applies
    assert errors(api.post("/v2/external/ids/crm/people/CONTACT-9001", json={"first_name": "No email"})) == {
        "email_address": ["can't be blank"]
    }


def test_opportunity_flow_from_the_guide(sb, api):
    stage = api.post("/v2/opportunity_stages", json={"name": "Technical Win", "order": 3})
    assert stage.status_code == 200 and stage.json()["data"]["order"] == 3
    assert errors(api.post("/v2/opportunity_stages", json={"name": "technical win"})) == {
        "name": ["has already been taken"]
    }
    account = sb.records("accounts")[0]
    owner = sb.records("users")[3]
    payload = {
        "name": "Enterprise - Rhythm",
        "close_date": "2024-09-30",
        "created_date": "2024-09-11",
        "stage_name": "Ready to Close",
        "probability": "90",
        "amount": 100000.0,
        "opportunity_type": "Renewal",
        "account_id": str(account["id"]),
        "owner_id": str(owner["id"]),
        "is_closed": False,
        "is_won": False,
        "tags": ["Q3"],
        "custom_fields": {"Primary Contact": "My Champion"},
    }
    created = api.post("/v2/external/ids/crm_opportunity/opportunities/OPP-ABC", json=payload)
    assert created.status_code == 201, created.text
    opp = created.json()["data"]
    assert opp["amount"] == "100000.00" and opp["probability"] == "90.0" and opp["close_date"] == "2024-09-30"
    assert opp["created_date"].startswith("2024-09-11T00:00:00.000000")
    assert opp["account"]["id"] == account["id"] and opp["account_name"] == account["name"]
    assert (
        opp["owner"]["id"] == owner["id"] and opp["owner_crm_name"] == owner["name"] and opp["crm_id"] is None
    )
    again = api.post(
        "/v2/external/ids/crm_opportunity/opportunities/OPP-ABC",
        json={"stage_name": "Closed Won", "is_won": True, "is_closed": True},
    )
    assert (
        again.status_code == 200
        and again.json()["data"]["is_won"] is True
        and again.json()["data"]["id"] == opp["id"]
    )
    assert "stage_name" in errors(
        api.post(
            "/v2/external/ids/crm_opportunity/opportunities/OPP-X",
            json={**payload, "stage_name": "Daydreaming"},
        )
    )
    assert errors(
        api.post("/v2/external/ids/crm_opportunity/opportunities/OPP-Y", json={"name": "No account"})
    ) == {"account_id": ["can't be blank"]}
    assert api.get(f"/v2/opportunities/{opp['id']}").json()["data"]["stage_name"] == "Closed Won"
    listed = api.get("/v2/opportunities", params={"account_id": account["id"], "per_page": 100}).json()[
        "data"
    ]
    assert opp["id"] in {o["id"] for o in listed}

    person = sb.records("people")[0]
    link = api.post(
        "/v2/opportunity_people", json={"opportunity_id": str(opp["id"]), "person_id": str(person["id"])}
    )
    assert link.status_code == 200
    assert (
        api.post(
            "/v2/opportunity_people", json={"opportunity_id": opp["id"], "person_id": person["id"]}
        ).json()
        == link.json()
    )
    assert errors(
        api.post("/v2/opportunity_people", json={"opportunity_id": 1, "person_id": person["id"]})
    ) == {"opportunity_id": ["is invalid"]}
    assert api.delete(f"/v2/opportunity_people/{link.json()['data']['id']}").status_code == 204

    assert api.delete(f"/v2/opportunities/{opp['id']}").status_code == 204
    assert api.get(f"/v2/opportunities/{opp['id']}").status_code == 404
    assert api.delete(f"/v2/opportunities/{opp['id']}").status_code == 204
    mapping = next(m for m in sb.records("external_mappings") if m["external_id"] == "OPP-ABC")
    assert mapping.get("deleted", True) is True, "marked deleted where the schema has the field"
    assert (
        api.get(
            "/v2/external/ids/crm_opportunity/opportunities", params={"external_ids[]": "OPP-ABC"}
        ).json()["data"]
        == []
    )


def test_delete_by_external_id(sb, api):
    mapping = next(m for m in sb.records("external_mappings") if m["object_type"] == "opportunities")
    assert (
        api.delete(f"/v2/external/ids/crm_opportunity/opportunities/{mapping['external_id']}").status_code
        == 204
    )
    assert api.get(f"/v2/opportunities/{mapping['object_id']}").status_code == 404
    assert api.delete("/v2/external/ids/crm_opportunity/opportunities/NEVER").status_code == 404


def test_redaction_requests_are_recorded(sb, api):
    person = next(p for p in sb.records("people") if p["account"])
    account_id = person["account"]["id"]
    response = api.post(
        "/v2/data_control/account_and_people_redaction",
        json={"account_id": account_id, "dry_run": True, "team_id": 1},
    )
    assert response.status_code == 200
    request = response.json()["data"]
    assert request["kind"] == "account_and_people_redaction" and request["status"] == "dry_run"
    assert person["id"] in request["people_ids"]
    assert (
        api.post("/v2/data_control/account_redaction", json={"account_id": account_id}).json()["data"][
            "status"
        ]
        == "scheduled"
    )
    assert errors(api.post("/v2/data_control/account_redaction", json={"account_id": 5})) == {
        "account_id": ["is invalid"]
    }
    assert len(sb.records("redaction_requests")) == 2
    assert api.get(f"/v2/accounts/{account_id}").status_code == 200, "recorded, not applied"
