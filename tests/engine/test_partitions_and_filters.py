"""Reading given records (a config list batched into one request parameter) and users' filters (the tap's
``stream_params``), each a connection folder written here and run by the real ``connector tap`` against a
small HTTP server on 127.0.0.1."""

from __future__ import annotations

from urllib.parse import parse_qs

import pytest
from cli_support import run_cli
from test_stream_safety import Answer, connection, serving, tap

from connector import streamparams
from connector.errors import TemplateErrors
from connector.templates import load_connection

ROWS = {n: {"id": n, "at": n * 10} for n in range(1, 8)}


def by_ids(request: dict) -> Answer:
    """A list endpoint with an ``ids[]`` filter and page numbers (two per page), like most REST APIs'."""
    query = parse_qs(request["query_string"])
    wanted = [int(v) for v in query.get("ids[]", [])]
    rows = [ROWS[i] for i in sorted(wanted) if i in ROWS]
    page = int(query.get("page", ["1"])[0])
    chunk = rows[(page - 1) * 2 : page * 2]
    return 200, {}, {"data": chunk, "next": page + 1 if page * 2 < len(rows) else None}


BATCHED = (
    "name: items\nurl: /items\nprimary_key: [id]\nrecords: data\n"
    "params: {per_page: 2, 'ids[]': '{{ partition }}'}\n"
    "pagination: {type: page_number, next: next}\n"
    "partitions: {values: '{{ config.account_ids }}', batch: 3, key: id}\n"
)


