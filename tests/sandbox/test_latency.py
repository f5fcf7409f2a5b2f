"""``--latency``: every answer takes that long in real seconds, and only its own connection waits."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx


def test_answers_take_the_latency_and_overlap_across_connections():
    from sandbox.testing import running_sandbox

    with running_sandbox(sizes={"people": 10}, latency=0.4, time_scale=60) as sb:

        def get(_: int) -> float:
            started = time.monotonic()
            with httpx.Client(base_url=sb.url, headers=sb.headers) as client:
                assert client.get("/v2/people.json").status_code == 200
            return time.monotonic() - started

        started = time.monotonic()
        with ThreadPoolExecutor(6) as pool:
            each = list(pool.map(get, range(6)))
        together = time.monotonic() - started
        assert min(each) >= 0.4
        assert together < 1.2, f"six answers of 0.4 s took {together:.2f} s: they did not overlap"
        assert sb.stats()["peak_in_flight"] == 6
        sb.configure(latency=0)
        assert get(0) < 0.3
