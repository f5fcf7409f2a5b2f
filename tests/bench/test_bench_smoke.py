"""The benchmark runs end to end on small data (it must run; speed is measured by bench/run.py, not here)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_quick_benchmark_runs_and_accounts_for_every_record(tmp_path):
    out = tmp_path / "results.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = {r["name"]: r for r in json.loads(out.read_text())["results"]}
    assert results["floor: httpx + orjson"]["records"] == 2000
    full = results["tap-salesloft (full)"]
    assert full["records"] == 2000 and full["requests"] == 20 and full["cost"] == 20
    assert results["tap-salesloft (incremental, 1% changed)"]["records"] == 20
    upsert = results["target-salesloft upsert_account"]
    assert (
        upsert["requests"] == 300
        and upsert["extra"]["accepted"] == 300
        and upsert["extra"]["throttled_429"] == 0
    )
    bulk = results["target-salesloft bulk_upsert_people (1% invalid)"]
    assert bulk["extra"]["accepted"] + bulk["extra"]["rejected"] == 3000 and bulk["extra"]["rejected"] == 30
    assert bulk["requests"] <= 10
    first, same, changed = (
        results[f"target-salesloft upsert_account changes_only: {run}"]
        for run in ("first run", "same input again", "1% of rows changed")
    )
    assert first["requests"] == 2000 and first["extra"]["accepted"] == 2000
    assert same["requests"] == 0 and same["extra"]["unchanged"] == 2000
    assert (
        changed["requests"] == 20
        and changed["extra"]["accepted"] == 20
        and changed["extra"]["unchanged"] == 1980
    )
    assert "program" in done.stdout and "tap-salesloft (full)" in done.stdout
