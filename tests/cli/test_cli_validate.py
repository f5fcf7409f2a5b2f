"""``connector validate``: bundled connections pass; each kind of mistake is reported as file:line: field: message."""

from __future__ import annotations

import pytest
from cli_support import isolated_templates, run_cli


@pytest.fixture
def helpdesk(tmp_path):
    """A private copy of the helpdesk connection, and the env that makes the CLI use it."""
    env = isolated_templates(tmp_path, "helpdesk")
    return tmp_path / "templates" / "helpdesk", env


def write(folder, relative, text):
    path = folder / relative
    path.write_text(text)
    return path


def test_every_bundled_connection_validates():
    result = run_cli("validate")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert any(line.startswith("salesloft: ") and line.endswith(" sinks OK") for line in lines)
    assert "helpdesk: 4 streams, 5 sinks OK" in lines


def test_one_connection_by_name():
    result = run_cli("validate", "helpdesk")
    assert result.returncode == 0
    assert result.stdout == "helpdesk: 4 streams, 5 sinks OK\n"


def test_invalid_yaml_is_reported_with_its_line(helpdesk, tmp_path):
    folder, env = helpdesk
    write(folder, "sinks/broken.yaml", "name: broken\n  url: [\n")
    result = run_cli("validate", str(folder), env=env, cwd=tmp_path)
    assert result.returncode == 1
    assert (
        "templates/helpdesk/sinks/broken.yaml:2: invalid YAML: mapping values are not allowed here"
        in result.stdout
    )
    assert "the templates do not load" in result.stdout


def test_format_errors_name_file_line_and_field(helpdesk, tmp_path):
    folder, env = helpdesk
    write(folder, "sinks/zero.yaml", "name: zero\nurl: /api/v1/x\nbatch: {size: 0}\n")
    write(
        folder,
        "streams/typo.yaml",
        "name: typo\nurl: /api/v1/x\nprimary_key: [id]\nschema: tags.json\npagination: {tipe: none}\n",
    )
    result = run_cli("validate", "templates/helpdesk", env=env, cwd=tmp_path)
    assert result.returncode == 1
    out = result.stdout
    assert "templates/helpdesk/sinks/zero.yaml:3: batch.size: 0 is less than the minimum of 1" in out
    assert "templates/helpdesk/streams/typo.yaml:5: pagination.tipe: unknown field 'tipe'" in out


def test_jinja_syntax_error(helpdesk, tmp_path):
    folder, env = helpdesk
    write(folder, "sinks/jinja.yaml", "name: jinja\nmethod: PUT\nurl: /api/v1/tickets/{{ record.id \n")
    result = run_cli("validate", str(folder), env=env, cwd=tmp_path)
    assert result.returncode == 1
    assert "templates/helpdesk/sinks/jinja.yaml:3: url: Jinja syntax error:" in result.stdout


def test_deeper_checks_of_a_sink(helpdesk, tmp_path):
    folder, env = helpdesk
    write(
        folder,
        "sinks/bad.yaml",
        """name: bad
method: PUT
url: /api/v1/tickets/{{ record.idd }}/{{ config.nope }}
id_field: id
schema: tickets.json
exclude: [id, nonexistent]
batch: {size: 10, group_by: [zzz]}
body: {ticket: "{{ record }}", x: "{{ recod.x }}"}
""",
    )
    result = run_cli("validate", str(folder), env=env, cwd=tmp_path)
    assert result.returncode == 1
    expected = [
        "templates/helpdesk/sinks/bad.yaml:3: url: config.nope is not a setting of helpdesk "
        "(settings: api_token, base_url, start_date)",
        "templates/helpdesk/sinks/bad.yaml:3: url: record.idd is not a property of the record schema",
        "templates/helpdesk/sinks/bad.yaml:6: exclude[1]: 'nonexistent' is not a property of tickets.json",
        "templates/helpdesk/sinks/bad.yaml:7: batch.group_by[0]: 'zzz' is not a property of tickets.json",
        "templates/helpdesk/sinks/bad.yaml:8: body: batch.size is 10 but the body does not use `records`: "
        "each request would carry the first record only",
        "templates/helpdesk/sinks/bad.yaml:8: body.x: unknown variable 'recod': these templates see config, "
        "record, records, stream",
    ]
    lines = result.stdout.splitlines()
    for line in expected:
        assert line in lines, f"missing: {line}\n{result.stdout}"


