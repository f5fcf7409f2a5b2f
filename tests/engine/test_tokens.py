"""The token file: which chain it continues, what it keeps, how it fails."""

from __future__ import annotations

import json
import logging
import time

from connector.tokens import TokenFile, Tokens, fingerprint


def test_tokens_saved_are_read_back_by_a_run_starting_from_the_same_refresh_token(tmp_path):
    path = tmp_path / "deep" / "tokens.json"
    first = TokenFile(path, "refresh-0")
    with first.locked() as current:
        assert current is None
        first.save(Tokens("refresh-1", "access-1", time.time() + 60))
    later = TokenFile(path, "refresh-0").current()
    assert later is not None and (later.refresh_token, later.access_token) == ("refresh-1", "access-1")
    assert later.expires_at > time.time() + 50
    assert json.loads(path.read_text())["origin"] == fingerprint("refresh-0")
    assert path.stat().st_mode & 0o777 == 0o600


def test_a_config_with_another_refresh_token_does_not_take_the_files_tokens(tmp_path):
    path = tmp_path / "tokens.json"
    with TokenFile(path, "refresh-0").locked():
        TokenFile(path, "refresh-0").save(Tokens("refresh-1", "access-1", 0))
    assert TokenFile(path, "authorized-again").current() is None


def test_an_unreadable_token_file_is_reported_and_the_config_used(tmp_path, caplog):
    path = tmp_path / "tokens.json"
    path.write_text("{not json")
    with caplog.at_level(logging.WARNING, logger="connector.tokens"):
        assert TokenFile(path, "refresh-0").current() is None
    assert f"token_file {path} cannot be read" in caplog.text
