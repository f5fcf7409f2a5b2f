"""Rendering rules that protect users."""

from __future__ import annotations

import datetime as dt

import pytest

from connector.builder import RequestBuilder
from connector.errors import RenderError, UnsafeRequestError
from connector.render import CompiledValue, Origin, compile_mapping, compile_text, compile_url, encode_segment
from connector.templates import RequestTemplate

ORIGIN = Origin.parse("http://127.0.0.1:8555")


def request(url: str, body=None, method="PUT", params=None) -> RequestTemplate:
    return RequestTemplate(
        method=compile_text(method),
        url=compile_url(url),
        params=compile_mapping(params),
        headers={},
        body=CompiledValue(body) if body not in (None, "record") else body,
    )


def test_record_values_are_data_not_template_source():
    builder = RequestBuilder(
        request("/v2/accounts/{{ record.id }}", body={"name": "{{ record.name }}"}), ORIGIN, {}
    )
    built = builder.build({"record": {"id": 1, "name": "{{ 7*7 }}"}})
    assert built.body == {"name": "{{ 7*7 }}"}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("../admin", "..%2Fadmin"),
        ("..", "%2E%2E"),
        (".", "%2E"),
        ("a?b=1", "a%3Fb%3D1"),
        ("x#frag", "x%23frag"),
        ("%2F", "%252F"),
        ("a b", "a%20b"),
        (42, "42"),
    ],
)
def test_path_values_are_one_escaped_segment(value, expected):
    builder = RequestBuilder(request("/v2/accounts/{{ record.id }}.json"), ORIGIN, {})
    built = builder.build({"record": {"id": value}})
    assert built.url == f"http://127.0.0.1:8555/v2/accounts/{expected}.json"


def test_path_filter_allows_segments_but_not_climbing_out():
    builder = RequestBuilder(request("{{ record.path | path }}", method="GET"), ORIGIN, {})
    assert builder.build({"record": {"path": "/v2/people/5"}}).url == "http://127.0.0.1:8555/v2/people/5"
    with pytest.raises(UnsafeRequestError):
        builder.build({"record": {"path": "/v2/../../etc"}})
    # a protocol-relative value cannot name a host: it becomes a path on the connection's origin
    assert (
        builder.build({"record": {"path": "//evil.example/x"}}).url == "http://127.0.0.1:8555/evil.example/x"
    )


def test_a_template_cannot_reach_another_host():
    builder = RequestBuilder(request("{{ record.url }}", method="GET"), ORIGIN, {})
    with pytest.raises(UnsafeRequestError):
        builder.build({"record": {"url": "http://evil.example/steal"}})
    with pytest.raises(UnsafeRequestError):
        ORIGIN.absolute("http://evil.example/v2/people?page=2")
    assert ORIGIN.absolute("/v2/people?page=2") == "http://127.0.0.1:8555/v2/people?page=2"


def test_undefined_variables_fail_with_their_name():
    builder = RequestBuilder(request("/v2/accounts/{{ record.id }}"), ORIGIN, {})
    with pytest.raises(RenderError, match="'dict object' has no attribute 'id'"):
        builder.build({"record": {"name": "no id"}})
    with pytest.raises(RenderError, match="undefined"):
        compile_text("{{ nothing }}").render({})


def test_sandbox_exposes_nothing_beyond_the_context():
    for source in (
        "{{ ''.__class__.__mro__ }}",
        "{{ config.__init__.__globals__ }}",
        "{{ lipsum }}",
        "{{ range(10) | list }}",
        "{{ cycler }}",
        "{{ namespace() }}",
        "{{ dict(a=1) }}",
    ):
        with pytest.raises(RenderError):
            compile_text(source).render({"config": {}})


def test_lone_expression_keeps_native_type_and_datetimes_render_iso():
    when = dt.datetime(2024, 3, 5, 14, 22, 31, 123456, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
    assert compile_text("{{ records }}").render({"records": [1, 2]}) == [1, 2]
    assert compile_text("at {{ when }}").render({"when": when}) == "at 2024-03-05T14:22:31.123456-05:00"
    assert encode_segment(when) == "2024-03-05T14%3A22%3A31.123456-05%3A00"
    builder = RequestBuilder(request("/x", method="GET", params={"since": "{{ record.when }}"}), ORIGIN, {})
    assert builder.build({"record": {"when": when}}).params == {"since": "2024-03-05T14:22:31.123456-05:00"}


def test_constant_and_config_parts_are_rendered_once():
    template = request("/v2/{{ config.kind }}", method="GET", params={"a": "1", "b": "{{ config.kind }}"})
    builder = RequestBuilder(template, ORIGIN, {"kind": "people"})
    assert builder._url == "http://127.0.0.1:8555/v2/people"
    assert builder._static_params == {"a": "1", "b": "people"}
    assert not builder._params
