"""A tap that cannot be sure stops loudly: paging that comes back, an order that is not what was declared.
And the auth kinds that fetch tokens. Each case is a connection folder written here, run by the real
``connector tap`` against a small HTTP server on 127.0.0.1 whose answers the test scripts."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cli_support import run_cli, write_json

Answer = tuple[int, dict[str, str], Any]


class Scripted:
    """The server's side: a handler per path, and every request it saw."""

    def __init__(self, routes: dict[str, Callable[[dict[str, Any]], Answer]]) -> None:
        self.routes = routes
        self.seen: list[dict[str, Any]] = []
        self.url = ""
        self.delay = 0.0  # seconds each answer takes
        self.in_flight = 0
        self.peak_in_flight = 0  # the most requests it was answering at once
        self.lock = threading.Lock()


@contextmanager
def serving(routes: dict[str, Callable[[dict[str, Any]], Answer]]) -> Iterator[Scripted]:
    scripted = Scripted(routes)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _answer(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            request = {
                "method": self.command,
                "path": parts.path,
                "query": {k: v[0] for k, v in parse_qs(parts.query).items()},
                "query_string": parts.query,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body.decode(),
            }
            with scripted.lock:
                scripted.seen.append(request)
                scripted.in_flight += 1
                scripted.peak_in_flight = max(scripted.peak_in_flight, scripted.in_flight)
            request["started"] = time.monotonic()
            time.sleep(scripted.delay)
            request["ended"] = time.monotonic()
            with scripted.lock:
                scripted.in_flight -= 1
            status, headers, payload = scripted.routes[parts.path](request)
            data = json.dumps(payload).encode()
            self.send_response(status)
            for name, value in {"Content-Type": "application/json", **headers}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _answer

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    scripted.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield scripted
    finally:
        server.shutdown()
        server.server_close()


CONNECTION = """\
name: scripted
base_url: "{{ config.base_url }}"
settings:
  - {name: base_url, type: string}
  - {name: api_key, type: string, secret: true}
  - {name: client_id, type: string}
  - {name: client_secret, type: string, secret: true}
  - {name: start_date, type: date-time}
  - {name: account_ids, type: array}
auth:
%s
retry: {max_attempts: 3, backoff_seconds: 0.05, max_backoff_seconds: 0.1}
"""
SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "at": {"type": "integer"},
        "account": {"type": ["string", "null"]},
        "kind": {"type": ["string", "null"]},
    },
}


def connection(tmp_path: Path, stream: str, auth: str = "  - {type: none}") -> Path:
    folder = tmp_path / "scripted"
    (folder / "streams").mkdir(parents=True)
    (folder / "specs").mkdir()
    (folder / "connection.yaml").write_text(CONNECTION % auth)
    (folder / "streams" / "items.yaml").write_text(stream)
    write_json(folder / "specs" / "items.json", SCHEMA)
    return folder


def tap(folder: Path, config: dict, tmp_path: Path, state: dict | None = None):
    args = ["tap", str(folder), "--config", str(write_json(tmp_path / "config.json", config))]
    if state is not None:
        args += ["--state", str(write_json(tmp_path / "state.json", state))]
    result = run_cli(*args, cwd=tmp_path, timeout=120)
    messages = [json.loads(line) for line in result.stdout.splitlines()]
    records = [m["record"] for m in messages if m["type"] == "RECORD"]
    states = [m["value"] for m in messages if m["type"] == "STATE"]
    return result, records, states


def test_a_cursor_cycle_stops_the_stream_with_an_error_and_no_state_past_it(tmp_path):
    cycle = {None: "A", "A": "B", "B": "A"}

    def items(request: dict) -> Answer:
        after = request["query"].get("after")
        return 200, {}, {"data": [{"id": len(request["query"]), "at": 1}], "next": cycle[after]}

    stream = "name: items\nurl: /items\nprimary_key: [id]\nrecords: data\n"
    stream += "pagination: {type: cursor, param: after, from_response: next}\n"
    with serving({"/items": items}) as server:
        result, records, _ = tap(connection(tmp_path, stream), {"base_url": server.url}, tmp_path)
        assert result.returncode != 0
        assert "stream items: cursor pagination came back to a page it already read" in result.stderr
        assert "'A'" in result.stderr
        assert [r["query"].get("after") for r in server.seen] == [None, "A", "B"]  # no fourth request


