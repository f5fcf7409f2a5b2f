"""A larger sandbox starts quickly and serves every page fast (the full 100,000-people figure
comes from ``python -m sandbox.bench``)."""

from __future__ import annotations

import time

import httpx

from sandbox.bench import read_cursor, read_pages
from sandbox.testing import running_sandbox

PEOPLE = 20_000


def test_twenty_thousand_people_start_and_serve_quickly():
    started = time.perf_counter()
    with running_sandbox(sizes={"people": PEOPLE}, budget=10**9) as sb:
        assert time.perf_counter() - started < 15
        with httpx.Client(base_url=sb.url, headers=sb.headers, trust_env=False, timeout=30) as client:
            t0 = time.perf_counter()
            assert read_pages(client, PEOPLE // 100) == PEOPLE
            assert read_cursor(client) == PEOPLE
            assert time.perf_counter() - t0 < 10
        pages = [e for e in sb.journal() if e["path"] == "/v2/people.json"]
        assert max(int(e["query"]["page"][0]) for e in pages if "page" in e["query"]) == PEOPLE // 100
        assert sum(e["cost"] for e in pages) > 2 * len(pages), "deep pages cost more"
