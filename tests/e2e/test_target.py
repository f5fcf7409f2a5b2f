"""target-salesloft as a process against the sandbox: every sink, mixed input, round trip, bulk."""

from __future__ import annotations

import json
import re
import subprocess

import pytest
from helpers import TARGET, run_tap, run_target, singer_lines, tap_config

from connector.templates import load_bundled

CONNECTION = load_bundled("salesloft")


@pytest.fixture(scope="module")
def sb():
    from sandbox.testing import running_sandbox

    with running_sandbox(bulk_latency=0.05) as handle:
        yield handle


def send(sb, tmp_path, sink, records, *, stream="input", key_properties=None, schema=None, **config):
    sb.clear_journal()
    cfg = {"base_url": sb.url, "api_key": sb.api_key, "sink": sink, **config}
    run = run_target(
        cfg,
        tmp_path,
        singer_lines(
            stream,
            records,
            schema=schema,
            key_properties=key_properties,
            state={"bookmarks": {stream: {"done": True}}},
        ),
    )
    assert run.returncode == 0, run.stderr[-3000:]
    writes = [e for e in sb.journal() if e["method"] != "GET"]
    return run, writes


def one(sb, resource):
    return sb.records(resource)[0]


def case_ids(sb):
    """Ids that exist in the sandbox, for records that reference them."""
    active = {
        (m["person"]["id"], m["cadence"]["id"])
        for m in sb.records("cadence_memberships")
        if m.get("currently_on_cadence")
    }
    cadence = one(sb, "cadences")["id"]
    free = next(p["id"] for p in sb.records("people") if (p["id"], cadence) not in active)
    open_jobs = [j["id"] for j in sb.records("bulk_jobs") if j["state"] == "open"]
    if not open_jobs:
        import httpx

        httpx.post(
            f"{sb.url}/v2/bulk_jobs",
            json={"name": "for job data", "type": "person/upsert"},
            headers={"Authorization": f"Bearer {sb.api_key}"},
        ).raise_for_status()
        open_jobs = [j["id"] for j in sb.records("bulk_jobs") if j["state"] == "open"]

    def create(path, body):
        import httpx

        response = httpx.post(f"{sb.url}{path}", json=body, headers={"Authorization": f"Bearer {sb.api_key}"})
        response.raise_for_status()
        return response.json()["data"]["id"]

    return {
        "create": create,
        "open_task": next(t["id"] for t in sb.records("tasks") if t["current_state"] != "completed"),
        "first": lambda resource: sb.records(resource)[0]["id"],
        "open_job": open_jobs[0],
        "account": one(sb, "accounts")["id"],
        "person": one(sb, "people")["id"],
        "free_person": free,
        "cadence": cadence,
        "user": one(sb, "users")["id"],
    }


# sink -> (records(ids), expected (method, path regex) per request, check(sb, records, responses))
def _people_with(sb, email):
    return [p for p in sb.records("people") if p.get("email_address") == email]


