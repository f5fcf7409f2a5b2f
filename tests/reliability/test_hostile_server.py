"""The tap and target against a hostile server (socket level): smuggling, bombs, floods, trickles, loops.

Each case runs the real CLI (``connector tap|target DIR``) as a process, through both HTTP stacks.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hostile_server import (
    HostileServer,
    Peer,
    SeenRequest,
    always,
    answer,
    chunked_flood,
    continue_flood,
    gzip_bomb,
    header_flood,
    huge_length,
    trickle,
)
from reliability_support import ITEMS, as_lines, hostile_argv, rejected, singer_messages

TRANSPORTS = ["wire", "httpx"]


def run_connector(
    role: str,
    tmp_path: Path,
    server: HostileServer,
    transport: str,
    *args: str,
    stdin: str = "",
    items: str = ITEMS,
    timeout: float = 120,
    **config: object,
) -> subprocess.CompletedProcess:
    """``connector tap|target`` of the hostile connection against ``server``; ``items``: the stream's YAML."""
    argv = hostile_argv(role, tmp_path, server.url, transport, items, **config)
    return subprocess.run([*argv, *args], input=stdin, text=True, capture_output=True, timeout=timeout)


# -- header injection and request smuggling


NEXT_URL = "pagination: {type: next_url, from_response: next}\n"
SMUGGLED = "a\r\nContent-Length: 0\r\n\r\nDELETE /v1/items/999 HTTP/1.1\r\nX-Smuggled: 1"


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize(
    "value", ["a\r\nX-Injected: 1", SMUGGLED, "a\nX-Injected: 1", "a\0b", "a\rX-Injected: 1"]
)
def test_a_record_value_with_a_line_break_in_a_header_is_rejected_as_render_and_never_sent(
    tmp_path, transport, value
):
    records = [{"id": 1, "key": "first"}, {"id": 2, "key": value}, {"id": 3, "key": "third"}]
    with HostileServer(always(answer(201, {"ok": True}))) as server:
        proc = run_connector(
            "target", tmp_path, server, transport, stdin=as_lines(singer_messages("post_item", records))
        )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert server.methods() == ["POST", "POST"], server.raw.decode("latin-1")[-2000:]
    assert sorted(r.header("Idempotency-Key") for r in server.requests) == ["first", "third"]
    assert b"X-Injected" not in server.raw and b"X-Smuggled" not in server.raw and b"DELETE" not in server.raw
    (row,) = rejected(tmp_path)
    assert row["reason"] == "render" and row["record"]["id"] == 2, row
    assert "Idempotency-Key" in row["error"] and "refused before sending" in row["error"], row["error"]
    summary = [line for line in proc.stderr.splitlines() if "Target summary: " in line][-1]
    figures = json.loads(summary.split("Target summary: ", 1)[1])
    assert (figures["accepted"], figures["rejected"], figures["http"]["requests"]) == (2, 1, 2)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_next_link_with_a_line_break_stops_the_tap_with_one_clear_line(tmp_path, transport):
    next_url = "/v1/items?page=2 HTTP/1.1\r\nX-Injected: 1\r\n\r\nDELETE /v1/items/999"
    page = answer(200, {"data": [{"id": 1}], "next": next_url})
    with HostileServer(always(page)) as server:
        proc = run_connector("tap", tmp_path, server, transport, items=ITEMS + NEXT_URL)
    assert proc.returncode == 1
    assert server.methods() == ["GET"]
    assert b"X-Injected" not in server.raw and b"DELETE" not in server.raw
    assert "request URL" in proc.stderr and "refused before sending" in proc.stderr, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr


# -- answers too large: bombs, floods, lengths


def peak_rss_mb(argv: list[str], timeout: float = 120) -> tuple[subprocess.CompletedProcess, float]:
    """Run ``argv`` from a fresh process that reports its child's peak resident memory (MB)."""
    probe = (
        "import resource, subprocess, sys; p = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
        "sys.stdout.write(p.stdout); sys.stderr.write(p.stderr); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); sys.exit(p.returncode)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe, *argv], capture_output=True, text=True, timeout=timeout
    )
    return proc, int(proc.stderr.strip().splitlines()[-1]) / 1024


