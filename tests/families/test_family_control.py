"""What the four family servers share: the command line, the journal, faults, the clock, reset."""

from __future__ import annotations

import socket
import subprocess
import sys

import httpx
import pytest

from sandbox.families.common import ControlError
from sandbox.families.payments import running_payments
from sandbox.testing import SandboxError

FAMILIES = ("payments", "crm", "export", "sessions")
FORM_TYPE = "application/x-www-form-urlencoded"


@pytest.mark.parametrize("name", FAMILIES)
def test_each_server_has_a_command_line_help(name):
    result = subprocess.run(
        [sys.executable, "-m", f"sandbox.families.{name}", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    for flag in ("--port", "--seed", "--size", "--now"):
        assert flag in result.stdout


@pytest.fixture(scope="module")
def sb():
    with running_payments(size=12) as handle:
        yield handle


@pytest.fixture
def api(sb):
    with sb.client(auth=(sb.credentials["api_key"], "")) as client:
        yield client


def test_the_journal_keeps_method_path_query_headers_and_body_and_clears(sb, api):
    sb.clear_journal()
    api.get("/v1/customers", params={"limit": 2, "created[gte]": 5})
    api.post("/v1/customers", data={"metadata[plan]": "pro"}, headers={"Idempotency-Key": "j-1"})
    with sb.client() as anon:
        anon.get("/v1/charges")
    get, post, refused = sb.journal()
    assert (get["method"], get["path"], get["status"]) == ("GET", "/v1/customers", 200)
    assert (
        get["query"] == {"limit": ["2"], "created[gte]": ["5"]}
        and get["headers"]["authorization"] == "Basic ***"
    )
    assert post["form"] == [["metadata[plan]", "pro"]] and post["headers"]["idempotency-key"] == "j-1"
    assert (refused["status"], "authorization" in refused["headers"]) == (401, False)
    assert sb.journal(since=post["seq"]) == [refused]
    assert sb.credentials["api_key"] not in str(sb.journal())
    sb.clear_journal()
    assert sb.journal() == []


def test_faults_can_drop_the_connection_and_are_journaled(sb, api):
    sb.fault("reset", count=1)
    with pytest.raises(httpx.TransportError):
        api.get("/v1/customers")
    assert api.get("/v1/customers").status_code == 200
    assert [e["fault"] for e in sb.journal()[-2:]] == ["reset", None]
    sb.fault(503, count=2)
    sb.clear_faults()
    assert api.get("/v1/customers").status_code == 200
    with pytest.raises(ControlError):
        sb.fault(418)


def test_the_clock_moves_forward_only_and_reset_restores_the_seeded_data(sb, api):
    before = sb.now()
    assert sb.advance(3600) >= before + 3600
    with pytest.raises(ControlError):
        sb.advance(-1)
    sb.reset()
    original = sb.records("customers")
    sb.touch("customers", 2)
    assert len(sb.records("customers")) == len(original) + 2
    sb.reset()
    assert sb.records("customers") == original and sb.journal() == []
    with pytest.raises(ControlError):
        sb.records("planets")


def test_an_unknown_option_stops_the_start_with_the_reason():
    with pytest.raises(SandboxError, match="unrecognized arguments: --planets"), running_payments(planets=3):
        pass


def test_chunked_bodies_are_read_and_unreadable_ones_refused(sb, api):
    def chunks():
        yield b"name=Chunked"
        yield b"&metadata[via]=chunks"

    created = api.post("/v1/customers", content=chunks(), headers={"Content-Type": FORM_TYPE})
    assert created.status_code == 200, created.text
    assert created.json()["name"] == "Chunked" and created.json()["metadata"] == {"via": "chunks"}
    host, port = sb.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        raw.sendall(b"POST /v1/customers HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\nname=x")
        answer = raw.makefile("rb").read().decode()
    assert answer.startswith("HTTP/1.1 400") and "unreadable request body" in answer
