"""Stopping: SIGTERM/SIGINT end every wait at once, and a Retry-After beyond the cap stops the run.

An API asking for a long wait (429 with Retry-After) holds every request of a run; an orchestrator
stopping the run must not wait for it, and a run must not sleep for days because an API said so.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
from helpers import logged_json
from hostile_server import HostileServer, Peer, SeenRequest, always, answer
from reliability_support import SingerProcess, as_lines, hostile_argv, rejected, singer_messages

SIGNALS = [signal.SIGTERM, signal.SIGINT]


@pytest.fixture
def started():
    """``started(argv, stdin_path=None)``: a SingerProcess, killed at the end if a test leaves it running."""
    processes: list[SingerProcess] = []

    def start(argv: list[str], stdin_path: Path | None = None) -> SingerProcess:
        processes.append(SingerProcess(argv, stdin_path=stdin_path))
        return processes[-1]

    yield start
    for process in processes:
        if process.process.poll() is None:
            process.kill()


def wait_for(condition, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def throttled_after(accepted: int, retry_after: str = "600"):
    """The first ``accepted`` writes are accepted; every later request gets a 429 with ``retry_after``."""

    def respond(request: SeenRequest, peer: Peer) -> bool:
        served = sum(1 for r in peer.server.requests if r.method == "POST")
        if request.method == "POST" and served <= accepted:
            return peer.send(answer(201, {"ok": True}))
        return peer.send(answer(429, {"error": "slow down"}, {"Retry-After": retry_after}))

    return respond


@pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: s.name)
def test_a_tap_waiting_out_a_long_retry_after_stops_at_once_on_a_signal(started, tmp_path, signum):
    with HostileServer(always(answer(429, {"error": "slow down"}, {"Retry-After": "600"}))) as server:
        tap = started(hostile_argv("tap", tmp_path, server.url))
        wait_for(lambda: server.requests)
        time.sleep(0.5)  # well into the wait
        signalled = time.monotonic()
        tap.process.send_signal(signum)
        code = tap.wait(timeout=30)
        took = time.monotonic() - signalled
    assert took < 5, f"exited {took:.1f}s after the signal"
    assert code == 128 + signum, tap.stderr[-2000:]
    assert f"stopped by {signum.name}" in tap.stderr
    assert "Traceback" not in tap.stderr
    assert len(server.requests) == 1


@pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: s.name)
def test_a_target_waiting_out_a_long_retry_after_stops_at_once_and_keeps_the_unsent_records_unacknowledged(
    started, tmp_path, signum
):
    records = [{"id": i, "key": f"k{i}"} for i in range(6)]
    stdin = as_lines([*singer_messages("post_item", records), {"type": "STATE", "value": {"done": True}}])
    (tmp_path / "input.jsonl").write_text(stdin)
    with HostileServer(throttled_after(2)) as server:
        argv = hostile_argv("target", tmp_path, server.url, concurrency=1)
        target = started(argv, stdin_path=tmp_path / "input.jsonl")
        wait_for(lambda: len(server.requests) >= 3)
        time.sleep(0.5)
        signalled = time.monotonic()
        target.process.send_signal(signum)
        code = target.wait(timeout=30)
        took = time.monotonic() - signalled
    assert took < 5, f"exited {took:.1f}s after the signal"
    assert code == 128 + signum, target.stderr[-2000:]
    assert f"stopped by {signum.name}" in target.stderr and "Traceback" not in target.stderr
    assert target.lines == []  # no STATE: the records after the last one are sent again by a re-run
    assert rejected(tmp_path) == []  # the unsent records are not called rejected either
    summary = logged_json(target.stderr, "Target summary: ")
    assert summary["accepted"] == 2


@pytest.mark.parametrize("retry_after", ["7200", "inf", "1e400", "Fri, 31 Dec 9999 23:59:59 GMT"])
def test_a_retry_after_beyond_the_cap_stops_the_tap_with_one_clear_line(started, tmp_path, retry_after):
    with HostileServer(always(answer(429, {"error": "slow down"}, {"Retry-After": retry_after}))) as server:
        tap = started(hostile_argv("tap", tmp_path, server.url))
        code = tap.wait(timeout=30)
    assert code == 1, tap.stderr[-2000:]
    assert "longer than max_retry_after_seconds (3600s)" in tap.stderr, tap.stderr[-2000:]
    assert f"Retry-After: {retry_after!r}" in tap.stderr
    assert "Traceback" not in tap.stderr and "OverflowError" not in tap.stderr


def test_a_retry_after_beyond_the_cap_stops_the_target_without_rejecting_the_unsent(started, tmp_path: Path):
    records = [{"id": i, "key": f"k{i}"} for i in range(4)]
    (tmp_path / "input.jsonl").write_text(as_lines(singer_messages("post_item", records)))
    with HostileServer(throttled_after(1, "inf")) as server:
        argv = hostile_argv("target", tmp_path, server.url, concurrency=1, max_retry_after_seconds=60)
        target = started(argv, stdin_path=tmp_path / "input.jsonl")
        code = target.wait(timeout=30)
    assert code == 1, target.stderr[-2000:]
    assert "longer than max_retry_after_seconds (60s)" in target.stderr
    assert rejected(tmp_path) == []
    assert logged_json(target.stderr, "Target summary: ")["accepted"] == 1


def test_a_retry_after_within_the_cap_is_waited_out(started, tmp_path: Path):
    calls: list[float] = []

    def respond(request: SeenRequest, peer: Peer) -> bool:
        calls.append(time.monotonic())
        if len(calls) == 1:
            return peer.send(answer(429, {"error": "slow down"}, {"Retry-After": "1.5"}))
        return peer.send(answer(200, {"data": [{"id": 1}]}))

    with HostileServer(respond) as server:
        tap = started(hostile_argv("tap", tmp_path, server.url))
        code = tap.wait(timeout=30)
    assert code == 0, tap.stderr[-2000:]
    assert [m["record"] for m in tap.lines if m["type"] == "RECORD"] == [{"id": 1}]
    assert calls[1] - calls[0] >= 1.5
