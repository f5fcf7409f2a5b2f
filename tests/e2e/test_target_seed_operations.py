"""target-salesloft against the sandbox for the guides' operations that differ from the official API or
were missing: activities (docs/salesloft.md's example, run as written), opportunity delete by external
ID, import delete with undo, person upsert by id."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest
from helpers import run_target, singer_lines

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "salesloft.md"


@pytest.fixture(scope="module")
def sb():
    from sandbox.testing import running_sandbox

    with running_sandbox() as handle:
        yield handle


def send(sb, tmp_path, records, stream="input", schema=None, **config):
    """One target run in a folder of its own (its rejected file holds this run's records only)."""
    sb.clear_journal()
    cfg = {"base_url": sb.url, "api_key": sb.api_key, **config}
    folder = tmp_path / f"run{len(list(tmp_path.glob('run*')))}"
    folder.mkdir()
    run = run_target(cfg, folder, singer_lines(stream, records, schema=schema))
    assert run.returncode == 0, run.stderr[-3000:]
    return run, [e for e in sb.journal() if e["method"] != "GET"]


def api(sb, method, path, **kwargs):
    response = httpx.request(
        method, f"{sb.url}{path}", headers={"Authorization": f"Bearer {sb.api_key}"}, **kwargs
    )
    response.raise_for_status()
    return response.json()["data"] if response.content else None


# The guide's activity records, as an upstream tap declares them.
GUIDE_SCHEMA = {
    "type": "object",
    "properties": {
        "activity_type": {"type": ["string", "null"]},
        "person_id": {"type": ["integer", "null"]},
        "occurred_at": {"type": ["string", "null"], "format": "date-time"},
        "note": {"type": ["string", "null"]},
    },
}


def guide_example() -> dict:
    text = GUIDE.read_text()
    block = text[text.index("<!-- example: guide-activities -->") :]
    return json.loads(re.search(r"```json\n(.*?)```", block, re.S).group(1))


def test_the_guides_activity_record_is_refused_by_create_activity_as_documented(sb, tmp_path):
    person = sb.records("people")[4]
    guide = {"activity_type": "call", "person_id": person["id"], "occurred_at": "2024-05-01T10:00:00Z"}
    run, writes = send(sb, tmp_path, [{**guide, "note": "Left a voicemail"}], sink="create_activity")
    (rejected,) = run.rejected
    assert rejected["status"] == 422 and "action_id" in json.dumps(rejected["error"])
    task = next(t for t in sb.records("tasks") if t["current_state"] != "completed")
    run, writes = send(sb, tmp_path, [{"task_id": task["id"]}], sink="create_activity")
    assert run.rejected == [], run.rejected and [w["path"] for w in writes] == ["/v2/activities.json"]
    assert next(t for t in sb.records("tasks") if t["id"] == task["id"])["current_state"] == "completed"


def test_the_guides_activity_records_become_calls_and_notes_with_the_documented_config(sb, tmp_path):
    person = sb.records("people")[5]
    records = [
        {
            "activity_type": "call",
            "person_id": person["id"],
            "occurred_at": "2024-05-01T10:00:00Z",
            "note": "Left a voicemail",
        },
        {
            "activity_type": "other",
            "person_id": person["id"],
            "occurred_at": "2024-05-02T10:00:00Z",
            "note": "Met at the conference",
        },
    ]
    run, writes = send(sb, tmp_path, records, stream="activities", schema=GUIDE_SCHEMA, **guide_example())
    assert run.rejected == [], run.rejected
    assert sorted(w["path"] for w in writes) == ["/v2/activities/calls.json", "/v2/notes.json"]
    notes = {n["content"]: n for n in sb.records("notes")}
    call_note, note = notes["Left a voicemail"], notes["Met at the conference"]  # a call's notes are a note
    call = next(c for c in sb.records("calls") if c["id"] == call_note["call"]["id"])
    assert call["called_person"]["id"] == person["id"]
    assert (note["associated_type"], note["associated_with"]["id"], note["call"]) == (
        "person",
        person["id"],
        None,
    )


def test_an_opportunity_is_deleted_by_its_external_id_and_again_safely(sb, tmp_path):
    mapping = next(
        m for m in sb.records("external_mappings") if m["object_type"] == "opportunities" and not m["deleted"]
    )
    record = {"external_type": mapping["external_type"], "external_id": mapping["external_id"]}
    unknown = {"external_type": mapping["external_type"], "external_id": "OPP-NOPE"}
    run, writes = send(sb, tmp_path, [record, unknown], sink="delete_opportunity_by_external_id")
    assert {(w["method"], w["path"], w["status"]) for w in writes} == {
        ("DELETE", f"/v2/external/ids/{mapping['external_type']}/opportunities/OPP-NOPE", 404),
        (
            "DELETE",
            f"/v2/external/ids/{mapping['external_type']}/opportunities/{mapping['external_id']}",
            204,
        ),
    }
    (rejected,) = run.rejected
    assert rejected["record"] == unknown and rejected["status"] == 404
    assert mapping["object_id"] not in {o["id"] for o in sb.records("opportunities")}
    assert next(m for m in sb.records("external_mappings") if m["id"] == mapping["id"])["deleted"] is True
    again, _ = send(sb, tmp_path, [record], sink="delete_opportunity_by_external_id")
    assert again.rejected == []


def _imported_people(sb, tag):
    """Import X with a person only in X and one in X and Y; import Y with a person only in Y."""
    x = api(sb, "POST", "/v2/imports.json", json={"name": f"X {tag}"})["id"]
    y = api(sb, "POST", "/v2/imports.json", json={"name": f"Y {tag}"})["id"]

    def person(name, *imports):
        body = {"email_address": f"{name}.{tag}@example.com", "import_id": imports[0]}
        made = api(sb, "POST", "/v2/people.json", json=body)["id"]
        for later in imports[1:]:
            api(sb, "PUT", f"/v2/people/{made}.json", json={"import_id": later})
        return made

    return x, {"only_x": person("onlyx", x), "both": person("both", y, x), "only_y": person("onlyy", y)}


@pytest.mark.parametrize(
    "undo, deleted",
    [(None, set()), ("single", {"only_x"}), ("all", {"only_x", "both"})],
)
def test_an_import_is_deleted_with_the_people_undo_names(sb, tmp_path, undo, deleted):
    x, people = _imported_people(sb, undo or "none")
    record = {"id": x} if undo is None else {"id": x, "undo": undo}
    run, writes = send(sb, tmp_path, [record], sink="delete_import")
    assert run.rejected == []
    (write,) = writes
    assert write["path"] == f"/v2/imports/{x}.json" and write["query"] == ({"undo": [undo]} if undo else {})
    assert x not in {i["id"] for i in sb.records("imports")}
    left = {p["id"] for p in sb.records("people")}
    assert {name for name, pid in people.items() if pid not in left} == deleted


def test_an_undo_the_api_does_not_know_is_rejected_before_sending(sb, tmp_path):
    x, _ = _imported_people(sb, "bad")
    run, writes = send(sb, tmp_path, [{"id": x, "undo": "everything"}], sink="delete_import")
    assert writes == [] and [r["record"]["undo"] for r in run.rejected] == ["everything"]
    assert x in {i["id"] for i in sb.records("imports")}


def test_a_person_is_upserted_by_id_and_an_unknown_id_creates_nobody(sb, tmp_path):
    person = sb.records("people")[7]
    count = len(sb.records("people"))
    records = [{"id": person["id"], "title": "Chief Upserter"}, {"id": 69999999, "title": "Nobody"}]
    run, writes = send(sb, tmp_path, records, sink="upsert_person_by_id")
    assert [(w["path"], w["query"], w["body"]) for w in writes if w["status"] == 200] == [
        ("/v2/person_upserts.json", {"upsert_key": ["id"]}, {"id": person["id"], "title": "Chief Upserter"})
    ]
    (rejected,) = run.rejected
    assert rejected["record"]["id"] == 69999999 and rejected["status"] == 404
    now = next(p for p in sb.records("people") if p["id"] == person["id"])
    assert now["title"] == "Chief Upserter" and now["email_address"] == person["email_address"]
    assert len(sb.records("people")) == count
