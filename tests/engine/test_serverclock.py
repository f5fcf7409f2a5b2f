"""The API's clock from its Date headers: never ahead of the server, and hostile headers change nothing."""

from __future__ import annotations

import datetime as dt
import email.utils
import time

import pytest

from connector.serverclock import UNKNOWN_MARGIN, ServerClock, parse_date


def http_date(at: dt.datetime) -> str:
    return email.utils.format_datetime(at.astimezone(dt.timezone.utc), usegmt=True)


def test_before_any_answer_the_local_clock_less_the_margin_stands_in():
    clock = ServerClock()
    before = dt.datetime.now(dt.timezone.utc)
    assert not clock.known
    assert before - UNKNOWN_MARGIN <= clock.now() <= dt.datetime.now(dt.timezone.utc) - UNKNOWN_MARGIN


def test_a_server_behind_the_local_clock_sets_the_present_and_it_moves_on():
    clock = ServerClock()
    server = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=10)
    clock.observe(http_date(server))
    first = clock.now()
    assert clock.known and server - dt.timedelta(seconds=1) <= first <= server + dt.timedelta(seconds=1)
    time.sleep(0.05)
    assert clock.now() > first  # the server's time goes on between answers


def test_the_latest_date_wins_and_a_stale_one_cannot_pull_the_clock_back():
    clock = ServerClock()
    now = dt.datetime.now(dt.timezone.utc)
    clock.observe(http_date(now - dt.timedelta(seconds=30)))
    clock.observe(http_date(now - dt.timedelta(minutes=5)))  # a cached answer's old Date
    assert clock.now() >= now - dt.timedelta(seconds=32)


def test_the_present_is_never_ahead_of_the_local_clock():
    clock = ServerClock()
    clock.observe(http_date(dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=30)))
    assert clock.now() <= dt.datetime.now(dt.timezone.utc)


@pytest.mark.parametrize(
    "header",
    [
        "",
        "yesterday",
        "x" * 10_000,
        "Mon, 01 Jan 0001 00:00:00 GMT",
        "Fri, 31 Dec 9999 23:59:59 GMT",
        "Sun, 06 Nov 1994 08:49:37",  # no zone
        "Thu, 01 Jan 1970 00:00:00 GMT",
        "\x00\r\nSet-Cookie: a=b",
    ],
)
def test_a_header_that_is_not_a_believable_date_is_ignored(header):
    clock = ServerClock()
    clock.observe(header)
    assert not clock.known and parse_date(header) is None
    assert ServerClock.ahead(dt.datetime.now(dt.timezone.utc), header) is False


def test_an_end_past_the_answers_date_is_ahead():
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    assert ServerClock.ahead(now, http_date(now - dt.timedelta(seconds=5)))
    assert not ServerClock.ahead(now - dt.timedelta(seconds=2), http_date(now))