def test_a_next_page_that_repeats_at_once_is_an_error_not_a_silent_end(tmp_path):
    def items(request: dict) -> Answer:
        return 200, {}, {"data": [{"id": 1, "at": 1}], "paging": {"next_page": 2}}

    stream = "name: items\nurl: /items\nprimary_key: [id]\nrecords: data\n"
    stream += "pagination: {type: page_number, next: paging.next_page}\n"
    with serving({"/items": items}) as server:
        result, _, _ = tap(connection(tmp_path, stream), {"base_url": server.url}, tmp_path)
        assert result.returncode != 0 and "came back to a page it already read" in result.stderr
        assert len(server.seen) == 2


NEWEST_FIRST = [{"id": i, "at": 1000 + i} for i in range(2500, 0, -1)]


def newest_first(request: dict) -> Answer:
    since = int(request["query"].get("since", 0))
    rows = [r for r in NEWEST_FIRST if r["at"] >= since]
    start = int(request["query"].get("offset", 0))
    return 200, {}, {"data": rows[start : start + 100]}


def test_a_descending_stream_keeps_its_bookmark_until_the_pass_is_read_then_takes_the_newest(tmp_path):
    stream = (
        "name: items\nurl: /items\nprimary_key: [id]\nrecords: data\nreplication_key: at\n"
        "incremental: {param: since, format: epoch_seconds, record_format: epoch_seconds, order: descending}\n"
        "pagination: {type: offset, size_param: limit, size: 100}\n"
    )
    with serving({"/items": newest_first}) as server:
        folder = connection(tmp_path, stream)
        start = {"bookmarks": {"items": {"replication_key": "at", "replication_key_value": 2000}}}
        result, records, states = tap(folder, {"base_url": server.url}, tmp_path, state=start)
        assert result.returncode == 0, result.stderr[-2000:]
        assert len(records) == 1501  # at >= 2000
        values = [s["bookmarks"]["items"].get("replication_key_value") for s in states]
        assert values[:-1] and set(values[:-1]) == {2000}  # mid-stream STATEs resume from the start, safely
        assert values[-1] == 3500  # the newest, read first


def test_a_stream_declared_ascending_that_goes_backwards_stops_loudly(tmp_path):
    stream = (
        "name: items\nurl: /items\nprimary_key: [id]\nrecords: data\nreplication_key: at\n"
        "incremental: {param: since, format: epoch_seconds, record_format: epoch_seconds}\n"
        "pagination: {type: offset, size_param: limit, size: 100}\n"
    )
    with serving({"/items": newest_first}) as server:
        result, records, states = tap(connection(tmp_path, stream), {"base_url": server.url}, tmp_path)
        assert result.returncode != 0
        assert "declared ascending by at" in result.stderr and "incremental.order" in result.stderr
        assert all("replication_key_value" not in s.get("bookmarks", {}).get("items", {}) for s in states)


