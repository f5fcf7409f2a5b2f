"""Security: record values stay data, paths stay one segment, credentials stay on the API's origin and out of output.

"Another host" is a second local server on another port (another origin): it must receive nothing at all.
"""

from __future__ import annotations

import json
import re
import subprocess
import textwrap
from pathlib import Path

import pytest
from cli_support import isolated_templates
from helpers import BIN, logged_json, run_tap, run_target, tap_config, write_json
from reliability_support import RecordingServer, as_lines, singer_messages

from connector.errors import RenderError
from connector.render import ENV, URL_ENV, compile_text

API_KEY = "sk-live-4f1d9a7c2e8b6d3f"


@pytest.fixture(scope="module")
def sb():
    from sandbox.testing import running_sandbox

    with running_sandbox(api_key=API_KEY) as handle:
        yield handle


@pytest.fixture
def other_host():
    server = RecordingServer()
    yield server
    server.close()


def post_journal(sb) -> list[dict]:
    return [e for e in sb.journal() if e["method"] != "GET"]


# -- record values are data


def test_record_values_are_sent_as_data_never_rendered(sb, tmp_path):
    sneaky = {
        "name": "{{ 7*7 }}",
        "domain": "jinja-{{ 7*7 }}.example",
        "description": "{% for x in range(3) %}{{ x }}{% endfor %} {{ config.api_key }} {{ record }}",
    }
    sb.clear_journal()
    run = run_target(
        {**tap_config(sb), "sink": "upsert_account"},
        tmp_path,
        as_lines(singer_messages("accounts", [sneaky])),
    )
    assert run.returncode == 0, run.stderr[-3000:]
    (sent,) = post_journal(sb)
    assert sent["body"] == sneaky
    (stored,) = [a for a in sb.records("accounts") if a["domain"] == sneaky["domain"]]
    assert (stored["name"], stored["description"]) == (sneaky["name"], sneaky["description"])
    assert API_KEY not in json.dumps(sb.journal())


@pytest.mark.parametrize(
    "value",
    [
        "../../people/{person}",
        "{account}?name=Hijacked",
        "{account}#x",
        "..",
        ".",
        "%2F..%2Fpeople%2F{person}",
        "{account}/../../people/{person}",
        "{{ 7*7 }}",
    ],
)
def test_a_path_value_is_one_escaped_segment(sb, tmp_path, monkeypatch, value):
    # The bundled update_account declares an integer id (such records are rejected as invalid before any
    # request is rendered); a copy without its schema shows that the path escaping holds on its own.
    for name, path in isolated_templates(tmp_path, "salesloft").items():
        monkeypatch.setenv(name, path)
    sink = tmp_path / "templates" / "salesloft" / "sinks" / "update_account.yaml"
    sink.write_text(re.sub(r"(?m)^schema: .*\n", "", sink.read_text()))
    account, person = sb.records("accounts")[0], sb.records("people")[0]
    record = {
        "id": value.format(account=account["id"], person=person["id"]),
        "name": "Hijacked",
        "title": "Hijacked",
    }
    schema = {"type": "object", "properties": {"id": {"type": "string"}}}
    sb.clear_journal()
    run = run_target(
        {**tap_config(sb), "sink": "update_account"},
        tmp_path,
        as_lines(singer_messages("accounts", [record], schema=schema)),
    )
    assert run.returncode == 0, run.stderr[-3000:]
    (sent,) = post_journal(sb)
    assert re.fullmatch(r"/v2/accounts/[^/?#]+\.json", sent["path"]), sent["path"]
    assert sent["query"] == {} and sent["status"] == 404
    if "%2F" in value:
        assert "%252F" in sent["path"], "a literal %2F must arrive as the three characters, not as a slash"
    (rejected,) = run.rejected
    assert rejected["status"] == 404
    now_account = next(a for a in sb.records("accounts") if a["id"] == account["id"])
    now_person = next(p for p in sb.records("people") if p["id"] == person["id"])
    assert now_account["name"] == account["name"] and now_person["title"] == person["title"]


