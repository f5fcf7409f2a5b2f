"""Exact numbers in and out: the cases a float or a 64-bit integer would get wrong."""

from __future__ import annotations

from decimal import Decimal

import pytest

from connector import jsonio


@pytest.mark.parametrize(
    "text",
    [
        "12345678901234567.89",
        "123456789012345678901234567890",
        "-123456789012345678901234567890",
        "1E+999",
        "1E-400",
        "0.1",
        "1.5",
        "-0.0",
        "3.14159265358979",
        "18446744073709551615",
        "-9223372036854775808",
    ],
)
def test_a_number_is_written_back_as_the_number_read(text):
    value = jsonio.loads(f"[{text}]")[0]
    assert Decimal(jsonio.dumps(value).decode()) == Decimal(text)


def test_only_numbers_a_float_cannot_hold_become_decimals():
    assert jsonio.loads("[0.1, 1.5, 1e30, 12345678901234567.89, 1e999]") == [
        0.1,
        1.5,
        1e30,
        Decimal("12345678901234567.89"),
        Decimal("1E+999"),
    ]
    assert type(jsonio.loads("123456789012345678901234567890")) is int


def test_wide_integers_are_written_anywhere_in_a_document():
    value = {"a": [1, {"b": 10**30}], "c": (-(10**25),)}
    assert (
        jsonio.dumps(value)
        == b'{"a":[1,{"b":1000000000000000000000000000000}],"c":[-10000000000000000000000000]}'
    )


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (b'{"a": "\\ud83d"}', "surrogate"),
        (b'{"a": "\xff"}', "UTF-8"),
        (b"[" * 5000 + b"]" * 5000, "depth"),
        (b'{"a": ', "unexpected end"),
    ],
)
def test_what_is_not_json_is_one_error_with_the_reason(text, reason):
    with pytest.raises(jsonio.JSONDecodeError, match=reason):
        jsonio.loads(text)


def test_values_of_no_json_type_still_go_to_the_default_or_fail():
    assert jsonio.dumps({"x": Decimal("NaN"), "y": {1, 2}.__class__}, default=str) == (
        b'{"x":"NaN","y":"<class \'set\'>"}'
    )
    with pytest.raises(jsonio.JSONEncodeError):
        jsonio.dumps({"x": {}.items()})