CASES = {
    "create_account": (
        lambda ids: [
            {"id": 999, "name": "Hooli", "domain": "hooli.example", "updated_at": "2024-01-01T00:00:00Z"}
        ],
        [("POST", r"^/v2/accounts(\.json)?$")],
        lambda sb, recs: any(a["domain"] == "hooli.example" for a in sb.records("accounts")),
    ),
    "update_account": (
        lambda ids: [{"id": ids["account"], "name": "Renamed Inc", "created_at": "2020-01-01T00:00:00Z"}],
        [("PUT", r"^/v2/accounts/\d+(\.json)?$")],
        lambda sb, recs: (
            next(a for a in sb.records("accounts") if a["id"] == recs[0]["id"])["name"] == "Renamed Inc"
        ),
    ),
    "delete_account": (
        lambda ids: [{"id": ids["account"]}],
        [("DELETE", r"^/v2/accounts/\d+(\.json)?$")],
        lambda sb, recs: all(a["id"] != recs[0]["id"] for a in sb.records("accounts")),
    ),
    "upsert_account": (
        lambda ids: [
            {"name": "Upsert Co", "domain": "upsert.example"},
            {"name": "Upsert Co 2", "domain": "upsert.example"},
        ],
        [("POST", r"^/v2/account_upserts(\.json)?$")] * 2,
        lambda sb, recs: (
            [a["name"] for a in sb.records("accounts") if a["domain"] == "upsert.example"] == ["Upsert Co 2"]
        ),
    ),
    "create_person": (
        lambda ids: [{"email_address": "new.person@example.com", "first_name": "New", "last_name": "Person"}],
        [("POST", r"^/v2/people(\.json)?$")],
        lambda sb, recs: len(_people_with(sb, "new.person@example.com")) == 1,
    ),
    "update_person": (
        lambda ids: [{"id": ids["person"], "title": "Chief Tester"}],
        [("PUT", r"^/v2/people/\d+(\.json)?$")],
        lambda sb, recs: (
            next(p for p in sb.records("people") if p["id"] == recs[0]["id"])["title"] == "Chief Tester"
        ),
    ),
    "upsert_person": (
        lambda ids: [
            {"email_address": "upsert.person@example.com", "first_name": "A"},
            {"email_address": "upsert.person@example.com", "first_name": "B"},
        ],
        [("POST", r"^/v2/person_upserts(\.json)?$")] * 2,
        lambda sb, recs: [p["first_name"] for p in _people_with(sb, "upsert.person@example.com")] == ["B"],
    ),
    "create_note": (
        lambda ids: [
            {
                "content": "Called, left a message",
                "associated_with_type": "person",
                "associated_with_id": ids["person"],
            }
        ],
        [("POST", r"^/v2/notes(\.json)?$")],
        lambda sb, recs: any(n["content"] == "Called, left a message" for n in sb.records("notes")),
    ),
    "create_task": (
        lambda ids: (
            [
                {
                    "subject": "Follow up",
                    "person_id": ids["person"],
                    "user_id": ids["user"],
                    "task_type": "call",
                    "due_date": "2030-01-01",
                    "current_state": "scheduled",
                    "idempotency_key": "row-42",
                }
            ]
            * 2
        ),
        [("POST", r"^/v2/tasks(\.json)?$")] * 2,
        lambda sb, recs: [t["subject"] for t in sb.records("tasks")].count("Follow up") == 1,
    ),
    "create_call": (
        lambda ids: [
            {
                "person_id": ids["person"],
                "to": "+15555550100",
                "duration": 42,
                "disposition": "Connected",
                "notes": "Good call",
            }
        ],
        [("POST", r"^/v2/activities/calls(\.json)?$")],
        lambda sb, recs: (
            any(c["to"] == "+15555550100" and c["duration"] == 42 for c in sb.records("calls"))
            and any(n["content"] == "Good call" for n in sb.records("notes"))
        ),
    ),
    "create_custom_field": (
        lambda ids: [{"name": "Favourite colour", "field_type": "person"}],
        [("POST", r"^/v2/custom_fields(\.json)?$")],
        lambda sb, recs: any(c["name"] == "Favourite colour" for c in sb.records("custom_fields")),
    ),
    "create_person_stage": (
        lambda ids: [{"name": "Evaluating"}],
        [("POST", r"^/v2/person_stages(\.json)?$")],
        lambda sb, recs: any(s["name"] == "Evaluating" for s in sb.records("person_stages")),
    ),
    "create_import": (
        lambda ids: [{"name": "Trade show leads"}],
        [("POST", r"^/v2/imports(\.json)?$")],
        lambda sb, recs: any(i["name"] == "Trade show leads" for i in sb.records("imports")),
    ),
    "create_cadence_membership": (
        lambda ids: [{"person_id": ids["free_person"], "cadence_id": ids["cadence"], "user_id": ids["user"]}],
        [("POST", r"^/v2/cadence_memberships(\.json)?$")],
        lambda sb, recs: any(
            m["person"]["id"] == recs[0]["person_id"]
            and m["cadence"]["id"] == recs[0]["cadence_id"]
            and m["currently_on_cadence"]
            for m in sb.records("cadence_memberships")
        ),
    ),
    "create_external_configuration": (
        lambda ids: [{"external_type": "erp_opportunity", "object_type": "opportunities"}],
        [("POST", r"^/v2/external/configurations$")],
        lambda sb, recs: any(
            c["external_type"] == "erp_opportunity" for c in sb.records("external_configurations")
        ),
    ),
    "create_opportunity_stage": (
        lambda ids: [{"name": "Signed and Sealed", "order": 99}],
        [("POST", r"^/v2/opportunity_stages$")],
        lambda sb, recs: any(s["name"] == "Signed and Sealed" for s in sb.records("opportunity_stages")),
    ),
    "redact_account_and_people": (
        lambda ids: [{"account_id": ids["account"], "dry_run": True}],
        [("POST", r"^/v2/data_control/account_and_people_redaction$")],
        lambda sb, recs: any(
            r["account_id"] == recs[0]["account_id"] for r in sb.records("redaction_requests")
        ),
    ),
    "raw_request": (
        lambda ids: [{"method": "PUT", "path": f"/v2/people/{ids['person']}.json", "body": {"title": "Raw"}}],
        [("PUT", r"^/v2/people/\d+\.json$")],
        lambda sb, recs: any(p["title"] == "Raw" for p in sb.records("people")),
    ),
}