@pytest.fixture(scope="module")
def bomb() -> bytes:
    return gzip_bomb(1 << 30)  # ~1 MB on the wire, 1 GiB inflated


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_gzip_bomb_fails_its_request_naming_the_cap_without_inflating_it(tmp_path, transport, bomb):
    with HostileServer(always(bomb)) as server:
        argv = hostile_argv("tap", tmp_path, server.url, transport)
        proc, peak = peak_rss_mb(argv)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "decompressed body is larger than max_response_bytes (67,108,864 bytes)" in proc.stderr
    assert server.methods() == ["GET"]  # not retried: the next answer would be as large
    assert "Traceback" not in proc.stderr
    assert peak < 400, f"peak memory {peak:.0f} MB"


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize(
    ("responder", "what"),
    [
        (chunked_flood(), "chunked body is larger"),
        (huge_length(10 << 30), "Content-Length (10,737,418,240) is larger"),
        (chunked_flood(), "body is larger"),
    ],
    ids=["chunked-flood", "huge-content-length", "small-cap"],
)
def test_an_answer_over_the_cap_fails_its_request_once_and_clearly(
    tmp_path, transport, responder, what, request
):
    cap = {"max_response_bytes": 1 << 20} if request.node.callspec.id.startswith("small-cap") else {}
    with HostileServer(responder) as server:
        proc = run_connector("tap", tmp_path, server, transport, timeout=60, **cap)
    assert proc.returncode == 1, proc.stderr[-2000:]
    limit = cap.get("max_response_bytes", 64 << 20)
    if transport == "wire" or "Content-Length" in what:
        assert what in proc.stderr, proc.stderr[-2000:]
    assert f"max_response_bytes ({limit:,} bytes)" in proc.stderr, proc.stderr[-2000:]
    assert server.methods() == ["GET"]
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_flood_of_response_headers_is_refused(tmp_path, transport):
    with HostileServer(always(header_flood(5000))) as server:
        proc = run_connector("tap", tmp_path, server, transport, timeout=60)
    assert proc.returncode == 1
    assert len(server.requests) <= 3  # the connection's max_attempts
    assert "Traceback" not in proc.stderr


# -- slow servers: the whole attempt within request_timeout


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("responder", [trickle(0.1), continue_flood(0.1)], ids=["trickle", "continue-flood"])
def test_a_server_answering_forever_slowly_fails_each_attempt_after_request_timeout(
    tmp_path, transport, responder
):
    started = time.monotonic()
    with HostileServer(responder) as server:
        proc = run_connector(
            "tap", tmp_path, server, transport, timeout=60, request_timeout=2, max_attempts=2
        )
    elapsed = time.monotonic() - started
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert server.methods() == ["GET", "GET"]
    assert "ReadTimeout on all 2 attempts" in proc.stderr, proc.stderr[-2000:]
    first_attempt = server.requests[1].at - server.requests[0].at  # the second began when the first gave up
    # request_timeout (measured from arrivals at the server, a few ms after the client began), and slack
    assert 1.8 <= first_attempt < 4, first_attempt
    assert elapsed < 30, elapsed  # the whole answer would have taken minutes


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_trickled_answer_to_a_write_is_a_transport_rejection_within_request_timeout(tmp_path, transport):
    records = [{"id": 1, "key": "slow"}]
    started = time.monotonic()
    with HostileServer(trickle(0.1)) as server:
        proc = run_connector(
            "target",
            tmp_path,
            server,
            transport,
            stdin=as_lines(singer_messages("post_item", records)),
            timeout=60,
            request_timeout=1.5,
            max_attempts=1,
        )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert time.monotonic() - started < 30  # the whole answer would have taken minutes
    (row,) = rejected(tmp_path)
    assert row["reason"] == "transport" and "ReadTimeout" in row["error"], row


