"""changes_only under crashes and concurrency: a target SIGKILLed at random points and run again leaves every
record applied in the API (none skipped that the API does not have); two targets on one SQLite state."""

from __future__ import annotations

import json
import random
import subprocess
import time

import pytest
from helpers import TARGET, logged_json, run_target, tap_config, write_json
from reliability_support import as_lines, singer_messages, start_target

WINDOW = {"rate_window_seconds": 1}  # the sandbox's budget minute lasts one second (time_scale 60)
COUNT = 2_000


@pytest.fixture(scope="module")
def sb():
    from sandbox.testing import running_sandbox

    with running_sandbox(time_scale=60) as handle:
        yield handle


def accounts(tag: str, count: int, version: str) -> list[dict]:
    return [
        {"domain": f"{tag}-{i}.example", "name": f"{tag} {i}", "description": f"{version} {i}"}
        for i in range(count)
    ]


def config(sb, tmp_path, sink: str = "upsert_account", **extra) -> dict:
    return {
        **tap_config(sb, **WINDOW),
        "sink": sink,
        "changes_only": True,
        "state_db": str(tmp_path / "state.db"),
        **extra,
    }


def posts(sb, since: int) -> list[dict]:
    return [e for e in sb.journal(since) if e["method"] == "POST"]


def test_a_target_killed_at_random_points_and_rerun_leaves_every_record_applied(sb, tmp_path, figures):
    cfg = config(sb, tmp_path, batch_records=200)  # digests are stored after each batch of 200
    first = run_target(cfg, tmp_path, as_lines(singer_messages("accounts", accounts("kill", COUNT, "v1"))))
    assert first.returncode == 0, first.stderr[-3000:]

    target_records = accounts("kill", COUNT, "v2")  # every record changed
    lines = as_lines(singer_messages("accounts", target_records))
    chosen = random.Random(15)
    kills = []
    for attempt in range(3):
        start = max((e["seq"] for e in sb.journal()), default=0)
        at_least = COUNT - sum(kills)  # this run sends at least the records no earlier run got to
        threshold = chosen.randint(50, max(60, at_least - 150))
        target = start_target(
            {**cfg, "rejected_path": str(tmp_path / f"killed-{attempt}.jsonl")},
            tmp_path,
            lines,
            name=f"k{attempt}",
        )
        deadline = time.monotonic() + 60
        while len(posts(sb, start)) < threshold and time.monotonic() < deadline:
            if target.process.poll() is not None:
                break
            time.sleep(0.01)
        target.kill()
        assert target.process.returncode == -9, "the target finished before the kill"
        kills.append(len(posts(sb, start)))

    start = max(e["seq"] for e in sb.journal())
    rerun = run_target(cfg, tmp_path, lines)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    summary = logged_json(rerun.stderr, "Target summary: ")
    assert summary["rejected"] == 0 and summary["accepted"] + summary["unchanged"] == COUNT
    assert summary["accepted"] == len(posts(sb, start))
    assert summary["unchanged"] >= 200, "no kill landed after a batch was stored: nothing was tested"

    api = {a["domain"]: a for a in sb.records("accounts") if a["domain"].startswith("kill-")}
    wrong = [
        r["domain"] for r in target_records if api.get(r["domain"], {}).get("description") != r["description"]
    ]
    assert not wrong, f"{len(wrong)} records skipped or lost: the API does not have them, e.g. {wrong[:5]}"

    again = run_target(cfg, tmp_path, lines)
    assert logged_json(again.stderr, "Target summary: ")["unchanged"] == COUNT
    figures(
        records=COUNT,
        posts_before_each_kill=kills,
        sent_by_rerun=summary["accepted"],
        unchanged_on_rerun=summary["unchanged"],
    )


class HeldTarget:
    """A target whose input is fed by the test: it holds its sinks until its input ends."""

    def __init__(self, cfg: dict, tmp_path, name: str) -> None:
        path = write_json(tmp_path / f"{name}-config.json", cfg)
        self.process = subprocess.Popen(
            [TARGET, "--config", str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

    def feed(self, text: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(text.encode())
        self.process.stdin.flush()

    def finish(self) -> tuple[int, str]:
        _, stderr = self.process.communicate(timeout=120)
        return self.process.returncode, stderr.decode()


def test_a_second_target_on_the_same_sink_and_state_is_refused_before_it_sends_anything(sb, tmp_path):
    cfg = config(sb, tmp_path, batch_records=10, rejected_path=str(tmp_path / "rejected.jsonl"))
    records = accounts("held", 30, "v1")
    first = HeldTarget(cfg, tmp_path, "first")
    messages = singer_messages("accounts", records)
    start = max((e["seq"] for e in sb.journal()), default=0)
    first.feed(as_lines(messages[:16]))  # SCHEMA and 15 records: one batch of 10 sent, the sink is claimed
    deadline = time.monotonic() + 60
    while len(posts(sb, start)) < 10 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(posts(sb, start)) == 10

    second = run_target(cfg, tmp_path, as_lines(singer_messages("accounts", accounts("other", 5, "v1"))))
    assert second.returncode != 0
    assert "sink 'upsert_account' of 'salesloft' is being written by another run" in second.stderr
    assert not [e for e in posts(sb, start) if e["body"]["domain"].startswith("other-")]

    first.feed(as_lines(messages[16:]))
    code, stderr = first.finish()
    assert code == 0, stderr[-3000:]
    assert logged_json(stderr, "Target summary: ")["accepted"] == 30
    after = run_target(cfg, tmp_path, as_lines(messages))  # the first run's state is whole
    assert logged_json(after.stderr, "Target summary: ")["unchanged"] == 30


def test_two_targets_on_different_sinks_share_one_sqlite_state_at_once(sb, tmp_path):
    count = 600
    runs = {
        "upsert_account": accounts("pair", count, "v1"),
        "upsert_person": [
            {"email_address": f"pair.{i}@changes.example", "first_name": f"P{i}"} for i in range(count)
        ],
    }
    targets = {
        sink: start_target(
            {
                **config(sb, tmp_path, sink=sink, batch_records=50),
                "rejected_path": str(tmp_path / f"{sink}.jsonl"),
            },
            tmp_path,
            as_lines(singer_messages("input", records)),
            name=sink,
        )
        for sink, records in runs.items()
    }
    for target in targets.values():
        assert target.wait() == 0, target.stderr[-3000:]
        assert logged_json(target.stderr, "Target summary: ")["accepted"] == count
    for sink, records in runs.items():
        again = run_target(
            config(sb, tmp_path, sink=sink), tmp_path, as_lines(singer_messages("input", records))
        )
        assert logged_json(again.stderr, "Target summary: ")["unchanged"] == count, sink
    shown = subprocess.run(
        [
            TARGET.replace("target-salesloft", "connector"),
            "state",
            "salesloft",
            "--state-db",
            str(tmp_path / "state.db"),
            "--json",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(shown.stdout)["sinks"] == {"upsert_account": count, "upsert_person": count}
