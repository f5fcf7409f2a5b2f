"""Running the ``connector`` command as a user would: a real process, its output and exit status."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
CONNECTOR = str(BIN / "connector")


def run_cli(
    *args: str,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    stdin: str | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess:
    """``connector ARGS...`` as a subprocess; stdout and stderr kept apart."""
    full_env = {**os.environ, "COLUMNS": "120", "NO_COLOR": "1", **(env or {})}
    return subprocess.run(
        [CONNECTOR, *args],
        cwd=cwd or REPO,
        env=full_env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def isolated_templates(tmp_path: Path, *connections: str) -> dict[str, str]:
    """Copies of bundled connections (templates and specs) under tmp_path, and the env that points the CLI at them."""
    for name in connections:
        shutil.copytree(REPO / "templates" / name, tmp_path / "templates" / name)
        if (REPO / "specs" / name).is_dir():
            shutil.copytree(REPO / "specs" / name, tmp_path / "specs" / name)
    shutil.copy(REPO / "specs" / "template.schema.json", tmp_path / "specs" / "template.schema.json")
    shutil.copytree(REPO / "docs" / "connectors", tmp_path / "docs" / "connectors", dirs_exist_ok=True)
    return {"CONNECTOR_TEMPLATES": str(tmp_path / "templates"), "CONNECTOR_SPECS": str(tmp_path / "specs")}


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows))
    return path


def write_json(path: Path, value: Any) -> Path:
    path.write_text(json.dumps(value))
    return path
