"""Bearer auth and the OAuth refresh-token flow (rotation, expiry), and that no secret leaks."""

from __future__ import annotations

import json
import time

import httpx

CLIENT = {"client_id": "sandbox-client", "client_secret": "sandbox-secret"}


def refresh(anon, token, **extra):
    return anon.post(
        "/oauth/token", data={"grant_type": "refresh_token", "refresh_token": token, **CLIENT, **extra}
    )


def test_requests_need_a_valid_bearer(sb, anon):
    missing = anon.get("/v2/people.json")
    assert missing.status_code == 401 and "error" in missing.json()
    assert missing.headers["x-ratelimit-endpoint-cost"] and "x-ratelimit-remaining-minute" in missing.headers
    assert anon.get("/v2/people.json", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert anon.get("/v2/people.json", headers={"Authorization": "Basic c2FuZGJveC1rZXk6"}).status_code == 401
    assert anon.get("/v2/people.json", headers={"Authorization": "Bearer sandbox-key"}).status_code == 200
    assert anon.post("/v2/accounts", json={"name": "x", "domain": "x.test"}).status_code == 401
    assert len(sb.records("accounts")) == 120


def test_refresh_tokens_rotate_and_are_single_use(sb, anon):
    first = refresh(anon, "sandbox-refresh")
    assert first.status_code == 200
    tokens = first.json()
    assert set(tokens) == {"access_token", "refresh_token", "token_type", "expires_in", "created_at"}
    assert tokens["token_type"] == "bearer" and tokens["expires_in"] == 7200
    assert (
        anon.get("/v2/me.json", headers={"Authorization": f"Bearer {tokens['access_token']}"}).status_code
        == 200
    )

    reused = refresh(anon, "sandbox-refresh")
    assert reused.status_code == 401 and reused.json() == {"error": "invalid_grant"}

    second = anon.post(
        "/oauth/token",
        json={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], **CLIENT},
    )
    assert second.status_code == 200, "JSON bodies work too"
    assert refresh(anon, tokens["refresh_token"]).json() == {"error": "invalid_grant"}
    new = second.json()
    assert new["access_token"] != tokens["access_token"] and new["refresh_token"] != tokens["refresh_token"]
    # the older access token keeps working until it expires
    assert (
        anon.get("/v2/me.json", headers={"Authorization": f"Bearer {tokens['access_token']}"}).status_code
        == 200
    )


def test_client_credentials_and_grant_type_are_checked(sb, anon):
    bad_secret = refresh(anon, "sandbox-refresh", client_secret="wrong")
    assert bad_secret.status_code == 401 and bad_secret.json() == {"error": "invalid_client"}
    assert anon.post("/oauth/token", data={"grant_type": "password", **CLIENT}).json() == {
        "error": "unsupported_grant_type"
    }
    basic = anon.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": "sandbox-refresh"},
        auth=httpx.BasicAuth("sandbox-client", "sandbox-secret"),
    )
    assert basic.status_code == 200, "client credentials in a Basic header"


def test_access_tokens_expire(sb, anon):
    sb.configure(token_ttl=0.3)
    tokens = refresh(anon, "sandbox-refresh").json()
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert anon.get("/v2/me.json", headers=headers).status_code == 200
    time.sleep(0.4)
    expired = anon.get("/v2/me.json", headers=headers)
    assert expired.status_code == 401 and "expired" in expired.json()["error"].lower()
    renewed = refresh(anon, tokens["refresh_token"]).json()
    assert (
        anon.get("/v2/me.json", headers={"Authorization": f"Bearer {renewed['access_token']}"}).status_code
        == 200
    )


def test_every_refresh_can_be_rejected(sb, anon):
    sb.configure(reject_refresh=True)
    assert refresh(anon, "sandbox-refresh").json() == {"error": "invalid_grant"}
    sb.configure(reject_refresh=False)
    assert refresh(anon, "sandbox-refresh").status_code == 200


def test_no_token_or_secret_reaches_the_journal_or_stats(sb, anon):
    tokens = refresh(anon, "sandbox-refresh").json()
    anon.get("/v2/me.json", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    anon.get("/v2/me.json", params={"access_token": tokens["access_token"]})
    anon.get("/v2/me.json", headers={"Authorization": "Bearer sandbox-key"})
    dump = json.dumps(sb.journal()) + json.dumps(sb.stats())
    for secret in (
        tokens["access_token"],
        tokens["refresh_token"],
        "sandbox-refresh",
        "sandbox-secret",
        "sandbox-key",
    ):
        assert secret not in dump
    oauth = [e for e in sb.journal() if e["path"] == "/oauth/token"]
    assert (
        oauth[0]["body"]["refresh_token"] == "[redacted]"
        and oauth[0]["body"]["client_secret"] == "[redacted]"
    )
    assert oauth[0]["body"]["client_id"] == "sandbox-client"
    assert [e["auth"] for e in sb.journal() if e["path"] == "/v2/me.json"] == ["oauth", None, "api_key"]


REDIRECT = "http://127.0.0.1:9/callback"


def authorize(anon, **params):
    query = {"client_id": "sandbox-client", "redirect_uri": REDIRECT, "response_type": "code", "state": "s1"}
    return anon.get("/oauth/authorize", params={**query, **params})


def code_of(response) -> str:
    location = httpx.URL(response.headers["location"])
    assert str(location).startswith(REDIRECT + "?")
    assert location.params["state"] == "s1"
    return location.params["code"]


def exchange(anon, code, redirect_uri=REDIRECT, **extra):
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri, **CLIENT}
    return anon.post("/oauth/token", data={**form, **extra})


def test_the_code_grant_redirects_with_a_single_use_code_bound_to_its_redirect_uri(sb, anon):
    code = code_of(authorize(anon))
    assert exchange(anon, code, "http://127.0.0.1:9/other").json() == {"error": "invalid_grant"}
    assert exchange(anon, code).json() == {"error": "invalid_grant"}, "a code is spent by any attempt"

    code = code_of(authorize(anon))
    answer = exchange(anon, code)
    assert answer.status_code == 200
    tokens = answer.json()
    assert set(tokens) == {"access_token", "refresh_token", "token_type", "expires_in", "created_at"}
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert anon.get("/v2/me.json", headers=bearer).status_code == 200
    assert refresh(anon, tokens["refresh_token"]).status_code == 200, "the chain continues by refresh"
    assert exchange(anon, code).status_code == 400
    assert sb.stats()["oauth"]["codes_exchanged"] == 1
    assert code not in json.dumps(sb.journal()), "codes never enter the journal"


def test_the_authorize_endpoint_redirects_errors_only_to_a_trusted_client(sb, anon):
    unknown = authorize(anon, client_id="someone-else")
    assert unknown.status_code == 400 and "location" not in unknown.headers
    assert authorize(anon, redirect_uri="javascript:alert(1)").status_code == 400
    wrong_type = httpx.URL(authorize(anon, response_type="token").headers["location"])
    assert wrong_type.params["error"] == "unsupported_response_type" and "code" not in wrong_type.params
    sb.configure(deny_authorize=True)
    denied = httpx.URL(authorize(anon).headers["location"])
    assert denied.params["error"] == "access_denied" and denied.params["state"] == "s1"
    assert exchange(anon, "made-up").json() == {"error": "invalid_grant"}