def test_client_credentials_are_exchanged_once_and_renewed_on_a_401(tmp_path):
    tokens = iter(["t1", "t2"])
    issued: list[str] = []

    def token(request: dict) -> Answer:
        form = parse_qs(request["body"])
        assert form["grant_type"] == ["client_credentials"] and form["scope"] == ["read"]
        issued.append(next(tokens))
        return 200, {}, {"access_token": issued[-1], "expires_in": 3600, "token_type": "bearer"}

    def items(request: dict) -> Answer:
        if request["headers"].get("authorization") != f"Bearer {issued[-1] if issued else ''}" or (
            issued == ["t1"] and request["query"].get("page") == "2"
        ):
            return 401, {}, {"error": "expired"}
        page = int(request["query"].get("page", 1))
        return 200, {}, {"data": [{"id": page, "at": page}] if page <= 3 else []}

    auth = (
        "  - type: oauth2_client_credentials\n    when: config.client_id\n"
        '    token_url: "{{ config.base_url }}/oauth/token"\n'
        '    client_id: "{{ config.client_id }}"\n    client_secret: "{{ config.client_secret }}"\n    scope: read\n'
    )
    stream = "name: items\nurl: /items\nprimary_key: [id]\nrecords: data\npagination: {type: page_number}\n"
    with serving({"/oauth/token": token, "/items": items}) as server:
        config = {"base_url": server.url, "client_id": "cid", "client_secret": "very-secret-value"}
        result, records, _ = tap(connection(tmp_path, stream, auth), config, tmp_path)
        assert result.returncode == 0, result.stderr[-2000:]
        assert [r["id"] for r in records] == [1, 2, 3]
        assert issued == ["t1", "t2"]  # once at the start, once after the 401
        assert "very-secret-value" not in result.stderr + result.stdout


def test_an_api_key_in_the_query_and_a_retry_rule_on_a_busy_body(tmp_path):
    calls = {"n": 0}

    def items(request: dict) -> Answer:
        assert request["query"]["api_key"] == "k-123"
        calls["n"] += 1
        if calls["n"] == 1:
            return 200, {}, {"ok": False, "error": {"code": "busy"}}
        return 200, {}, {"ok": True, "data": [{"id": 1, "at": 1}]}

    auth = (
        '  - {type: api_key, when: config.api_key, in: query, name: api_key, value: "{{ config.api_key }}"}\n'
    )
    stream = (
        "name: items\nurl: /items\nprimary_key: [id]\nrecords: data\n"
        "on_response:\n  - {when: \"response.error.code == 'busy'\", action: retry}\n"
    )
    with serving({"/items": items}) as server:
        result, records, _ = tap(
            connection(tmp_path, stream, auth), {"base_url": server.url, "api_key": "k-123"}, tmp_path
        )
        assert result.returncode == 0, result.stderr[-2000:]
        assert records == [{"id": 1, "at": 1}] and calls["n"] == 2
        assert "k-123" not in result.stderr


def test_one_read_per_value_of_a_config_list_with_a_gone_one_skipped_and_a_bookmark_each(tmp_path):
    rows = {"7": [{"id": 71, "at": 5}, {"id": 72, "at": 9}], "8": [{"id": 81, "at": 3}]}

    def account(request: dict) -> Answer:
        key = request["path"].rsplit("/", 1)[-1]
        if key not in rows:
            return 404, {}, {"error": "no such account"}
        since = int(request["query"].get("since", 0))
        return 200, {}, {"data": [r for r in rows[key] if r["at"] > since]}

    stream = (
        "name: items\nurl: '/accounts/{{ partition }}'\nprimary_key: [id]\nrecords: data\nreplication_key: at\n"
        "partitions: {values: '{{ config.account_ids }}'}\n"
        "incremental: {param: since, format: epoch_seconds, record_format: epoch_seconds}\n"
        "transform: [{type: add_fields, fields: {account: '{{ partition }}', kind: '{{ \"sub\" ~ \"ordinate\" }}'}}]\n"
        "on_response: [{status: [404], action: ignore}]\n"
    )
    folder = connection(tmp_path, stream)
    routes = {f"/accounts/{k}": account for k in ("7", "8", "9")}
    with serving(routes) as server:
        config = {"base_url": server.url, "account_ids": ["7", "9", "8"]}
        result, records, states = tap(folder, config, tmp_path)
        assert result.returncode == 0, result.stderr[-2000:]
        assert sorted((r["id"], r["account"], r["kind"]) for r in records) == [
            (71, "7", "subordinate"),
            (72, "7", "subordinate"),
            (81, "8", "subordinate"),
        ]
        assert "/accounts/9" in result.stderr and "ignored" in result.stderr
        partitions = states[-1]["bookmarks"]["items"]["partitions"]
        marks = {p["context"]["partition"]: p.get("replication_key_value") for p in partitions}
        assert marks["7"] == 9 and marks["8"] == 3
        rows["7"].append({"id": 73, "at": 12})
        again, more, _ = tap(folder, config, tmp_path, state=states[-1])
        assert again.returncode == 0 and [r["id"] for r in more] == [73]


