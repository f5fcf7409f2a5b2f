"""The tap's output as the ecosystem reads it: the metrics of `--test`, and BATCH messages (batch_config)
that a target loads."""

from __future__ import annotations

import gzip
import json
import subprocess
from pathlib import Path

import pytest
from helpers import TAP, TARGET, catalog_for, tap_config, write_json

from connector.templates import load_bundled


@pytest.fixture(scope="module")
def sb():
    from sandbox.testing import running_sandbox

    with running_sandbox(sizes={"accounts": 120}) as handle:
        yield handle


def timers(stderr: str) -> list[dict]:
    points = [json.loads(line.split("METRIC: ", 1)[1]) for line in stderr.splitlines() if "METRIC: " in line]
    return [p for p in points if p["metric"] == "sync_duration"]


def test_connection_test_timers_say_succeeded_when_the_test_passes(sb, tmp_path):
    config = write_json(tmp_path / "config.json", tap_config(sb))
    result = subprocess.run(
        [TAP, "--config", str(config), "--test"], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0 and "Connection test passed" in result.stderr, result.stderr[-3000:]
    measured = timers(result.stderr)
    assert {t["tags"]["stream"] for t in measured} == set(load_bundled("salesloft").streams)
    assert {t["tags"]["status"] for t in measured} == {"succeeded"}


def test_a_failing_stream_still_times_as_failed(sb, tmp_path):
    config = write_json(tmp_path / "config.json", tap_config(sb, api_key="wrong-key-24680"))
    result = subprocess.run(
        [TAP, "--config", str(config), "--test"], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 1
    assert [t["tags"]["status"] for t in timers(result.stderr)] == ["failed"]


def test_batch_config_files_are_loaded_by_the_target(sb, tmp_path):
    """tap-salesloft with batch_config writes jsonl.gz files and BATCH messages; target-salesloft upserts
    every record in them."""
    batches = tmp_path / "batches"
    batches.mkdir()
    config = tap_config(
        sb,
        batch_config={
            "encoding": {"format": "jsonl", "compression": "gzip"},
            "storage": {"root": f"file://{batches}", "prefix": "accounts-"},
            "batch_size": 50,
        },
    )
    config_path = write_json(tmp_path / "tap.json", config)
    catalog = catalog_for(["accounts"], tmp_path, config_path)
    selection = json.loads(catalog.read_text())  # a CRM ID is sent with its type or not at all: leave it out
    for entry in selection["streams"]:
        for meta in entry["metadata"]:
            if meta["breadcrumb"] == ["properties", "crm_id"]:
                meta["metadata"]["selected"] = False
    write_json(catalog, selection)
    tap = subprocess.run(
        [TAP, "--config", str(config_path), "--catalog", str(catalog)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert tap.returncode == 0, tap.stderr[-3000:]
    messages = [json.loads(line) for line in tap.stdout.splitlines()]
    assert not [m for m in messages if m["type"] == "RECORD"]
    manifests = [m for m in messages if m["type"] == "BATCH"]
    files = [uri.removeprefix("file://") for m in manifests for uri in m["manifest"]]
    assert len(files) == 3 and all(f.endswith(".json.gz") for f in files), manifests
    in_files = [
        json.loads(line) for f in files for line in gzip.decompress(Path(f).read_bytes()).splitlines()
    ]
    assert not [r for r in in_files if "crm_id" in r], "a deselected property was written to a batch file"
    accounts = sb.records("accounts")
    assert sorted(r["id"] for r in in_files) == sorted(a["id"] for a in accounts)

    sb.clear_journal()
    target_config = write_json(
        tmp_path / "target.json",
        {
            "base_url": sb.url,
            "api_key": sb.api_key,
            "stream_sinks": {"accounts": "upsert_account"},
            "rejected_path": str(tmp_path / "rejected.jsonl"),
        },
    )
    target = subprocess.run(
        [TARGET, "--config", str(target_config)],
        input=tap.stdout,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert target.returncode == 0, target.stderr[-3000:]
    upserts = [e for e in sb.journal() if e["path"] == "/v2/account_upserts.json"]
    assert sorted(e["body"]["domain"] for e in upserts) == sorted(a["domain"] for a in accounts)
    assert all(e["status"] == 200 for e in upserts)
    assert not (tmp_path / "rejected.jsonl").exists() or not (tmp_path / "rejected.jsonl").read_text()
    assert (
        json.loads(target.stdout.splitlines()[-1]) == messages[-1]["value"]
    )  # the tap's last STATE passed on


def test_batch_config_with_stream_maps_is_refused_in_one_line(sb, tmp_path):
    """singer-sdk does not apply stream maps to batch files: say so rather than ignore the maps."""
    config = tap_config(
        sb,
        batch_config={
            "encoding": {"format": "jsonl", "compression": "gzip"},
            "storage": {"root": f"file://{tmp_path}"},
        },
        stream_maps={"accounts": {"__filter__": "False"}},
    )
    config_path = write_json(tmp_path / "tap.json", config)
    result = subprocess.run([TAP, "--config", str(config_path)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == (
        "tap-salesloft: error: batch_config: singer-sdk writes batch files without stream_maps; "
        "remove them (or batch_config, for RECORD messages, where they apply)"
    )
