"""Running a bundled connection's tap and target as processes against one of the family servers."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cli_support import run_cli, write_json, write_jsonl


@dataclass
class TapRun:
    records: dict[str, list[dict]] = field(default_factory=dict)
    states: list[tuple[int, dict]] = field(default_factory=list)  # (records emitted before it, STATE value)
    order: list[tuple[str, dict]] = field(default_factory=list)  # every RECORD in output order
    returncode: int = 0
    stderr: str = ""

    @property
    def last_state(self) -> dict:
        return self.states[-1][1] if self.states else {}

    def bookmark(self, stream: str) -> Any:
        return self.last_state.get("bookmarks", {}).get(stream, {}).get("replication_key_value")


def tap(
    connection: str,
    config: dict,
    tmp_path: Path,
    *,
    streams: list[str] | None = None,
    state: dict | None = None,
    check: bool = True,
) -> TapRun:
    args = ["tap", connection, "--config", str(write_json(tmp_path / "tap-config.json", config))]
    if state is not None:
        args += ["--state", str(write_json(tmp_path / "state.json", state))]
    if streams:
        args += ["--streams", ",".join(streams)]
    result = run_cli(*args, cwd=tmp_path, timeout=300)
    run = TapRun(returncode=result.returncode, stderr=result.stderr)
    if check:
        assert result.returncode == 0, result.stderr[-3000:]
    for line in result.stdout.splitlines():
        message = json.loads(line)
        if message["type"] == "RECORD":
            run.records.setdefault(message["stream"], []).append(message["record"])
            run.order.append((message["stream"], message["record"]))
        elif message["type"] == "STATE":
            run.states.append((len(run.order), message["value"]))
    return run


@dataclass
class TargetRun:
    returncode: int
    stdout: str
    stderr: str
    rejected: list[dict]
    responses: list[dict]


def target(
    connection: str, config: dict, tmp_path: Path, stream: str, records: list[dict], schema: dict
) -> TargetRun:
    rejected, responses = tmp_path / "rejected.jsonl", tmp_path / "responses.jsonl"
    for path in (rejected, responses):
        path.unlink(missing_ok=True)
    full = {**config, "rejected_path": str(rejected), "responses_path": str(responses)}
    lines = [{"type": "SCHEMA", "stream": stream, "schema": schema, "key_properties": []}]
    lines += [{"type": "RECORD", "stream": stream, "record": r} for r in records]
    lines.append({"type": "STATE", "value": {"done": len(records)}})
    source = write_jsonl(tmp_path / "input.jsonl", lines)
    config_path = write_json(tmp_path / "target-config.json", full)
    result = run_cli(
        "target",
        connection,
        "--config",
        str(config_path),
        stdin=source.read_text(),
        cwd=tmp_path,
        timeout=300,
    )

    def rows(path: Path) -> list[dict]:
        return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []

    return TargetRun(result.returncode, result.stdout, result.stderr, rows(rejected), rows(responses))
