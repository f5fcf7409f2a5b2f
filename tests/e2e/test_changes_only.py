"""changes_only: target-salesloft as a process against the sandbox sends a record only when its request
differs from the one the API last accepted for it; everything else is counted as unchanged."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import logged_json, run_target, singer_lines

SCHEMA = {"type": "object", "properties": {}, "additionalProperties": True}


@pytest.fixture(scope="module")
def sb():
    from sandbox.testing import running_sandbox

    with running_sandbox(bulk_latency=0.05) as handle:
        yield handle


def accounts(tag: str, count: int, **changes: dict) -> list[dict]:
    rows = [{"domain": f"{tag}-{i}.example", "name": f"{tag} {i}", "city": "Lyon"} for i in range(count)]
    for index, fields in changes.items():
        rows[int(index.lstrip("_"))].update(fields)
    return rows


def send(sb, tmp_path: Path, records: list[dict], *, sink: str = "upsert_account", **config):
    """One target run on ``records``; returns (run, summary, writes the sandbox journaled)."""
    sb.clear_journal()
    cfg = {
        "base_url": sb.url,
        "api_key": sb.api_key,
        "sink": sink,
        "changes_only": True,
        "state_db": str(tmp_path / "state.db"),
        "responses_path": str(tmp_path / "responses.jsonl"),
        **config,
    }
    for name in ("rejected.jsonl", "responses.jsonl"):
        (tmp_path / name).unlink(missing_ok=True)
    state = {"bookmarks": {"input": {"done": True}}}
    run = run_target(cfg, tmp_path, singer_lines("input", records, schema=SCHEMA, state=state))
    assert run.returncode == 0, run.stderr[-3000:]
    writes = [e for e in sb.journal() if e["method"] != "GET"]
    return run, logged_json(run.stderr, "Target summary: "), writes


def responses(tmp_path: Path) -> list[dict]:
    path = tmp_path / "responses.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def in_sandbox(sb, tag: str) -> dict[str, dict]:
    return {a["domain"]: a for a in sb.records("accounts") if a["domain"].startswith(f"{tag}-")}


def test_a_second_identical_run_sends_nothing_and_counts_every_record_unchanged(sb, tmp_path):
    records = accounts("same", 40)
    first, summary, writes = send(sb, tmp_path, records)
    assert len(writes) == 40 and summary["accepted"] == 40 and summary["unchanged"] == 0
    assert len(responses(tmp_path)) == 40

    second, summary, writes = send(sb, tmp_path, records)
    assert writes == []
    assert summary["accepted"] == 0 and summary["rejected"] == 0 and summary["unchanged"] == 40
    assert summary["by_stream"]["input"]["unchanged"] == 40
    assert second.rejected == [] and responses(tmp_path) == []  # an unchanged record is in neither file
    assert second.states[-1] == {"bookmarks": {"input": {"done": True}}}  # and its STATE still goes on


def test_only_the_changed_records_are_sent_and_the_api_gets_their_new_values(sb, tmp_path):
    records = accounts("few", 50)
    send(sb, tmp_path, records)
    changed = accounts("few", 50, _3={"city": "Oslo"}, _17={"name": "renamed"}, _41={"city": "Lima"})
    _, summary, writes = send(sb, tmp_path, changed)
    assert len(writes) == 3
    assert sorted(w["body"]["domain"] for w in writes) == [
        "few-17.example",
        "few-3.example",
        "few-41.example",
    ]
    assert summary["accepted"] == 3 and summary["unchanged"] == 47
    api = in_sandbox(sb, "few")
    assert api["few-3.example"]["city"] == "Oslo" and api["few-17.example"]["name"] == "renamed"

    _, summary, writes = send(sb, tmp_path, changed)  # and now those are what the API has
    assert writes == [] and summary["unchanged"] == 50


def test_a_rejected_record_is_not_remembered_so_the_next_run_tries_it_again(sb, tmp_path):
    records = accounts("rej", 10, _4={"owner_id": 999_999_999})  # no such user: 422
    run, summary, _ = send(sb, tmp_path, records)
    assert summary["accepted"] == 9 and summary["rejected"] == 1
    assert run.rejected[0]["record"]["domain"] == "rej-4.example"

    run, summary, writes = send(sb, tmp_path, records)
    assert [w["body"]["domain"] for w in writes] == ["rej-4.example"]
    assert summary["rejected"] == 1 and summary["unchanged"] == 9

    fixed = accounts("rej", 10)
    _, summary, writes = send(sb, tmp_path, fixed)
    assert [w["body"]["domain"] for w in writes] == ["rej-4.example"] and summary["accepted"] == 1
    assert "rej-4.example" in in_sandbox(sb, "rej")


def test_a_refused_change_keeps_what_the_api_has_and_a_failure_without_a_sure_answer_forgets_it(sb, tmp_path):
    records = accounts("back", 3)
    send(sb, tmp_path, records)
    # A 422: the API applied nothing, so the records as they were are still what it has.
    send(sb, tmp_path, accounts("back", 3, _1={"owner_id": 999_999_999}))
    _, summary, writes = send(sb, tmp_path, records)
    assert writes == [] and summary["unchanged"] == 3

    # A 500 on every attempt: the change may or may not have landed, so the record is sent next time.
    sb.configure(faults="rate=1,seed=1,kinds=500")
    try:
        _, summary, _ = send(sb, tmp_path, accounts("back", 3, _2={"city": "Oslo"}), max_attempts=1)
    finally:
        sb.configure(faults="rate=0")
    assert summary["rejected"] == 1 and summary["unchanged"] == 2
    _, summary, writes = send(sb, tmp_path, records)
    assert [w["body"]["domain"] for w in writes] == ["back-2.example"] and summary["unchanged"] == 2


def test_the_same_record_twice_in_one_input_ends_with_its_last_version(sb, tmp_path):
    first = accounts("twice", 2)
    send(sb, tmp_path, first)
    again = [*first, {**first[0], "city": "Oslo"}, first[0]]  # changed, then back to what the API had
    _, summary, writes = send(sb, tmp_path, again)
    # The first twice-0 is what the API has; the next two differ from what the API has when they arrive.
    assert summary["unchanged"] == 2
    assert [(w["body"]["domain"], w["body"]["city"]) for w in writes] == [
        ("twice-0.example", "Oslo"),
        ("twice-0.example", "Lyon"),
    ]
    assert in_sandbox(sb, "twice")["twice-0.example"]["city"] == "Lyon"
    _, summary, writes = send(sb, tmp_path, first)
    assert writes == [] and summary["unchanged"] == 2


def test_a_template_change_sends_every_record_again(sb, tmp_path):
    records = accounts("tmpl", 5)
    send(sb, tmp_path, records)
    # The same records through a sink whose request differs (update by domain as the upsert key, with
    # another exclusion): a copy of the connection with the template edited.
    import shutil

    from connector.templates import connection_dir

    folder = tmp_path / "salesloft"
    shutil.copytree(connection_dir("salesloft"), folder)
    sink = folder / "sinks" / "upsert_account.yaml"
    sink.write_text(sink.read_text().replace("exclude: [id, created_at, updated_at]", "exclude: [id, city]"))
    sb.clear_journal()
    config = tmp_path / "edited.json"
    config.write_text(
        json.dumps(
            {
                "base_url": sb.url,
                "api_key": sb.api_key,
                "sink": "upsert_account",
                "changes_only": True,
                "state_db": str(tmp_path / "state.db"),
                "rejected_path": str(tmp_path / "rejected.jsonl"),
            }
        )
    )
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "connector"), "target", str(folder), "--config", str(config)],
        input=singer_lines("input", records, schema=SCHEMA),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len([e for e in sb.journal() if e["method"] == "POST"]) == 5
    assert logged_json(proc.stderr, "Target summary: ")["unchanged"] == 0


def test_a_full_refresh_sends_everything_and_rebuilds_the_state(sb, tmp_path):
    records = accounts("refresh", 8)
    send(sb, tmp_path, records)
    _, summary, writes = send(sb, tmp_path, records, changes_only_refresh=True)
    assert len(writes) == 8 and summary["unchanged"] == 0 and summary["accepted"] == 8
    _, summary, writes = send(sb, tmp_path, records)
    assert writes == [] and summary["unchanged"] == 8


def test_a_dry_run_skips_unchanged_records_but_never_writes_the_state(sb, tmp_path):
    records = accounts("dry", 6)
    send(sb, tmp_path, records[:3])
    plan = tmp_path / "plan.jsonl"
    _, summary, writes = send(sb, tmp_path, records, dry_run=True, requests_path=str(plan))
    assert writes == [] and summary["unchanged"] == 3
    assert len(plan.read_text().splitlines()) == 3
    _, summary, writes = send(sb, tmp_path, records)
    assert len(writes) == 3 and summary["unchanged"] == 3


def test_changes_only_off_sends_everything_and_leaves_the_state_alone(sb, tmp_path):
    records = accounts("off", 4)
    send(sb, tmp_path, records)
    _, summary, writes = send(sb, tmp_path, records, changes_only=False)
    assert len(writes) == 4 and summary["unchanged"] == 0


def test_a_bulk_job_remembers_only_the_records_its_results_say_succeeded(sb, tmp_path):
    people = [{"email_address": f"bulk.{i}@changes.example", "first_name": f"B{i}"} for i in range(30)]
    people[7]["email_address"] = "not-an-email"  # fails inside the job
    _, summary, writes = send(sb, tmp_path, people, sink="bulk_upsert_people")
    assert summary["accepted"] + summary["rejected"] == 30
    failed = summary["rejected"]

    _, summary, writes = send(sb, tmp_path, people, sink="bulk_upsert_people")
    assert summary["unchanged"] == 30 - failed
    if failed:
        uploads = [w for w in writes if w["path"].endswith("/job_data")]
        assert len(uploads) == 1
    else:
        assert writes == []  # no job is created for no record

    people[3]["first_name"] = "changed"
    _, summary, writes = send(sb, tmp_path, people, sink="bulk_upsert_people")
    assert summary["unchanged"] == 29 - failed
    mine = {
        p["email_address"]: p for p in sb.records("people") if p["email_address"].endswith("@changes.example")
    }
    assert mine["bulk.3@changes.example"]["first_name"] == "changed"


CONNECTOR = str(Path(sys.executable).parent / "connector")


def connector(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([CONNECTOR, *args], input=stdin, capture_output=True, text=True, timeout=120)


def test_connector_state_shows_the_counts_and_forgets_a_record_or_a_sink(sb, tmp_path):
    db = str(tmp_path / "state.db")
    send(sb, tmp_path, accounts("st", 6))
    send(sb, tmp_path, [{"email_address": "st@changes.example", "first_name": "S"}], sink="upsert_person")
    shown = connector("state", "salesloft", "--state-db", db, "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["sinks"] == {"upsert_account": 6, "upsert_person": 1}
    assert "upsert_account" in connector("state", "salesloft", "--state-db", db).stdout

    # Named as the API compares domains (id_normalize: casefold, trim): " ST-2.Example " is st-2.example.
    forgot = connector("state", "salesloft", "--state-db", db, "--forget", "upsert_account", " ST-2.Example ")
    assert forgot.returncode == 0, forgot.stderr
    _, summary, writes = send(sb, tmp_path, accounts("st", 6))
    assert [w["body"]["domain"] for w in writes] == ["st-2.example"] and summary["unchanged"] == 5
    missing = connector("state", "salesloft", "--state-db", db, "--forget", "upsert_account", "nope.example")
    assert missing.returncode == 1 and "nothing stored" in missing.stdout

    assert (
        connector("state", "salesloft", "--state-db", db, "--forget-sink", "upsert_account").returncode == 0
    )
    _, summary, writes = send(sb, tmp_path, accounts("st", 6))
    assert len(writes) == 6 and summary["unchanged"] == 0
    assert json.loads(connector("state", "salesloft", "--state-db", db, "--json").stdout)["sinks"] == {
        "upsert_account": 6,
        "upsert_person": 1,
    }

    unknown = connector("state", "salesloft", "--state-db", db, "--forget-sink", "no_such_sink")
    assert unknown.returncode == 2 and "no sink 'no_such_sink'" in unknown.stderr
    absent = connector("state", "salesloft", "--state-db", str(tmp_path / "absent.db"))
    assert absent.returncode == 1 and "no state_db" in absent.stderr


def test_connector_target_full_refresh_sends_every_record_once(sb, tmp_path):
    records = accounts("flag", 5)
    send(sb, tmp_path, records)
    config = tmp_path / "flag.json"
    config.write_text(
        json.dumps(
            {
                "base_url": sb.url,
                "api_key": sb.api_key,
                "sink": "upsert_account",
                "changes_only": True,
                "state_db": str(tmp_path / "state.db"),
                "rejected_path": str(tmp_path / "rejected.jsonl"),
            }
        )
    )
    sb.clear_journal()
    lines = singer_lines("input", records, schema=SCHEMA)
    run = connector("target", "salesloft", "--config", str(config), "--full-refresh", stdin=lines)
    assert run.returncode == 0, run.stderr[-3000:]
    assert len([e for e in sb.journal() if e["method"] == "POST"]) == 5
    sb.clear_journal()
    run = connector("target", "salesloft", "--config", str(config), stdin=lines)
    assert run.returncode == 0 and [e for e in sb.journal() if e["method"] == "POST"] == []


@pytest.fixture(scope="module")
def pg_url():
    from pg_support import postgres_server

    with postgres_server() as url:
        yield url


def test_a_postgresql_state_is_shared_by_runs_anywhere_and_keeps_the_same_promises(sb, tmp_path, pg_url):
    """Two working folders stand for two machines: the second sees what the first's run stored."""
    machine_a, machine_b = tmp_path / "a", tmp_path / "b"
    machine_a.mkdir(), machine_b.mkdir()
    records = accounts("pg", 20, _5={"owner_id": 999_999_999})
    _, summary, writes = send(sb, machine_a, records, state_db=pg_url)
    assert len(writes) == 20 and summary["accepted"] == 19 and summary["rejected"] == 1

    _, summary, writes = send(sb, machine_b, records, state_db=pg_url)
    assert [w["body"]["domain"] for w in writes] == ["pg-5.example"]  # only the rejected one, tried again
    assert summary["unchanged"] == 19

    changed = accounts("pg", 20, _2={"city": "Oslo"}, _9={"city": "Rome"})
    _, summary, writes = send(sb, machine_a, changed, state_db=pg_url)
    assert sorted(w["body"]["domain"] for w in writes) == ["pg-2.example", "pg-5.example", "pg-9.example"]
    assert in_sandbox(sb, "pg")["pg-9.example"]["city"] == "Rome"

    shown = connector("state", "salesloft", "--state-db", pg_url, "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["sinks"] == {"upsert_account": 20}  # pg-5 was accepted this time


def test_a_second_run_on_the_same_postgresql_sink_is_refused(sb, tmp_path, pg_url):
    from connector.statestore import PostgresStore

    holder = PostgresStore(pg_url)  # another machine's run, in the middle of writing upsert_account
    try:
        holder.claim("salesloft", "upsert_account")
        sb.clear_journal()
        cfg = {
            "base_url": sb.url,
            "api_key": sb.api_key,
            "sink": "upsert_account",
            "changes_only": True,
            "state_db": pg_url,
        }
        run = run_target(cfg, tmp_path, singer_lines("input", accounts("pgheld", 3), schema=SCHEMA))
        assert run.returncode != 0
        assert "sink 'upsert_account' of 'salesloft' is being written by another run" in run.stderr
        assert [e for e in sb.journal() if e["method"] == "POST"] == []
    finally:
        holder.close()
    _, summary, writes = send(sb, tmp_path, accounts("pgheld", 3), state_db=pg_url)  # released: it runs
    assert len(writes) == 3


CRM_CONNECTION = """\
name: crmtest
description: Batch upserts that answer 207 with per-input errors.
base_url: "{{ config.base_url }}"
settings:
  - {name: base_url, type: string}
  - {name: token, type: string, secret: true}
auth:
  - {type: bearer, token: "{{ config.token }}"}
"""

CRM_SINK = """\
name: upsert_contacts
method: POST
url: /crm/v3/objects/contacts/batch/upsert
id_field: email
batch:
  size: 10
  item: {idProperty: email, id: "{{ record.email }}", properties: {firstname: "{{ record.firstname }}"}}
accept: [200, 207]
body: {inputs: "{{ records }}"}
results: {errors: errors, id: context.id, message: message}
"""


def test_a_batched_answer_with_per_item_results_stores_only_the_items_it_accepted(tmp_path):
    from sandbox.families.crm import running_crm

    folder = tmp_path / "crmtest"
    (folder / "sinks").mkdir(parents=True)
    (folder / "connection.yaml").write_text(CRM_CONNECTION)
    (folder / "sinks" / "upsert_contacts.yaml").write_text(CRM_SINK)
    contacts = [{"email": f"item{i}@changes.example", "firstname": f"I{i}"} for i in range(12)]
    contacts[4]["email"] = "not-an-email"  # the API names it in its errors; the others of its batch land
    with running_crm(size=5) as crm:
        config = tmp_path / "crm.json"
        config.write_text(
            json.dumps(
                {
                    "base_url": crm.url,
                    "token": crm.credentials["token"],
                    "sink": "upsert_contacts",
                    "changes_only": True,
                    "state_db": str(tmp_path / "state.db"),
                    "rejected_path": str(tmp_path / "rejected.jsonl"),
                }
            )
        )
        lines = singer_lines("contacts", contacts, schema=SCHEMA)
        runs = []
        for _ in range(2):
            run = connector("target", str(folder), "--config", str(config), stdin=lines)
            assert run.returncode == 0, run.stderr[-3000:]
            runs.append(logged_json(run.stderr, "Target summary: "))
    assert runs[0]["accepted"] == 11 and runs[0]["rejected"] == 1
    assert runs[1]["unchanged"] == 11 and runs[1]["rejected"] == 1 and runs[1]["accepted"] == 0


def test_a_state_db_that_cannot_be_used_stops_the_run_before_sending_with_a_clear_message(sb, tmp_path):
    not_a_db = tmp_path / "notes.txt"
    not_a_db.write_text("these are notes, not a database\n" * 100)
    sb.clear_journal()
    base = {"base_url": sb.url, "api_key": sb.api_key, "sink": "upsert_account", "changes_only": True}
    run = run_target({**base, "state_db": str(not_a_db)}, tmp_path, singer_lines("input", accounts("bad", 2)))
    assert run.returncode == 1
    assert f"state_db {not_a_db}: cannot open it as an SQLite database" in run.stderr
    assert [e for e in sb.journal() if e["method"] == "POST"] == []

    from pg_support import _free_port

    url = f"postgresql://someone:hunter2secret@127.0.0.1:{_free_port()}/nowhere"
    run = run_target({**base, "state_db": url}, tmp_path, singer_lines("input", accounts("bad", 2)))
    assert run.returncode == 1
    assert "state_db postgresql://someone:***@127.0.0.1:" in run.stderr
    assert "hunter2secret" not in run.stderr
    assert [e for e in sb.journal() if e["method"] == "POST"] == []
