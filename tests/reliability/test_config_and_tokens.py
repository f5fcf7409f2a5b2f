"""Config files and OAuth token endpoints that are wrong in small ways: one clear line each, no secret shown."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from helpers import TAP, TARGET, catalog_for, write_json
from hostile_server import HostileServer, always, answer
from reliability_support import hostile_argv

PLUGINS = [TAP, TARGET]


def run(argv: list[str], stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("plugin", PLUGINS, ids=["tap", "target"])
def test_a_malformed_config_file_is_one_line_naming_it(tmp_path, plugin):
    path = tmp_path / "config.json"
    path.write_text('{"base_url": "http://127.0.0.1:9", "api_key": "sk-live-abcdef\n}')
    proc = run([plugin, "--config", str(path)])
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"{Path(plugin).name}: error: config file {path} is not valid JSON: line 1: Invalid control character at"
    ]


@pytest.mark.parametrize("plugin", PLUGINS, ids=["tap", "target"])
def test_a_secret_of_the_wrong_type_is_named_but_never_printed(tmp_path, plugin):
    config = write_json(tmp_path / "config.json", {"base_url": "http://127.0.0.1:9", "api_key": 987654321})
    proc = run([plugin, "--config", str(config)])
    assert proc.returncode == 1
    assert "config['api_key']" in proc.stderr and "not shown" in proc.stderr
    assert "987654321" not in proc.stderr + proc.stdout


@pytest.mark.parametrize("timeout", [0, -5])
def test_a_request_timeout_of_zero_or_less_is_refused_before_any_request(tmp_path, timeout):
    with HostileServer(always(answer(200, {"data": []}))) as server:
        proc = run(hostile_argv("tap", tmp_path, server.url, request_timeout=timeout))
    assert proc.returncode == 1
    assert f"{timeout} is less than or equal to the minimum of 0 in config['request_timeout']" in proc.stderr
    assert server.requests == []


def test_an_unknown_setting_is_warned_about_with_the_likely_one(tmp_path):
    with HostileServer(always(answer(200, {"data": [{"id": 1}]}))) as server:
        proc = run(hostile_argv("tap", tmp_path, server.url, max_attemps=2))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "unknown setting 'max_attemps' is ignored (did you mean 'max_attempts'?)" in proc.stderr


def oauth_config(url: str, **extra: object) -> dict:
    return {
        "base_url": url,
        "client_id": "cid",
        "client_secret": "client-secret-2b7d",
        "refresh_token": "refresh-token-8e1f",
        "token_url": f"{url}/oauth/token",
        **extra,
    }


@pytest.mark.parametrize(
    "body",
    [b"<html><body>Sign in</body></html>", b'{"token": "x"}', b"[1, 2]"],
    ids=["html", "no-access-token", "not-an-object"],
)
def test_a_token_endpoint_answering_200_without_a_token_is_one_clear_line(tmp_path, body):
    page = answer(200, raw_body=body, headers={"Content-Type": "text/html"})
    with HostileServer(always(page)) as server:
        config = write_json(tmp_path / "config.json", oauth_config(server.url))
        proc = run([TAP, "--config", str(config)])
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert "OAuth refresh" in last, proc.stderr[-2000:]
    assert f"{server.url}/oauth/token answered 200" in last or "no access_token" in last, last
    assert "Traceback" not in proc.stderr
    assert "client-secret-2b7d" not in proc.stderr and "refresh-token-8e1f" not in proc.stderr


def test_rotated_tokens_are_written_through_a_symlinked_config(tmp_path):
    from sandbox.testing import running_sandbox

    with running_sandbox(
        client_id="cid", client_secret="client-secret-2b7d", refresh_token="refresh-token-8e1f"
    ) as sb:
        real = tmp_path / "secrets" / "config.json"
        real.parent.mkdir()
        write_json(real, oauth_config(sb.url))
        link = tmp_path / "config.json"
        link.symlink_to(real)
        catalog = catalog_for(["users"], tmp_path, link)
        proc = run([TAP, "--config", str(link), "--catalog", str(catalog)])
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert link.is_symlink() and link.resolve() == real
    assert json.loads(real.read_text())["refresh_token"] != "refresh-token-8e1f"