def _first(resource):
    return lambda sb: sb.records(resource)[0]["id"]


def _gone(resource, key="id"):
    return lambda sb, recs: all(r["id"] != recs[0][key] for r in sb.records(resource))


def _has(resource, **fields):
    return lambda sb, recs: any(all(r.get(k) == v for k, v in fields.items()) for r in sb.records(resource))


def _updated(resource, **fields):
    return lambda sb, recs: all(
        next(r for r in sb.records(resource) if r["id"] == recs[0]["id"]).get(k) == v
        for k, v in fields.items()
    )


# Sinks whose record needs an id that exists: (resource for the id, record fields, method, path, effect)
BY_ID = {
    "update_person": None,  # in CASES
    "delete_person": ("people", {}, "DELETE", r"^/v2/people/\d+\.json$", _gone("people")),
    "update_note": (
        "notes",
        {"content": "Edited"},
        "PUT",
        r"^/v2/notes/\d+\.json$",
        _updated("notes", content="Edited"),
    ),
    "delete_note": ("notes", {}, "DELETE", r"^/v2/notes/\d+\.json$", _gone("notes")),
    "update_custom_field": (
        "custom_fields",
        {"name": "Renamed field"},
        "PUT",
        r"^/v2/custom_fields/\d+\.json$",
        _updated("custom_fields", name="Renamed field"),
    ),
    "delete_custom_field": (
        "custom_fields",
        {},
        "DELETE",
        r"^/v2/custom_fields/\d+\.json$",
        _gone("custom_fields"),
    ),
    "update_person_stage": (
        "person_stages",
        {"name": "Renamed stage"},
        "PUT",
        r"^/v2/person_stages/\d+\.json$",
        _updated("person_stages", name="Renamed stage"),
    ),
    "delete_person_stage": (
        "person_stages",
        {},
        "DELETE",
        r"^/v2/person_stages/\d+\.json$",
        _gone("person_stages"),
    ),
    "update_import": (
        "imports",
        {"name": "Renamed import"},
        "PUT",
        r"^/v2/imports/\d+\.json$",
        _updated("imports", name="Renamed import"),
    ),
    "delete_import": ("imports", {}, "DELETE", r"^/v2/imports/\d+\.json$", _gone("imports")),
    "update_task": (
        "tasks",
        {"subject": "Rescheduled"},
        "PUT",
        r"^/v2/tasks/\d+\.json$",
        _updated("tasks", subject="Rescheduled"),
    ),
    "delete_cadence_membership": (
        "cadence_memberships",
        {},
        "DELETE",
        r"^/v2/cadence_memberships/\d+\.json$",
        lambda sb, recs: (
            not next(m for m in sb.records("cadence_memberships") if m["id"] == recs[0]["id"])[
                "currently_on_cadence"
            ]
        ),
    ),
    "delete_external_mapping": (
        "external_mappings",
        {},
        "DELETE",
        r"^/v2/external/mappings/\d+$",
        _gone("external_mappings"),
    ),
    "delete_opportunity": ("opportunities", {}, "DELETE", r"^/v2/opportunities/\d+$", _gone("opportunities")),
    "upsert_person_by_id": (
        "people",
        {"title": "Upserted by id"},
        "POST",
        r"^/v2/person_upserts\.json$",
        _updated("people", title="Upserted by id"),
    ),
    "delete_opportunity_person": (
        "opportunity_people",
        {},
        "DELETE",
        r"^/v2/opportunity_people/\d+$",
        _gone("opportunity_people"),
    ),
}
del BY_ID["update_person"]
for _sink, (_resource, _fields, _method, _path, _effect) in BY_ID.items():
    CASES[_sink] = (
        (lambda resource, fields: lambda ids: [{"id": ids["first"](resource), **fields}])(_resource, _fields),
        [(_method, _path)],
        _effect,
    )

