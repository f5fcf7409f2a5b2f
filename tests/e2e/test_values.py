"""``connector values``: value/label pairs read from a stream of the sandbox, as a table or JSON."""

from __future__ import annotations

import json

import pytest
from cli_support import isolated_templates, run_cli
from helpers import run_tap, tap_config, write_json


@pytest.fixture
def config(sandbox, tmp_path):
    return str(write_json(tmp_path / "config.json", tap_config(sandbox)))


def test_owners_are_listed_as_a_table_of_ids_and_names(sandbox, config):
    result = run_cli("values", "salesloft", "users", "--config", config)
    assert result.returncode == 0, result.stderr
    users = sorted(sandbox.records("users"), key=lambda u: u["id"])
    width = max(len("VALUE"), *(len(str(u["id"])) for u in users))
    expected = [f"{'VALUE'.ljust(width)}  LABEL"] + [
        f"{str(u['id']).ljust(width)}  {u['name']}" for u in users
    ]
    assert result.stdout.splitlines() == expected
    assert result.stderr.strip().splitlines()[-1] == (
        f"users: {len(users)} distinct id/name pairs from {len(users)} records"
    )


def test_a_template_declares_its_value_field_dispositions_are_chosen_by_name(sandbox, config):
    result = run_cli("values", "salesloft", "call_dispositions", "--config", config, "--json")
    assert result.returncode == 0, result.stderr
    names = [d["name"] for d in sorted(sandbox.records("call_dispositions"), key=lambda d: d["id"])]
    assert json.loads(result.stdout) == [{"value": name, "label": name} for name in dict.fromkeys(names)]


def test_a_nested_field_lists_the_distinct_values_records_carry(sandbox, config):
    """Where the API has no list (locales, custom-field values, role IDs), the records' own values are one."""
    result = run_cli(
        "values",
        "salesloft",
        "people",
        "--config",
        config,
        "--value",
        "custom_fields.Lead Source",
        "--label",
        "custom_fields.Lead Source",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    people = sandbox.records("people")
    sources = [(p.get("custom_fields") or {}).get("Lead Source") for p in people]
    got = [row["value"] for row in json.loads(result.stdout)]
    assert sorted(got) == sorted({s for s in sources if s})
    assert len(got) < len(people)
    missing = sum(1 for s in sources if not s)
    summary = result.stderr.strip().splitlines()[-1]
    assert summary.startswith(f"people: {len(got)} distinct ") and f"from {len(people)} records" in summary
    if missing:
        assert f"{missing} records without a custom_fields.Lead Source left out" in summary

    locales = run_cli(
        "values",
        "salesloft",
        "people",
        "--config",
        config,
        "--value",
        "locale",
        "--label",
        "locale",
        "--json",
    )
    assert sorted(r["value"] for r in json.loads(locales.stdout)) == sorted(
        {p["locale"] for p in people if p.get("locale")}
    )


def test_a_label_that_is_the_value_is_one_column(sandbox, config):
    result = run_cli("values", "salesloft", "tags", "--config", config)
    assert result.returncode == 0, result.stderr
    names = [t["name"] for t in sorted(sandbox.records("tags"), key=lambda t: t["id"])]
    assert result.stdout.splitlines() == ["VALUE", *dict.fromkeys(names)]


def test_refused_credentials_are_one_line_without_the_secret(sandbox, tmp_path):
    config = write_json(tmp_path / "config.json", tap_config(sandbox, api_key="wrong-secret-4f2a"))
    result = run_cli("values", "salesloft", "tags", "--config", str(config))
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.strip().splitlines()[-1] == (
        "connector values: GET /v2/tags.json -> 401: Invalid access token"
    )
    assert "wrong-secret-4f2a" not in result.stderr and "Traceback" not in result.stderr


def test_a_child_stream_is_read_through_its_parent(sandbox, config):
    result = run_cli("values", "salesloft", "bulk_job_results", "--config", config, "--json")
    assert result.returncode == 0, result.stderr
    assert sorted(r["value"] for r in json.loads(result.stdout)) == sorted(
        r["id"] for r in sandbox.records("bulk_job_results")
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["users", "--label", "nickname"],
            "--label nickname: users records have no field 'nickname' (fields: ",
        ),
        (["usres"], "usres"),
        (["upsert_account"], "upsert_account is a sink; values reads a stream"),
    ],
)
def test_what_cannot_be_listed_is_a_usage_error_before_any_request(sandbox, config, args, message):
    start = sandbox.journal()[-1]["seq"] if sandbox.journal() else 0
    result = run_cli("values", "salesloft", *args, "--config", config)
    assert result.returncode == 2
    assert message in result.stderr and result.stdout == ""
    assert sandbox.journal(since=start) == []


def test_a_values_declaration_naming_no_field_is_a_template_error(tmp_path):
    env = isolated_templates(tmp_path, "salesloft")
    stream = tmp_path / "templates/salesloft/streams/tags.yaml"
    stream.write_text(stream.read_text().replace("values: {value: name", "values: {value: nmae"))
    result = run_cli("validate", "salesloft", env=env, cwd=tmp_path)
    assert result.returncode == 1
    assert "streams/tags.yaml:7: values.value: 'nmae' is not a property of tags.json" in result.stdout


def test_unlinked_call_data_records_are_those_without_a_call(sandbox, tmp_path):
    start = sandbox.journal()[-1]["seq"] if sandbox.journal() else 0
    run = run_tap(tap_config(sandbox), tmp_path, streams=["unlinked_call_data_records"])
    expected = sorted(r["id"] for r in sandbox.records("call_data_records") if r.get("call") is None)
    assert expected, "the sandbox has call data records without a call"
    assert sorted(r["id"] for r in run.records["unlinked_call_data_records"]) == expected
    sent = [e for e in sandbox.journal(since=start) if e["path"] == "/v2/call_data_records.json"]
    assert sent and all(e["query"]["has_call"] == ["false"] for e in sent)


def test_limit_stops_reading_once_enough_pairs_were_found(sandbox, tmp_path):
    config = str(write_json(tmp_path / "one.json", tap_config(sandbox, max_concurrency=1)))  # no page ahead
    sandbox.clear_journal()
    result = run_cli("values", "salesloft", "people", "--config", config, "--limit", "3", "--json")
    assert result.returncode == 0, result.stderr
    people = sorted(sandbox.records("people"), key=lambda p: (p["updated_at"], p["id"]))
    assert [row["value"] for row in json.loads(result.stdout)] == [p["id"] for p in people[:3]]
    assert result.stderr.strip().splitlines()[-1].endswith("; stopped at --limit 3, more may exist")
    assert len([e for e in sandbox.journal() if e["path"] == "/v2/people.json"]) == 1  # one page, not all


@pytest.mark.parametrize("limit", ["0", "-2", "many"])
def test_a_limit_that_is_not_a_positive_count_is_a_usage_error(sandbox, config, limit):
    result = run_cli("values", "salesloft", "people", "--config", config, "--limit", limit)
    assert result.returncode == 2 and "--limit" in result.stderr