def test_raw_request_paths_cannot_name_another_host_or_climb_out(sb, tmp_path, other_host):
    host = other_host.url.removeprefix("http://")
    paths = [
        f"http://{host}/steal",
        f"//{host}/steal",
        f"/v2/../../{host}/steal",
        f"https://{host}/v2/people",
    ]
    records = [{"method": "GET", "path": path} for path in paths]
    sb.clear_journal()
    run = run_target(
        {**tap_config(sb), "sink": "raw_request"}, tmp_path, as_lines(singer_messages("raw", records))
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert other_host.requests == [], "a record value sent a request to another host"
    # Each became a path on the API's own origin (an unknown one: 404), or was refused before sending.
    sent = sorted(r["request"]["url"] for r in run.rejected if r["reason"] == "api")
    assert sent == sorted(
        f"{sb.url}/{p}" for p in (f"http:/{host}/steal", f"{host}/steal", f"https:/{host}/v2/people")
    )
    (refused,) = [r for r in run.rejected if r["reason"] == "render"]
    assert (
        refused["record"]["path"] == f"/v2/../../{host}/steal" and "climbs above the root" in refused["error"]
    )


def test_raw_request_sends_a_records_headers_through_the_header_checks(sb, tmp_path):
    person = sb.records("people")[0]
    path = f"/v2/people/{person['id']}.json"
    records = [
        {"method": "PUT", "path": path, "headers": {"X-Trace-Id": "trace-1"}, "body": {"title": "Traced"}},
        {
            "method": "PUT",
            "path": path,
            "headers": {"X-Trace-Id": "a\r\nX-Injected: 1"},
            "body": {"title": "CR"},
        },
        {
            "method": "PUT",
            "path": path,
            "headers": {"authorization": "Bearer other"},
            "body": {"title": "Auth"},
        },
        {"method": "PUT", "path": path, "headers": {"Content-Length": "0"}, "body": {"title": "Smuggled"}},
        {"method": "PUT", "path": path, "headers": "X-Trace-Id: 2", "body": {"title": "Not a mapping"}},
    ]
    sb.clear_journal()
    run = run_target(
        {**tap_config(sb), "sink": "raw_request"}, tmp_path, as_lines(singer_messages("raw", records))
    )
    assert run.returncode == 0, run.stderr[-3000:]
    (sent,) = post_journal(sb)  # only the first record reached the API, with its header
    assert sent["headers"]["x-trace-id"] == "trace-1" and "x-injected" not in sent["headers"]
    assert sent["bearer"] and sent["body"] == {"title": "Traced"}
    refused = {r["record"]["body"]["title"]: r for r in run.rejected}
    assert sorted(refused) == ["Auth", "CR", "Not a mapping", "Smuggled"]
    assert all(r["reason"] == "render" for r in refused.values())
    assert "carriage return" in refused["CR"]["error"]
    assert "carries the connection's credentials" in refused["Auth"]["error"]
    assert "written by the HTTP stack" in refused["Smuggled"]["error"]
    assert "expected a mapping" in refused["Not a mapping"]["error"]
    assert next(p for p in sb.records("people") if p["id"] == person["id"])["title"] == "Traced"


def test_the_responses_file_carries_response_headers_with_credentials_masked(tmp_path):
    api = RecordingServer(
        {
            "POST /v2/things": (
                201,
                {"X-Request-Id": "req-42", "Set-Cookie": "session=s3cr3t-cookie", "X-Echo": f"key={API_KEY}"},
                {"data": {"id": 7}},
            )
        }
    )
    try:
        config = {"base_url": api.url, "api_key": API_KEY, "sink": "raw_request"}
        config["responses_path"] = str(tmp_path / "responses.jsonl")
        records = [{"method": "POST", "path": "/v2/things", "body": {"name": "thing"}}]
        run = run_target(config, tmp_path, as_lines(singer_messages("raw", records)))
    finally:
        api.close()
    assert run.returncode == 0 and run.rejected == [], run.stderr[-3000:]
    (line,) = (tmp_path / "responses.jsonl").read_text().splitlines()
    captured = json.loads(line)
    assert captured["status"] == 201 and captured["response"] == {"data": {"id": 7}}
    headers = captured["headers"]
    assert headers["x-request-id"] == "req-42" and headers["content-type"] == "application/json"
    assert headers["set-cookie"] == "***" and headers["x-echo"] == "key=***"
    assert API_KEY not in line and "s3cr3t-cookie" not in line


# -- credentials stay on the API's origin

CONNECTION = """\
name: reltest
description: A misbehaving API, for the reliability tests.
base_url: "{{ config.base_url }}"
settings:
  - {name: base_url, type: string}
  - {name: api_key, type: string, secret: true}
auth:
  - {type: bearer, when: config.api_key, token: "{{ config.api_key }}"}
retry: {max_attempts: 2, backoff_seconds: 0.01, max_backoff_seconds: 0.01}
stream_defaults:
  records: data
"""
THINGS = """\
name: things
url: /v1/things
primary_key: [id]
schema: things.json
pagination: {type: next_url, from_response: next}
"""
POST_THING = "name: post_thing\nmethod: POST\nurl: /v1/things\n"


def misbehaving_connection(tmp_path: Path) -> Path:
    root = tmp_path / "reltest"
    for folder in ("streams", "sinks", "specs"):
        (root / folder).mkdir(parents=True)
    (root / "connection.yaml").write_text(CONNECTION)
    (root / "streams" / "things.yaml").write_text(textwrap.dedent(THINGS))
    (root / "sinks" / "post_thing.yaml").write_text(POST_THING)
    schema = {
        "type": "object",
        "properties": {"id": {"type": "integer"}, "name": {"type": ["string", "null"]}},
    }
    (root / "specs" / "things.json").write_text(json.dumps(schema))
    return root


def connector_run(
    role: str, root: Path, tmp_path: Path, api: RecordingServer, *args: str, stdin: str = ""
) -> subprocess.CompletedProcess:
    config = write_json(
        tmp_path / "config.json",
        {"base_url": api.url, "api_key": API_KEY, "rejected_path": str(tmp_path / "rejected.jsonl")},
    )
    proc = subprocess.run(
        [str(BIN / "connector"), role, str(root), "--config", str(config), *args],
        input=stdin,
        text=True,
        capture_output=True,
        timeout=120,
    )
    assert API_KEY not in proc.stdout + proc.stderr
    return proc


def test_a_next_link_to_another_host_is_refused_and_gets_no_credentials(tmp_path, other_host):
    api = RecordingServer(
        {
            "GET /v1/things": (
                200,
                {},
                {"data": [{"id": 1, "name": "first page"}], "next": f"{other_host.url}/v1/things?page=2"},
            )
        }
    )
    try:
        proc = connector_run("tap", misbehaving_connection(tmp_path), tmp_path, api, "--streams", "things")
    finally:
        api.close()
    assert proc.returncode != 0
    assert f"refusing to follow '{other_host.url}/v1/things?page=2': not on {api.url}" in proc.stderr
    assert other_host.requests == []
    assert [r["headers"].get("Authorization") for r in api.requests] == [f"Bearer {API_KEY}"]


def test_a_redirect_to_another_origin_is_not_followed_by_the_tap(tmp_path, other_host):
    api = RecordingServer({"GET /v1/things": (302, {"Location": f"{other_host.url}/collect"}, None)})
    try:
        proc = connector_run("tap", misbehaving_connection(tmp_path), tmp_path, api, "--streams", "things")
    finally:
        api.close()
    assert proc.returncode != 0
    assert "redirected to another origin" in proc.stderr and "credentials not sent" in proc.stderr
    assert other_host.requests == []


def test_a_redirect_to_another_origin_is_not_followed_by_the_target(tmp_path, other_host):
    api = RecordingServer({"POST /v1/things": (307, {"Location": f"{other_host.url}/collect"}, None)})
    records = [{"id": 1, "name": "redirected"}]
    try:
        proc = connector_run(
            "target",
            misbehaving_connection(tmp_path),
            tmp_path,
            api,
            stdin=as_lines(singer_messages("post_thing", records)),
        )
    finally:
        api.close()
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert other_host.requests == []
    (rejected,) = [json.loads(line) for line in (tmp_path / "rejected.jsonl").read_text().splitlines()]
    assert rejected["record"] == records[0] and "redirected to another origin" in rejected["error"]


# -- the Jinja sandbox


def test_templates_see_no_globals():
    assert ENV.globals == {} and URL_ENV.globals == {}


@pytest.mark.parametrize(
    "source",
    [
        "{{ config.update({'base_url': 'http://127.0.0.2'}) }}",
        "{{ config.clear() }}",
        "{{ record.pop('id') }}",
        "{{ record.setdefault('admin', true) }}",
        "{{ records.append(1) }}",
    ],
)
def test_templates_cannot_change_what_they_are_given(source):
    config, record, records = {"base_url": "http://127.0.0.1:1", "api_key": "k"}, {"id": 1}, [{"id": 1}]
    with pytest.raises(RenderError):
        compile_text(source).render({"config": config, "record": record, "records": records})
    assert (config, record, records) == (
        {"base_url": "http://127.0.0.1:1", "api_key": "k"},
        {"id": 1},
        [{"id": 1}],
    )


@pytest.mark.parametrize(
    "source",
    [
        "{{ '{0.__class__.__mro__}'.format(record) }}",
        "{{ record | attr('__class__') }}",
        "{{ (record | attr('items')).__self__.__class__ }}",
        "{{ record.items.__func__ }}",
        "{% include 'other' %}",
        "{% import 'other' as other %}",
        "{% extends 'base' %}",
        "{{ self.__init__.__globals__ }}",
    ],
)
def test_templates_cannot_reach_python_internals_or_other_files(source):
    with pytest.raises(RenderError):
        compile_text(source).render({"record": {"id": 1}})


# -- secrets stay out of everything a run writes

CLIENT_SECRET = "oauth-client-secret-83c1f0"


def test_no_secret_in_any_output_or_file_of_a_tap_and_a_target(tmp_path, monkeypatch):
    from sandbox.testing import running_sandbox

    monkeypatch.setenv("LOGLEVEL", "DEBUG")
    with running_sandbox(
        api_key=API_KEY,
        client_secret=CLIENT_SECRET,
        token_ttl=1,
        time_scale=60,
        faults="rate=0.2,seed=8,kinds=500,429,reset,truncate,burst=1",
    ) as box:
        tokens = (
            box.client()
            .post(
                "/oauth/token",
                data={
                    "grant_type": "refresh_token",
                    "client_id": "sandbox-client",
                    "client_secret": CLIENT_SECRET,
                    "refresh_token": "sandbox-refresh",
                },
            )
            .json()
        )
        secrets = [API_KEY, CLIENT_SECRET, "sandbox-refresh", tokens["access_token"], tokens["refresh_token"]]
        oauth = {
            "base_url": box.url,
            "client_id": "sandbox-client",
            "client_secret": CLIENT_SECRET,
            "access_token": tokens["access_token"],
            "refresh_token": tokens["refresh_token"],
            "token_url": f"{box.url}/oauth/token",
            "rate_window_seconds": 1,
            "max_backoff_seconds": 0.05,
        }
        tap_dir = tmp_path / "tap"
        tap_dir.mkdir()
        tap = run_tap(oauth, tap_dir, streams=["users", "accounts"])

        # A target run that ends every way a record can: accepted, refused by the API (on its merits or after its
        # retries ran out), not JSON, unrenderable; plus a second run whose key the API refuses.
        target_dir = tmp_path / "target"
        target_dir.mkdir()
        good = [{"name": f"Secret Co {i}", "domain": f"secret-{i}.example"} for i in range(20)]
        bad = [{"domain": "no-name.example"}]  # 422
        lines = as_lines(singer_messages("accounts", good + bad)) + "{not json\n"
        lines += as_lines(singer_messages("raw", [{"method": "GET", "path": "/v2/../../x"}]))
        config = {
            **tap_config(box),
            "stream_sinks": {"accounts": "upsert_account", "raw": "raw_request"},
            "responses_path": str(target_dir / "responses.jsonl"),
            "requests_path": str(target_dir / "req.jsonl"),
            "max_attempts": 2,
            "max_backoff_seconds": 0.05,
            "rate_window_seconds": 1,
        }
        target = run_target(config, target_dir, lines)
        refused_dir = tmp_path / "refused"
        refused_dir.mkdir()
        refused = run_target({**config, "api_key": "sk-live-wrong-key-00000"}, refused_dir, lines)
        journal = box.journal()
    assert tap.returncode == 0 and target.returncode == 0 and refused.returncode == 0
    assert any(e["fault"] for e in journal) and any(e["path"] == "/oauth/token" for e in journal)
    assert "DEBUG" in tap.stderr and "DEBUG" in target.stderr, "the runs logged at debug level"
    summary = logged_json(target.stderr, "Target summary: ")
    assert summary["accepted"] + summary["rejected"] == len(good) + len(bad) + 2 and summary["accepted"] > 0
    assert {"api", "bad_input", "render"} <= set(summary["rejected_reasons"]), summary
    assert {r["status"] for r in refused.rejected} >= {401}

    outputs = {
        "tap stdout": json.dumps(tap.messages),
        "tap stderr": tap.stderr,
        "target stdout": target.stdout,
        "target stderr": target.stderr,
        "refused stdout": refused.stdout,
        "refused stderr": refused.stderr,
    }
    for path in tmp_path.rglob("*"):
        if path.is_file() and not path.name.endswith("config.json"):
            outputs[str(path.relative_to(tmp_path))] = path.read_text()
    assert {
        "target/rejected.jsonl",
        "target/responses.jsonl",
        "target/req.jsonl",
        "refused/rejected.jsonl",
    } <= set(outputs)
    for name, text in outputs.items():
        for secret in [*secrets, "sk-live-wrong-key-00000"]:
            assert secret not in text, f"{name} contains a secret ({secret[:6]}...)"


# -- secrets in every encoding, and never cut in half

SECRET_KEY = "SUPERSECRETKEY-7f3a9c2e"
OAUTH_SECRET = "cs/Se+cret-9f8e7d6c"
OAUTH_CLIENT = "client-1234"


def encodings(secret: str, users: tuple[str, ...] = ()) -> dict[str, str]:
    """The spellings a secret takes in what servers echo: raw, URL-encoded, JSON-escaped, base64 (Basic auth)."""
    from base64 import b64encode
    from urllib.parse import quote, quote_plus

    forms = {
        "raw": secret,
        "quote": quote(secret, safe=""),
        "quote_plus": quote_plus(secret),
        "quote lower hex": re.sub(r"%[0-9A-F]{2}", lambda m: m.group().lower(), quote(secret, safe="")),
        "json": json.dumps(secret)[1:-1],
        "json \\/": json.dumps(secret)[1:-1].replace("/", "\\/"),
        "json \\u00xx": "".join(f"\\u{ord(c):04x}" if not c.isalnum() else c for c in secret),
        "prefix": secret[:8],
    }
    for user in users:
        forms[f"base64 {user}:"] = b64encode(f"{user}:{secret}".encode()).decode()
    return forms


def assert_no_leak(outputs: dict[str, str], secret: str, users: tuple[str, ...] = ()) -> None:
    for name, text in outputs.items():
        for form, spelled in encodings(secret, users).items():
            assert spelled not in text, f"{name} holds the secret ({form}): {text[:3000]}"


def run_outputs(proc: subprocess.CompletedProcess, tmp_path: Path) -> dict[str, str]:
    outputs = {"stdout": proc.stdout, "stderr": proc.stderr}
    for path in tmp_path.rglob("*"):
        if path.is_file() and "config" not in path.name:
            outputs[path.name] = path.read_text(errors="replace")
    return outputs


@pytest.mark.parametrize(
    "body",
    [
        ("x" * 485 + f"Bearer {SECRET_KEY} was refused").encode(),
        json.dumps({"detail": "y" * 470 + f"Bearer {SECRET_KEY} was refused"}).encode(),
    ],
    ids=["text", "json"],
)
def test_an_error_body_echoing_the_key_is_masked_before_it_is_cut(tmp_path, body):
    api = RecordingServer({"POST /v2/account_upserts.json": (422, {}, body)})
    config = {
        "base_url": api.url,
        "api_key": SECRET_KEY,
        "sink": "upsert_account",
        "requests_path": str(tmp_path / "requests.jsonl"),
    }
    try:
        run = run_target(
            config, tmp_path, as_lines(singer_messages("accounts", [{"name": "A", "domain": "a.example"}]))
        )
    finally:
        api.close()
    assert run.returncode == 0, run.stderr[-3000:]
    (rejected,) = run.rejected
    assert rejected["status"] == 422 and "Bearer ***" in rejected["error"], rejected["error"]
    outputs = {"stdout": run.stdout, "stderr": run.stderr}
    outputs |= {p.name: p.read_text() for p in tmp_path.glob("*.jsonl")}
    assert_no_leak(outputs, SECRET_KEY)


def test_a_token_endpoint_echoing_the_client_secret_in_any_encoding_leaks_none_of_them(tmp_path):
    from base64 import b64encode
    from urllib.parse import quote_plus

    echo = (
        f"bad request: grant_type=refresh_token&client_id={OAUTH_CLIENT}&client_secret={quote_plus(OAUTH_SECRET)} "
        '{"client_secret": "cs\\/Se+cret-9f8e7d6c", "again": "cs\\u002fSe\\u002bcret-9f8e7d6c"} '
        f"lower: cs%2fSe%2bcret-9f8e7d6c "
        f"Authorization: Basic {b64encode(f'{OAUTH_CLIENT}:{OAUTH_SECRET}'.encode()).decode()}"
    )
    assert len(echo) < 300
    api = RecordingServer({"POST /oauth/token": (400, {"Content-Type": "text/plain"}, echo.encode())})
    config = {
        "base_url": api.url,
        "client_id": OAUTH_CLIENT,
        "client_secret": OAUTH_SECRET,
        "refresh_token": "refresh-5566778899",
        "token_url": f"{api.url}/oauth/token",
    }
    try:
        tap = run_tap(config, tmp_path, streams=["users"], check=False)
    finally:
        api.close()
    assert tap.returncode == 1
    assert "OAuth refresh refused" in tap.stderr and "client_secret=***" in tap.stderr, tap.stderr[-2000:]
    assert_no_leak({"stdout": json.dumps(tap.messages), "stderr": tap.stderr}, OAUTH_SECRET, (OAUTH_CLIENT,))


@pytest.mark.parametrize("value", [98765432123, 3.14159265, 777, ["a-listed-secret"]], ids=str)
def test_a_secret_setting_of_another_type_is_never_printed(tmp_path, value):
    config = {"base_url": "http://127.0.0.1:9", "api_key": value, "sink": "upsert_account"}
    run = run_target(config, tmp_path, "")
    assert run.returncode == 1
    assert (
        "config['api_key']: not a valid value for this setting (a secret: its value is not shown)"
        in run.stderr
    )
    shown = value[0] if isinstance(value, list) else str(value)
    assert shown not in run.stderr + run.stdout, run.stderr[-2000:]


def test_a_record_value_equal_to_the_key_is_masked_in_the_taps_output(tmp_path):
    body = json.dumps(
        {
            "data": [
                {"id": 1, "updated_at": "2024-05-01T10:00:00.000000Z", "name": SECRET_KEY},
                {"id": 2, "updated_at": "2024-05-01T10:00:01.000000Z", "name": "Plain"},
            ],
            "metadata": {"paging": {"next_page": None}},
        }
    ).encode()
    api = RecordingServer({"GET /v2/accounts.json": (200, {}, body)})
    try:
        tap = run_tap({"base_url": api.url, "api_key": SECRET_KEY}, tmp_path, streams=["accounts"])
    finally:
        api.close()
    assert [r["name"] for r in tap.records["accounts"]] == ["***", "Plain"]
    assert "a value equal to a secret setting was masked as *** in a RECORD message of stream 'accounts'" in (
        tap.stderr
    )
    assert_no_leak({"stdout": json.dumps(tap.messages), "stderr": tap.stderr}, SECRET_KEY)
