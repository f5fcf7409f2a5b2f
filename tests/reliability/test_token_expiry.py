"""OAuth: access tokens that expire mid-sync are refreshed, rotated refresh tokens are saved, refusals stop cleanly.

Salesloft refresh tokens are single use: every refresh returns a new one, which must reach the config file
or the next run cannot authenticate. The sandbox's token endpoint rotates them the same way.
"""

from __future__ import annotations

import json
import time

import httpx
import pytest
from helpers import logged_json, run_tap, run_target, singer_lines
from reliability_support import records_of, start_tap

from connector.http import ApiClient
from connector.templates import load_bundled

CLIENT_ID = "reliability-client"
CLIENT_SECRET = "client-secret-5f3a9e"
INITIAL_REFRESH = "refresh-initial-9c2b71"
PEOPLE = 12_000  # 120 pages: at 40 points a second, about three seconds of sync


@pytest.fixture(scope="module")
def sb():
    from sandbox.testing import running_sandbox

    with running_sandbox(
        sizes={"people": PEOPLE},
        budget=40,
        time_scale=60,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        refresh_token=INITIAL_REFRESH,
    ) as handle:
        yield handle


@pytest.fixture
def fresh(sb):
    """The sandbox as issued: only the initial refresh token is valid; settings back to defaults after."""
    sb.reset()
    yield sb
    sb.configure(token_ttl=7200, reject_refresh=False, faults="rate=0")


def oauth_config(sb) -> dict:
    return {
        "base_url": sb.url,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "refresh_token": INITIAL_REFRESH,
        "token_url": f"{sb.url}/oauth/token",
        "rate_window_seconds": 1,
        "max_backoff_seconds": 0.5,
    }


def refresh_with(sb, token: str) -> httpx.Response:
    return httpx.post(
        f"{sb.url}/oauth/token",
        data={
            "grant_type": "refresh_token",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "refresh_token": token,
        },
    )