# -- pages requested before their turn: counts and totals are hints, paging still decides

ROWS = [{"id": i, "at": i} for i in range(1, 1001)]  # 10 pages of 100


def counted_pages(claimed_pages: int | None, real_rows: list[dict]) -> Callable[[dict], Answer]:
    """Page numbers with a next_page, and a total_pages that may not tell the truth (None: the true count).
    A ``since`` parameter keeps the rows whose ``at`` is after it."""

    def items(request: dict) -> Answer:
        since = int(request["query"].get("since", 0))
        found = [r for r in real_rows if r["at"] > since]
        page = int(request["query"].get("page", 1))
        more = page * 100 < len(found)
        pages = claimed_pages if claimed_pages is not None else -(-len(found) // 100)
        paging = {"next_page": page + 1 if more else None, "total_pages": pages}
        return 200, {}, {"data": found[(page - 1) * 100 : page * 100], "paging": paging}

    return items


def read_items(
    tmp_path: Path, route: Callable[[dict[str, Any]], Answer], stream: str, **config: Any
) -> tuple[Any, list, list, Scripted]:
    """The tap reading ``/items`` from ``route`` (``delay``: seconds each answer takes; the rest is tap config):
    its run, records and states, and the server (its requests). The run must succeed."""
    with serving({"/items": route}) as server:
        server.delay = config.pop("delay", 0.0)
        result, records, states = tap(
            connection(tmp_path, stream), {"base_url": server.url, **config}, tmp_path
        )
    assert result.returncode == 0, result.stderr[-2000:]
    return result, records, states, server


COUNTED = (
    "name: items\nurl: /items\nprimary_key: [id]\nrecords: data\nparams: {per_page: 100}\n"
    "pagination: {type: page_number, next: paging.next_page, total_pages: paging.total_pages}\n"
)


def test_pages_known_from_the_count_are_requested_at_once_and_read_in_order(tmp_path):
    _, records, _, server = read_items(
        tmp_path, counted_pages(10, ROWS), COUNTED, delay=0.1, max_concurrency=4
    )
    assert records == ROWS  # every record once, in page order
    pages = sorted(int(r["query"]["page"]) for r in server.seen)
    assert pages == list(range(1, 11))  # each page requested once, none past the count
    assert server.peak_in_flight == 4  # max_concurrency pages at once, no more


def test_one_request_at_a_time_when_max_concurrency_is_one(tmp_path):
    _, records, _, server = read_items(
        tmp_path, counted_pages(10, ROWS), COUNTED, delay=0.05, max_concurrency=1
    )
    assert records == ROWS and server.peak_in_flight == 1


def test_a_count_that_claims_more_pages_than_exist_ends_where_paging_ends(tmp_path):
    _, records, _, _ = read_items(tmp_path, counted_pages(10, ROWS[:250]), COUNTED, max_concurrency=4)
    assert records == ROWS[:250]  # the empty pages asked for early add nothing


def test_a_count_that_claims_fewer_pages_than_exist_does_not_end_paging(tmp_path):
    _, records, _, server = read_items(tmp_path, counted_pages(2, ROWS), COUNTED, max_concurrency=4)
    assert records == ROWS  # next_page goes on past the claimed count, one page at a time
    assert sorted(int(r["query"]["page"]) for r in server.seen) == list(range(1, 11))


def test_offsets_known_from_a_total_are_requested_at_once(tmp_path):
    def items(request: dict) -> Answer:
        start = int(request["query"].get("offset", 0))
        return 200, {}, {"data": ROWS[start : start + 100], "total": len(ROWS)}

    stream = (
        "name: items\nurl: /items\nprimary_key: [id]\nrecords: data\n"
        "pagination: {type: offset, size_param: limit, size: 100, total: total}\n"
    )
    _, records, _, server = read_items(tmp_path, items, stream, delay=0.1, max_concurrency=3)
    assert records == ROWS and server.peak_in_flight == 3
    assert sorted(int(r["query"]["offset"]) for r in server.seen) == list(range(0, 1000, 100))


def test_a_restarted_pass_requests_its_pages_together_with_its_first(tmp_path):
    """After restart_after pages, the pages the old count says are left go out with the new pass's first."""
    stream = (
        "name: items\nurl: /items\nprimary_key: [id]\nrecords: data\nparams: {per_page: 100}\n"
        "replication_key: at\nincremental: {param: since, format: epoch_seconds, record_format: epoch_seconds}\n"
        "pagination: {type: page_number, next: paging.next_page, total_pages: paging.total_pages, "
        "restart_after: 3}\n"
    )
    _, records, _, server = read_items(
        tmp_path, counted_pages(None, ROWS), stream, delay=0.2, max_concurrency=3
    )
    assert records == ROWS  # every record once, in order
    passes: dict[str, list[dict]] = {}
    for request in server.seen:
        passes.setdefault(request["query"].get("since", "0"), []).append(request)
    assert len(passes) >= 4
    for since, requests in list(passes.items())[1:]:
        pages = {int(r["query"]["page"]): r for r in requests}
        assert set(pages) <= {1, 2, 3}, f"pass from {since} asked past its restart page"
        if 2 in pages:  # sent before the new pass's first page was answered
            assert pages[2]["started"] < pages[1]["ended"], f"pass from {since} waited for its first page"


# -- a list that changes while it is read ----------------------------------------------------------------------


class LiveList:
    """A list sorted by ``at`` (epoch ms, the server's clock) then id, paged by number with a record total on
    every page, filtered by ``since`` (after) and ``until`` (before). ``change(page)`` runs before a page of
    that number is computed: what an API's other users do meanwhile."""

    def __init__(
        self, count: int, change: Callable[[LiveList, int], None] | None = None, behind_ms: int = 0
    ) -> None:
        self.behind_ms = behind_ms  # how far the server's clock is behind this machine's
        old = self.now() - 3_600_000  # an hour ago
        self.rows = [{"id": i, "at": old + i * 1000} for i in range(1, count + 1)]
        self.change = change
        self.lock = threading.Lock()

    def now(self) -> int:
        return int(time.time() * 1000) - self.behind_ms

    def update(self, id_: int) -> None:
        """Another user edits a record: it takes the server's present and moves to the end."""
        next(r for r in self.rows if r["id"] == id_)["at"] = self.now()

    def delete(self, id_: int) -> None:
        self.rows = [r for r in self.rows if r["id"] != id_]

    def __call__(self, request: dict) -> Answer:
        query = request["query"]
        page = int(query.get("page", 1))
        with self.lock:
            if self.change is not None:
                self.change(self, page)
            since, until = int(query.get("since", 0)), int(query.get("until", 1 << 62))
            found = sorted(
                (r for r in self.rows if since < r["at"] < until), key=lambda r: (r["at"], r["id"])
            )
        rows = [dict(r) for r in found[(page - 1) * 10 : page * 10]]
        more = page * 10 < len(found)
        return (
            200,
            {},
            {"data": rows, "paging": {"next_page": page + 1 if more else None, "total": len(found)}},
        )


LIVE = (
    "name: items\nurl: /items\nprimary_key: [id]\nrecords: data\nparams: {per_page: 10}\n"
    "pagination: {type: page_number, next: paging.next_page, total: paging.total}\n"
)
LIVE_INCREMENTAL = LIVE + (
    "replication_key: at\n"
    "incremental: {param: since, end_param: until, format: epoch_ms, record_format: epoch_ms}\n"
)


def once(action: Callable[[LiveList], None], at_page: int) -> Callable[[LiveList, int], None]:
    done: list[bool] = []

    def change(live: LiveList, page: int) -> None:
        if page == at_page and not done:
            done.append(True)
            action(live)

    return change


def test_a_record_edited_behind_the_read_does_not_make_the_next_page_skip_one(tmp_path):
    # After page 2 is read, record 5 (page 1) is edited: it leaves the range (its new value is past the range's
    # end), every row after it moves up one place, and record 21 moves from page 3 onto page 2, already read.
    live = LiveList(50, once(lambda live: live.update(5), at_page=3))
    result, records, states, server = read_items(tmp_path, live, LIVE_INCREMENTAL, max_concurrency=1)
    ids = [r["id"] for r in records]
    assert sorted(ids) == list(range(1, 51)), "every record once"
    assert "the list changed while it was read (page 3 counts 49 records, page 1 counted 50)" in result.stderr
    # The read went on from the value before the last one read (record 19's: more records could share record
    # 20's value), not from the start; record 20, read again, is not emitted twice.
    sinces = [int(r["query"].get("since", 0)) for r in server.seen]
    assert sinces[-1] == next(r["at"] for r in live.rows if r["id"] == 19)
    assert states[-1]["bookmarks"]["items"]["replication_key_value"] == max(
        r["at"] for r in live.rows if r["id"] != 5
    ), "the bookmark stops at the last record read; the edited one is read by the next run"


def test_a_change_is_caught_whatever_order_the_pages_come_back_in(tmp_path):
    """With pages requested ahead of their turn (the default), a page answered after the change counts
    differently from the first, whichever page that is."""
    live = LiveList(80, once(lambda live: live.update(3), at_page=4))
    _, records, _, server = read_items(tmp_path, live, LIVE_INCREMENTAL, delay=0.05)
    assert sorted(r["id"] for r in records) == list(range(1, 81))
    assert server.peak_in_flight > 1


def test_a_full_read_whose_list_changed_reads_it_again_without_duplicates(tmp_path):
    live = LiveList(50, once(lambda live: live.delete(2), at_page=2))
    result, records, _, server = read_items(tmp_path, live, LIVE, max_concurrency=1)
    assert sorted(r["id"] for r in records) == list(range(1, 51)), "read again, each record once"
    assert "reading again from the first page" in result.stderr
    assert [int(r["query"]["page"]) for r in server.seen] == [1, 2, 1, 2, 3, 4, 5]


def test_a_list_that_never_holds_still_stops_the_stream_loudly(tmp_path):
    def churn(live: LiveList, page: int) -> None:
        if page == 2:
            live.delete(live.rows[0]["id"])

    with serving({"/items": LiveList(50, churn)}) as server:
        config = {"base_url": server.url, "max_concurrency": 1}
        result, _, _ = tap(connection(tmp_path, LIVE), config, tmp_path)
    assert result.returncode != 0
    assert "kept changing over 5 new reads; stopping rather than risk missing records" in result.stderr


def test_a_range_never_ends_past_the_api_clock_when_the_local_clock_runs_ahead(tmp_path, monkeypatch):
    """The server's clock is ten minutes behind this machine's. A range that ended at the local present would
    keep records edited during the read inside it, moving; the first answer's Date shows the end is ahead,
    and the range is read again to the server's present."""
    live = LiveList(30, once(lambda live: live.update(4), at_page=2), behind_ms=600_000)
    original = BaseHTTPRequestHandler.date_time_string
    monkeypatch.setattr(
        BaseHTTPRequestHandler, "date_time_string", lambda self, ts=None: original(self, time.time() - 600)
    )
    result, records, _, server = read_items(tmp_path, live, LIVE_INCREMENTAL, max_concurrency=1)
    assert "the local clock runs ahead of the API's" in result.stderr
    untils = [int(r["query"]["until"]) for r in server.seen]
    assert untils[0] > live.now() + 500_000  # the first end came from the local clock
    assert untils[-1] <= live.now()  # the range was read again to the server's present
    assert "the list changed while it was read" in result.stderr  # so the edit left it, and was seen
    assert sorted(r["id"] for r in records) == list(range(1, 31))