CASES.update(
    {
        "upsert_account_by_crm_id": (
            lambda ids: [
                {
                    "crm_id": "001CRMTEST",
                    "crm_id_type": "salesforce",
                    "name": "CRM Co",
                    "domain": "crm-co.example",
                }
            ],
            [("POST", r"^/v2/account_upserts\.json$")],
            _has("accounts", crm_id="001CRMTEST", name="CRM Co"),
        ),
        "upsert_person_by_crm_id": (
            lambda ids: [
                {
                    "crm_id": "003CRMTEST",
                    "crm_id_type": "salesforce",
                    "email_address": "crm.person@example.com",
                    "last_name": "Crm",
                }
            ],
            [("POST", r"^/v2/person_upserts\.json$")],
            _has("people", crm_id="003CRMTEST", email_address="crm.person@example.com"),
        ),
        "create_activity": (
            lambda ids: [{"task_id": ids["open_task"]}],
            [("POST", r"^/v2/activities\.json$")],
            (
                lambda sb, recs: (
                    next(t for t in sb.records("tasks") if t["id"] == recs[0]["task_id"])["current_state"]
                    == "completed"
                )
            ),
        ),
        "update_bulk_job": (
            lambda ids: [{"id": ids["open_job"], "name": "Renamed job"}],
            [("PUT", r"^/v2/bulk_jobs/\d+$")],
            _updated("bulk_jobs", name="Renamed job"),
        ),
        "delete_external_configuration": (
            lambda ids: [
                {
                    "id": ids["create"](
                        "/v2/external/configurations", {"external_type": "throwaway", "object_type": "people"}
                    )
                }
            ],
            [("DELETE", r"^/v2/external/configurations/\d+$")],
            _gone("external_configurations"),
        ),
        "create_bulk_job": (
            lambda ids: [{"name": "nightly people", "type": "person/upsert"}],
            [("POST", r"^/v2/bulk_jobs$")],
            _has("bulk_jobs", name="nightly people", state="open"),
        ),
        "create_job_data": (
            lambda ids: [{"bulk_job_id": ids["open_job"], "email_address": "job.data@example.com"}],
            [("POST", r"^/v2/bulk_jobs/\d+/job_data$")],
            lambda sb, recs: (
                next(j for j in sb.records("bulk_jobs") if j["id"] == recs[0]["bulk_job_id"])["total"] >= 1
            ),
        ),
        "create_external_mapping": (
            lambda ids: [
                {
                    "external_type": "crm",
                    "external_id": "CONTACT-NEW",
                    "object_type": "people",
                    "object_id": ids["person"],
                }
            ],
            [("POST", r"^/v2/external/mappings$")],
            _has("external_mappings", external_id="CONTACT-NEW"),
        ),
        "upsert_people_by_external_id": (
            lambda ids: [
                {
                    "external_type": "crm",
                    "external_id": "CONTACT-XYZ",
                    "email_address": "ext.person@example.com",
                    "first_name": "Ext",
                }
            ],
            [("POST", r"^/v2/external/ids/crm/people/CONTACT-XYZ$")],
            _has("people", email_address="ext.person@example.com", first_name="Ext"),
        ),
        "upsert_accounts_by_external_id": (
            lambda ids: [
                {
                    "external_type": "crm",
                    "external_id": "ACCT-XYZ",
                    "name": "Ext Co",
                    "domain": "ext-co.example",
                }
            ],
            [("POST", r"^/v2/external/ids/crm/accounts/ACCT-XYZ$")],
            _has("accounts", domain="ext-co.example"),
        ),
        "upsert_opportunities_by_external_id": (
            lambda ids: [
                {
                    "external_type": "crm_opportunity",
                    "external_id": "OPP 1/2",
                    "name": "Enterprise - Rhythm",
                    "account_id": ids["account"],
                    "stage_name": "Ready to Close",
                    "amount": 100000.0,
                    "close_date": "2024-09-30",
                    "tags": ["Q3"],
                    "custom_fields": {"Primary Contact": "Champion"},
                }
            ],
            [("POST", r"^/v2/external/ids/crm_opportunity/opportunities/OPP%201%2F2$")],
            _has("opportunities", name="Enterprise - Rhythm"),
        ),
        "delete_opportunity_by_external_id": (
            lambda ids: [{"external_type": "crm_opportunity", "external_id": "OPP-00002"}],
            [("DELETE", r"^/v2/external/ids/crm_opportunity/opportunities/OPP-00002$")],
            lambda sb, recs: (
                [m["deleted"] for m in sb.records("external_mappings") if m["external_id"] == "OPP-00002"]
                == [True]
            ),
        ),
        "create_opportunity_person": (
            lambda ids: [{"opportunity_id": ids["first"]("opportunities"), "person_id": ids["free_person"]}],
            [("POST", r"^/v2/opportunity_people$")],
            lambda sb, recs: any(
                op["person"]["id"] == recs[0]["person_id"]
                and op["opportunity"]["id"] == recs[0]["opportunity_id"]
                for op in sb.records("opportunity_people")
            ),
        ),
    }
)

