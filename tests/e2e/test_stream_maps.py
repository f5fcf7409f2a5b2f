"""Every singer-sdk stream-map feature gives the same output on the tap's fast path as on singer-sdk's
own (CONNECTOR_FAST_PATH=off, the reference): flattening, property expressions, __filter__,
__alias__, __else__: null, __source__ copies, removed properties, property selection."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from helpers import TAP, tap_config, write_json

STREAMS = ["accounts", "people"]


@pytest.fixture(scope="module")
def sb():
    from sandbox.testing import running_sandbox

    with running_sandbox(sizes={"accounts": 30, "people": 30}) as handle:
        yield handle


@pytest.fixture(scope="module")
def catalog(sb, tmp_path_factory) -> dict:
    config = write_json(tmp_path_factory.mktemp("discover") / "config.json", tap_config(sb))
    out = subprocess.run(
        [TAP, "--config", str(config), "--discover"], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)


def select(catalog: dict, deselect: tuple[str, ...] = ()) -> dict:
    catalog = json.loads(json.dumps(catalog))
    for entry in catalog["streams"]:
        for meta in entry["metadata"]:
            if meta["breadcrumb"] == []:
                meta["metadata"]["selected"] = entry["tap_stream_id"] in STREAMS
            elif meta["breadcrumb"][-1] in deselect:
                meta["metadata"]["selected"] = False
    return catalog


def output(tmp_path: Path, config: dict, catalog: dict, fast: bool) -> list[dict]:
    """The tap's SCHEMA and RECORD messages (time_extracted aside: it is the clock)."""
    run_dir = tmp_path / ("fast" if fast else "reference")
    run_dir.mkdir()
    env = {**os.environ, "CONNECTOR_FAST_PATH": "on" if fast else "off"}
    result = subprocess.run(
        [
            TAP,
            "--config",
            str(write_json(run_dir / "config.json", config)),
            "--catalog",
            str(write_json(run_dir / "catalog.json", catalog)),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    messages = [json.loads(line) for line in result.stdout.splitlines()]
    for message in messages:
        message.pop("time_extracted", None)
    return [m for m in messages if m["type"] in ("SCHEMA", "RECORD")]


CASES = {
    "no maps": ({}, ()),
    "deselected properties": ({}, ("description", "owner")),
    "flattening": ({"flattening_enabled": True, "flattening_max_depth": 1}, ()),
    "deep flattening": ({"flattening_enabled": True, "flattening_max_depth": 3}, ()),
    "property expressions": (
        {"stream_maps": {"accounts": {"name_upper": "name.upper()", "domain": "domain.lower()"}}},
        (),
    ),
    "__else__ null": ({"stream_maps": {"accounts": {"id": "id", "name": "name", "__else__": None}}}, ()),
    "removed property": ({"stream_maps": {"people": {"email_address": None}}}, ()),
    "__filter__": ({"stream_maps": {"accounts": {"__filter__": "id % 2 == 0"}}}, ()),
    "__alias__": ({"stream_maps": {"accounts": {"__alias__": "companies"}}}, ()),
    "__source__ copy": ({"stream_maps": {"accounts_copy": {"__source__": "accounts"}}}, ()),
    "maps and flattening": (
        {
            "stream_maps": {"people": {"full": "first_name + ' ' + last_name"}},
            "flattening_enabled": True,
            "flattening_max_depth": 2,
        },
        (),
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_fast_path_output_equals_the_sdk_path(sb, catalog, tmp_path, case):
    extra, deselect = CASES[case]
    config = tap_config(sb, **extra)
    chosen = select(catalog, deselect)
    fast = output(tmp_path, config, chosen, fast=True)
    reference = output(tmp_path, config, chosen, fast=False)
    assert [m for m in reference if m["type"] == "RECORD"], "the reference run emitted no records"
    assert fast == reference


def test_flattened_records_match_their_flattened_schema(sb, catalog, tmp_path):
    """What made target-csv refuse the records: a flattened SCHEMA followed by nested RECORDs."""
    config = tap_config(sb, flattening_enabled=True, flattening_max_depth=1)
    messages = output(tmp_path, config, select(catalog), fast=True)
    schemas = {m["stream"]: set(m["schema"]["properties"]) for m in messages if m["type"] == "SCHEMA"}
    records = [m for m in messages if m["type"] == "RECORD" and m["stream"] == "accounts"]
    assert records
    for message in records:  # (singer-sdk keeps an object that is null under its own name, as null)
        undeclared = {k: v for k, v in message["record"].items() if k not in schemas["accounts"]}
        assert all(v is None for v in undeclared.values()), undeclared
    assert any("owner__id" in m["record"] for m in records)
