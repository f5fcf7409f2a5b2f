"""The plugin definition files (meltano-hub/) work as a user of Meltano would use them: a project made
from scratch with `meltano init` adds both plugins with `meltano add --from-ref`, installed from the
repository without -e, is configured with `meltano config set`, and runs tap -> target-jsonl twice
(the second from Meltano's state) and tap -> target-salesloft against the sandbox.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml
from cli_support import REPO
from test_meltano_project import meltano  # noqa: F401 - the fixture that makes .venv-meltano

HUB = REPO / "meltano-hub"
DEFINITIONS = {
    "extractor": HUB / "extractors" / "tap-salesloft.yml",
    "loader": HUB / "loaders" / "target-salesloft.yml",
}


def definition(kind: str) -> dict:
    return yaml.safe_load(DEFINITIONS[kind].read_text())


def test_definitions_are_generated_from_what_the_plugins_declare():
    """Every setting `--about` lists (singer-sdk's too: stream_maps must be an object to Meltano)."""
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "gen_meltano_hub.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    for kind in DEFINITIONS:
        doc = definition(kind)
        settings = {s["name"]: s for s in doc["settings"]}
        assert settings["stream_maps"]["kind"] == "object" and settings["api_key"]["sensitive"] is True
        assert ("start_date" in settings) == (kind == "extractor")
        assert "variant" not in doc, "a variant makes Meltano look the plugin up on its Hub"
        assert "-e " not in doc["pip_url"]


def _meltano(executable: Path, cwd: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env.update(
        {
            "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
            "MELTANO_DISABLE_TRACKING": "true",
            "MELTANO_CLI_DISABLE_VERSION_CHECK": "true",
            "NO_COLOR": "1",
        }
    )
    result = subprocess.run(
        [str(executable), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, f"meltano {' '.join(args)} failed:\n{result.stderr[-4000:]}"
    return result


def test_a_new_meltano_project_adds_both_plugins_from_the_definitions_and_runs_them(
    meltano,  # noqa: F811
    tmp_path,
):
    from sandbox.testing import running_sandbox

    _meltano(meltano, tmp_path, "init", "project", "--no-usage-stats")
    project = tmp_path / "project"
    for kind, path in DEFINITIONS.items():
        doc = definition(kind)
        doc["pip_url"] = str(REPO)  # the repository itself, installed as a package (not editable)
        ref = project / path.name
        ref.write_text(yaml.safe_dump(doc, sort_keys=False))
        _meltano(meltano, project, "add", "--plugin-type", kind, doc["name"], "--from-ref", str(ref))
    jsonl = next(
        p
        for p in yaml.safe_load((REPO / "meltano.yml").read_text())["plugins"]["loaders"]
        if p["name"] == "target-jsonl"
    )
    (project / "target-jsonl.yml").write_text(yaml.safe_dump(jsonl, sort_keys=False))
    _meltano(
        meltano, project, "add", "--plugin-type", "loader", "target-jsonl", "--from-ref", "target-jsonl.yml"
    )
    installed = project / ".meltano" / "extractors" / "tap-salesloft" / "venv"
    assert not list(installed.glob("lib/python*/site-packages/__editable__*")), "installed editable"

    with running_sandbox() as sandbox:
        output = tmp_path / "output"
        for plugin in ("tap-salesloft", "target-salesloft"):
            _meltano(meltano, project, "config", "set", plugin, "base_url", sandbox.url)
            _meltano(meltano, project, "config", "set", plugin, "api_key", sandbox.api_key)
        _meltano(meltano, project, "config", "set", "target-jsonl", "destination_path", str(output))
        _meltano(meltano, project, "config", "set", "target-jsonl", "do_timestamp_file", "false")
        _meltano(
            meltano,
            project,
            "config",
            "set",
            "target-salesloft",
            "stream_sinks",
            '{"accounts": "upsert_account"}',
        )
        _meltano(
            meltano,
            project,
            "config",
            "set",
            "target-salesloft",
            "stream_maps",
            json.dumps(
                {
                    "accounts": {
                        "__else__": "__NULL__",
                        "id": "id",  # the key property stays
                        "domain": "domain",
                        "name": "name",
                        "description": "'Synced by Meltano'",
                    }
                }
            ),
        )
        _meltano(
            meltano,
            project,
            "config",
            "set",
            "target-salesloft",
            "rejected_path",
            str(tmp_path / "rejected.jsonl"),
        )
        _meltano(meltano, project, "select", "tap-salesloft", "accounts", "*")
        assert (
            "api_key" not in (project / "meltano.yml").read_text().split("settings:")[-1].split("config:")[-1]
        )

        _meltano(meltano, project, "run", "tap-salesloft", "target-jsonl")
        accounts = sandbox.records("accounts")
        lines = (output / "accounts.jsonl").read_text().splitlines()
        assert sorted(json.loads(line)["id"] for line in lines) == sorted(a["id"] for a in accounts)
        touched = sandbox.touch("accounts", count=2)
        _meltano(meltano, project, "run", "tap-salesloft", "target-jsonl")  # from the state Meltano kept
        lines = (output / "accounts.jsonl").read_text().splitlines()
        assert len(lines) == len(accounts) + 2
        assert sorted(json.loads(line)["id"] for line in lines[-2:]) == sorted(r["id"] for r in touched)

        sandbox.clear_journal()
        _meltano(meltano, project, "run", "--full-refresh", "tap-salesloft", "target-salesloft")
        upserts = [e for e in sandbox.journal() if e["path"] == "/v2/account_upserts.json"]
        assert {e["body"]["domain"] for e in upserts} == {a["domain"] for a in accounts}
        assert all(
            e["status"] == 200 and set(e["body"]) == {"domain", "name", "description"} for e in upserts
        )
    rejected = tmp_path / "rejected.jsonl"
    assert not rejected.exists() or rejected.read_text() == ""