TESTED_ELSEWHERE = {"bulk_upsert_people"}  # test_bulk_upsert_accounts_for_every_person


def test_every_sink_has_an_end_to_end_case():
    assert set(CONNECTION.sinks) - TESTED_ELSEWHERE == set(CASES)


@pytest.mark.parametrize("sink", sorted(CASES))
def test_each_sink_sends_exactly_the_expected_request(sb, tmp_path, sink):
    make, expected, effect = CASES[sink]
    records = make(case_ids(sb))
    run, writes = send(sb, tmp_path, sink, records)
    assert run.rejected == []
    assert len(writes) == len(expected), writes
    for entry, (method, path) in zip(writes, expected, strict=True):
        assert entry["method"] == method and re.match(path, entry["path"]), entry
        assert entry["status"] < 300, entry
    template = CONNECTION.sinks[sink]
    for entry in writes:
        sent = {**(entry.get("body") or {}), **{k: v[0] for k, v in (entry.get("query") or {}).items()}}
        assert not (set(sent) & template.exclude), f"excluded attributes sent: {set(sent) & template.exclude}"
    assert effect(sb, records), f"{sink}: the sandbox shows no effect"
    assert run.states == [{"bookmarks": {"input": {"done": True}}}]


def test_excluded_attributes_and_body_are_exact(sb, tmp_path):
    account = one(sb, "accounts")
    record = {
        "id": account["id"],
        "name": "Exact",
        "industry": "Testing",
        "created_at": "2020-01-01T00:00:00Z",
        "updated_at": "2020-01-02T00:00:00Z",
    }
    _, writes = send(sb, tmp_path, "update_account", [record])
    assert writes[0]["body"] == {"name": "Exact", "industry": "Testing"}


def test_mixed_input_every_record_accounted_for(sb, tmp_path):
    first, second = sb.records("accounts")[:2]
    records = [
        {"id": first["id"], "name": "Valid"},
        {"id": "not-a-number", "name": "Invalid"},  # fails the stream's schema
        {"name": "No id"},  # missing id_field: never sent
        {"id": second["id"], "domain": first["domain"]},  # 422: domain has already been taken
        {"id": 987654321, "name": "Unknown"},  # 404
    ]
    schema = {
        "type": "object",
        "properties": {
            "id": {"type": ["integer", "null"]},
            "name": {"type": "string"},
            "domain": {"type": "string"},
        },
    }
    run, writes = send(
        sb,
        tmp_path,
        "update_account",
        records,
        stream="accounts",
        schema=schema,
        stream_sinks={"accounts": "update_account"},
    )
    assert len(writes) == 3  # the invalid record and the one without id were never sent
    assert next(a for a in sb.records("accounts") if a["id"] == first["id"])["name"] == "Valid"
    assert next(a for a in sb.records("accounts") if a["id"] == second["id"])["domain"] == second["domain"]
    rejected = {r["record"].get("name", r["record"].get("domain")): r for r in run.rejected}
    assert set(rejected) == {"Invalid", "No id", first["domain"], "Unknown"}
    assert rejected["Invalid"]["reason"] == "invalid" and "not-a-number" in rejected["Invalid"]["error"]
    assert rejected["No id"]["reason"] == "missing_id" and "'id'" in rejected["No id"]["error"]
    assert rejected["No id"]["request"] is None
    duplicate = rejected[first["domain"]]
    assert duplicate["status"] == 422 and "domain: has already been taken" in duplicate["error"]
    assert duplicate["request"]["method"] == "PUT" and duplicate["request"]["body"] == {
        "domain": first["domain"]
    }
    assert duplicate["request"]["headers"]["Authorization"] == "***"
    assert rejected["Unknown"]["status"] == 404
    summary = json.loads(run.stderr.split("Target summary: ", 1)[1].splitlines()[0])
    assert summary["accepted"] + summary["rejected"] == len(records)
    assert summary["accepted"] == 1
    assert sb.api_key not in run.stderr + json.dumps(run.rejected)


