"""Crash and resume: a tap or target killed with SIGKILL mid-run, resumed from the last STATE it emitted.

SIGKILL leaves no chance to flush or clean up, as an OOM kill or a lost machine would not. What was emitted
before the kill is what a downstream process (or an orchestrator saving state) could have seen.
"""

from __future__ import annotations

import time
from collections import Counter

import pytest
from helpers import logged_json, run_tap, run_target, tap_config
from reliability_support import as_lines, by_key, singer_messages, start_tap, start_target

PEOPLE = 20_000
WINDOW = {"rate_window_seconds": 1}  # the sandbox's budget minute lasts one second (time_scale 60)


@pytest.fixture(scope="module")
def sb():
    from sandbox.testing import running_sandbox

    with running_sandbox(sizes={"people": PEOPLE}, time_scale=60) as handle:
        yield handle


def test_a_tap_killed_mid_stream_resumes_from_its_last_state_and_misses_nothing(sb, tmp_path, figures):
    tap = start_tap(tap_config(sb, **WINDOW), tmp_path, streams=["people"])
    tap.read_until(lambda lines: sum(m["type"] == "STATE" for m in lines) >= 4)
    tap.kill()
    last = max(i for i, m in enumerate(tap.lines) if m["type"] == "STATE")
    state = tap.lines[last]["value"]
    assert state["bookmarks"]["people"].get("replication_key_value"), state
    before = [m["record"] for m in tap.lines[:last] if m["type"] == "RECORD"]
    # Mid-stream: some records were covered by a STATE, some not yet. How far the tap got before the kill
    # lands depends on the machine's load (a loaded machine reads the pipe late), not on the engine.
    assert 0 < len(before) < PEOPLE, "the kill did not land mid-stream"

    resume = tmp_path / "resume"
    resume.mkdir()
    resumed = run_tap(tap_config(sb, **WINDOW), resume, streams=["people"], state=state).records["people"]
    expected = by_key(sb.records("people"))
    union = {**by_key(before), **by_key(resumed)}
    lost = set(expected) - set(union)
    assert not lost, f"{len(lost)} people were never emitted"
    assert union == expected
    overlap = len(set(by_key(before)) & set(by_key(resumed)))
    assert overlap <= 100, f"the resumed run re-read {overlap} records already covered by the state"
    figures(
        records_expected=len(expected),
        emitted_before_kill=len(before),
        emitted_after_resume=len(resumed),
        overlap=overlap,
        records_lost=len(lost),
    )


def _people(count: int, tag: str) -> list[dict]:
    domain = tag.replace("_", "-")
    return [
        {"email_address": f"crash.{i}@{domain}.example", "first_name": f"Crash{i}", "last_name": tag}
        for i in range(count)
    ]


def _input(records: list[dict], every: int) -> list[dict]:
    """SCHEMA, then the records with a STATE after every ``every`` of them (as a tap would checkpoint)."""
    schema = singer_messages("people", [], ["email_address"])
    messages = list(schema)
    for start in range(0, len(records), every):
        messages += singer_messages("people", records[start : start + every])[1:]
        messages.append({"type": "STATE", "value": {"bookmarks": {"people": {"sent": start + every}}}})
    return messages


@pytest.mark.parametrize(
    ("sink", "count", "kill_after", "batches_done"),
    [
        # Killed in its second batch of 1,000: the STATE after the first has been passed on.
        ("upsert_person", 3_000, lambda journal: sum(e["method"] == "POST" for e in journal) >= 1_300, True),
        # One bulk job for all the records: killed before any STATE.
        (
            "bulk_upsert_people",
            12_000,
            lambda journal: any(e["path"].endswith("/job_data") for e in journal),
            False,
        ),
    ],
)
def test_a_target_killed_mid_batch_and_rerun_from_its_last_state_writes_each_record_once(
    sb, tmp_path, figures, sink, count, kill_after, batches_done
):
    records = _people(count, sink)
    messages = _input(records, every=500)
    config = {**tap_config(sb, **WINDOW), "sink": sink}
    sb.clear_journal()
    target = start_target(
        {**config, "rejected_path": str(tmp_path / "killed-rejected.jsonl")},
        tmp_path,
        as_lines(messages),
        name="killed",
    )
    deadline = time.monotonic() + 60
    while not kill_after(sb.journal()) and time.monotonic() < deadline and target.process.poll() is None:
        time.sleep(0.02)
    target.kill()
    assert target.process.returncode == -9

    emitted = list(target.lines)  # a target writes the STATE values it passes on, one per line
    mine = f"@{sink.replace('_', '-')}.example"
    present = {p["email_address"] for p in sb.records("people") if p["email_address"].endswith(mine)}
    assert len(present) < count, "the target finished before the kill"
    assert bool(emitted) == batches_done, emitted
    if emitted:
        # A STATE is emitted only once every record before it has its outcome.
        position = next(
            i for i, m in enumerate(messages) if m["type"] == "STATE" and m["value"] == emitted[-1]
        )
        covered = {m["record"]["email_address"] for m in messages[:position] if m["type"] == "RECORD"}
        assert covered <= present, f"{len(covered - present)} records covered by an emitted STATE are missing"
        rest = messages[:1] + messages[position + 1 :]
    else:
        rest = messages  # no STATE came out: the upstream tap starts over, and sends everything again

    rerun = run_target(config, tmp_path, as_lines(rest))
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert rerun.rejected == []
    assert rerun.states[-1] == messages[-1]["value"]
    people = [p for p in sb.records("people") if p["email_address"].endswith(mine)]
    counts = Counter(p["email_address"].lower() for p in people)
    duplicates = {email: n for email, n in counts.items() if n > 1}
    assert not duplicates, f"{len(duplicates)} people were created more than once"
    assert set(counts) == {r["email_address"] for r in records}, f"{count - len(counts)} people are missing"
    assert {p["email_address"]: p["first_name"] for p in people} == {
        r["email_address"]: r["first_name"] for r in records
    }
    summary = logged_json(rerun.stderr, "Target summary: ")
    figures(
        records_in=count,
        in_api_at_kill=len(present),
        states_before_kill=len(emitted),
        resent=summary["accepted"],
        duplicates=len(duplicates),
        records_lost=count - len(counts),
    )
