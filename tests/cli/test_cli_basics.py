"""The ``connector`` command itself: help for every command, exit statuses, delegation to the tap, target
and sandbox."""

from __future__ import annotations

import json

import pytest
from cli_support import run_cli

from connector.cli import main

COMMANDS = ["validate", "preview", "send-test", "new", "docs", "demo", "tap", "target"]


def test_top_level_help_lists_every_command():
    result = run_cli("--help")
    assert result.returncode == 0
    for command in [*COMMANDS, "sandbox"]:
        assert f"\n    {command} " in result.stdout, command
    assert "Exit status: 0 success, 1 a check or record failed, 2 a usage or input error." in result.stdout


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: connector {command}")


def test_new_has_help_for_both_kinds(capsys):
    for kind in ("stream", "sink"):
        with pytest.raises(SystemExit):
            main(["new", kind, "--help"])
        assert "--url" in capsys.readouterr().out


def test_no_command_prints_help_and_exits_2(capsys):
    assert main([]) == 2
    assert "usage: connector" in capsys.readouterr().out


def test_unknown_command_is_a_usage_error():
    result = run_cli("frobnicate")
    assert result.returncode == 2
    assert "invalid choice: 'frobnicate'" in result.stderr


def test_version():
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("connector ")


def test_sandbox_help_is_the_sandbox_own():
    result = run_cli("sandbox", "--help")
    assert result.returncode == 0
    assert "--size RESOURCE=COUNT" in result.stdout
    assert "--time-scale" in result.stdout


def test_sandbox_bad_option_exits_2():
    result = run_cli("sandbox", "--no-such-flag")
    assert result.returncode == 2


def test_tap_about_for_any_connection():
    result = run_cli("tap", "helpdesk", "--about", "--format", "json")
    assert result.returncode == 0, result.stderr
    about = json.loads(result.stdout)
    assert about["name"] == "tap-helpdesk"
    assert {"catalog", "discover", "state"} <= set(about["capabilities"])


def test_target_about_for_any_connection():
    result = run_cli("target", "salesloft", "--about", "--format", "json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["name"] == "target-salesloft"


def test_tap_of_unknown_connection_exits_2():
    result = run_cli("tap", "nosuch", "--about")
    assert result.returncode == 2
    assert "no connection 'nosuch'" in result.stderr
    assert "no connection 'nosuch': give a bundled name (" in result.stderr
    assert "helpdesk" in result.stderr and "salesloft" in result.stderr


def test_tap_streams_option_needs_known_streams():
    result = run_cli("tap", "helpdesk", "--streams", "tickets,nope")
    assert result.returncode == 2
    assert "helpdesk has no stream nope" in result.stderr