def test_state_is_passed_on_after_each_batch_once_every_record_before_it_is_written(tmp_path):
    from sandbox.testing import running_sandbox

    with running_sandbox(budget=100_000) as sb:  # 2,500 requests: more than the usual budget's minute
        _check_state_after_each_batch(sb, tmp_path)


def _check_state_after_each_batch(sb, tmp_path):
    domains = [f"checkpoint-{i}.example" for i in range(2500)]
    lines = [
        {
            "type": "SCHEMA",
            "stream": "accounts",
            "schema": {"type": "object", "properties": {}},
            "key_properties": [],
        }
    ]
    for n, domain in enumerate(domains, 1):
        lines.append({"type": "RECORD", "stream": "accounts", "record": {"name": domain, "domain": domain}})
        if n % 500 == 0:
            lines.append({"type": "STATE", "value": {"bookmarks": {"accounts": {"sent": n}}}})
    stdin = tmp_path / "input.jsonl"
    stdin.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {
                "base_url": sb.url,
                "api_key": sb.api_key,
                "sink": "upsert_account",
                "batch_records": 1000,
                "rejected_path": str(tmp_path / "rejected.jsonl"),
            }
        )
    )
    emitted = []
    with open(stdin, "rb") as feed, open(tmp_path / "stderr.log", "wb") as log:
        target = subprocess.Popen(
            [TARGET, "--config", str(config)], stdin=feed, stdout=subprocess.PIPE, stderr=log
        )
        # Read as it comes: each STATE must already be covered by the API's data.
        for line in target.stdout:
            sent = json.loads(line)["bookmarks"]["accounts"]["sent"]
            present = {a["domain"] for a in sb.records("accounts")}
            assert set(domains[:sent]) <= present, f"STATE {sent} passed on before its records were written"
            emitted.append(sent)
        assert target.wait(timeout=120) == 0, (tmp_path / "stderr.log").read_text()[-3000:]
    # After each batch of 1,000 the state received before it, then the next one as soon as it comes.
    assert emitted == [500, 1000, 1500, 2000, 2500]


def test_records_of_a_batch_message_are_checked_and_sent_like_the_others(sb, tmp_path):
    import gzip

    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "domain": {"type": "string"}},
    }
    batch_file = tmp_path / "accounts-0001.jsonl.gz"
    with gzip.open(batch_file, "wt") as handle:
        for record in (
            {"name": "Batched", "domain": "batched.example"},
            {"name": "Typed", "domain": 123},
            {"name": "No Domain"},
        ):
            handle.write(json.dumps(record) + "\n")
    lines = [
        {"type": "SCHEMA", "stream": "accounts", "schema": schema, "key_properties": ["domain"]},
        {"type": "RECORD", "stream": "accounts", "record": {"name": "Inline", "domain": "inline.example"}},
        {
            "type": "BATCH",
            "stream": "accounts",
            "encoding": {"format": "jsonl", "compression": "gzip"},
            "manifest": [batch_file.as_uri()],
        },
    ]
    sb.clear_journal()
    run = run_target(
        {"base_url": sb.url, "api_key": sb.api_key, "sink": "upsert_account"},
        tmp_path,
        "\n".join(json.dumps(line) for line in lines) + "\n",
    )
    assert run.returncode == 0, run.stderr[-3000:]
    sent = sorted(e["body"]["domain"] for e in sb.journal() if e["path"] == "/v2/account_upserts.json")
    assert sent == ["batched.example", "inline.example"]
    assert [(r["reason"], r["record"]["name"]) for r in run.rejected] == [
        ("invalid", "Typed"),
        ("missing_id", "No Domain"),
    ]
    assert "domain" in run.rejected[0]["error"]


def test_fail_fast_stops_after_the_first_rejection(sb, tmp_path):
    records = [{"id": 987654321, "name": "Unknown"}] * 3
    sb.clear_journal()
    cfg = {
        "base_url": sb.url,
        "api_key": sb.api_key,
        "sink": "update_account",
        "max_rejected": 0,
        "concurrency": 1,
    }
    run = run_target(cfg, tmp_path, singer_lines("accounts", records))
    assert run.returncode == 1
    assert "more than max_rejected=0" in run.stderr
    assert len(run.rejected) == 1


