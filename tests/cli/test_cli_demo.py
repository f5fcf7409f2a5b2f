"""``connector demo``: the whole tour against the sandbox, well under a minute, with a true summary."""

from __future__ import annotations

import json
import time

from cli_support import run_cli


def test_demo_runs_end_to_end_and_reports_what_happened(tmp_path):
    started = time.monotonic()
    result = run_cli("demo", "--people", "300", "--out", "out", cwd=tmp_path, timeout=120)
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert elapsed < 60
    summary = json.loads((tmp_path / "out/summary.json").read_text())
    # 3 pages, and the first page sent while the stream before it was read, read again with the others
    assert summary["streams"]["people"] == {"records": 300, "requests": 4}
    assert summary["streams"]["accounts"]["records"] == 120
    assert all(s["records"] > 0 and s["requests"] > 0 for s in summary["streams"].values())
    # 120 accounts back with a new description + 3 bad records; the one without a domain is never sent
    assert summary["sent"] == 123
    assert summary["accepted"] == 120
    assert summary["rejected"] == 3
    assert summary["rejected_reasons"] == {"missing_id": 1, "api": 2}
    assert summary["write_requests"] == 122
    # The same records again with changes_only: the API has the 120 accepted ones, so only the 2 it
    # rejected are sent again (the one without a domain is rejected without a request, as before).
    assert summary["again"] == {"requests": 2, "unchanged": 120, "accepted": 0, "rejected": 3}
    people = (tmp_path / "out/people.jsonl").read_text().splitlines()
    assert len(people) == 300
    rejected = [json.loads(line) for line in (tmp_path / "out/rejected.jsonl").read_text().splitlines()]
    assert sorted(r["error"] for r in rejected) == [
        "name: can't be blank",
        "owner_id: is invalid",
        "record has no 'domain' (the sink's id_field): not sent",
    ]
    out = result.stdout
    for text in (
        "Read: tap-salesloft -> JSON Lines",
        "Written: target-salesloft, sink upsert_account, changes_only",
        "same records again",
        "Rejected, with reasons",
        "connector preview upsert_account --input",
    ):
        assert text in out


def test_demo_rejects_a_bad_people_count(tmp_path):
    result = run_cli("demo", "--people", "0", cwd=tmp_path)
    assert result.returncode == 2
    assert "--people must be at least 1 (got 0)" in result.stderr
