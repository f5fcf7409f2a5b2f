"""Optional peers for the read benchmark, each installed on demand in its own virtualenv under .bench/.

- Airbyte's Salesloft source (PyPI airbyte-source-salesloft 1.2.24, a declarative manifest): the
  package needs Python < 3.11, so its manifest is taken from the wheel and run on the current
  airbyte-cdk (bench/airbyte_runner.py), with the one migration the current CDK requires.
- tap-rest-api-msdk, the generic config-driven Singer tap, configured for the same endpoint.

Nothing here is needed by the tests; ``bench/run.py --peers`` installs what is missing.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _venv(work: Path, name: str, packages: list[str]) -> Path | None:
    venv = work / f"venv-{name}"
    python = venv / "bin" / "python"
    marker = venv / ".installed"
    if not marker.exists():
        print(f"  installing {', '.join(packages)} into {venv} ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        done = subprocess.run(
            [str(python), "-m", "pip", "install", "-q", *packages], capture_output=True, text=True
        )
        if done.returncode != 0:
            print(f"  could not install {packages}: {done.stderr[-500:]}", file=sys.stderr)
            return None
        marker.write_text("ok\n")
    return python


def _airbyte_manifest(work: Path) -> Path | None:
    target = work / "airbyte-source-salesloft"
    if (target / "source_salesloft" / "manifest.yaml").exists():
        return target
    download = work / "downloads"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "-q",
            "--no-deps",
            "--only-binary=:all:",
            "--python-version",
            "3.10",
            "airbyte-source-salesloft==1.2.24",
            "-d",
            str(download),
        ],
        capture_output=True,
        text=True,
    )
    wheels = list(download.glob("airbyte_source_salesloft-*.whl"))
    if done.returncode != 0 or not wheels:
        print(f"  could not download airbyte-source-salesloft: {done.stderr[-300:]}", file=sys.stderr)
        return None
    with zipfile.ZipFile(wheels[0]) as wheel:
        for member in wheel.namelist():
            if member.startswith("source_salesloft/"):
                wheel.extract(member, target)
    return target


@dataclass
class Peer:
    name: str
    python: Path
    extra: Path | None = None

    def command(self, work: Path, base_url: str, api_key: str) -> tuple[list[str], dict]:
        if self.name.startswith("airbyte"):
            return [
                str(self.python),
                str(HERE / "airbyte_runner.py"),
                str(self.extra),
                base_url,
                api_key,
                "people",
            ], {}
        config = {
            "api_url": base_url,
            "auth_method": "bearer_token",
            "bearer_token": api_key,
            "next_page_token_path": "$.metadata.paging.next_page",
            "pagination_request_style": "default",
            "pagination_response_style": "default",
            "pagination_next_page_param": "page",
            "streams": [
                {
                    "name": "people",
                    "path": "/v2/people.json",
                    "params": {"per_page": 100, "sort_by": "updated_at", "sort_direction": "ASC"},
                    "records_path": "$.data[*]",
                    "primary_keys": ["id"],
                }
            ],
        }
        path = work / "msdk-config.json"
        path.write_text(json.dumps(config))
        return [str(self.python.parent / "tap-rest-api-msdk"), "--config", str(path)], {}


def available(work: Path) -> list[Peer]:
    peers: list[Peer] = []
    python = _venv(work, "airbyte", ["airbyte-cdk"])
    manifest = _airbyte_manifest(work)
    if python and manifest:
        peers.append(
            Peer("airbyte-source-salesloft 1.2.24 manifest on current airbyte-cdk", python, manifest)
        )
    python = _venv(work, "msdk", ["tap-rest-api-msdk"])
    if python:
        peers.append(Peer("tap-rest-api-msdk", python))
    return peers