def test_dry_run_renders_without_sending(sb, tmp_path):
    plan = tmp_path / "plan.jsonl"
    run, writes = send(
        sb, tmp_path, "update_account", [{"id": 5, "name": "Planned"}], dry_run=True, requests_path=str(plan)
    )
    assert writes == []
    (line,) = plan.read_text().splitlines()
    assert json.loads(line)["url"] == f"{sb.url}/v2/accounts/5.json"
    assert json.loads(line)["body"] == {"name": "Planned"}


def test_responses_are_captured_per_request(sb, tmp_path):
    captured = tmp_path / "responses.jsonl"
    run, _ = send(
        sb,
        tmp_path,
        "upsert_account",
        [{"name": "Captured", "domain": "captured.example"}],
        responses_path=str(captured),
    )
    (line,) = captured.read_text().splitlines()
    response = json.loads(line)
    assert response["status"] == 200 and response["request"]["method"] == "POST"
    assert '"domain": "captured.example"' in json.dumps(response["response"])


def test_batched_job_data_groups_records_by_job(sb, tmp_path):
    jobs = []
    for _ in range(2):
        _, writes = send(sb, tmp_path, "create_bulk_job", [{"name": "import", "type": "person/upsert"}])
        jobs.append(max(j["id"] for j in sb.records("bulk_jobs")))
    records = [{"bulk_job_id": jobs[i % 2], "email_address": f"batch{i}@example.com"} for i in range(7)]
    run, writes = send(sb, tmp_path, "create_job_data", records)
    assert run.rejected == []
    assert sorted(len(w["body"]["data"]) for w in writes) == [3, 4]
    assert all("bulk_job_id" not in item for w in writes for item in w["body"]["data"])


def test_round_trip_tap_to_target_changes_nothing_that_should_not_change(sb, tmp_path):
    before = {a["id"]: a for a in sb.records("accounts")}
    tap = run_tap(tap_config(sb), tmp_path, streams=["accounts"])
    lines = [json.dumps(m) for m in tap.messages]
    # A stream map keeps the writable fields: embedded objects and CRM links are Salesloft's own.
    keep = {name: name for name in ("id", "name", "domain", "industry", "website", "description")}
    cfg = {
        "base_url": sb.url,
        "api_key": sb.api_key,
        "stream_sinks": {"accounts": "upsert_account"},
        "stream_maps": {"accounts": {**keep, "__else__": None}},
    }
    sb.clear_journal()
    run = run_target(cfg, tmp_path, "\n".join(lines) + "\n")
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.rejected == []
    after = {a["id"]: a for a in sb.records("accounts")}
    assert set(after) == set(before)  # upsert by domain: no account created
    for account_id, account in before.items():
        for field in (
            "name",
            "domain",
            "industry",
            "website",
            "crm_id",
            "description",
            "owner",
            "custom_fields",
        ):
            assert after[account_id].get(field) == account.get(field), (account_id, field)
    assert run.states[-1] == tap.states[-1]


def test_bulk_upsert_accounts_for_every_person(sb, tmp_path):
    total, every = 100_000, 400  # 250 of them invalid
    records = [
        {"email_address": f"bulk{i}@example.com", "first_name": f"P{i}", "last_name": "Bulk"}
        for i in range(total)
    ]
    for i in range(0, total, every):
        records[i] = {"first_name": "no email", "last_name": f"x{i}", "email_address": f"not-an-email-{i}"}
    run, writes = send(sb, tmp_path, "bulk_upsert_people", records, stream="people")
    journal = sb.journal()
    assert len(journal) <= 48, [(e["method"], e["path"]) for e in journal]  # a few dozen for 100,000 people
    assert max(len(e["body"]["data"]) for e in journal if e["path"].endswith("/job_data")) <= 5000
    bad = {r["record"]["email_address"] for r in run.rejected}
    assert bad == {f"not-an-email-{i}" for i in range(0, total, every)}
    assert all(r["error"] for r in run.rejected)
    emails = {p["email_address"] for p in sb.records("people")}
    good = {r["email_address"] for r in records if not r["email_address"].startswith("not-an-email")}
    assert good <= emails
    summary = json.loads(run.stderr.split("Target summary: ", 1)[1].splitlines()[0])
    assert summary["accepted"] == len(good) and summary["rejected"] == len(bad)
