"""The payments sandbox behaves as Stripe documents, awkward parts included (checked with plain httpx)."""

from __future__ import annotations

from urllib.parse import urlencode

import httpx
import pytest

from sandbox.families.payments import running_payments

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
NOW = 1_767_225_600  # 2026-01-01T00:00:00Z: data and clock fixed, so runs compare


@pytest.fixture(scope="module")
def sb():
    with running_payments(size=60, now=NOW) as handle:
        yield handle


@pytest.fixture
def api(sb):
    with sb.client(auth=(sb.credentials["api_key"], "")) as client:
        yield client


def error_of(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    return response.json()["error"]


def walk(api, path: str, **params) -> list[dict]:
    """Every object of a list, following starting_after as Stripe's docs describe."""
    rows: list[dict] = []
    while True:
        body = api.get(path, params={"limit": 7, **params}).json()
        rows += body["data"]
        if not body["has_more"]:
            return rows
        params["starting_after"] = body["data"][-1]["id"]


def test_basic_auth_with_the_key_as_username_or_a_bearer_is_required(sb, api):
    key = sb.credentials["api_key"]
    with sb.client() as anon:
        missing = anon.get("/v1/customers")
        assert missing.headers["www-authenticate"] == 'Basic realm="Stripe"'
        assert error_of(missing, 401)["type"] == "invalid_request_error"
        wrong = error_of(anon.get("/v1/customers", auth=("sk_test_wrongwrongwrong", "")), 401)
        assert "Invalid API Key provided" in wrong["message"] and "wrongwrongwrong" not in wrong["message"]
        assert anon.get("/v1/customers", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    assert api.get("/v1/customers").status_code == 200


def test_lists_are_newest_first_with_ids_not_sortable_by_creation(sb, api):
    body = api.get("/v1/customers").json()
    assert (body["object"], body["url"], body["has_more"], len(body["data"])) == (
        "list",
        "/v1/customers",
        True,
        10,
    )
    rows = walk(api, "/v1/customers")
    created = [r["created"] for r in rows]
    assert created == sorted(created, reverse=True)
    assert len(set(created)) < len(created), "the seeded data has ties in created"
    assert [r["id"] for r in rows] != sorted((r["id"] for r in rows), reverse=True)
    assert all(r["id"].startswith("cus_") and len(r["id"]) == 18 for r in rows)
    first = rows[0]
    assert first["object"] == "customer" and first["livemode"] is False and isinstance(first["created"], int)
    assert all(isinstance(v, str) for r in rows for v in r["metadata"].values())


def test_starting_after_and_ending_before_walk_every_object_once(sb, api):
    truth = [r["id"] for r in sb.records("charges")]
    forward = [r["id"] for r in walk(api, "/v1/charges")]
    assert forward == truth and len(truth) == 120
    backward: list[str] = []
    params = {"limit": 9, "ending_before": truth[-1]}
    while True:
        body = api.get("/v1/charges", params=params).json()
        backward = [r["id"] for r in body["data"]] + backward
        if not body["has_more"]:
            break
        params["ending_before"] = body["data"][0]["id"]
    assert backward == truth[:-1]
    both = error_of(
        api.get("/v1/charges", params={"starting_after": truth[0], "ending_before": truth[5]}), 400
    )
    assert both["type"] == "invalid_request_error"
    missing = error_of(api.get("/v1/charges", params={"starting_after": "ch_nope"}), 400)
    assert (missing["code"], missing["param"]) == ("resource_missing", "starting_after")


@pytest.mark.parametrize("limit", ["0", "101", "ten"])
def test_a_limit_outside_1_to_100_is_a_400_naming_it(api, limit):
    assert error_of(api.get("/v1/customers", params={"limit": limit}), 400)["param"] == "limit"


def test_limit_defaults_to_10_and_allows_100(api):
    assert len(api.get("/v1/charges").json()["data"]) == 10
    assert len(api.get("/v1/charges", params={"limit": 100}).json()["data"]) == 100


def test_an_unknown_parameter_is_refused_as_stripe_does(api):
    error = error_of(api.get("/v1/customers", params={"updated[gte]": 1}), 400)
    assert error == {
        "type": "invalid_request_error",
        "code": "parameter_unknown",
        "param": "updated",
        "message": "Received unknown parameter: updated",
    }
    assert error_of(api.get("/v1/customers", params={"created[after]": 1}), 400)["param"] == "created[after]"


def test_created_filters_bound_the_list(sb, api):
    truth = sb.records("invoices")
    middle = truth[len(truth) // 2]["created"]
    cases = {"gt": lambda c: c > middle, "gte": lambda c: c >= middle, "lt": lambda c: c < middle}
    for op, keep in cases.items():
        got = walk(api, "/v1/invoices", **{f"created[{op}]": middle})
        assert [r["id"] for r in got] == [r["id"] for r in truth if keep(r["created"])], op
    window = walk(api, "/v1/invoices", **{"created[gte]": middle, "created[lte]": middle})
    exact = walk(api, "/v1/invoices", created=middle)
    assert window == exact and exact and all(r["created"] == middle for r in exact)
    assert (
        error_of(api.get("/v1/invoices", params={"created[gt]": "yesterday"}), 400)["param"] == "created[gt]"
    )


def test_charges_and_invoices_reference_customers_and_expand_them(sb, api):
    customers = {c["id"] for c in sb.records("customers")}
    charges = sb.records("charges")
    referenced = {c["customer"] for c in charges} - {None}  # a guest charge has no customer
    assert referenced and referenced <= customers
    charge = next(c for c in charges if c["customer"])
    assert isinstance(charge["amount"], int) and charge["payment_method_details"]["card"]["last4"]
    mine = walk(api, "/v1/charges", customer=charge["customer"])
    assert mine and {c["customer"] for c in mine} == {charge["customer"]}
    expand = {"limit": 1, "customer": charge["customer"], "expand[]": "data.customer"}
    expanded = api.get("/v1/charges", params=expand).json()["data"][0]
    assert expanded["customer"]["object"] == "customer" and expanded["customer"]["id"] == charge["customer"]
    assert error_of(api.get("/v1/charges", params={"expand[]": "data.nothing"}), 400)["param"] == "expand"
    assert error_of(api.get("/v1/invoices", params={"status": "lost"}), 400)["param"] == "status"


def test_retrieve_and_resource_missing(sb, api):
    invoice = sb.records("invoices")[3]
    assert api.get(f"/v1/invoices/{invoice['id']}").json() == invoice
    assert invoice["lines"]["object"] == "list"
    error = error_of(api.get("/v1/customers/cus_missing"), 404)
    assert (error["code"], error["param"]) == ("resource_missing", "id")


def test_create_takes_form_bodies_with_nested_brackets(api):
    form = [
        ("email", "ada@example.com"),
        ("name", "Ada"),
        ("metadata[plan]", "pro"),
        ("metadata[seats]", "3"),
        ("address[city]", "London"),
        ("address[country]", "GB"),
        ("preferred_locales[]", "en"),
        ("preferred_locales[]", "fr"),
        ("balance", "-250"),
    ]
    created = api.post("/v1/customers", content=urlencode(form), headers=FORM).json()
    assert created["id"].startswith("cus_") and created["email"] == "ada@example.com"
    assert created["metadata"] == {"plan": "pro", "seats": "3"} and created["balance"] == -250
    assert created["address"]["city"] == "London" and created["address"]["line1"] is None
    assert created["preferred_locales"] == ["en", "fr"]
    indexed = api.post(
        "/v1/customers", data={"preferred_locales[1]": "de", "preferred_locales[0]": "en"}
    ).json()
    assert indexed["preferred_locales"] == ["en", "de"]
    assert api.get(f"/v1/customers/{created['id']}").json() == created
    assert api.get("/v1/customers", params={"limit": 2}).json()["data"][0]["id"] == indexed["id"]


def test_writes_refuse_json_bad_emails_and_unknown_fields_with_the_param(api):
    as_json = error_of(api.post("/v1/customers", json={"email": "a@b.co"}), 400)
    assert "application/json" in as_json["message"]
    email = error_of(api.post("/v1/customers", data={"email": "not-an-email"}), 400)
    assert (email["param"], email["code"]) == ("email", "email_invalid")
    unknown = error_of(api.post("/v1/customers", data={"address[planet]": "Mars"}), 400)
    assert (unknown["param"], unknown["code"]) == ("address[planet]", "parameter_unknown")
    assert error_of(api.post("/v1/customers", data={"metadata": "flat"}), 400)["param"] == "metadata"
    assert error_of(api.post("/v1/customers", data={"balance": "1.5"}), 400)["param"] == "balance"


def test_update_merges_metadata_and_an_empty_value_unsets_a_key(api):
    ident = api.post("/v1/customers", data={"metadata[a]": "1", "metadata[b]": "2"}).json()["id"]
    updated = api.post(
        f"/v1/customers/{ident}", data={"metadata[b]": "", "metadata[c]": "3", "name": "X"}
    ).json()
    assert updated["metadata"] == {"a": "1", "c": "3"} and updated["name"] == "X"
    assert api.post(f"/v1/customers/{ident}", data={"metadata": ""}).json()["metadata"] == {}
    assert (
        error_of(api.post("/v1/customers/cus_missing", data={"name": "X"}), 404)["code"] == "resource_missing"
    )


def test_idempotency_key_replays_and_refuses_other_params(sb, api):
    first = api.post("/v1/customers", data={"email": "idem@example.com"}, headers={"Idempotency-Key": "k-1"})
    again = api.post("/v1/customers", data={"email": "idem@example.com"}, headers={"Idempotency-Key": "k-1"})
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    assert again.headers["original-request"] == first.headers["request-id"] != again.headers["request-id"]
    api.post(f"/v1/customers/{first.json()['id']}", data={"name": "Changed later"})
    replayed = api.post(
        "/v1/customers", data={"email": "idem@example.com"}, headers={"Idempotency-Key": "k-1"}
    )
    assert replayed.json() == first.json(), "a replay is the first answer, not the record as it is now"
    assert "idempotent-replayed" not in first.headers
    assert sum(c["email"] == "idem@example.com" for c in sb.records("customers")) == 1
    other = error_of(
        api.post("/v1/customers", data={"email": "x@example.com"}, headers={"Idempotency-Key": "k-1"}), 400
    )
    assert other["type"] == "idempotency_error"
    refused = api.post("/v1/customers", data={"email": "bad"}, headers={"Idempotency-Key": "k-2"})
    assert refused.status_code == 400
    fixed = api.post("/v1/customers", data={"email": "good@example.com"}, headers={"Idempotency-Key": "k-2"})
    assert fixed.status_code == 200 and "idempotent-replayed" not in fixed.headers, "a 400 is not saved"


def test_an_idempotency_key_expires_after_24_hours(sb, api):
    first = api.post("/v1/customers", data={"name": "Once"}, headers={"Idempotency-Key": "k-day"}).json()
    sb.advance(24 * 3600 + 1)
    later = api.post("/v1/customers", data={"name": "Once"}, headers={"Idempotency-Key": "k-day"})
    assert "idempotent-replayed" not in later.headers and later.json()["id"] != first["id"]


def test_delete_answers_deleted_and_the_customer_leaves_lists(sb, api):
    ident = api.post("/v1/customers", data={"name": "Gone"}).json()["id"]
    assert api.delete(f"/v1/customers/{ident}").json() == {"id": ident, "object": "customer", "deleted": True}
    assert api.get(f"/v1/customers/{ident}").json() == {"id": ident, "object": "customer", "deleted": True}
    assert ident not in {c["id"] for c in walk(api, "/v1/customers")}
    assert error_of(api.delete(f"/v1/customers/{ident}"), 404)["code"] == "resource_missing"


def test_touch_adds_objects_created_at_the_server_clock(sb, api):
    before = api.get("/v1/customers", params={"limit": 1}).json()["data"][0]
    added = sb.touch("customers", 3)
    now = int(sb.now())
    assert len(added) == 3 and all(before["created"] <= a["created"] <= now for a in added)
    newest = api.get("/v1/customers", params={"created[gte]": added[0]["created"], "limit": 100}).json()[
        "data"
    ]
    assert {a["id"] for a in added} <= {c["id"] for c in newest}


def test_rate_limit_answers_stripe_shaped_429():
    with running_payments(size=3, rate_limit=3) as sb, sb.client(auth=(sb.credentials["api_key"], "")) as api:
        answers = [api.get("/v1/customers") for _ in range(10)]
        assert [a.status_code for a in answers[:3]] == [200, 200, 200]
        limited = next(a for a in answers[3:] if a.status_code == 429)
        assert limited.json()["error"]["type"] == "rate_limit_error"


def test_injected_faults_use_stripe_error_shapes(sb, api):
    sb.fault(500, count=1, path="/v1/charges")
    sb.fault(429, count=1, path="/v1/charges", retry_after=2)
    assert api.get("/v1/customers").status_code == 200, "a fault waits for its path"
    assert error_of(api.get("/v1/charges"), 500)["type"] == "api_error"
    limited = api.get("/v1/charges")
    assert error_of(limited, 429)["type"] == "rate_limit_error" and limited.headers["retry-after"] == "2"
    assert api.get("/v1/charges").status_code == 200


def test_the_same_seed_gives_the_same_data_and_another_seed_other_data(sb):
    with running_payments(size=60, now=NOW) as twin:
        assert twin.records("invoices") == sb.records("invoices")
    with running_payments(size=60, now=NOW, seed=8) as other:
        assert other.records("invoices") != sb.records("invoices")
