"""The concept models on their own: parsing (with file:line errors), and the behaviour each kind defines."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import msgspec
import pytest

from connector.bodies import encode, encode_form
from connector.errors import RenderError, TemplateError
from connector.incremental import Incremental, windows
from connector.instants import format_instant, instant_key, to_datetime
from connector.kinds import convert, parse_duration
from connector.pagination import PageRequest, Pagination, PaginationLoop, Paginator
from connector.render import Origin
from connector.responses import ResponseRule, ResponseRules
from connector.results import ItemMatcher, ItemResults
from connector.templates import field_name, line_of, load_yaml
from connector.transform import Transformation, Transformer

ORIGIN = Origin.parse("http://127.0.0.1:9")


def pagination(**fields):
    return msgspec.convert(fields, Pagination)


def answer(status=200, headers=None, url="http://127.0.0.1:9/items"):
    return SimpleNamespace(
        status_code=status, headers=headers or {}, links={}, request=SimpleNamespace(url=url)
    )


def walk(paginator: Paginator, pages: list[tuple[dict, list]], headers=None) -> list[PageRequest]:
    """Feed answers in order; return the requests the paginator asked for."""
    asked = [paginator.first()]
    for body, records in pages:
        nxt = paginator.next(asked[-1], answer(headers=headers), body, records)
        if nxt is None:
            break
        asked.append(nxt)
    return asked


# ---------------------------------------------------------------- pagination


def test_a_cursor_that_comes_back_stops_the_stream_with_an_error_naming_it():
    paginator = Paginator(
        pagination(type="cursor", param="after", from_response="next"), ORIGIN, None, "stream s: "
    )
    pages = [({"next": "A"}, [1]), ({"next": "B"}, [2]), ({"next": "A"}, [3])]
    with pytest.raises(PaginationLoop, match=r"stream s: cursor pagination came back .*'A'"):
        walk(paginator, pages)


def test_a_cursor_repeated_at_once_is_an_error_not_a_silent_end():
    paginator = Paginator(pagination(type="cursor", param="after", from_response="next"), ORIGIN, None)
    with pytest.raises(PaginationLoop):
        walk(paginator, [({"next": "A"}, [1]), ({"next": "A"}, [2])])


def test_a_next_page_number_that_repeats_is_an_error():
    paginator = Paginator(pagination(type="page_number", next="next_page"), ORIGIN, None)
    with pytest.raises(PaginationLoop, match="page 3 would request 2 again"):
        walk(paginator, [({"next_page": 2}, [1]), ({"next_page": 2}, [2])])


def test_has_more_false_ends_paging_and_from_record_gives_the_next_cursor():
    paginator = Paginator(
        pagination(type="cursor", param="starting_after", from_record="id", has_more="has_more"), ORIGIN, 2
    )
    asked = walk(
        paginator,
        [({"has_more": True}, [{"id": "c3"}, {"id": "c2"}]), ({"has_more": False}, [{"id": "c1"}]), ({}, [])],
    )
    assert [p.params.get("starting_after") for p in asked] == [None, "c2"]


def test_total_count_ends_paging_even_when_pages_are_full():
    paginator = Paginator(pagination(type="page_number", total="total", size_param="n", size=2), ORIGIN, 2)
    asked = walk(paginator, [({"total": 4}, [1, 2]), ({"total": 4}, [3, 4]), ({"total": 4}, [5, 6])])
    assert [p.params["page"] for p in asked] == [1, 2]
    assert asked[0].params == {"n": 2, "page": 1}


def test_stop_when_is_a_condition_over_the_answer():
    paginator = Paginator(pagination(type="offset", stop_when="response.meta.end_of_stream"), ORIGIN, 10)
    asked = walk(paginator, [({"meta": {}}, [1]), ({"meta": {"end_of_stream": True}}, [2])])
    assert [p.params["offset"] for p in asked] == [0, 1]


def test_cursor_from_a_response_header():
    paginator = Paginator(
        pagination(type="cursor", param="cursor", from_header="X-Next-Cursor"), ORIGIN, None
    )
    first = paginator.first()
    second = paginator.next(first, answer(headers={"X-Next-Cursor": "abc"}), None, [1])
    assert second is not None and second.params == {"cursor": "abc"}
    assert paginator.next(second, answer(headers={}), None, [2]) is None


def test_relative_next_links_resolve_against_the_request_url_and_stay_on_the_origin():
    paginator = Paginator(pagination(type="next_url", from_response="next"), ORIGIN, None)
    first = paginator.first()
    nxt = paginator.next(first, answer(url="http://127.0.0.1:9/api/items?p=1"), {"next": "?p=2"}, [1])
    assert nxt is not None and nxt.url == "http://127.0.0.1:9/api/items?p=2"
    from connector.errors import UnsafeRequestError

    with pytest.raises(UnsafeRequestError):
        paginator.next(nxt, answer(), {"next": "//evil.example/x"}, [1])


def test_a_cursor_needs_exactly_one_source():
    with pytest.raises(msgspec.ValidationError, match="exactly one of"):
        pagination(type="cursor", param="c")


# ---------------------------------------------------------------- loading errors


def test_model_errors_name_file_line_and_field(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("name: s\npagination:\n  type: cursor\n  param: c\n  from_response: n\n  sise: 3\n")
    doc = load_yaml(path)
    with pytest.raises(TemplateError) as caught:
        convert(doc["pagination"], Pagination, str(path), ["pagination"], doc, line_of, field_name)
    assert str(caught.value).startswith(f"{path}:6: pagination.sise: unknown field 'sise' (known: ")
    path.write_text("name: s\npagination: {type: pages}\n")
    doc = load_yaml(path)
    with pytest.raises(
        TemplateError, match=r":2: pagination.type: unknown type 'pages' \(known: none, page_number"
    ):
        convert(doc["pagination"], Pagination, str(path), ["pagination"], doc, line_of, field_name)


# ---------------------------------------------------------------- instants and incremental


def test_instants_convert_between_forms():
    assert format_instant("2024-03-01T10:00:00+02:00", "epoch_seconds") == 1709280000
    assert format_instant(1709280000, "iso") == "2024-03-01T08:00:00+00:00"
    assert format_instant(1709280000123, "date", "epoch_ms") == "2024-03-01"
    assert format_instant("2024-03-01T08:00:00.5Z", "epoch_ms") == 1709280000500
    assert format_instant("2024-03-01T08:00:00-05:00", "%Y%m%d %H") == "20240301 08"
    assert format_instant("2024-03-01T08:00:00.123456-05:00", "iso") == "2024-03-01T08:00:00.123456-05:00"
    assert instant_key("2024-03-01T10:00:00+02:00") == instant_key(1709280000)
    with pytest.raises(ValueError):
        to_datetime("1e400")
    with pytest.raises(ValueError):
        to_datetime("yesterday")


def test_durations():
    assert parse_duration(90) == 90
    assert parse_duration("2d") == 172800
    assert parse_duration("PT1H30M") == 5400
    with pytest.raises(ValueError):
        parse_duration("soon")


def test_windows_step_from_start_to_end_and_lookback_moves_the_start():
    spec = msgspec.convert({"window": "1d", "lookback": "1h", "param": "from", "format": "date"}, Incremental)
    start = spec.start_after_lookback("2024-03-01T00:00:00+00:00")
    end = dt.datetime(2024, 3, 3, 12, tzinfo=dt.timezone.utc)
    spans = [(spec.send(w.start), spec.send_end(w.end), w.last) for w in windows(spec, start, end)]
    # date-only ranges are whole days, inclusive: each day is read by exactly one window
    assert spans == [
        ("2024-02-29", "2024-02-29", False),
        ("2024-03-01", "2024-03-01", False),
        ("2024-03-02", "2024-03-02", False),
        ("2024-03-03", "2024-03-03", True),
    ]
    assert not spec.checkpoints_mid_stream


# ---------------------------------------------------------------- bodies


def test_form_bodies_use_bracket_notation():
    body = {
        "email": "a@b.c",
        "metadata": {"plan": "pro", "seats": 3},
        "preferred_locales": ["en", "fr"],
        "items": [{"price": "p_1", "quantity": 2}],
        "active": True,
        "note": None,
    }
    assert encode_form(body).decode() == (
        "email=a%40b.c&metadata[plan]=pro&metadata[seats]=3&preferred_locales[]=en&preferred_locales[]=fr"
        "&items[0][price]=p_1&items[0][quantity]=2&active=true"
    )
    assert encode_form("a=1&b=2") == b"a=1&b=2"
    with pytest.raises(RenderError):
        encode_form(["not", "a", "mapping"])


def test_a_templates_own_content_type_is_kept():
    content, headers = encode({"a": 1}, "json", {"content-type": "application/vnd.api+json"})
    assert content == b'{"a":1}' and headers == {"content-type": "application/vnd.api+json"}
    content, headers = encode({"a": [1, 2]}, "form", {})
    assert content == b"a[]=1&a[]=2" and headers["Content-Type"] == "application/x-www-form-urlencoded"


# ---------------------------------------------------------------- per-item results


def matcher(**fields) -> ItemMatcher:
    return ItemMatcher(msgspec.convert(fields, ItemResults))


def test_errors_by_id_reject_only_their_records():
    body = {"results": [{}, {}], "errors": [{"message": "bad email", "context": {"id": ["b@x"]}}]}
    outcomes = matcher(errors="errors", id="context.id", message="message").outcomes(
        body, ["a@x", "b@x", "c@x"]
    )
    assert [o.accepted for o in outcomes] == [True, False, True]
    assert outcomes[1].message == "bad email"


def test_an_error_that_names_no_record_leaves_the_others_unconfirmed():
    body = {"errors": [{"message": "boom"}]}
    outcomes = matcher(errors="errors", id="context.id", message="message").outcomes(body, ["a", "b"])
    assert [o.accepted for o in outcomes] == [False, False]
    assert {o.kind for o in outcomes} == {"unconfirmed"} and "boom" in outcomes[0].message


def test_mixed_results_by_index_with_an_ok_condition():
    body = {"results": [{"index": 1, "ok": False, "error": {"message": "dup"}}, {"index": 0, "ok": True}]}
    outcomes = matcher(results="results", ok="item.ok", index="index", message="error.message").outcomes(
        body, [None, None, None]
    )
    assert [o.accepted for o in outcomes] == [True, False, False]
    assert outcomes[1].message == "dup" and outcomes[2].kind == "unconfirmed"


def test_an_answer_without_items_is_told_apart_from_one_with_them():
    spec = matcher(results="results", ok="item.ok", index="index", message="error.message")
    assert not spec.lists_items({"error": "forbidden"}) and not spec.lists_items("Forbidden")
    assert not spec.lists_items({"results": []})
    assert spec.lists_items({"results": [{"index": 0, "ok": False}]})


# ---------------------------------------------------------------- transformations and response rules


def test_transformations_apply_in_order_and_keep_filters():
    steps = [
        msgspec.convert(s, Transformation)
        for s in (
            {"type": "add_fields", "fields": {"account_id": "{{ parent.id }}", "meta.source": "api"}},
            {"type": "remove_fields", "fields": ["secret", "nested.drop"]},
            {"type": "rename_fields", "fields": {"ts": "updated_at"}},
            {"type": "keep", "when": "record.status != 'deleted'"},
        )
    ]
    transformer = Transformer(steps)
    record = {"id": 1, "secret": "x", "nested": {"drop": 1, "keep": 2}, "ts": 5, "status": "open"}
    out = transformer.apply(record, {"parent": {"id": 9}, "config": {}})
    assert out == {
        "id": 1,
        "nested": {"keep": 2},
        "updated_at": 5,
        "status": "open",
        "account_id": 9,
        "meta": {"source": "api"},
    }
    assert transformer.apply({"status": "deleted"}, {"parent": {"id": 9}, "config": {}}) is None
    assert transformer.dropped == 1


def test_response_rules_match_status_and_body():
    rules = ResponseRules(
        [
            msgspec.convert(r, ResponseRule)
            for r in (
                {"status": [404, 403], "action": "ignore", "message": "{{ response.error }}"},
                {"when": "response.error.code == 'busy'", "action": "retry"},
            )
        ]
    )
    assert rules.decide(404, {"error": "project archived"}, {}) == ("ignore", "project archived")
    assert rules.decide(200, {"error": {"code": "busy"}}, {}) == ("retry", "")
    assert rules.decide(200, {"data": []}, {}) is None
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"action": "ignore"}, ResponseRule)


def test_the_committed_template_schema_is_what_the_models_generate():
    from connector import template_schema

    assert template_schema.main([]) == 0, "run: python -m connector.template_schema --write"


def test_templates_naming_one_shared_limit_share_one_pace_and_the_slowest_rate():
    from connector.throttle import Spacings

    spacings = Spacings()
    search_a, search_b = spacings.get(4, "search"), spacings.get(2, "search")
    own = spacings.get(4)
    assert search_a is search_b and search_a is not None and search_a.interval == 0.5
    assert own is not None and own is not search_a and own.interval == 0.25
    assert spacings.get(None, "search") is None
