"""The payments connection (templates/payments, YAML only) against the Stripe-style server: newest-first lists,
cursor paging by the last id, unix times, Basic auth, form-encoded writes with idempotency keys."""

from __future__ import annotations

import datetime as dt

import pytest
from family_support import tap, target

from sandbox.families.payments import SECRET_KEY, running_payments

STREAMS = ["customers", "charges", "invoices"]


@pytest.fixture
def payments():
    with running_payments(size=600) as server:
        yield server


def config(server) -> dict:
    return {"base_url": server.url, "secret_key": SECRET_KEY}


def ids(rows) -> list[str]:
    return sorted(r["id"] for r in rows)


def test_full_sync_equals_the_server_and_the_bookmark_is_the_newest_value(payments, tmp_path):
    run = tap("payments", config(payments), tmp_path)
    for stream in STREAMS:
        truth = payments.records(stream)
        assert ids(run.records[stream]) == ids(truth), stream  # every record once: no loss, no duplicate
        assert run.bookmark(stream) == max(r["created"] for r in truth), (
            stream
        )  # the newest, not the last read
    requests = payments.journal()
    assert {e["headers"]["authorization"].split()[0] for e in requests} == {"Basic"}
    pages = [e for e in requests if e["path"] == "/v1/charges"]
    assert len(pages) == 12 and all(e["query"]["limit"] == ["100"] for e in pages)
    assert "starting_after" not in pages[0]["query"] and all(
        "starting_after" in e["query"] for e in pages[1:]
    )


def test_a_run_resumed_from_every_state_it_printed_loses_nothing(payments, tmp_path):
    first = tap("payments", config(payments), tmp_path, streams=["charges"])
    truth = set(ids(payments.records("charges")))
    mid_stream = [(n, s) for n, s in first.states if 0 < n < len(first.order)]
    assert mid_stream, "expected a STATE during the 1,200 charges"
    for emitted, state in mid_stream:
        before = {r["id"] for _, r in first.order[:emitted]}
        resumed = tap("payments", config(payments), tmp_path, streams=["charges"], state=state)
        assert before | set(ids(resumed.records["charges"])) == truth


def test_an_incremental_run_reads_what_is_new_and_the_boundary_second(payments, tmp_path):
    first = tap("payments", config(payments), tmp_path, streams=["customers"])
    bookmark = first.bookmark("customers")
    payments.advance(60)
    added = payments.touch("customers", 3)
    second = tap("payments", config(payments), tmp_path, streams=["customers"], state=first.last_state)
    at_boundary = {r["id"] for r in payments.records("customers") if r["created"] == bookmark}
    assert set(ids(second.records["customers"])) == {r["id"] for r in added} | at_boundary
    assert second.bookmark("customers") == max(r["created"] for r in added)
    third = tap("payments", config(payments), tmp_path, streams=["customers"], state=second.last_state)
    assert set(ids(third.records["customers"])) == {
        r["id"] for r in added if r["created"] == second.bookmark("customers")
    }


def test_an_iso_start_date_is_sent_as_unix_seconds(payments, tmp_path):
    start = "2026-06-01T00:00:00+02:00"
    run = tap("payments", {**config(payments), "start_date": start}, tmp_path, streams=["invoices"])
    sent = {
        e["query"].get("created[gte]", [None])[0] for e in payments.journal() if e["path"] == "/v1/invoices"
    }
    expected = int(dt.datetime.fromisoformat(start).timestamp())
    assert sent == {str(expected)}
    assert ids(run.records.get("invoices", [])) == ids(
        r for r in payments.records("invoices") if r["created"] >= expected
    )


SCHEMA = {"type": "object", "properties": {"id": {"type": "string"}, "email": {"type": "string"},
          "name": {"type": "string"}, "metadata": {"type": "object"}, "preferred_locales": {"type": "array"}}}  # fmt: skip


def test_creates_are_form_encoded_with_brackets_and_a_resent_record_creates_one_customer(payments, tmp_path):
    record = {"email": "ada@example.com", "name": "Ada", "metadata": {"plan": "pro", "seats": "3"},
              "preferred_locales": ["en", "fr"]}  # fmt: skip
    bad = {"email": "not-an-email", "name": "Nope"}
    cfg = {**config(payments), "stream_sinks": {"people": "create_customer"}}
    run = target("payments", cfg, tmp_path, "people", [record, bad, record], SCHEMA)
    assert run.returncode == 0, run.stderr[-2000:]
    created = [c for c in payments.records("customers") if c["email"] == "ada@example.com"]
    assert len(created) == 1  # the same record twice: the idempotency key replays the first answer
    assert created[0]["metadata"] == {"plan": "pro", "seats": "3"}
    assert created[0]["preferred_locales"] == ["en", "fr"]
    assert [r["record"]["email"] for r in run.rejected] == ["not-an-email"]
    assert run.rejected[0]["status"] == 400 and "email" in run.rejected[0]["error"]
    posts = [e for e in payments.journal() if e["method"] == "POST" and e["path"] == "/v1/customers"]
    ada = next(e for e in posts if ["email", "ada@example.com"] in e["form"])  # records go out concurrently
    assert ada["headers"]["content-type"] == "application/x-www-form-urlencoded"
    assert ["metadata[plan]", "pro"] in ada["form"] and ["preferred_locales[]", "en"] in ada["form"]


def test_update_and_delete_by_id(payments, tmp_path):
    victim, other = payments.records("customers")[:2]
    cfg = {**config(payments), "stream_sinks": {"changes": "update_customer"}}
    run = target(
        "payments",
        cfg,
        tmp_path,
        "changes",
        [{"id": victim["id"], "name": "Renamed", "metadata": {"tier": "gold"}}],
        SCHEMA,
    )
    assert run.returncode == 0 and not run.rejected, run.stderr[-2000:]
    changed = next(c for c in payments.records("customers") if c["id"] == victim["id"])
    assert changed["name"] == "Renamed" and changed["metadata"]["tier"] == "gold"
    cfg = {**config(payments), "stream_sinks": {"gone": "delete_customer"}}
    run = target("payments", cfg, tmp_path, "gone", [{"id": other["id"]}, {"id": other["id"]}], SCHEMA)
    assert run.returncode == 0 and not run.rejected, run.stderr[-2000:]
    assert other["id"] not in {c["id"] for c in payments.records("customers")}