# -- loops


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_redirect_loop_ends_the_tap_with_one_clear_line(tmp_path, transport):
    loop = answer(302, headers={"Location": "/v1/items?again=1"})
    with HostileServer(always(loop)) as server:
        proc = run_connector("tap", tmp_path, server, transport, timeout=60)
    assert proc.returncode == 1
    assert "too many redirects" in proc.stderr and "Traceback" not in proc.stderr
    assert len(server.requests) <= 6  # the request and five redirects, not retried


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_next_links_going_round_in_a_circle_end_the_tap_with_one_clear_line(tmp_path, transport):
    def respond(request: SeenRequest, peer: Peer) -> bool:
        page = request.target.partition("page=")[2] or "1"
        following = {"1": "2", "2": "3", "3": "2"}[page]
        body = {"data": [{"id": int(page)}], "next": f"/v1/items?page={following}"}
        return peer.send(answer(200, body))

    with HostileServer(respond) as server:
        proc = run_connector("tap", tmp_path, server, transport, items=ITEMS + NEXT_URL, timeout=60)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "came back to a page it already read" in proc.stderr and "Traceback" not in proc.stderr
    assert [r.target for r in server.requests][:3] == ["/v1/items", "/v1/items?page=2", "/v1/items?page=3"]
    assert (
        len(server.requests) <= 4
    )  # the loop is seen at the link back to page 2, before or after it is fetched


# -- bad encodings


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize(
    "body",
    [b'{"data": [{"id": 1, "name": "caf\xe9"}]}', b'{"data": [{"id": 1, "name": "\\ud83d"}]}', b"\xff\xfe{"],
    ids=["latin-1", "lone-surrogate", "garbage"],
)
def test_a_page_that_is_not_valid_utf8_json_has_a_bounded_clear_outcome(tmp_path, transport, body):
    with HostileServer(always(answer(200, raw_body=body))) as server:
        proc = run_connector("tap", tmp_path, server, transport, timeout=60)
    assert "Traceback" not in proc.stderr
    assert len(server.requests) == 1
    for line in proc.stdout.splitlines():
        json.loads(line)  # whatever was written is valid JSON
    if proc.returncode != 0:
        assert "items" in proc.stderr.splitlines()[-1], proc.stderr[-2000:]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_api_errors_and_answers_in_bad_encodings_are_kept_readable(tmp_path, transport):
    def respond(request: SeenRequest, peer: Peer) -> bool:
        key = request.header("Idempotency-Key")
        if key == "latin":
            return peer.send(answer(422, raw_body=b'{"error": "caf\xe9 refused"}'))
        if key == "surrogate":
            return peer.send(answer(422, raw_body=b'{"error": "\\ud83d refused"}'))
        return peer.send(answer(201, raw_body=b'{"id": "\\udc00"}'))

    records = [{"id": 1, "key": "latin"}, {"id": 2, "key": "surrogate"}, {"id": 3, "key": "fine"}]
    with HostileServer(respond) as server:
        proc = run_connector(
            "target",
            tmp_path,
            server,
            transport,
            stdin=as_lines(singer_messages("post_item", records)),
            responses_path=str(tmp_path / "responses.jsonl"),
        )
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = {r["record"]["id"]: r for r in rejected(tmp_path)}
    assert set(rows) == {1, 2}
    assert "caf" in rows[1]["error"] and "refused" in rows[2]["error"]
    (captured,) = [json.loads(line) for line in (tmp_path / "responses.jsonl").read_text().splitlines()]
    assert captured["status"] == 201


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("setting", ["user_agent", "api_key"])
def test_a_config_value_with_a_line_break_in_a_header_stops_the_run_before_any_request(
    tmp_path, transport, setting
):
    with HostileServer(always(answer(200, {"data": []}))) as server:
        proc = run_connector("tap", tmp_path, server, transport, **{setting: "ok\r\nX-Injected: 1"})
    assert proc.returncode == 1
    assert server.requests == [] and b"X-Injected" not in server.raw
    assert "refused before sending" in proc.stderr.splitlines()[-1]
    assert "X-Injected" not in proc.stderr  # the value is not echoed (it may be a secret)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_corrupt_gzip_body_is_retried_then_one_clear_line(tmp_path, transport):
    corrupt = answer(raw_body=b"\x1f\x8b\x08\x00not gzip at all", headers={"Content-Encoding": "gzip"})
    with HostileServer(always(corrupt)) as server:
        proc = run_connector("tap", tmp_path, server, transport, timeout=60)
    assert proc.returncode == 1
    assert "bad gzip response body" in proc.stderr.splitlines()[-1] and "Traceback" not in proc.stderr
    assert len(server.requests) == 3  # the connection's max_attempts
