"""tap-salesloft reads the team, pending emails and caller IDs, and emits ids typed as the official
document types them (team templates: UUIDs, calendar events: the provider's string ids)."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import httpx
from helpers import by_id, run_tap, tap_config

ROOT = Path(__file__).resolve().parents[2]
TEAM_FIELDS = set(json.loads((ROOT / "specs" / "salesloft" / "team.json").read_text())["properties"])
STREAMS = ["team", "pending_emails", "caller_ids", "team_templates", "calendar_events"]


def _e164(display: str) -> str:
    return "+" + re.sub(r"\D", "", display)


def _schemas(run) -> dict[str, dict]:
    return {m["stream"]: m["schema"] for m in run.messages if m["type"] == "SCHEMA"}


def test_team_pending_emails_and_caller_ids_are_read(sandbox, tmp_path):
    people = [p for p in sandbox.records("people") if p.get("phone")]
    person = people[0]
    number = _e164(person["phone"])
    unknown = "+15550000000"
    config = tap_config(sandbox, caller_id_phone_numbers=[number, unknown])
    run = run_tap(config, tmp_path, streams=STREAMS)

    served = httpx.get(
        f"{sandbox.url}/v2/team.json", headers={"Authorization": f"Bearer {sandbox.api_key}"}
    ).json()["data"]
    assert run.records["team"] == [served]
    assert set(served) == TEAM_FIELDS and len(TEAM_FIELDS) == 20

    assert by_id(run.records["pending_emails"]) == by_id(sandbox.records("pending_emails"))

    callers = run.records["caller_ids"]
    carrying = {
        p["id"]
        for p in sandbox.records("people")
        if number in {_e164(p.get(f) or "") for f in ("phone", "mobile_phone", "home_phone")}
    }
    assert person["id"] in carrying
    assert sorted(c["person"]["id"] for c in callers) == sorted(carrying)
    assert all(c["phone_number"] == number for c in callers)  # nothing for the unknown number
    declared = set(_schemas(run)["caller_ids"]["properties"])
    assert all(set(c) == declared for c in callers)  # the partition value only as phone_number
    mine = next(c for c in callers if c["person"]["id"] == person["id"])
    assert mine["display_name"] == person["display_name"] and mine["title"] == person["title"]


def test_string_ids_are_strings_in_the_schema_and_the_records(sandbox, tmp_path):
    run = run_tap(tap_config(sandbox), tmp_path, streams=["team_templates", "calendar_events"])
    schemas = _schemas(run)
    for name in ("team_templates", "calendar_events"):
        assert schemas[name]["properties"]["id"]["type"] == "string"
        got = run.records[name]
        assert by_id(got) == by_id(sandbox.records(name))
        assert got and all(isinstance(r["id"], str) for r in got)
    for template in run.records["team_templates"]:
        uuid.UUID(template["id"])


def test_caller_ids_read_nothing_without_phone_numbers(sandbox, tmp_path):
    run = run_tap(tap_config(sandbox), tmp_path, streams=["caller_ids"])
    assert run.records.get("caller_ids", []) == []
    assert "caller_ids" in _schemas(run)
