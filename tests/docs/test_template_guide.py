"""The guide's worked example, run as written: its commands, files and outputs must stay true.

The section "Worked example" of docs/template-guide.md is executed in a copy of the templates and
specs: ``<!-- file: PATH -->`` + a code block writes PATH; in ```console blocks each ``$ command``
runs in bash and its output must match the lines that follow (a line ending in ``...`` matches by
its beginning). ``connector sandbox`` is replaced by a sandbox the test starts on a free port.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cli_support import REPO

from sandbox.testing import running_sandbox

GUIDE = REPO / "docs" / "template-guide.md"
DOC_PORT = "8555"


@dataclass
class Step:
    command: str | None = None
    expected: list[str] = field(default_factory=list)
    file: str | None = None
    content: str = ""


def worked_example() -> list[Step]:
    text = GUIDE.read_text()
    section = text[text.index("## Worked example") :]
    following = section.find("\n## ", 3)
    section = section if following < 0 else section[:following]
    steps: list[Step] = []
    pending_file = None
    for match in re.finditer(
        r"<!-- file: (?P<file>\S+) -->|```(?P<lang>\w*)\n(?P<body>.*?)```", section, re.S
    ):
        if match["file"]:
            pending_file = match["file"]
            continue
        body = match["body"]
        if pending_file:
            steps.append(Step(file=pending_file, content=body))
            pending_file = None
        elif match["lang"] == "console":
            for line in body.splitlines():
                if line.startswith("$ "):
                    steps.append(Step(command=line[2:]))
                elif steps and steps[-1].command is not None:
                    steps[-1].expected.append(line)
    return steps


def matches(expected: list[str], actual: list[str]) -> bool:
    if len(expected) != len(actual):
        return False
    return all(
        a.startswith(e[:-3]) if e.endswith("...") else a == e for e, a in zip(expected, actual, strict=True)
    )


def test_the_worked_example_has_steps():
    steps = worked_example()
    assert any(s.file for s in steps)
    assert any(s.command and s.command.startswith("connector new stream") for s in steps)
    assert any(s.command and s.command.startswith("connector tap") for s in steps)


@pytest.mark.timeout(180)
def test_the_worked_example_runs_as_written(tmp_path):
    for name in ("templates", "specs", "docs/connectors"):
        shutil.copytree(REPO / name, tmp_path / name)
    env = {
        **os.environ,
        "CONNECTOR_TEMPLATES": str(tmp_path / "templates"),
        "CONNECTOR_SPECS": str(tmp_path / "specs"),
        "NO_COLOR": "1",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    with running_sandbox() as sandbox:
        port = sandbox.url.rsplit(":", 1)[1]
        for step in worked_example():
            if step.file:
                (tmp_path / step.file).write_text(step.content)
                continue
            assert step.command is not None
            if step.command.startswith("connector sandbox"):
                continue  # the test's own sandbox stands in for it
            command = step.command.replace(f"127.0.0.1:{DOC_PORT}", f"127.0.0.1:{port}")
            result = subprocess.run(
                ["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
            )
            expected = [line.replace(f"127.0.0.1:{DOC_PORT}", f"127.0.0.1:{port}") for line in step.expected]
            actual = (result.stdout + result.stderr).splitlines()
            assert matches(expected, actual), (
                f"$ {step.command}\nexpected:\n" + "\n".join(expected) + "\nactual:\n" + "\n".join(actual)
            )
