"""Response and rejection webhooks: target-salesloft as a process against the sandbox, POSTing its outcomes
to a real local HTTP server (and to hostile ones), with the files kept."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from helpers import TARGET, logged_json, run_target, singer_lines
from reliability.hostile_server import HostileServer, Peer, SeenRequest, always, answer, huge_length
from reliability.reliability_support import start_target

HOOK_TOKEN = "hook-path-token-5c1e"  # a webhook URL's path often is its credential
HOOK_AUTH = "Bearer webhook-own-secret-9d2"
MISSING_ID = 999_999_999  # no such account: the API answers 404, the record is rejected


def accounts(sandbox, count: int) -> list[dict]:
    return [{"id": a["id"], "name": f"Hooked {a['id']}"} for a in sandbox.records("accounts")[:count]]


def target_config(sandbox, tmp_path: Path, url: str, **extra) -> dict:
    return {
        "base_url": sandbox.url,
        "api_key": sandbox.api_key,
        "sink": "update_account",
        "rejected_path": str(tmp_path / "rejected.jsonl"),
        "responses_path": str(tmp_path / "responses.jsonl"),
        "responses_url": f"{url}/hooks/{HOOK_TOKEN}/responses",
        "rejected_url": f"{url}/hooks/{HOOK_TOKEN}/rejected",
        "webhook_headers": {"Authorization": HOOK_AUTH},
        **extra,
    }


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def posted(server: HostileServer, kind: str) -> list[list[dict]]:
    """The JSON arrays POSTed to the webhook of this kind, in order."""
    return [json.loads(r.body) for r in server.requests if r.path.endswith(f"/{kind}")]


def test_outcomes_are_posted_in_batches_as_the_files_hold_them(sandbox, tmp_path):
    records = [*accounts(sandbox, 5), {"id": MISSING_ID, "name": sandbox.api_key}]
    with HostileServer(always(answer(200, {"ok": True}))) as hook:
        config = target_config(sandbox, tmp_path, hook.url, webhook_batch_size=2)
        run = run_target(config, tmp_path, singer_lines("accounts", records, state={"done": 1}))
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.states == [{"done": 1}]

    responses, rejected = lines(tmp_path / "responses.jsonl"), run.rejected
    assert len(responses) == 5 and len(rejected) == 1
    response_batches, rejected_batches = posted(hook, "responses"), posted(hook, "rejected")
    # Every outcome reaches the webhook once, exactly as its file line, in batches of at most 2.
    assert [entry for batch in response_batches for entry in batch] == responses
    assert [entry for batch in rejected_batches for entry in batch] == rejected
    assert all(1 <= len(batch) <= 2 for batch in response_batches + rejected_batches)
    assert rejected[0]["status"] == 404 and rejected[0]["record"]["name"] == "***"

    for request in hook.requests:
        assert request.method == "POST"
        assert request.header("content-type") == "application/json"
        assert request.header("authorization") == HOOK_AUTH  # the webhook's own auth, never the API's
    assert sandbox.api_key.encode() not in bytes(hook.raw)  # masked in bodies, absent from headers
    summary = logged_json(run.stderr, "Target summary: ")
    assert summary["webhooks"]["responses_url"]["delivered"] == 5
    assert summary["webhooks"]["rejected_url"]["delivered"] == 1
    assert summary["webhooks"]["responses_url"]["undelivered"] == 0
    for secret in (HOOK_TOKEN, HOOK_AUTH.split()[1]):
        assert secret not in run.stderr
        assert secret not in (tmp_path / "responses.jsonl").read_text()


def test_a_webhook_that_recovers_gets_every_outcome_once_per_batch_key(sandbox, tmp_path):
    answers = [answer(503, {"error": "busy"}), answer(429, headers={"Retry-After": "0"})]

    def flaky(request: SeenRequest, peer: Peer) -> bool:
        return peer.send(answers.pop(0) if answers else answer(204, raw_body=b""))

    with HostileServer(flaky) as hook:
        config = target_config(sandbox, tmp_path, hook.url, max_backoff_seconds=0.05, rejected_url=None)
        run = run_target(config, tmp_path, singer_lines("accounts", accounts(sandbox, 3)))
    assert run.returncode == 0, run.stderr[-3000:]
    assert len(hook.requests) == 3  # one batch, two retries
    assert len({r.header("idempotency-key") for r in hook.requests}) == 1  # a receiver can tell a retry
    assert len({r.body for r in hook.requests}) == 1
    assert json.loads(hook.requests[-1].body) == lines(tmp_path / "responses.jsonl")
    assert "503" in run.stderr and "retrying" in run.stderr


def _refusing_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def _hang(request: SeenRequest, peer: Peer) -> bool:
    peer.server.closing.wait(60)
    return False


HOSTILE = {
    "500 forever": (always(answer(500, {"error": "down"})), "HTTP 500"),
    "unreachable": (None, "ConnectError"),
    "hangs": (_hang, "ReadTimeout"),
    "huge answer": (huge_length(10**10), "larger than 1,048,576 bytes"),
    "redirect": ("redirect", "a redirect to http://127.0.0.1, not followed"),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_a_webhook_failing_for_good_loses_no_outcome_and_fails_the_run(sandbox, tmp_path, case):
    responder, said = HOSTILE[case]
    records = accounts(sandbox, 4)
    with HostileServer(always(answer(200))) as elsewhere:
        if responder == "redirect":
            responder = always(answer(307, headers={"Location": f"{elsewhere.url}/collect"}))
        with HostileServer(responder or always(answer(200))) as hook:
            url = hook.url if responder is not None else _refusing_port()
            config = target_config(
                sandbox,
                tmp_path,
                url,
                rejected_url=None,
                webhook_batch_size=2,
                webhook_timeout=1,
                max_attempts=2,
                max_backoff_seconds=0.05,
            )
            sandbox.clear_journal()
            started = time.monotonic()
            run = run_target(config, tmp_path, singer_lines("accounts", records, state={"done": 1}))
            took = time.monotonic() - started
    assert elsewhere.requests == []  # a redirect is not followed, to another host or at all
    assert took < 30
    # The API got every record and the file has every response: only the webhook missed them.
    assert [e["method"] for e in sandbox.journal() if e["path"].startswith("/v2/accounts/")] == ["PUT"] * 4
    assert len(lines(tmp_path / "responses.jsonl")) == 4
    assert run.states == [{"done": 1}]
    assert run.returncode == 1
    last = run.stderr.strip().splitlines()[-1]
    assert "responses_url: 4 of 4 outcomes were not delivered" in last, run.stderr[-3000:]
    assert said in last and str(tmp_path / "responses.jsonl") in last
    summary = logged_json(run.stderr, "Target summary: ")["webhooks"]["responses_url"]
    assert summary["delivered"] == 0 and summary["undelivered"] == 4
    if responder is not None:  # given up after one batch's attempts: the second batch is not tried
        assert len(hook.requests) <= 2
    assert HOOK_TOKEN not in run.stderr and "webhook-own-secret" not in run.stderr


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ({"rejected_path": ""}, "rejected_url needs rejected_path"),
        ({"rejected_path": None}, "rejected_url needs rejected_path"),
        ({"responses_path": None}, "responses_url needs responses_path"),
        ({"responses_url": f"ftp://host/{HOOK_TOKEN}"}, "responses_url: not an http(s) URL"),
        ({"webhook_headers": {"X-Key": "a\r\nInjected: 1"}}, "webhook_headers: header 'X-Key'"),
        ({"webhook_batch_size": 0}, "webhook_batch_size"),
        ({"webhook_timeout": 0}, "webhook_timeout"),
    ],
)
def test_a_webhook_config_that_cannot_work_stops_before_any_record(sandbox, tmp_path, change, said):
    config = {**target_config(sandbox, tmp_path, "http://127.0.0.1:9"), **change}
    sandbox.clear_journal()
    run = run_target(config, tmp_path, singer_lines("accounts", accounts(sandbox, 1)))
    assert run.returncode == 1
    assert said in run.stderr and "Traceback" not in run.stderr
    assert HOOK_TOKEN not in run.stderr
    assert [e for e in sandbox.journal() if e["method"] == "PUT"] == []


def test_a_signal_ends_the_webhook_retries_at_once_and_says_what_was_not_delivered(sandbox, tmp_path):
    busy = always(answer(503, {"error": "busy"}, {"Retry-After": "600"}))  # waited 60 s (max_backoff_seconds)
    with HostileServer(busy) as hook:
        config = target_config(sandbox, tmp_path, hook.url, rejected_url=None)
        target = start_target(config, tmp_path, singer_lines("accounts", accounts(sandbox, 2)))
        deadline = time.monotonic() + 60
        while not hook.requests and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # well into the wait before the second attempt
        signalled = time.monotonic()
        target.process.send_signal(signal.SIGTERM)
        code = target.wait(timeout=30)
        took = time.monotonic() - signalled
    assert took < 5, f"exited {took:.1f}s after the signal"
    assert code == 143, target.stderr[-3000:]
    assert "Traceback" not in target.stderr
    assert len(hook.requests) == 1
    assert len(lines(tmp_path / "responses.jsonl")) == 2
    assert "responses_url: 2 of 2 outcomes were not delivered" in target.stderr


def test_a_state_is_passed_on_only_after_the_outcomes_before_it_were_posted(sandbox, tmp_path):
    out = tmp_path / "stdout.jsonl"
    seen_state: list[bool] = []

    def slow_receiver(request: SeenRequest, peer: Peer) -> bool:
        seen_state.append("done" in out.read_text())  # printed before its outcome reached the webhook?
        time.sleep(0.5)
        seen_state.append("done" in out.read_text())  # ... or while the webhook was still answering?
        return peer.send(answer(200))

    stdin = singer_lines("accounts", []) + "not json\n" + json.dumps({"type": "STATE", "value": {"done": 1}})
    stdin += "\n" + singer_lines("accounts", accounts(sandbox, 1))
    with HostileServer(slow_receiver) as hook:
        config = target_config(sandbox, tmp_path, hook.url)
        config_path = tmp_path / "config.json"
        config_path.write_text(json.dumps(config))
        with out.open("wb") as stdout:
            proc = subprocess.run(
                [TARGET, "--config", str(config_path)],
                input=stdin.encode(),
                stdout=stdout,
                stderr=subprocess.PIPE,
            )
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    assert [json.loads(line) for line in out.read_text().splitlines()] == [{"done": 1}]
    (bad_line,) = posted(hook, "rejected")[0]
    assert bad_line["reason"] == "bad_input"
    assert seen_state[:2] == [False, False]


def test_the_rejections_of_a_bulk_job_reach_the_webhook_one_by_one(sandbox, tmp_path):
    records = [{"email_address": f"hooked{i}@example.com", "last_name": "Bulk"} for i in range(300)]
    for i in (0, 150, 299):
        records[i] = {"email_address": f"not-an-email-{i}", "last_name": "Bulk"}
    with HostileServer(always(answer(200))) as hook:
        config = {**target_config(sandbox, tmp_path, hook.url), "sink": "bulk_upsert_people"}
        run = run_target(config, tmp_path, singer_lines("people", records))
    assert run.returncode == 0, run.stderr[-3000:]
    rejected = [entry for batch in posted(hook, "rejected") for entry in batch]
    assert rejected == run.rejected
    assert sorted(r["record"]["email_address"] for r in rejected) == [
        f"not-an-email-{i}" for i in (0, 150, 299)
    ]


def test_a_batch_too_large_for_the_webhook_is_split_until_it_fits(sandbox, tmp_path):
    """A receiver with a body limit answers 413: the batch goes again as halves, each with its own key, down to
    one outcome; an outcome too large on its own is not delivered and the run says so."""
    limit, big = 6_000, "x" * 10_000  # an outcome is about 2 KB: seven in one batch are over the limit
    records = accounts(sandbox, 7)
    records[5]["name"] = big  # its response alone is over the limit

    def limited(request: SeenRequest, peer: Peer) -> bool:
        return peer.send(answer(413, {"error": "too large"}) if len(request.body) > limit else answer(200))

    with HostileServer(limited) as hook:
        config = target_config(sandbox, tmp_path, hook.url, rejected_url=None, webhook_batch_size=7)
        run = run_target(config, tmp_path, singer_lines("accounts", records))
    responses = lines(tmp_path / "responses.jsonl")
    assert len(responses) == 7
    taken = [json.loads(r.body) for r in hook.requests if len(r.body) <= limit]
    assert len(taken) >= 3, "the batch was split"
    assert sorted(json.dumps(e) for batch in taken for e in batch) == sorted(
        json.dumps(e) for e in responses if big not in json.dumps(e)
    ), "every outcome that fits is delivered once"
    keys = [r.header("idempotency-key") for r in hook.requests]
    assert len(set(keys)) == len(keys), "each half is a batch of its own"
    assert run.returncode == 1
    assert "responses_url: 1 of 7 outcomes were not delivered" in run.stderr.strip().splitlines()[-1]
    assert "HTTP 413" in run.stderr
