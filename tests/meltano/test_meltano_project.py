"""meltano.yml works: `meltano run` with the project's tap and target against the Salesloft sandbox.

Meltano has heavy dependencies, so it lives in its own virtualenv (.venv-meltano), made here on first
use (pip, from the package index; nothing else leaves the machine: every plugin is defined in
meltano.yml, telemetry and version checks are off). Set CONNECTOR_SKIP_MELTANO=1 to skip these tests.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml
from cli_support import REPO

from connector.plugin import plugin_settings
from connector.target import TARGET_SETTINGS
from connector.templates import load_bundled

MELTANO_VENV = REPO / ".venv-meltano"
MELTANO_REQUIREMENT = "meltano>=4,<5"
KINDS = {
    "string": "string",
    "integer": "integer",
    "number": "decimal",
    "boolean": "boolean",
    "date-time": "date_iso8601",
    "object": "object",
    "array": "array",
}


def project() -> dict:
    return yaml.safe_load((REPO / "meltano.yml").read_text())


def plugin(kind: str, name: str) -> dict:
    return next(p for p in project()["plugins"][kind] if p["name"] == name)


@pytest.mark.parametrize(
    ("kind", "name", "role", "extra"),
    [
        ("extractors", "tap-salesloft", "tap", []),
        ("loaders", "target-salesloft", "target", TARGET_SETTINGS),
    ],
)
def test_plugin_settings_match_the_connection(kind, name, role, extra):
    """Every setting the tap/target accepts is declared, with its kind; secrets are sensitive."""
    declared = {s["name"]: s for s in plugin(kind, name)["settings"]}
    expected = plugin_settings(load_bundled("salesloft"), role, extra)
    assert list(declared) == [s.name for s in expected]
    for setting in expected:
        entry = declared[setting.name]
        assert entry["kind"] == KINDS[setting.type], setting.name
        assert bool(entry.get("sensitive")) == setting.secret, setting.name
        assert entry.get("value") == setting.default, setting.name


def test_plugins_run_the_project_console_scripts_and_declare_capabilities():
    tap, target = plugin("extractors", "tap-salesloft"), plugin("loaders", "target-salesloft")
    assert tap["executable"] == ".venv/bin/tap-salesloft" and "pip_url" not in tap
    assert target["executable"] == ".venv/bin/target-salesloft" and "pip_url" not in target
    assert set(tap["capabilities"]) == {"catalog", "discover", "state", "about", "stream-maps"}
    assert set(target["capabilities"]) == {"about", "stream-maps"}
    assert project()["send_anonymous_usage_stats"] is False
    for kind in ("extractors", "loaders"):
        for entry in project()["plugins"][kind]:
            assert "variant" not in entry, (
                f"{entry['name']}: a variant makes Meltano look the plugin up on its Hub"
            )


# ---------------------------------------------------------------- running meltano


@pytest.fixture(scope="module")
def meltano() -> Path:
    if os.environ.get("CONNECTOR_SKIP_MELTANO"):
        pytest.skip("CONNECTOR_SKIP_MELTANO is set")
    executable = MELTANO_VENV / "bin" / "meltano"
    with open(Path(tempfile.gettempdir()) / "declarative-connector-meltano-venv.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one worker creates it, the others wait
        if not executable.exists():
            try:
                subprocess.run(
                    [sys.executable, "-m", "venv", "--clear", str(MELTANO_VENV)],
                    check=True,
                    capture_output=True,
                    timeout=300,
                )
                subprocess.run(
                    [
                        str(MELTANO_VENV / "bin" / "python"),
                        "-m",
                        "pip",
                        "install",
                        "--quiet",
                        MELTANO_REQUIREMENT,
                    ],
                    check=True,
                    capture_output=True,
                    timeout=1200,
                )
            except (OSError, subprocess.SubprocessError) as exc:
                detail = getattr(exc, "stderr", b"") or b""
                pytest.skip(
                    f"cannot create the meltano virtualenv {MELTANO_VENV} ({exc}): "
                    f"{detail.decode(errors='replace')[-500:]}"
                )
    return executable


def meltano_env(tmp_path: Path, sandbox) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env.update(
        {
            "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
            "MELTANO_DISABLE_TRACKING": "true",
            "MELTANO_CLI_DISABLE_VERSION_CHECK": "true",
            "MELTANO_DATABASE_URI": f"sqlite:///{tmp_path / 'meltano.db'}",  # state of this test only
            "MELTANO_ENVIRONMENT": "sandbox",
            "NO_COLOR": "1",
            "TAP_SALESLOFT_BASE_URL": sandbox.url,
            "TARGET_SALESLOFT_BASE_URL": sandbox.url,
            "TARGET_SALESLOFT_REJECTED_PATH": str(tmp_path / "rejected.jsonl"),
            "TARGET_JSONL_DESTINATION_PATH": str(tmp_path / "output"),
        }
    )
    return env


def run(meltano: Path, env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    # One meltano command at a time across test workers: they share the project's .meltano/ (catalog cache).
    with open(Path(tempfile.gettempdir()) / "declarative-connector-meltano-run.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        result = subprocess.run(
            [str(meltano), *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
        )
    assert result.returncode == 0, f"meltano {' '.join(args)} failed:\n{result.stderr[-4000:]}"
    return result


def digest() -> str:
    return hashlib.sha256((REPO / "meltano.yml").read_bytes()).hexdigest()


def test_meltano_run_tap_salesloft_target_salesloft(meltano, tmp_path):
    """The sandbox's accounts and people go out through the tap and back through the target's upserts."""
    from sandbox.testing import running_sandbox

    before = digest()
    with running_sandbox() as sandbox:
        accounts, people = sandbox.records("accounts"), sandbox.records("people")
        run(meltano, meltano_env(tmp_path, sandbox), "run", "tap-salesloft", "target-salesloft")
        journal = sandbox.journal()
        # Meltano runs tap and target at once: an account upserted while the tap still pages may be read
        # (and upserted, idempotently) twice. Every record must have gone through at least once.
        upserts = [e for e in journal if e["path"] == "/v2/account_upserts.json"]
        assert {e["body"]["domain"] for e in upserts} == {a["domain"] for a in accounts}
        assert all(set(e["body"]) == {"domain", "name", "description"} for e in upserts)  # the stream map
        person_upserts = [e for e in journal if e["path"] == "/v2/person_upserts.json"]
        assert {e["body"]["email_address"] for e in person_upserts} == {p["email_address"] for p in people}
        assert all(e["status"] == 200 for e in upserts + person_upserts)
        assert {a["description"] for a in sandbox.records("accounts")} == {"Synced by Meltano"}
    rejected = tmp_path / "rejected.jsonl"
    assert not rejected.exists() or rejected.read_text() == ""
    assert digest() == before, "meltano rewrote meltano.yml: commit it in Meltano's own form"


def test_meltano_run_to_jsonl_files_with_incremental_state(meltano, tmp_path):
    from sandbox.testing import running_sandbox

    with running_sandbox() as sandbox:
        env = meltano_env(tmp_path, sandbox)
        run(meltano, env, "install", "loader", "target-jsonl", timeout=900)
        run(meltano, env, "run", "tap-salesloft", "target-jsonl")
        output = tmp_path / "output"
        for stream in ("accounts", "people"):
            lines = (output / f"{stream}.jsonl").read_text().splitlines()
            assert sorted(json.loads(line)["id"] for line in lines) == sorted(
                r["id"] for r in sandbox.records(stream)
            )
        touched = sandbox.touch("accounts", count=2)
        run(meltano, env, "run", "tap-salesloft", "target-jsonl")  # from the state Meltano kept
        lines = (output / "accounts.jsonl").read_text().splitlines()
        assert len(lines) == len(sandbox.records("accounts")) + 2
        assert sorted(json.loads(line)["id"] for line in lines[-2:]) == sorted(r["id"] for r in touched)


def test_meltano_runs_with_oauth_keep_the_rotated_tokens_in_the_token_file(meltano, tmp_path):
    """Meltano gives each plugin a temporary config holding the same single-use refresh token, run after run."""
    from sandbox.testing import running_sandbox

    oauth = {
        "client_id": "meltano-client",
        "client_secret": "meltano-secret-0c1d",
        "refresh_token": "meltano-refresh-1",
    }
    with running_sandbox(token_ttl=2, budget=100_000, **oauth) as sandbox:
        env = meltano_env(tmp_path, sandbox)
        for plugin_env in ("TAP_SALESLOFT", "TARGET_SALESLOFT"):
            env.update(
                {
                    f"{plugin_env}_API_KEY": "",
                    f"{plugin_env}_CLIENT_ID": oauth["client_id"],
                    f"{plugin_env}_CLIENT_SECRET": oauth["client_secret"],
                    f"{plugin_env}_REFRESH_TOKEN": oauth["refresh_token"],
                    f"{plugin_env}_TOKEN_URL": f"{sandbox.url}/oauth/token",
                    f"{plugin_env}_TOKEN_FILE": str(tmp_path / "tokens.json"),
                }
            )
        first = run(meltano, env, "run", "tap-salesloft", "target-salesloft")
        time.sleep(2.5)  # the access token left by the first run has expired
        second = run(meltano, env, "run", "tap-salesloft", "target-salesloft")
        api = [e for e in sandbox.journal() if e["path"].startswith("/v2/")]
        assert api and all(e["auth"] == "oauth" and e["status"] == 200 for e in api)
        assert sandbox.stats()["oauth"]["refreshes"] >= 2  # the second run refreshed from the file's token
        saved = json.loads((tmp_path / "tokens.json").read_text())
        assert saved["refresh_token"] != oauth["refresh_token"]
        for result in (first, second):
            for secret in (oauth["client_secret"], saved["refresh_token"], saved["access_token"]):
                assert secret not in result.stdout + result.stderr
