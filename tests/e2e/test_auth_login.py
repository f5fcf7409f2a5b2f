"""``connector auth``: the first OAuth login against the sandbox, as a user runs it (a process, a browser
following the printed URL), then a tap run on the tokens it stored."""

from __future__ import annotations

import json
import socket
import subprocess
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from cli_support import CONNECTOR, REPO
from helpers import run_tap, write_json

SECRET = "sandbox-secret"


def oauth_settings(sandbox, tmp_path: Path, **extra: object) -> dict:
    return {
        "base_url": sandbox.url,
        "client_id": "sandbox-client",
        "client_secret": SECRET,
        "token_url": f"{sandbox.url}/oauth/token",
        "authorize_url": f"{sandbox.url}/oauth/authorize",
        "user_agent": "kept-as-is",
        **extra,
    }


@contextmanager
def login(config: Path, *args: str) -> Iterator[tuple[subprocess.Popen, str]]:
    """``connector auth salesloft --config FILE --port 0`` running; yields it and the URL it printed."""
    proc = subprocess.Popen(
        [CONNECTOR, "auth", "salesloft", "--config", str(config), "--port", "0", *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("Open this URL: "), first + proc.communicate(timeout=30)[1]
        yield proc, first.removeprefix("Open this URL: ").strip()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def finish(proc: subprocess.Popen) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=60)
    return proc.returncode, out, err


def browser() -> httpx.Client:
    return httpx.Client(trust_env=False, timeout=30)


def test_login_writes_tokens_into_the_config_and_token_file_and_a_tap_run_uses_them(sandbox, tmp_path):
    real = tmp_path / "secrets" / "config.json"
    real.parent.mkdir()
    token_file = tmp_path / "tokens.json"
    write_json(real, oauth_settings(sandbox, tmp_path, token_file=str(token_file)))
    real.chmod(0o644)
    link = tmp_path / "config.json"
    link.symlink_to(real)
    before = sandbox.stats()["oauth"]["codes_exchanged"]

    with login(link) as (proc, url):
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
        assert url.startswith(f"{sandbox.url}/oauth/authorize?")
        assert query["client_id"] == ["sandbox-client"] and query["response_type"] == ["code"]
        assert len(query["state"][0]) >= 32
        redirect_uri = query["redirect_uri"][0]
        assert redirect_uri.startswith("http://127.0.0.1:") and redirect_uri.endswith("/callback")
        with browser() as client:
            page = client.get(url, follow_redirects=True)
        code, out, err = finish(proc)

    assert page.status_code == 200 and "Signed in" in page.text
    assert code == 0, err
    assert out == "", "only the URL line goes to stdout"
    assert sandbox.stats()["oauth"]["codes_exchanged"] == before + 1
    saved = json.loads(real.read_text())
    assert link.is_symlink() and link.resolve() == real
    assert real.stat().st_mode & 0o777 == 0o600
    assert saved["user_agent"] == "kept-as-is" and saved["client_secret"] == SECRET
    assert saved["refresh_token"] and saved["access_token"]
    chain = json.loads(token_file.read_text())
    assert chain["refresh_token"] == saved["refresh_token"]
    assert chain["access_token"] == saved["access_token"]
    assert token_file.stat().st_mode & 0o777 == 0o600
    for secret in (saved["refresh_token"], saved["access_token"], SECRET):
        assert secret not in err
    assert "tokens written to" in err

    journal_start = sandbox.journal()[-1]["seq"]
    run = run_tap(json.loads(real.read_text()), tmp_path, streams=["users"])
    assert run.records["users"]
    users_calls = [e for e in sandbox.journal(since=journal_start) if e["path"].startswith("/v2/users")]
    assert users_calls and all(e["auth"] == "oauth" and e["status"] == 200 for e in users_calls)


def test_a_redirect_with_another_state_is_refused_and_nothing_is_exchanged(sandbox, tmp_path):
    config = write_json(tmp_path / "config.json", oauth_settings(sandbox, tmp_path))
    original = config.read_text()
    before = sandbox.stats()["oauth"]["codes_exchanged"]
    with login(config) as (proc, url), browser() as client:
        location = client.get(url).headers["location"]
        forged = location.replace("state=", "state=forged")
        page = client.get(forged)
        code, _, err = finish(proc)
    assert page.status_code == 400
    assert code == 1
    assert "state does not match" in err and "nothing was exchanged" in err
    assert "Traceback" not in err
    assert config.read_text() == original
    assert sandbox.stats()["oauth"]["codes_exchanged"] == before


def test_a_refused_login_is_one_clear_error_and_the_config_is_untouched(sandbox, tmp_path):
    config = write_json(tmp_path / "config.json", oauth_settings(sandbox, tmp_path))
    original = config.read_text()
    sandbox.configure(deny_authorize=True)
    try:
        with login(config) as (proc, url), browser() as client:
            client.get(url, follow_redirects=True)
            code, _, err = finish(proc)
    finally:
        sandbox.configure(deny_authorize=False)
    assert code == 1
    last = err.strip().splitlines()[-1]
    assert last == (
        "connector auth: the authorization server refused the login: access_denied "
        "(The user denied the request)"
    )
    assert config.read_text() == original


def test_no_redirect_within_the_timeout_ends_with_a_clear_message(sandbox, tmp_path):
    config = write_json(tmp_path / "config.json", oauth_settings(sandbox, tmp_path))
    with login(config, "--timeout", "1") as (proc, _url):
        code, _, err = finish(proc)
    assert code == 1
    assert "no redirect reached http://127.0.0.1:" in err and "within 1 s" in err


def test_a_code_the_token_endpoint_refuses_is_named_without_secrets(sandbox, tmp_path):
    settings = oauth_settings(sandbox, tmp_path, client_secret="wrong-secret-5c1d")
    config = write_json(tmp_path / "config.json", settings)
    original = config.read_text()
    with login(config) as (proc, url), browser() as client:
        client.get(url, follow_redirects=True)
        code, _, err = finish(proc)
    assert code == 1
    assert "OAuth code exchange refused by" in err and "(401)" in err
    assert "wrong-secret-5c1d" not in err
    assert config.read_text() == original


def test_the_port_in_use_is_a_usage_error(sandbox, tmp_path):
    config = write_json(tmp_path / "config.json", oauth_settings(sandbox, tmp_path))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = subprocess.run(
            [CONNECTOR, "auth", "salesloft", "--config", str(config), "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert proc.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in proc.stderr and proc.stdout == ""


@pytest.mark.parametrize(
    ("connection", "settings", "message"),
    [
        ("helpdesk", {}, "helpdesk has no oauth2_refresh auth with an authorize_url"),
        ("salesloft", {"client_id": ""}, "the 'client_id' setting is empty"),
    ],
)
def test_what_the_login_needs_is_checked_before_anything_is_served(
    sandbox, tmp_path, connection, settings, message
):
    config = write_json(tmp_path / "config.json", {**oauth_settings(sandbox, tmp_path), **settings})
    proc = subprocess.run(
        [CONNECTOR, "auth", connection, "--config", str(config)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2
    assert message in proc.stderr and proc.stdout == ""
