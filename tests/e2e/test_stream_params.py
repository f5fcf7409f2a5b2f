"""tap-salesloft's ``stream_params`` as a process against the sandbox: the documented filters reach the API, a
typo stops the run before any request, and a filtered incremental read never costs the unfiltered one a record.
And the filters the Salesloft streams declare are the ones the official API document gives their endpoints."""

from __future__ import annotations

import json
import re

import pytest
from cli_support import REPO
from helpers import by_id, run_tap, settle, tap_config

from connector.templates import load_bundled

CONNECTION = load_bundled("salesloft")
OFFICIAL = REPO / "reference" / "salesloft" / "openapi-v2-2023-12.json"


def test_filters_reach_the_api_as_documented(sandbox, tmp_path):
    people = sandbox.records("people")
    accounts = sorted({p["account"]["id"] for p in people if p.get("account")})[:2]
    mapping = sandbox.records("external_mappings")[0]
    params = {
        "people": {"account_id": accounts},
        "external_mappings": {"external_id": mapping["external_id"], "object_type": mapping["object_type"]},
    }
    sandbox.clear_journal()
    run = run_tap(
        tap_config(sandbox, stream_params=params), tmp_path, streams=["people", "external_mappings"]
    )
    wanted = [p for p in people if p.get("account") and p["account"]["id"] in accounts]
    assert wanted and by_id(run.records["people"]) == by_id(wanted)
    same_id = [
        m
        for m in sandbox.records("external_mappings")
        if (m["external_id"], m["object_type"]) == (mapping["external_id"], mapping["object_type"])
    ]
    assert by_id(run.records["external_mappings"]) == by_id(same_id)
    sent = {e["path"]: e["query"] for e in sandbox.journal()}
    assert sent["/v2/people.json"]["account_id[]"] == [str(a) for a in accounts]
    assert sent["/v2/external/mappings"]["external_id"] == [mapping["external_id"]]


def test_list_and_boolean_filters_select_the_records_the_api_documents(sandbox, tmp_path):
    accounts = sandbox.records("accounts")
    tag = next(t for a in accounts for t in a.get("tags") or [])
    params = {"accounts": {"tag": [tag], "archived": False}}
    run = run_tap(tap_config(sandbox, stream_params=params), tmp_path, streams=["accounts"])
    wanted = [a for a in accounts if tag in (a.get("tags") or []) and a.get("archived_at") is None]
    assert wanted and len(wanted) < len(accounts)
    assert by_id(run.records["accounts"]) == by_id(wanted)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"peoples": {"ids": [1]}}, "stream_params: unknown stream 'peoples' (streams with filters: "),
        ({"people": {"tags": "vip"}}, "stream_params.people: unknown filter 'tags' (filters of people: "),
        ({"people_by_id": {"ids": [1]}}, "stream_params: stream without filters 'people_by_id'"),
        ({"people": {"ids": [{"id": 1}]}}, "stream_params.people.ids: must be a string, number, boolean"),
        ({"people": ["ids"]}, "stream_params.people: must be an object of filters to values (got list)"),
    ],
)
def test_an_unknown_stream_or_filter_stops_the_run_before_any_request(sandbox, tmp_path, params, message):
    sandbox.clear_journal()
    run = run_tap(tap_config(sandbox, stream_params=params), tmp_path, streams=["people"], check=False)
    assert run.returncode == 1
    assert message in run.stderr
    assert run.records == {}
    assert sandbox.journal() == []


def test_a_filtered_incremental_read_keeps_its_own_bookmark(sandbox, tmp_path):
    people = sandbox.records("people")
    account = next(p["account"]["id"] for p in people if p.get("account"))
    params = {"stream_params": {"people": {"account_id": account}}}
    filtered = run_tap(tap_config(sandbox, **params), tmp_path, streams=["people"])
    of_account = [p for p in people if p.get("account") and p["account"]["id"] == account]
    assert by_id(filtered.records["people"]) == by_id(of_account)
    # The filtered read got to the newest of the account's people; the others are older and newer. The
    # unfiltered stream has no bookmark yet, so it reads every one of them.
    everyone = run_tap(tap_config(sandbox), tmp_path, streams=["people"], state=filtered.states[-1])
    assert len(everyone.records["people"]) == len(people)
    state = everyone.states[-1]
    # Each resumes from its own bookmark: a change to one person of the account and one of another.
    other = next(p for p in people if not p.get("account") or p["account"]["id"] != account)
    sandbox.touch("people", ids=[of_account[0]["id"], other["id"]])
    settle()  # the next read's range ends at the API's present: past these edits
    again = run_tap(tap_config(sandbox, **params), tmp_path, streams=["people"], state=state)
    assert [r["id"] for r in again.records["people"]] == [of_account[0]["id"]]
    unfiltered = run_tap(tap_config(sandbox), tmp_path, streams=["people"], state=again.states[-1])
    assert sorted(r["id"] for r in unfiltered.records["people"]) == sorted([of_account[0]["id"], other["id"]])


# Query parameters of a list endpoint that are not filters: paging, sorting, counts.
NOT_FILTERS = {
    "sort_by",
    "sort_direction",
    "per_page",
    "page",
    "include_paging_counts",
    "limit_paging_counts",
}
# Documented parameters a stream does not offer, and why.
LEFT_OUT = {
    "include_meetings_settings": "changes what a record holds, not which records",
}


def documented_filters(operation: dict) -> set[str]:
    """The filters of one list operation as a template declares them: ``name[]`` for lists, ``name[op]``
    for the documented comparison operators of a timestamp."""
    names = set()
    for param in operation.get("parameters", []):
        name, description = param["name"], param.get("description", "")
        internal = description.startswith("For internal use only")
        if param.get("in") != "query" or name in NOT_FILTERS or name in LEFT_OUT or internal:
            continue
        if "---CUSTOM---" in description:
            custom = json.loads(description.split("---CUSTOM---", 1)[1])
            names |= {f"{name}[{key['name']}]" for key in custom.get("keys", [])}
        elif param.get("schema", {}).get("type") == "object":
            continue  # a nested filter (custom_fields[Name]=value) or the id cursor: not a value or a list
        else:
            names.add(name + ("[]" if param.get("schema", {}).get("type") == "array" else ""))
    return names


def test_each_list_stream_declares_the_filters_of_the_official_document():
    paths = json.loads(OFFICIAL.read_text())["paths"]
    compared = 0
    for name, stream in CONNECTION.streams.items():
        url = re.sub(r"\{\{\s*parent\.id\s*\}\}", "{bulk_jobs_id}", stream.request.url.source)
        operation = next((paths[p]["get"] for p in (url, url + ".json") if "get" in paths.get(p, {})), None)
        if operation is None or stream.partitions is not None:
            continue  # a guide's endpoint (opportunities, external IDs), or a stream reading given records
        engine = set(stream.raw.get("params") or {}) | {"page", "per_page"}
        engine |= {p for p in (stream.incremental_param, getattr(stream.pagination, "param", None)) if p}
        engine |= (
            {stream.incremental.end_param} if stream.incremental and stream.incremental.end_param else set()
        )
        expected = {f for f in documented_filters(operation) if f.removesuffix("[]") not in engine}
        declared = {f.param for f in stream.filters.values()}
        assert declared == expected, f"{name}: declared {sorted(declared ^ expected)} differently"
        compared += 1
    assert compared >= 35