def assert_no_secret(text: str, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in text, f"a secret ({secret[:4]}...) leaked into the output"


def live_tokens(sb) -> tuple[str, str]:
    """Spend the initial refresh token as an authorization would: a live access token and the next refresh token."""
    payload = refresh_with(sb, INITIAL_REFRESH).json()
    return payload["access_token"], payload["refresh_token"]


def test_short_lived_tokens_are_refreshed_as_they_expire(fresh, tmp_path, figures):
    ttl = 2
    fresh.configure(token_ttl=ttl)
    access, refresh = live_tokens(fresh)
    fresh.configure(faults="rate=0.03,seed=4,kinds=429,burst=2")  # 429 waits, during which tokens expire too
    started = time.monotonic()
    run = run_tap(
        {**oauth_config(fresh), "access_token": access, "refresh_token": refresh},
        tmp_path,
        streams=["people"],
    )
    elapsed = time.monotonic() - started
    api = [e for e in fresh.journal() if e["path"].startswith("/v2/")]
    assert len({r["id"] for r in run.records["people"]}) == PEOPLE
    assert any(e["status"] == 429 for e in api)
    assert all(e["auth"] == "oauth" for e in api if e["status"] == 200)
    refreshes = fresh.stats()["oauth"]["refreshes"] - 1  # the one above, which issued the tap's tokens
    figures(
        requests=len(api),
        refreshes=refreshes,
        seconds=round(elapsed, 2),
        token_ttl=ttl,
        http_401=sum(1 for e in api if e["status"] == 401),
        http_429=sum(1 for e in api if e["status"] == 429),
    )
    # Replaced before they expired: the only 401s allowed are for the config's token (the first issued),
    # whose age the tap cannot know; each request in flight when it expired is refused once, no more.
    refused = [e for e in api if e["status"] == 401]
    assert {e["token"] for e in refused} <= {1}, "a token the tap refreshed itself was used after expiry"
    assert len(refused) <= 16  # the default max_concurrency at 40 requests a second: its cap
    # A refresh rotates the single-use refresh token and rewrites the config file: not before each request.
    assert refreshes <= elapsed / (ttl / 2) + 2, (
        f"{refreshes} refreshes for {len(api)} requests in {elapsed:.1f}s"
    )
    assert_no_secret(run.stderr + json.dumps(run.messages), CLIENT_SECRET, INITIAL_REFRESH, access, refresh)


def test_the_tap_saves_the_rotated_refresh_token_to_its_config_file(fresh, tmp_path):
    run_tap(oauth_config(fresh), tmp_path, streams=["users"])
    saved = json.loads((tmp_path / "tap-config.json").read_text())
    assert {k: v for k, v in saved.items() if k not in ("refresh_token", "access_token")} == {
        k: v for k, v in oauth_config(fresh).items() if k != "refresh_token"
    }
    assert refresh_with(fresh, INITIAL_REFRESH).json() == {
        "error": "invalid_grant"
    }  # single use: it was spent
    assert refresh_with(fresh, saved["refresh_token"]).status_code == 200, (
        "the next run could not authenticate"
    )


def test_the_target_saves_the_rotated_refresh_token_to_its_config_file(fresh, tmp_path):
    records = [{"name": "Token Co", "domain": "token-co.example"}]
    run = run_target(
        {**oauth_config(fresh), "sink": "upsert_account"}, tmp_path, singer_lines("accounts", records)
    )
    assert run.returncode == 0, run.stderr[-3000:]
    saved = json.loads((tmp_path / "target-config.json").read_text())
    assert refresh_with(fresh, saved["refresh_token"]).status_code == 200, (
        "the next run could not authenticate"
    )


def test_a_token_the_api_expires_early_is_refreshed_on_401_after_a_429_wait(fresh, tmp_path, figures):
    fresh.configure(token_ttl=3600)
    tap = start_tap(oauth_config(fresh), tmp_path, streams=["people"])
    tap.read_until(lambda lines: len(lines) >= 2_000)
    time.sleep(1.2)  # the tap's token is now older than the lifetime the API is about to announce
    # The API revokes it early (its lifetime drops to 1 s) and answers the next requests with a 429 burst.
    fresh.configure(token_ttl=1, faults={"next": ["429"], "burst": 2})
    assert tap.wait(timeout=120) == 0, tap.stderr[-3000:]
    api = [e for e in fresh.journal() if e["path"].startswith("/v2/")]
    statuses = [e["status"] for e in api]
    assert len({r["id"] for r in records_of(tap.lines, "people")}) == PEOPLE
    first_401 = statuses.index(401)
    assert statuses[first_401 - 2 : first_401] == [429, 429], statuses[first_401 - 3 : first_401 + 3]
    # Each request in flight with the revoked token is refused once; the token is replaced once for all.
    refused = [e for e in api if e["status"] == 401]
    assert len({e["token"] for e in refused}) == 1
    assert all(e["token"] != refused[0]["token"] for e in api[first_401:] if e["status"] == 200)
    figures(
        requests=len(api),
        http_401=statuses.count(401),
        http_429=statuses.count(429),
        refreshes=fresh.stats()["oauth"]["refreshes"],
    )


class Scripted(httpx.HTTPTransport):
    """The real transport, with a hook run on each answer (to change the sandbox between two requests)."""

    def __init__(self, hook) -> None:
        super().__init__()
        self.hook = hook

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        self.hook(request, response)
        return response


def test_a_token_expiring_again_during_a_429_wait_of_the_same_request_is_refreshed_again(fresh):
    refreshes = []
    unauthorized = []

    def hook(request, response):
        if request.url.path == "/oauth/token":
            refreshes.append(response.status_code)
            fresh.configure(token_ttl=3600)
        elif response.status_code == 401:
            unauthorized.append(request.headers["authorization"])
            if (
                len(unauthorized) == 1
            ):  # the next token is announced for an hour; its first request gets a 429
                fresh.configure(token_ttl=3600, faults={"next": ["429"], "burst": 1})
        elif (
            response.status_code == 429
        ):  # while the client waits out the 429, the API expires its token early
            fresh.configure(token_ttl=0.2)

    api = ApiClient(load_bundled("salesloft"), oauth_config(fresh), transport=Scripted(hook))
    try:
        assert api.send("GET", api.url("/v2/me.json")).status_code == 200
        fresh.clear_journal()
        fresh.configure(token_ttl=0.2)
        time.sleep(0.3)  # the first token expires earlier than the API had announced
        response = api.send("GET", api.url("/v2/me.json"))
    finally:
        api.close()
    statuses = [e["status"] for e in fresh.journal() if e["path"].startswith("/v2/")]
    assert statuses == [401, 429, 401, 200]
    assert response.status_code == 200
    assert refreshes == [200, 200, 200]
    assert unauthorized[0] != unauthorized[1], "refreshed once per token, not twice for the same one"


def test_a_refused_refresh_token_stops_the_tap_with_a_clear_message_and_no_secret(fresh, tmp_path):
    fresh.configure(token_ttl=3600)
    tap = start_tap(oauth_config(fresh), tmp_path, streams=["people"])
    tap.read_until(lambda lines: len(lines) >= 1_000)
    fresh.configure(token_ttl=0.5, reject_refresh=True)  # mid-sync: the token expires, its refresh is refused
    code = tap.wait(timeout=120)
    assert code != 0
    error_lines = [line for line in tap.stderr.splitlines() if "error" in line.lower()]
    assert error_lines and "OAuth refresh refused" in error_lines[-1], tap.stderr[-2000:]
    assert "invalid_grant" in error_lines[-1] and "authorize again" in error_lines[-1]
    saved = json.loads((tmp_path / "tap-config.json").read_text())
    assert_no_secret(
        tap.stderr + json.dumps(tap.lines),
        CLIENT_SECRET,
        INITIAL_REFRESH,
        saved["refresh_token"],
        saved.get("access_token", "no access token saved"),
    )
    assert any(m["type"] == "STATE" for m in tap.lines), (
        "the records read before the refusal were checkpointed"
    )


def test_a_refused_refresh_token_stops_the_target_with_a_clear_message_and_no_secret(fresh, tmp_path):
    fresh.configure(reject_refresh=True)
    records = [{"name": "Never Sent", "domain": f"never-sent-{i}.example"} for i in range(5)]
    config = {
        **oauth_config(fresh),
        "sink": "upsert_account",
        "responses_path": str(tmp_path / "responses.jsonl"),
    }
    run = run_target(config, tmp_path, singer_lines("accounts", records, state={"bookmarks": {"a": 1}}))
    assert run.returncode != 0
    assert (
        "OAuth refresh refused" in run.stderr.splitlines()[-1]
        and "invalid_grant" in run.stderr.splitlines()[-1]
    )
    assert run.states == [], "a STATE would claim records that got no outcome"
    assert [e for e in fresh.journal() if e["path"].startswith("/v2/")] == []
    files = "".join(p.read_text() for p in tmp_path.glob("*.jsonl"))
    assert_no_secret(run.stdout + run.stderr + files, CLIENT_SECRET, INITIAL_REFRESH)


def test_the_target_refreshes_short_lived_tokens_and_loses_nothing(fresh, tmp_path, figures):
    fresh.configure(token_ttl=1)
    access, refresh = live_tokens(fresh)
    records = [{"name": f"Token Co {i}", "domain": f"token-{i}.example"} for i in range(150)]
    config = {
        **oauth_config(fresh),
        "access_token": access,
        "refresh_token": refresh,
        "sink": "upsert_account",
    }
    started = time.monotonic()
    run = run_target(config, tmp_path, singer_lines("accounts", records))
    elapsed = time.monotonic() - started
    assert run.returncode == 0, run.stderr[-3000:]
    assert logged_json(run.stderr, "Target summary: ")["accepted"] == len(records)
    domains = sorted(a["domain"] for a in fresh.records("accounts") if a["domain"].startswith("token-"))
    assert domains == sorted(r["domain"] for r in records)
    refreshes = fresh.stats()["oauth"]["refreshes"] - 1
    figures(requests=len(records), refreshes=refreshes, seconds=round(elapsed, 2), token_ttl=1)
    assert 1 <= refreshes <= elapsed / 0.5 + 2
    assert_no_secret(
        run.stdout + run.stderr + json.dumps(run.rejected), CLIENT_SECRET, INITIAL_REFRESH, access, refresh
    )


# ---------------------------------------------------------------- token_file: temporary configs, shared tokens


def test_with_a_token_file_runs_given_the_same_config_each_time_go_on_from_the_rotated_token(fresh, tmp_path):
    """As under Meltano: every run gets a fresh copy of the config, holding the first (spent) refresh token."""
    fresh.configure(token_ttl=1)
    tokens = tmp_path / "state" / "salesloft-tokens.json"
    config = {**oauth_config(fresh), "token_file": str(tokens)}
    first = run_tap(config, tmp_path, streams=["users"])
    time.sleep(1.2)  # the access token it left has expired: the next run must refresh
    second = run_tap(config, tmp_path, streams=["users"])
    assert first.records["users"] == second.records["users"] != []
    assert fresh.stats()["oauth"]["refreshes"] == 2
    assert "token_file" in second.stderr and "rotated by an earlier run" in second.stderr
    assert tokens.stat().st_mode & 0o777 == 0o600
    saved = json.loads(tokens.read_text())
    assert refresh_with(fresh, saved["refresh_token"]).status_code == 200
    for run in (first, second):
        assert_no_secret(
            run.stderr + json.dumps(run.messages), CLIENT_SECRET, INITIAL_REFRESH, saved["refresh_token"]
        )

    # Without the file, the same config cannot authenticate any more: its refresh token was spent.
    stale = run_tap(oauth_config(fresh), tmp_path, streams=["users"], check=False)
    assert stale.returncode == 1 and "OAuth refresh refused" in stale.stderr


def test_a_tap_and_a_target_holding_one_refresh_token_share_it_through_the_token_file(fresh, tmp_path):
    """A pipeline's tap and target start with the same single-use token: one refreshes, the other takes its tokens."""
    from concurrent.futures import ThreadPoolExecutor

    config = {**oauth_config(fresh), "token_file": str(tmp_path / "tokens.json")}
    records = [{"name": f"Shared {i}", "domain": f"shared-{i}.example"} for i in range(50)]
    with ThreadPoolExecutor(2) as pool:
        tap = pool.submit(run_tap, config, tmp_path, ["people"], None, 300, False)
        target = pool.submit(
            run_target, {**config, "sink": "upsert_account"}, tmp_path, singer_lines("accounts", records)
        )
        tap_run, target_run = tap.result(), target.result()
    assert tap_run.returncode == 0, tap_run.stderr[-3000:]
    assert target_run.returncode == 0 and target_run.rejected == [], target_run.stderr[-3000:]
    assert len(tap_run.records["people"]) == PEOPLE
    assert {a["domain"] for a in fresh.records("accounts")} >= {r["domain"] for r in records}
    assert fresh.stats()["oauth"]["refreshes"] == 1


def test_a_config_with_a_new_refresh_token_wins_over_the_token_file(fresh, tmp_path):
    """Authorizing again puts a new refresh token in the config: the file's older chain must not shadow it."""
    from connector.tokens import fingerprint

    tokens = tmp_path / "tokens.json"
    run_tap({**oauth_config(fresh), "token_file": str(tokens)}, tmp_path, streams=["users"])
    old_chain = json.loads(tokens.read_text())
    reauthorized = refresh_with(fresh, old_chain["refresh_token"]).json()["refresh_token"]
    run_tap(
        {**oauth_config(fresh), "refresh_token": reauthorized, "token_file": str(tokens)},
        tmp_path,
        streams=["users"],
    )
    new_chain = json.loads(tokens.read_text())
    assert new_chain["origin"] == fingerprint(reauthorized) != old_chain["origin"]
    assert refresh_with(fresh, new_chain["refresh_token"]).status_code == 200
