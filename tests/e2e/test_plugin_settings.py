"""What the plugins offer and say about their settings, as a user sees it from the real CLIs."""

from __future__ import annotations

import json
import subprocess

from helpers import TAP, TARGET, run_target, singer_lines


def about(executable: str) -> dict:
    out = subprocess.run(
        [executable, "--about", "--format", "json"], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)["settings"]["properties"]


def test_target_about_lists_only_settings_that_do_something_for_it():
    target = about(TARGET)
    for useless in ("start_date", "add_record_metadata", "load_method", "batch_size_rows"):
        assert useless not in target, useless
    for used in ("stream_sinks", "sink", "validate_records", "stream_maps", "flattening_enabled", "api_key"):
        assert used in target, used
    assert "start_date" in about(TAP)


def test_a_stream_without_a_sink_names_the_stream_sinks_setting(tmp_path):
    """tap-postgres names its streams <schema>-<table>: the message says how to map one."""
    config = {
        "base_url": "http://127.0.0.1:9",
        "api_key": "k",
        "stream_sinks": {"accounts": "upsert_account"},
    }
    run = run_target(config, tmp_path, singer_lines("public-accounts", [{"domain": "a.example.com"}]))
    assert run.returncode == 1
    assert "no sink 'public-accounts' for stream 'public-accounts'" in run.stderr
    assert '`stream_sinks` setting, e.g. {"public-accounts": "SINK"}' in run.stderr
    assert "Traceback" not in run.stderr