def test_loader_errors_then_deeper_checks(helpdesk, tmp_path):
    """id_field is checked by the loader, which stops the deeper checks: fix one, see the next."""
    folder, env = helpdesk
    write(
        folder,
        "sinks/bad.yaml",
        "name: bad\nurl: /api/v1/x/{{ record.idd }}\nid_field: ident\nschema: tickets.json\n",
    )
    first = run_cli("validate", str(folder), env=env, cwd=tmp_path)
    assert "id_field: 'ident' is not a property" in first.stdout
    assert "record.idd" not in first.stdout
    write(
        folder,
        "sinks/bad.yaml",
        "name: bad\nurl: /api/v1/x/{{ record.idd }}\nid_field: id\nschema: tickets.json\n",
    )
    second = run_cli("validate", str(folder), env=env, cwd=tmp_path)
    assert (
        "templates/helpdesk/sinks/bad.yaml:2: url: record.idd is not a property of the record schema"
        in second.stdout
    )
    assert second.returncode == 1


def test_urls_must_stay_paths_on_the_host(helpdesk, tmp_path):
    folder, env = helpdesk
    write(
        folder,
        "streams/away.yaml",
        "name: away\nurl: //evil.example.com/x\nprimary_key: [id]\nschema: tags.json\n",
    )
    write(folder, "sinks/full.yaml", "name: full\nurl: /redirect/https://evil.example.com/x\n")
    write(folder, "sinks/segment.yaml", 'name: segment\nurl: "{{ record.path }}"\nid_field: path\n')
    result = run_cli("validate", str(folder), env=env, cwd=tmp_path)
    assert result.returncode == 1
    out = result.stdout
    # The loader refuses a host-relative url and a bare value at the start, with their lines.
    assert "templates/helpdesk/streams/away.yaml:2: url: must be a path starting with '/'" in out
    assert "templates/helpdesk/sinks/segment.yaml:2: url: must be a path starting with '/'" in out
    (folder / "streams" / "away.yaml").unlink()
    (folder / "sinks" / "segment.yaml").unlink()
    result = run_cli("validate", str(folder), env=env, cwd=tmp_path)
    assert result.returncode == 1
    assert (
        "templates/helpdesk/sinks/full.yaml:2: url: must be a path joined to the base URL, not a full URL"
        in result.stdout
    )


def test_parents_and_parent_fields(helpdesk, tmp_path):
    folder, env = helpdesk
    write(
        folder,
        "streams/orphan.yaml",
        "name: orphan\nurl: /x/{{ parent.id }}\nprimary_key: [id]\nschema: tags.json\nparent: nosuch\n",
    )
    result = run_cli("validate", str(folder), env=env, cwd=tmp_path)
    assert result.returncode == 1
    assert "orphan.yaml:5: parent: unknown parent stream 'nosuch'" in result.stdout
    write(
        folder,
        "streams/orphan.yaml",
        "name: orphan\nurl: /x/{{ parent.number }}\nprimary_key: [id]\n"
        "schema: tags.json\nparent: tickets\nparent_fields: [id, nosuch]\n",
    )
    result = run_cli("validate", str(folder), env=env, cwd=tmp_path)
    assert result.returncode == 1
    assert (
        "templates/helpdesk/streams/orphan.yaml:2: url: parent.number is not passed to the child: a parent "
        "passes id, nosuch (set parent_fields)"
    ) in result.stdout
    assert (
        "templates/helpdesk/streams/orphan.yaml:6: parent_fields[1]: 'nosuch' is not a property of the "
        "parent stream tickets"
    ) in result.stdout


def test_variables_a_stream_does_not_have(helpdesk, tmp_path):
    folder, env = helpdesk
    write(
        folder,
        "streams/vars.yaml",
        "name: vars\nurl: /x/{{ parent.id }}\nprimary_key: [id]\nschema: tags.json\n"
        'params: {q: "{{ record.id }}"}\nincremental: {param: since}\n',
    )
    result = run_cli("validate", str(folder), env=env, cwd=tmp_path)
    out = result.stdout
    assert (
        "templates/helpdesk/streams/vars.yaml:2: url: unknown variable 'parent': these templates see bookmark, "
        "config, page, partition, window (set `parent:` to the parent stream)"
    ) in out
    assert (
        "templates/helpdesk/streams/vars.yaml:5: params.q: unknown variable 'record': these templates see bookmark, config"
        in out
    )
    assert (
        "templates/helpdesk/streams/vars.yaml:6: incremental: has no effect without a replication_key" in out
    )