def test_a_config_list_read_in_batches_of_ids_with_the_missing_ones_named(tmp_path):
    with serving({"/items": by_ids}) as server:
        config = {"base_url": server.url, "account_ids": [1, "2", 99, 4, 5, "1", 6, 7]}  # 1 twice: read once
        result, records, states = tap(connection(tmp_path, BATCHED), config, tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert sorted(r["id"] for r in records) == [1, 2, 4, 5, 6, 7]
    batches = [parse_qs(r["query_string"]).get("ids[]") for r in server.seen if r["query"].get("page") == "1"]
    assert batches == [["1", "2", "99"], ["4", "5", "6"], ["7"]]
    assert "stream items: no record with id 99" in result.stderr
    # No bookmark to keep per value: the state does not list the values (or their batches).
    assert "partitions" not in states[-1]["bookmarks"].get("items", {})


def test_an_unset_or_empty_config_list_reads_nothing_and_is_no_error(tmp_path):
    folder = connection(tmp_path, BATCHED)
    with serving({"/items": by_ids}) as server:
        for config in ({"base_url": server.url}, {"base_url": server.url, "account_ids": []}):
            result, records, _ = tap(folder, config, tmp_path)
            assert result.returncode == 0, result.stderr[-2000:]
            assert records == []
        assert server.seen == []


FILTERED = (
    "name: items\nurl: /items\nprimary_key: [id]\nrecords: data\nreplication_key: at\n"
    "incremental: {param: since, format: epoch_seconds, record_format: epoch_seconds}\n"
    "filters: ['ids[]', {name: kind, description: Kind of item}]\n"
)


def filtered(request: dict) -> Answer:
    query = parse_qs(request["query_string"])
    wanted = {int(v) for v in query.get("ids[]", ROWS)}
    since = int(query.get("since", ["0"])[0])
    return 200, {}, {"data": [r for i, r in sorted(ROWS.items()) if i in wanted and r["at"] > since]}


def test_filters_reach_the_api_and_a_filtered_read_keeps_its_own_bookmark(tmp_path):
    folder = connection(tmp_path, FILTERED)
    with serving({"/items": filtered}) as server:
        config = {"base_url": server.url, "stream_params": {"items": {"ids": [2, 3], "kind": "a"}}}
        result, records, states = tap(folder, config, tmp_path)
        assert result.returncode == 0, result.stderr[-2000:]
        assert [r["id"] for r in records] == [2, 3]
        sent = parse_qs(server.seen[-1]["query_string"])
        assert sent["ids[]"] == ["2", "3"] and sent["kind"] == ["a"]
        # The filtered read's bookmark (30) is not the stream's: without the filter every record is read,
        # none skipped because the filtered run got past it.
        again, everything, later = tap(folder, {"base_url": server.url}, tmp_path, state=states[-1])
        assert again.returncode == 0, again.stderr[-2000:]
        assert [r["id"] for r in everything] == [1, 2, 3, 4, 5, 6, 7]
        assert "since" not in server.seen[-1]["query"]
        # And the filtered one resumes from its own bookmark.
        third, rest, _ = tap(folder, config, tmp_path, state=later[-1])
        assert third.returncode == 0 and rest == []
        assert server.seen[-1]["query"]["since"] == "30"


def test_an_unknown_stream_filter_or_value_stops_the_tap_before_any_request(tmp_path):
    folder = connection(tmp_path, FILTERED)
    cases = {
        "nosuch": (
            {"nosuch": {"kind": "a"}},
            "stream_params: unknown stream 'nosuch' (streams with filters: items)",
        ),
        "filter": (
            {"items": {"colour": "red"}},
            "stream_params.items: unknown filter 'colour' (filters of items: ids, kind)",
        ),
        "value": (
            {"items": {"kind": {"a": 1}}},
            "stream_params.items.kind: must be a string, number, boolean",
        ),
        "empty": ({"items": {"ids": []}}, "stream_params.items.ids: must be a string, number, boolean"),
        "one value": (
            {"items": {"kind": ["a", "b"]}},
            "stream_params.items.kind: takes one value, not a list",
        ),
    }
    with serving({"/items": filtered}) as server:
        for given, message in cases.values():
            result, records, _ = tap(folder, {"base_url": server.url, "stream_params": given}, tmp_path)
            assert result.returncode == 1, result.stderr[-2000:]
            assert message in result.stderr
            assert records == []
        assert server.seen == []


def test_a_filter_the_engine_sends_itself_is_refused_when_the_connection_loads(tmp_path):
    stream = FILTERED.replace("'ids[]'", "since, page, per_page") + "params: {per_page: 5}\n"
    stream += "pagination: {type: page_number}\n"
    result = run_cli("validate", str(connection(tmp_path, stream)))
    assert result.returncode == 1
    assert (
        "filters[0]: 'since' is a parameter the engine sends itself (incremental.param)"
        in result.stdout + result.stderr
    )
    assert (
        "filters[1]: 'page' is a parameter the engine sends itself (pagination.page_param)"
        in result.stdout + result.stderr
    )
    assert (
        "filters[2]: 'per_page' is a parameter the engine sends itself (params)"
        in result.stdout + result.stderr
    )


def test_filters_load_with_the_names_users_write_and_the_parameters_sent(tmp_path):
    stream = load_connection(connection(tmp_path, FILTERED)).streams["items"]
    assert {n: (f.param, f.description) for n, f in stream.filters.items()} == {
        "ids": ("ids[]", ""),
        "kind": ("kind", "Kind of item"),
    }


def test_stream_params_become_the_query_parameters_as_sent(tmp_path):
    folder = connection(tmp_path, FILTERED)
    params = streamparams.check(
        load_connection(folder), {"stream_params": {"items": {"ids": [1, "2"], "kind": True}}}
    )
    assert params == {"items": {"ids[]": ["1", "2"], "kind": "true"}}
    assert streamparams.check(load_connection(folder), {}) == {}
    with pytest.raises(streamparams.StreamParamsError, match=r"stream_params: must be an object"):
        streamparams.check(load_connection(folder), {"stream_params": ["items"]})


def test_an_incremental_child_stream_cannot_take_filters(tmp_path):
    child = FILTERED + "parent: items\n"
    folder = connection(tmp_path, FILTERED)
    (folder / "streams" / "child.yaml").write_text(child.replace("name: items", "name: child"))
    (folder / "specs" / "child.json").write_text((folder / "specs" / "items.json").read_text())
    with pytest.raises(TemplateErrors, match="an incremental child stream cannot take user filters"):
        load_connection(folder)


def test_a_config_list_value_that_is_not_a_string_or_number_stops_the_run_naming_it(tmp_path):
    with serving({"/items": by_ids}) as server:
        config = {"base_url": server.url, "account_ids": [1, {"id": 2}]}
        result, records, _ = tap(connection(tmp_path, BATCHED), config, tmp_path)
    assert result.returncode == 1
    assert "stream items: partitions.values item 1 is a dict" in result.stderr
    assert records == [] and server.seen == []
