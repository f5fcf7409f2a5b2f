"""The cost-based rate budget: deep pages cost more, an exhausted minute answers 429."""

from __future__ import annotations

import time

import pytest

from sandbox.budget import page_cost


@pytest.mark.parametrize(
    "page, cost",
    [(1, 1), (100, 1), (101, 3), (150, 3), (151, 8), (250, 8), (251, 10), (500, 10), (501, 30), (9999, 30)],
)
def test_cost_table(page, cost):
    assert page_cost(page) == cost


def test_headers_and_deep_page_costs_over_http(sb, api):
    sb.configure(budget=10_000)
    start = int(api.get("/v2/me.json").headers["x-ratelimit-remaining-minute"])
    expected_left = start
    for page, cost in ((1, 1), (101, 3), (151, 8), (251, 10), (501, 30)):
        response = api.get("/v2/people.json", params={"page": page, "per_page": 1})
        assert response.status_code == 200
        assert response.headers["x-ratelimit-endpoint-cost"] == str(cost)
        expected_left -= cost
        assert int(response.headers["x-ratelimit-remaining-minute"]) == expected_left
    # non-list requests cost 1, whatever their page parameter
    assert api.get("/v2/me.json", params={"page": 600}).headers["x-ratelimit-endpoint-cost"] == "1"
    assert api.post("/v2/notes", json={}).headers["x-ratelimit-endpoint-cost"] == "1"
    costs = [e["cost"] for e in sb.journal()]
    assert costs[1:6] == [1, 3, 8, 10, 30]


@pytest.mark.parametrize("retry_after", [True, False])
def test_over_budget_is_429_with_or_without_retry_after(sb, api, retry_after):
    sb.configure(budget=5, retry_after=retry_after, time_scale=30)  # a 2 s minute
    for _ in range(5):
        assert api.get("/v2/me.json").status_code == 200
    limited = api.get("/v2/me.json")
    assert limited.status_code == 429
    assert limited.json() == {"error": "API rate limit exceeded"}
    assert limited.headers["x-ratelimit-remaining-minute"] == "0"
    assert ("retry-after" in limited.headers) is retry_after
    if retry_after:
        assert 1 <= int(limited.headers["retry-after"]) <= 2
    assert api.get("/v2/people.json", params={"page": 101}).status_code == 429
    time.sleep(2.05)
    assert api.get("/v2/me.json").status_code == 200, "the next minute has a fresh budget"


def test_a_request_costlier_than_what_is_left_is_refused_without_charge(sb, api):
    sb.configure(budget=20)
    assert api.get("/v2/people.json", params={"page": 151}).status_code == 200  # 8, 12 left
    assert api.get("/v2/people.json", params={"page": 501}).status_code == 429  # 30 > 12
    response = api.get("/v2/people.json", params={"page": 151})  # 8 still fits
    assert response.status_code == 200 and response.headers["x-ratelimit-remaining-minute"] == "4"
