"""Running the real tap and target CLIs as processes, and reading their Singer output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent
TAP = str(BIN / "tap-salesloft")
TARGET = str(BIN / "target-salesloft")


@dataclass
class TapRun:
    returncode: int
    messages: list[dict]
    stderr: str
    records: dict[str, list[dict]] = field(default_factory=dict)
    states: list[dict] = field(default_factory=list)


def write_json(path: Path, value: Any) -> Path:
    path.write_text(json.dumps(value))
    return path


def settle() -> None:
    """Wait until writes just made lie before the end of a tap's next read. A read's range ends at the API's
    present, and before the tap has heard the API's clock, at the local clock less a margin."""
    from connector.serverclock import UNKNOWN_MARGIN

    time.sleep(UNKNOWN_MARGIN.total_seconds() + 0.5)


def tap_config(sandbox, **extra: Any) -> dict:
    return {"base_url": sandbox.url, "api_key": sandbox.api_key, **extra}


def catalog_for(streams: list[str] | None, tmp_path: Path, config_path: Path) -> Path | None:
    if streams is None:
        return None
    out = subprocess.run(
        [TAP, "--config", str(config_path), "--discover"], capture_output=True, text=True, check=True
    )
    catalog = json.loads(out.stdout)
    for entry in catalog["streams"]:
        selected = entry["tap_stream_id"] in streams
        for meta in entry["metadata"]:
            if meta["breadcrumb"] == []:
                meta["metadata"]["selected"] = selected
    return write_json(tmp_path / "catalog.json", catalog)


def run_tap(
    config: dict,
    tmp_path: Path,
    streams: list[str] | None = None,
    state: dict | None = None,
    timeout: float = 300,
    check: bool = True,
) -> TapRun:
    config_path = write_json(tmp_path / "tap-config.json", config)
    args = [TAP, "--config", str(config_path)]
    catalog = catalog_for(streams, tmp_path, config_path)
    if catalog:
        args += ["--catalog", str(catalog)]
    if state is not None:
        args += ["--state", str(write_json(tmp_path / "state.json", state))]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout, env={**os.environ})
    run = TapRun(proc.returncode, [], proc.stderr)
    for line in proc.stdout.splitlines():
        message = json.loads(line)
        run.messages.append(message)
        if message["type"] == "RECORD":
            run.records.setdefault(message["stream"], []).append(message["record"])
        elif message["type"] == "STATE":
            run.states.append(message["value"])
    if check:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return run


@dataclass
class TargetRun:
    returncode: int
    stdout: str
    stderr: str
    rejected: list[dict]
    states: list[dict]


def singer_lines(
    stream: str,
    records: list[dict],
    schema: dict | None = None,
    key_properties: list[str] | None = None,
    state: dict | None = None,
) -> str:
    schema = schema or {"type": "object", "properties": {}, "additionalProperties": True}
    lines = [
        json.dumps(
            {"type": "SCHEMA", "stream": stream, "schema": schema, "key_properties": key_properties or []}
        )
    ]
    lines += [json.dumps({"type": "RECORD", "stream": stream, "record": r}) for r in records]
    if state is not None:
        lines.append(json.dumps({"type": "STATE", "value": state}))
    return "\n".join(lines) + "\n"


def run_target(config: dict, tmp_path: Path, stdin: str | bytes, timeout: float = 600) -> TargetRun:
    """The target on ``stdin`` (bytes for input that is not UTF-8); its outputs as text."""
    rejected = tmp_path / "rejected.jsonl"
    config = {"rejected_path": str(rejected), **config}
    config_path = write_json(tmp_path / "target-config.json", config)
    data = stdin.encode() if isinstance(stdin, str) else stdin
    proc = subprocess.run(
        [TARGET, "--config", str(config_path)], input=data, capture_output=True, timeout=timeout
    )
    stdout, stderr = proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace")
    path = Path(config["rejected_path"]) if config["rejected_path"] else None  # "" or null: no file
    rejected_rows = (
        [json.loads(line) for line in path.read_text().splitlines()] if path and path.exists() else []
    )
    states = [json.loads(line) for line in stdout.splitlines() if line.strip()]
    return TargetRun(proc.returncode, stdout, stderr, rejected_rows, states)


def by_id(records: list[dict]) -> dict[Any, dict]:
    return {r["id"]: r for r in records}


def logged_json(stderr: str, prefix: str) -> dict[str, Any]:
    """The JSON object of the last log line carrying ``prefix`` (``HTTP summary: ``, ``Target summary: ``)."""
    lines = [line for line in stderr.splitlines() if prefix in line]
    assert lines, f"no {prefix!r} line in the output:\n{stderr[-3000:]}"
    return json.loads(lines[-1].split(prefix, 1)[1])
