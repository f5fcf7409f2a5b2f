"""Generated data: every record matches its schema, references resolve, and the edge cases that
incremental readers must handle (ties, offsets, a long updated_at span) are present."""

from __future__ import annotations

import re
import time
from collections import Counter
from datetime import datetime

import jsonschema
import pytest

from sandbox.datagen import Generator
from sandbox.resources import CATALOG, REF_TARGETS, block_of
from sandbox.specs import EXTRA_SPECS, REPO_SPECS, load_schemas
from sandbox.store import Store

DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}[+-]\d{2}:\d{2}$")
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
STREAMS = sorted(p.stem for p in REPO_SPECS.glob("*.json") if p.stem in CATALOG)
EXTRA = ["opportunities", "opportunity_stages", "external_configurations", "external_mappings"]


@pytest.fixture(scope="module")
def records(sb_session):
    sb_session.reset()
    return {name: sb_session.records(name) for name in CATALOG}


def _schema(name):
    schemas = load_schemas()
    return schemas[name]


def _check_formats(value, schema, where):
    """jsonschema does not assert formats without extra packages: check date-time and date here.
    (The official document marks some meeting datetimes as ``date``; Salesloft sends datetimes.)"""
    if value is None:
        return
    fmt = schema.get("format")
    if fmt == "date-time":
        assert DATETIME.match(value), f"{where}: {value!r} is not a microsecond datetime with an offset"
    elif fmt == "date":
        assert DATE.match(value) or DATETIME.match(value), f"{where}: {value!r} is not a date"
    for key, sub in (schema.get("properties") or {}).items():
        if isinstance(value, dict) and key in value:
            _check_formats(value[key], sub, f"{where}.{key}")
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            _check_formats(item, schema["items"], f"{where}[{i}]")


def test_every_stream_has_a_schema_and_records():
    assert len(STREAMS) >= 38
    for name in EXTRA:
        assert (REPO_SPECS / f"{name}.json").exists() or (EXTRA_SPECS / f"{name}.json").exists()


@pytest.mark.parametrize("name", STREAMS + EXTRA)
def test_every_record_validates_against_its_spec(records, name):
    schema = _schema(name)
    validator = jsonschema.Draft202012Validator(schema)
    rows = records[name]
    assert rows, f"no {name} generated"
    declared = set(schema["properties"])
    for record in rows:
        errors = sorted(validator.iter_errors(record), key=str)
        assert not errors, f"{name} {record.get('id')}: {errors[0].message} at {list(errors[0].path)}"
        assert declared <= set(record), f"{name} {record['id']} lacks {sorted(declared - set(record))}"
        _check_formats(record, schema, f"{name}[{record['id']}]")
        if CATALOG[name].string_ids:  # UUIDs, provider ids: strings, as the official document says
            assert isinstance(record["id"], str) and record["id"]
        else:
            assert block_of(record["id"]) == CATALOG[name].block
    assert len({record["id"] for record in rows}) == len(rows)


def test_some_optional_fields_are_null_and_well_known_fields_are_realistic(records):
    people = records["people"]
    assert any(p["mobile_phone"] is None for p in people) and any(p["mobile_phone"] for p in people)
    for person in people:
        assert "@" in person["email_address"] and person["first_name"] and person["last_name"]
        assert person["display_name"] == f"{person['first_name']} {person['last_name']}"
        assert isinstance(person["custom_fields"], dict) and person["custom_fields"]
        assert set(person["counts"]) == {
            "emails_sent",
            "emails_viewed",
            "emails_clicked",
            "emails_replied_to",
            "emails_bounced",
            "calls",
        }
        if person["account"]:
            assert person["email_address"].endswith(
                "@" + _account(records, person["account"]["id"])["domain"]
            )
    for account in records["accounts"]:
        assert account["name"] and "." in account["domain"] and account["website"].endswith(account["domain"])
    assert len({p["email_address"].lower() for p in people}) == len(people)
    assert len({a["domain"] for a in records["accounts"]}) == len(records["accounts"])


def _account(records, account_id):
    return next(a for a in records["accounts"] if a["id"] == account_id)


