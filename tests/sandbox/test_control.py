"""The /__sandbox control endpoints: journal, records, touch, reset, config, stats; and the CLI."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime

import httpx
import pytest

from sandbox.__main__ import build_parser, options_from
from sandbox.testing import SandboxError


def instant(value: str) -> datetime:
    return datetime.fromisoformat(value)


def test_the_journal_records_requests_in_order(sb, api, anon):
    api.get("/v2/people.json?per_page=5&ids[]=1&ids[]=2&updated_at[gt]=2024-01-01T00:00:00Z")
    api.post("/v2/accounts", data={"name": "Jo", "domain": "jo.test", "tags[]": ["a", "b"]})
    api.put("/v2/people/1", json={"title": "x"})
    anon.get("/v2/users")
    entries = sb.journal()
    assert [e["seq"] for e in entries] == sorted(e["seq"] for e in entries)
    get, post, put, unauthorized = entries
    assert get["method"] == "GET" and get["path"] == "/v2/people.json"
    assert get["query"] == {
        "per_page": ["5"],
        "ids[]": ["1", "2"],
        "updated_at[gt]": ["2024-01-01T00:00:00Z"],
    }
    assert "updated_at%5Bgt%5D" in get["query_string"] or "updated_at[gt]" in get["query_string"]
    assert (get["status"], get["cost"], get["bearer"], get["fault"]) == (200, 1, True, None)
    assert post["body"] == {"name": "Jo", "domain": "jo.test", "tags": ["a", "b"]} and post["status"] == 200
    assert put["body"] == {"title": "x"} and put["status"] == 404
    assert (unauthorized["status"], unauthorized["bearer"], unauthorized["cost"]) == (401, False, 0)
    assert sb.journal(since=post["seq"]) == [put, unauthorized]
    sb.clear_journal()
    assert sb.journal() == []


def test_control_endpoints_are_free_unjournaled_and_fault_free(sb, api):
    sb.configure(faults={"rate": 1.0, "kinds": ["503"]}, budget=1)
    for _ in range(3):
        sb.records("people")
        sb.stats()
    assert sb.journal() == []
    assert api.get("/v2/me.json").status_code == 503


def test_records_of_every_resource(sb):
    assert len(sb.records("people")) == 250 and len(sb.records("accounts")) == 120
    assert sb.records("external_configurations") and sb.records("opportunity_people")
    assert sb.records("activities") == []
    with pytest.raises(SandboxError):
        sb.records("dragons")


def test_touch_gives_later_distinct_timestamps_that_incremental_reads_see(sb, api):
    people = sb.records("people")
    newest = max(instant(p["updated_at"]) for p in people)
    touched = sb.touch("people", count=5)
    assert [t["id"] for t in touched] == sorted(p["id"] for p in people)[:5]
    stamps = [instant(t["updated_at"]) for t in touched]
    assert len(set(stamps)) == 5 and min(stamps) > newest
    changed = api.get(
        "/v2/people",
        params={"updated_at[gt]": newest.isoformat(), "sort_by": "updated_at", "sort_direction": "ASC"},
    ).json()["data"]
    assert [p["id"] for p in changed] == [t["id"] for t in touched]
    by_ids = sb.touch("accounts", ids=[sb.records("accounts")[7]["id"]])
    assert len(by_ids) == 1 and by_ids[0]["id"] == sb.records("accounts")[7]["id"]
    with pytest.raises(SandboxError):
        sb.touch("accounts", ids=[1])


def test_reset_regenerates_the_data(sb, api):
    original = sb.records("accounts")
    api.post("/v2/accounts", json={"name": "Temp", "domain": "temp.test"})
    api.delete(f"/v2/accounts/{original[0]['id']}")
    sb.reset()
    assert sb.records("accounts") == original
    assert sb.journal() == []


def test_config_and_stats(sb):
    settings = sb.configure(budget=42, faults="rate=0.5,seed=9,kinds=500")
    assert (
        settings["budget"] == 42
        and settings["faults"]["rate"] == 0.5
        and settings["faults"]["kinds"] == ["500"]
    )
    stats = sb.stats()
    assert stats["records"]["people"] == 250 and stats["budget"]["per_minute"] == 42
    assert stats["id_ranges"]["people"] == {"first": 60000001, "next": 60000251}
    with pytest.raises(SandboxError):
        sb.configure(colour="blue")
    with pytest.raises(SandboxError):
        sb.configure(faults="kinds=teapot")


def test_unknown_control_paths_and_the_root(sb):
    with httpx.Client(base_url=sb.url, trust_env=False) as raw:
        assert raw.get("/__sandbox/nothing").status_code == 404
        assert raw.get("/").status_code == 404
        assert raw.get("/__sandbox/health").json() == {"ok": True}


def test_command_line_options():
    parser = build_parser()
    args = parser.parse_args(
        [
            "--port",
            "0",
            "--size",
            "people=100000",
            "--size",
            "accounts=500",
            "--faults",
            "rate=0.1,kinds=500,reset",
            "--no-retry-after",
            "--time-scale",
            "60",
        ]
    )
    options = options_from(args)
    assert options.sizes == {"people": 100000, "accounts": 500}
    assert (
        options.faults.kinds == ["500", "reset"] and options.retry_after is False and options.time_scale == 60
    )
    for bad in (["--host", "0.0.0.0"], ["--size", "dragons=3"], ["--size", "people"], ["--faults", "rate=3"]):
        with pytest.raises(ValueError):
            options_from(parser.parse_args(bad))


def test_the_module_refuses_a_non_loopback_host():
    result = subprocess.run(
        [sys.executable, "-m", "sandbox", "--host", "0.0.0.0", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2 and "loopback" in result.stderr
