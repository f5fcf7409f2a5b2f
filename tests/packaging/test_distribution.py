"""The distribution works installed, not only from a checkout: a wheel and an sdist built from the
repository, each installed without ``-e`` into a fresh virtualenv, discover, sync and write against
the sandbox that ships with them.

Slow-ish (one build, two virtualenvs; pip's cache serves the dependencies): marked ``distribution``,
so ``-m "not distribution"`` leaves it out; CONNECTOR_SKIP_DISTRIBUTION=1 skips it too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from cli_support import REPO
from helpers import singer_lines, write_json

from sandbox.testing import running_sandbox

pytestmark = pytest.mark.distribution


def _clean_env(home: Path) -> dict[str, str]:
    """No trace of the checkout: no PYTHONPATH, no virtualenv, no template overrides."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "VIRTUAL_ENV") and not k.startswith("CONNECTOR_")
    }
    env["HOME"] = os.environ.get("HOME", str(home))  # pip's cache lives there
    return env


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory) -> dict[str, Path]:
    if os.environ.get("CONNECTOR_SKIP_DISTRIBUTION"):
        pytest.skip("CONNECTOR_SKIP_DISTRIBUTION is set")
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(REPO)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    return {"wheel": next(out.glob("*.whl")), "sdist": next(out.glob("*.tar.gz"))}


@pytest.fixture(scope="module", params=["wheel", "sdist"])
def installed(request, artifacts, tmp_path_factory) -> Path:
    """The bin/ folder of a fresh virtualenv with the artifact installed (not editable)."""
    venv = tmp_path_factory.mktemp(f"venv-{request.param}")
    env = _clean_env(venv)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=120)
    result = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", str(artifacts[request.param])],
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return venv / "bin"


def _run(bin_dir: Path, cwd: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [str(bin_dir / args[0]), *args[1:]],
        cwd=cwd,
        env=_clean_env(cwd),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"{' '.join(args)}:\n{result.stderr[-3000:]}"
    return result


def test_the_wheel_holds_every_bundled_template_and_spec(artifacts):
    tracked = subprocess.run(
        ["git", "ls-files", "templates", "specs", "sandbox/extra_specs"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    names = set(zipfile.ZipFile(artifacts["wheel"]).namelist())
    expected = {
        f if f.startswith("sandbox/") else f"connector/bundled/{f}" for f in tracked if not f.endswith(".py")
    }
    assert expected and not expected - names, sorted(expected - names)


def test_installed_package_discovers_syncs_and_writes_against_its_own_sandbox(installed, tmp_path):
    site = _run(
        installed, tmp_path, "python", "-c", "import connector.bundle as b; print(b.bundled('specs'))"
    )
    assert str(installed.parent) in site.stdout and str(REPO) not in site.stdout
    refused = subprocess.run(
        [
            str(installed / "connector"),
            "new",
            "stream",
            "things",
            "--url",
            "/v2/things",
            "--primary-key",
            "id",
            "-c",
            "salesloft",
        ],
        cwd=tmp_path,
        env=_clean_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode == 2 and "CONNECTOR_TEMPLATES" in refused.stderr, refused.stderr
    with running_sandbox(launcher=[str(installed / "connector"), "sandbox"]) as sandbox:
        config = write_json(tmp_path / "tap.json", {"base_url": sandbox.url, "api_key": sandbox.api_key})
        catalog = json.loads(
            _run(installed, tmp_path, "tap-salesloft", "--config", str(config), "--discover").stdout
        )
        assert len(catalog["streams"]) == len(list((REPO / "templates/salesloft/streams").glob("*.yaml")))
        for entry in catalog["streams"]:
            for meta in entry["metadata"]:
                if meta["breadcrumb"] == []:
                    meta["metadata"]["selected"] = entry["tap_stream_id"] == "accounts"
        write_json(tmp_path / "catalog.json", catalog)
        sync = _run(
            installed,
            tmp_path,
            "tap-salesloft",
            "--config",
            str(config),
            "--catalog",
            str(tmp_path / "catalog.json"),
        )
        records = [json.loads(line) for line in sync.stdout.splitlines()]
        ids = sorted(m["record"]["id"] for m in records if m["type"] == "RECORD")
        assert ids == sorted(a["id"] for a in sandbox.records("accounts"))

        target = write_json(
            tmp_path / "target.json",
            {
                "base_url": sandbox.url,
                "api_key": sandbox.api_key,
                "stream_sinks": {"accounts": "upsert_account"},
                "rejected_path": str(tmp_path / "rejected.jsonl"),
            },
        )
        rows = [{"domain": f"installed-{i}.example.com", "name": f"Installed {i}"} for i in range(3)]
        _run(
            installed,
            tmp_path,
            "target-salesloft",
            "--config",
            str(target),
            stdin=singer_lines("accounts", rows),
        )
        upserts = [e for e in sandbox.journal() if e["path"] == "/v2/account_upserts.json"]
        assert sorted(e["body"]["domain"] for e in upserts) == [r["domain"] for r in rows]
        assert all(e["status"] == 200 for e in upserts)
    assert not (tmp_path / "rejected.jsonl").exists() or not (tmp_path / "rejected.jsonl").read_text()


def test_unreadable_templates_exit_2_with_one_line_naming_the_file(tmp_path):
    """A broken installation (or override) is a message, not a traceback."""
    env = {**os.environ, "CONNECTOR_TEMPLATES": str(tmp_path / "missing")}
    result = subprocess.run(
        [str(Path(sys.executable).parent / "tap-salesloft"), "--about"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"{tmp_path / 'missing' / 'salesloft' / 'connection.yaml'}: cannot read" in result.stderr