def test_embedded_references_point_at_records_that_exist(records, sb_session):
    ids = {name: {r["id"] for r in rows} for name, rows in records.items()}
    seen = 0

    def visit(value, field):
        nonlocal seen
        if isinstance(value, dict):
            if "_href" in value and "id" in value and set(value) == {"id", "_href"}:
                target = REF_TARGETS.get(field)
                if field == "associated_with":
                    target = {3: "accounts", 6: "people"}.get(block_of(value["id"]))
                if field == "mime_email_payload":  # the payload of a pending email, not a list resource
                    assert value["_href"] == f"{sb_session.url}/v2/mime_email_payloads/{value['id']}"
                    return
                assert target, f"reference field {field} has no target"
                if CATALOG[target].string_ids:
                    # The document's references carry an integer id; the link names the record.
                    assert isinstance(value["id"], int)
                    api_id = value["_href"].rsplit("/", 1)[1]
                    assert api_id in ids[target], f"{field} -> {target} {api_id} does not exist"
                    assert value["_href"] == f"{sb_session.url}{CATALOG[target].path}/{api_id}"
                    seen += 1
                    return
                assert value["id"] in ids[target], f"{field} -> {target} {value['id']} does not exist"
                assert value["_href"] == f"{sb_session.url}{CATALOG[target].path}/{value['id']}"
                seen += 1
                return
            for key, sub in value.items():
                visit(sub, key)
        elif isinstance(value, list):
            for item in value:
                visit(item, field)

    for name, rows in records.items():
        for record in rows:
            visit(record, name)
    assert seen > 1000


def test_updated_at_spans_months_in_several_offsets_with_ties(records):
    people = records["people"]
    stamps = [p["updated_at"] for p in people]
    offsets = Counter(s[-6:] for s in stamps)
    assert len(offsets) >= 4
    instants = sorted(datetime.fromisoformat(s) for s in stamps)
    assert (instants[-1] - instants[0]).days > 365
    ties = [s for s, n in Counter(stamps).items() if n > 1]
    assert ties, "no two people share an updated_at"
    for name in ("accounts", "calls", "notes", "tasks"):
        assert len({r["updated_at"] for r in records[name]}) < len(records[name]), f"{name} has no tie"
    for record in people:
        assert record["created_at"] <= record["updated_at"] or datetime.fromisoformat(
            record["created_at"]
        ) <= datetime.fromisoformat(record["updated_at"])


def test_bulk_job_results_belong_to_done_jobs_and_counts_add_up(records):
    jobs = {j["id"]: j for j in records["bulk_jobs"]}
    assert any(j["state"] == "done" for j in jobs.values()) and any(
        j["state"] == "open" for j in jobs.values()
    )
    results = records["bulk_job_results"]
    assert {r["status"] for r in results} == {"success", "error"}
    assert sum(j["total"] for j in jobs.values()) == len(results)
    assert sum(j["errors"] for j in jobs.values()) == sum(r["status"] == "error" for r in results)


def test_external_mappings_point_at_configured_types_and_existing_objects(records):
    configs = {(c["external_type"], c["object_type"]) for c in records["external_configurations"]}
    for mapping in records["external_mappings"]:
        assert (mapping["external_type"], mapping["object_type"]) in configs
        assert mapping["object_id"] in {r["id"] for r in records[mapping["object_type"]]}


def _generate(seed, sizes=None, base="http://127.0.0.1:1"):
    schemas = load_schemas()
    store = Store(schemas)
    Generator(seed, sizes or {}, base, schemas).generate_all(store)
    return store


def test_the_same_seed_gives_the_same_data_and_another_seed_does_not():
    a, b, c = _generate(7), _generate(7), _generate(8)
    for name in ("people", "accounts", "opportunities", "external_mappings", "bulk_job_results"):
        assert list(a[name].values()) == list(b[name].values())
    assert list(a["people"].values()) != list(c["people"].values())


def test_one_hundred_thousand_people_generate_in_a_few_seconds():
    import gc

    started = time.perf_counter()
    gc.disable()
    try:
        store = _generate(7, {"people": 100_000})
    finally:
        gc.enable()
    elapsed = time.perf_counter() - started
    assert len(store["people"]) == 100_000
    assert elapsed < 12, f"took {elapsed:.1f} s"
