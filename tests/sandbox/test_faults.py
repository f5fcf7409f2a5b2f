"""Injected faults, as a client sees them, and their determinism."""

from __future__ import annotations

import contextlib
import time

import httpx
import pytest

from sandbox.faults import Faults, FaultSettings, parse_spec


@pytest.mark.parametrize("kind", ["500", "502", "503"])
def test_server_errors(sb, api, kind):
    sb.configure(faults={"next": [kind]})
    response = api.get("/v2/people.json")
    assert response.status_code == int(kind)
    assert response.headers["x-ratelimit-endpoint-cost"] == "1"
    assert api.get("/v2/people.json").status_code == 200, "only the next request"
    if kind != "500":
        assert response.headers["content-type"].startswith("text/html"), "gateways answer in HTML"
    assert sb.journal()[-2]["fault"] == kind and sb.journal()[-2]["status"] == int(kind)


def test_429_bursts(sb, api):
    sb.configure(faults={"next": ["429"], "burst": 3})
    statuses = [api.get("/v2/me.json").status_code for _ in range(5)]
    assert statuses == [429, 429, 429, 200, 200]
    limited = [e for e in sb.journal() if e["status"] == 429]
    assert len(limited) == 3 and all(e["fault"] == "429" for e in limited)


def test_429_bursts_without_retry_after(sb, api):
    sb.configure(faults={"next": ["429"], "burst": 1}, retry_after=False)
    response = api.get("/v2/me.json")
    assert response.status_code == 429 and "retry-after" not in response.headers
    assert response.json() == {"error": "API rate limit exceeded"}


def test_reset_closes_the_connection_without_a_response(sb, api):
    sb.configure(faults={"next": ["reset"]})
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError, httpx.ConnectError)):
        api.get("/v2/people.json")
    assert api.get("/v2/people.json").status_code == 200
    entry = [e for e in sb.journal() if e["fault"] == "reset"][0]
    assert entry["status"] is None


def test_slow_responses(sb, api):
    sb.configure(faults={"next": ["slow"], "delay": 0.4})
    started = time.monotonic()
    assert api.get("/v2/me.json").status_code == 200
    assert time.monotonic() - started >= 0.4
    with pytest.raises(httpx.ReadTimeout):
        sb.configure(faults={"next": ["slow"], "delay": 0.5})
        api.get("/v2/me.json", timeout=0.2)


def test_truncated_bodies(sb, api):
    sb.configure(faults={"next": ["truncate"]})
    with pytest.raises(httpx.RemoteProtocolError):
        api.get("/v2/people.json", params={"per_page": 100})
    assert api.get("/v2/people.json").status_code == 200


def test_faults_on_writes_happen_before_the_write_except_truncate(sb, api):
    for kind in ("500", "503", "429", "reset"):
        sb.configure(faults={"next": [kind]})
        with contextlib.suppress(httpx.HTTPError):
            api.post("/v2/accounts", json={"name": f"Fault {kind}", "domain": f"fault{kind}.test"})
    assert not [a for a in sb.records("accounts") if a["domain"].startswith("fault")]
    sb.configure(faults={"next": ["truncate"]})
    with pytest.raises(httpx.RemoteProtocolError):
        api.post("/v2/accounts", json={"name": "Truncated", "domain": "truncated.test"})
    assert [a["name"] for a in sb.records("accounts") if a["domain"] == "truncated.test"] == ["Truncated"]
    assert api.post("/v2/accounts", json={"name": "Again", "domain": "truncated.test"}).status_code == 422, (
        "a retry sees the write"
    )


def test_rate_and_seed_are_deterministic(sb, api):
    spec = {"rate": 0.4, "seed": 11, "kinds": ["500", "503", "429"], "burst": 2}

    def run():
        sb.configure(faults=spec)
        return [api.get("/v2/me.json").status_code for _ in range(40)]

    first, second = run(), run()
    assert first == second
    assert 200 in first and {500, 503, 429} & set(first)
    sb.configure(faults={**spec, "seed": 12})
    assert [api.get("/v2/me.json").status_code for _ in range(40)] != first


def test_fault_spec_strings():
    settings = parse_spec("rate=0.05,seed=3,kinds=500,502,503,429,reset,slow,truncate,delay=1.5,burst=4")
    assert settings.rate == 0.05 and settings.seed == 3 and settings.delay == 1.5 and settings.burst == 4
    assert settings.kinds == ["500", "502", "503", "429", "reset", "slow", "truncate"]
    with pytest.raises(ValueError):
        parse_spec("rate=2")
    with pytest.raises(ValueError):
        parse_spec("kinds=500,teapot")
    with pytest.raises(ValueError):
        parse_spec("colour=blue")
    faults = Faults(FaultSettings(rate=1.0, seed=1, kinds=["503"]))
    assert [faults.draw() for _ in range(3)] == ["503"] * 3


def test_faults_from_the_command_line():
    from sandbox.testing import running_sandbox

    with running_sandbox(faults="rate=1,seed=1,kinds=502") as sb, sb.client() as api:
        assert api.get("/v2/me.json").status_code == 502
        assert sb.stats()["faults"]["injected"] == {"502": 1}
