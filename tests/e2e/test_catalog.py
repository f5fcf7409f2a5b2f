"""Discovery is static (no API call) and the committed catalog.json is what it produces."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from helpers import TAP

ROOT = Path(__file__).resolve().parents[2]


def test_committed_catalog_equals_discovery_without_any_api_call(tmp_path):
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps({"base_url": "http://127.0.0.1:9", "api_key": "unused-key"})
    )  # nothing listens
    out = subprocess.run(
        [TAP, "--config", str(config), "--discover"], capture_output=True, text=True, check=True
    )
    discovered = json.loads(out.stdout)
    committed = json.loads((ROOT / "catalog.json").read_text())
    assert discovered == committed, (
        "catalog.json is stale: run `tap-salesloft --config {} --discover > catalog.json`"
    )
    names = {s["tap_stream_id"] for s in discovered["streams"]}
    assert len(names) >= 30
    people = next(s for s in discovered["streams"] if s["tap_stream_id"] == "people")
    assert people["key_properties"] == ["id"] and people["replication_key"] == "updated_at"
    assert people["replication_method"] == "INCREMENTAL"
