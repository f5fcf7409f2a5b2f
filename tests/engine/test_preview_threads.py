"""A preview of a stream's first request leaves no reading thread behind (the CLI runs it once; a tool that
imports it may run it many times)."""

from __future__ import annotations

import threading

from connector.harness import first_stream_request
from connector.templates import load_bundled


def test_a_stream_preview_shuts_its_fetching_threads_down():
    connection = load_bundled("salesloft")
    for _ in range(3):
        exchange = first_stream_request(connection, "people", {"api_key": "preview-key"})
        assert exchange.method == "GET" and "/v2/people.json" in exchange.url
    assert [t.name for t in threading.enumerate() if t.name.startswith("fetch")] == []