def test_record_schema_must_be_valid_json_schema(helpdesk, tmp_path):
    folder, env = helpdesk
    (tmp_path / "specs" / "helpdesk" / "tags.json").write_text(
        '{"type": "object", "properties": {"id": {"type": "int"}}}'
    )
    result = run_cli("validate", str(folder), env=env, cwd=tmp_path)
    assert result.returncode == 1
    assert (
        "templates/helpdesk/streams/tags.yaml:5: schema: tags.json is not a valid JSON Schema at properties/id/type"
        in result.stdout
    )


def test_warnings_pass_unless_strict(helpdesk, tmp_path):
    folder, env = helpdesk
    write(
        folder,
        "streams/warned.yaml",
        "name: warned\nurl: /x\nprimary_key: [id]\nschema: tags.json\n"
        "pagination: {type: page_number, restart_after: 5}\n",
    )
    result = run_cli("validate", str(folder), env=env, cwd=tmp_path)
    assert result.returncode == 0
    assert (
        "templates/helpdesk/streams/warned.yaml:5: pagination.restart_after: warning: "
        "needs a replication_key and an incremental block to restart from"
    ) in result.stdout
    assert result.stdout.splitlines()[-1] == "helpdesk: 5 streams, 5 sinks OK (1 warning)"
    strict = run_cli("validate", "--strict", str(folder), env=env, cwd=tmp_path)
    assert strict.returncode == 1
    assert strict.stdout.splitlines()[-1] == "helpdesk: 5 streams, 5 sinks: 0 errors, 1 warning"


def test_a_field_of_another_pagination_kind_is_an_error_listing_the_kinds_fields(helpdesk, tmp_path):
    folder, env = helpdesk
    write(
        folder,
        "streams/mixed.yaml",
        "name: mixed\nurl: /x\nprimary_key: [id]\nschema: tags.json\npagination: {type: offset, next: a.b}\n",
    )
    result = run_cli("validate", str(folder), env=env, cwd=tmp_path)
    assert result.returncode == 1
    assert (
        "templates/helpdesk/streams/mixed.yaml:5: pagination.next: unknown field 'next' (known: "
        in result.stdout
    )
    assert "offset_param" in result.stdout and "has_more" in result.stdout


def test_one_file_shows_only_its_findings(helpdesk, tmp_path):
    folder, env = helpdesk
    write(folder, "sinks/one.yaml", "name: one\nurl: /x/{{ config.nope }}\n")
    write(folder, "sinks/two.yaml", "name: two\nurl: /y/{{ config.other }}\n")
    result = run_cli("validate", "templates/helpdesk/sinks/one.yaml", env=env, cwd=tmp_path)
    assert result.returncode == 1
    assert "config.nope" in result.stdout and "config.other" not in result.stdout


def test_unknown_connection_and_missing_path_exit_2():
    unknown = run_cli("validate", "nosuch")
    assert unknown.returncode == 2
    assert "connector validate: no connection 'nosuch'" in unknown.stderr
    missing = run_cli("validate", "./no/such/folder")
    assert missing.returncode == 2
    assert "./no/such/folder does not exist" in missing.stderr


def test_transformations_and_response_rules_are_checked_for_their_variables(helpdesk, tmp_path):
    folder, env = helpdesk
    write(
        folder,
        "streams/shaped.yaml",
        "name: shaped\nurl: /x\nprimary_key: [id]\nschema: tags.json\n"
        "transform:\n"
        "  - {type: add_fields, fields: {source: '{{ recod.id }}'}}\n"
        "  - {type: keep, when: \"record.get('name') != 'x' and config.nope\"}\n"
        "on_response:\n"
        "  - {status: [404], action: ignore, message: '{{ responce.error }}'}\n",
    )
    result = run_cli("validate", str(folder), env=env, cwd=tmp_path)
    assert result.returncode == 1
    out = result.stdout
    assert (
        "templates/helpdesk/streams/shaped.yaml:6: transform[0].fields.source: unknown variable 'recod'"
        in out
    )
    assert "templates/helpdesk/streams/shaped.yaml:7: transform[1].when: config.nope is not a setting" in out
    assert (
        "templates/helpdesk/streams/shaped.yaml:9: on_response[0].message: unknown variable 'responce'" in out
    )
    assert "record.get" not in out  # reading a field with .get is how a template tolerates a missing one
