"""The shared HTTP client: retries, rate budget, OAuth refresh and rotation, redirects, secrets.

Every test runs against each sender (httpx's stack and the lean wire), the API being a handler served
over a real socket on 127.0.0.1.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator

import httpx
import pytest
from reliability.hostile_server import HostileServer, from_handler

from connector.errors import AuthError, RequestFailed, UnsafeRequestError
from connector.http import ApiClient
from connector.templates import load_bundled

SENDERS = ["httpx", "wire"]
Handler = Callable[[httpx.Request], httpx.Response]


@pytest.fixture(params=SENDERS)
def serve(request) -> Iterator[Callable[..., ApiClient]]:
    """``serve(handler, connection="salesloft", **config)``: a client of ``handler`` served on a socket;
    ``api.url(path)`` is a URL on it."""
    servers: list[HostileServer] = []
    clients: list[ApiClient] = []

    def make(handler: Handler, connection: str = "salesloft", on_rotate=None, **config) -> ApiClient:
        server = HostileServer(from_handler(handler)).__enter__()
        servers.append(server)
        settings = {
            "base_url": server.url,
            "api_key": "key-123456",
            "max_backoff_seconds": 0.01,
            "http_transport": request.param,
            **{k: (v.replace(BASE, server.url) if isinstance(v, str) else v) for k, v in config.items()},
        }
        api = ApiClient(load_bundled(connection), settings, on_rotate=on_rotate)
        clients.append(api)
        return api

    yield make
    for api in clients:
        api.close()
    for server in servers:
        server.__exit__()


BASE = "http://api.placeholder"  # replaced by the served URL in config values


def test_bearer_token_is_sent_and_5xx_is_retried(serve):
    calls = []

    def handler(request):
        calls.append(request)
        if len(calls) < 3:
            return httpx.Response(503, json={"error": "busy"})
        return httpx.Response(200, json={"data": []})

    api = serve(handler)
    response = api.send("GET", api.url("/v2/people.json"))
    assert response.status_code == 200
    assert len(calls) == 3
    assert all(r.headers["authorization"] == "Bearer key-123456" for r in calls)
    assert api.stats.retries == 2 and api.stats.server_errors == 2


def test_transport_errors_are_retried_then_reported(serve):
    attempts = []

    def handler(request):
        attempts.append(1)
        raise httpx.RemoteProtocolError("peer closed connection", request=request)

    api = serve(handler, max_attempts=3)
    with pytest.raises(RequestFailed, match="on all 3 attempts"):
        api.send("GET", api.url("/v2/people.json"))
    assert len(attempts) == 3


def test_429_waits_for_retry_after(serve):
    calls = []

    def handler(request):
        calls.append(time.monotonic())
        if len(calls) == 1:
            return httpx.Response(
                429, json={"error": "API rate limit exceeded"}, headers={"Retry-After": "0.2"}
            )
        return httpx.Response(200, json={})

    api = serve(handler)
    assert api.send("GET", api.url("/v2/people.json")).status_code == 200
    assert calls[1] - calls[0] >= 0.2
    assert api.stats.throttled == 1


def test_pacing_waits_for_the_window_instead_of_overdrawing(serve):
    remaining = {"left": 3, "window": time.monotonic()}

    def handler(request):
        now = time.monotonic()
        if now - remaining["window"] >= 0.5:
            remaining.update(left=3, window=now)
        if remaining["left"] <= 0:
            return httpx.Response(429, json={"error": "API rate limit exceeded"})
        remaining["left"] -= 1
        return httpx.Response(
            200,
            json={},
            headers={
                "x-ratelimit-remaining-minute": str(remaining["left"]),
                "x-ratelimit-endpoint-cost": "1",
            },
        )

    api = serve(handler, rate_window_seconds=0.5)
    for _ in range(7):
        assert api.send("GET", api.url("/v2/people.json")).status_code == 200
    assert api.stats.throttled == 0
    assert api.stats.waited_seconds > 0
    assert api.stats.cost == 7


def test_4xx_is_returned_with_the_api_message(serve):
    def handler(request):
        return httpx.Response(422, json={"errors": {"domain": ["has already been taken"]}})

    api = serve(handler)
    response = api.send("POST", api.url("/v2/accounts.json"), json_body={"domain": "x"})
    assert response.status_code == 422
    assert api.error_message(response) == "domain: has already been taken"
    assert api.stats.retries == 0


def test_windows_are_counted_from_the_first_answer_not_the_first_send(serve):
    """The API's fixed windows began before this client did; its first request crosses a window boundary on
    the way (sent in one window, charged in the next). Counted from the send, the client's window would end
    before the API's and its probe would meet a 429."""
    window = 0.5
    api_start = {}
    charged: dict[int, int] = {}
    statuses = []

    def handler(request):
        if not statuses:
            time.sleep(0.15)  # a slow first connection: it reaches the API in its next window
        index = int((time.monotonic() - api_start["at"]) / window)
        if charged.get(index, 0) >= 3:
            statuses.append(429)
            return httpx.Response(429, json={"error": "API rate limit exceeded"})
        charged[index] = charged.get(index, 0) + 1
        statuses.append(200)
        return httpx.Response(
            200,
            json={},
            headers={
                "x-ratelimit-remaining-minute": str(3 - charged[index]),
                "x-ratelimit-endpoint-cost": "1",
            },
        )

    api = serve(handler, rate_window_seconds=window)
    api_start["at"] = time.monotonic() - 0.4  # the API's next window begins 0.1 s after the first request
    for _ in range(7):
        assert api.send("GET", api.url("/v2/people.json")).status_code == 200
    assert statuses == [200] * 7
    assert max(charged.values()) == 3


def test_requests_to_another_origin_are_refused(serve):
    api = serve(lambda r: httpx.Response(200))
    with pytest.raises(UnsafeRequestError):
        api.send("GET", "http://evil.example/v2/people.json")


def test_redirect_to_another_origin_is_not_followed_with_credentials(serve):
    seen = []

    def handler(request):
        seen.append(request.url.path)
        if request.url.host == "127.0.0.1":
            return httpx.Response(302, headers={"Location": "http://evil.example/collect"})
        return httpx.Response(200)

    api = serve(handler)
    with pytest.raises(UnsafeRequestError, match="redirected to another origin"):
        api.send("GET", api.url("/v2/people.json"))
    assert seen == ["/v2/people.json"]


def test_same_origin_redirect_is_followed(serve):
    def handler(request):
        if request.url.path == "/old":
            return httpx.Response(301, headers={"Location": "/v2/people.json"})
        return httpx.Response(200, json={"auth": request.headers.get("authorization")})

    api = serve(handler)
    assert api.send("GET", api.url("/old")).json() == {"auth": "Bearer key-123456"}


def oauth_server(expires_in=7200, refuse=False):
    state = {"refresh": "refresh-0", "access": None, "issued": 0, "calls": []}

    def handler(request):
        state["calls"].append(request.url.path)
        if request.url.path == "/oauth/token":
            form = dict(httpx.QueryParams(request.content.decode()))
            if refuse or form["refresh_token"] != state["refresh"] or form["client_secret"] != "shh-secret":
                return httpx.Response(401, json={"error": "invalid_grant"})
            state["issued"] += 1
            state["access"] = f"access-{state['issued']}"
            state["refresh"] = f"refresh-{state['issued']}"
            return httpx.Response(
                200,
                json={
                    "access_token": state["access"],
                    "refresh_token": state["refresh"],
                    "expires_in": expires_in,
                    "token_type": "bearer",
                },
            )
        if request.headers.get("authorization") != f"Bearer {state['access']}":
            return httpx.Response(401, json={"error": "Unauthorized"})
        return httpx.Response(200, json={"data": []})

    return state, handler


OAUTH = {
    "api_key": None,
    "client_id": "cid",
    "client_secret": "shh-secret",
    "refresh_token": "refresh-0",
    "token_url": f"{BASE}/oauth/token",
}


def test_oauth_refresh_rotates_and_hands_back_the_new_token(serve):
    state, handler = oauth_server()
    rotated = []
    api = serve(handler, on_rotate=rotated.append, **OAUTH)
    assert api.send("GET", api.url("/v2/people.json")).status_code == 200
    assert rotated == [{"access_token": "access-1", "refresh_token": "refresh-1"}]
    # the server forgets the access token (revoked/expired early): a 401 triggers one refresh with the NEW token
    state["access"] = "gone"
    assert api.send("GET", api.url("/v2/people.json")).status_code == 200
    assert rotated[-1] == {"access_token": "access-2", "refresh_token": "refresh-2"}


def test_oauth_refreshes_before_expiry(serve):
    # A 2 s token, shorter than the 300 s margin: refreshed once half its life is gone, not before each request.
    state, handler = oauth_server(expires_in=2)
    api = serve(handler, **OAUTH)
    api.send("GET", api.url("/v2/people.json"))
    api.send("GET", api.url("/v2/people.json"))
    assert state["calls"].count("/oauth/token") == 1
    time.sleep(1.1)
    api.send("GET", api.url("/v2/people.json"))
    assert state["calls"].count("/oauth/token") == 2
    assert state["calls"].count("/v2/people.json") == 3


def test_refused_refresh_token_stops_with_a_clear_message_and_no_secret(serve, caplog):
    _, handler = oauth_server(refuse=True)
    api = serve(handler, **OAUTH)
    with caplog.at_level(logging.DEBUG), pytest.raises(AuthError) as info:
        api.send("GET", api.url("/v2/people.json"))
    message = str(info.value)
    assert "OAuth refresh refused" in message and "single-use" in message
    assert "shh-secret" not in message and "refresh-0" not in message
    assert "shh-secret" not in caplog.text and "refresh-0" not in caplog.text


def test_answers_without_budget_figures_are_not_paced_one_at_a_time(serve):
    from concurrent.futures import ThreadPoolExecutor

    def handler(request):
        time.sleep(0.05)
        return httpx.Response(200, json={})

    api = serve(handler)
    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        assert all(
            r.status_code == 200 for r in pool.map(lambda _: api.send("GET", api.url("/v2/me")), range(16))
        )
    assert time.monotonic() - started < 0.5  # 16 x 50 ms one at a time would be 0.8 s


def test_429_waits_for_retry_after_on_a_connection_without_budget_headers(serve):
    calls = []

    def handler(request):
        calls.append(time.monotonic())
        if len(calls) == 1:
            return httpx.Response(429, json={"error": "slow down"}, headers={"Retry-After": "0.3"})
        return httpx.Response(200, json={"tickets": []})

    connection = load_bundled("helpdesk")
    assert connection.rate_limit.remaining_header is None
    api = serve(handler, "helpdesk", api_token="t-123456")
    assert api.send("GET", api.url("/tickets")).status_code == 200
    assert calls[1] - calls[0] >= 0.3


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("2", 2.0), ("0.5", 0.5), ("-3", 0.0), ("inf", float("inf")), ("1e400", float("inf")), ("nan", None)]
    + [("soon", None), ("", None), ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0), ("Wed, 21 Oct 2015", None)],
)
def test_retry_after_values_of_every_shape_are_read_without_error(value, seconds):
    from connector.http import retry_after_seconds

    assert retry_after_seconds({"retry-after": value}) == seconds


def test_an_http_date_retry_after_is_honoured(serve):
    from email.utils import formatdate

    calls = []

    def handler(request):
        calls.append(time.monotonic())
        if len(calls) == 1:
            return httpx.Response(
                429, json={}, headers={"Retry-After": formatdate(time.time() + 2, usegmt=True)}
            )
        return httpx.Response(200, json={})

    api = serve(handler)
    assert api.send("GET", api.url("/v2/people.json")).status_code == 200
    assert calls[1] - calls[0] >= 0.9  # the date has whole seconds: between 1 and 2 s from now


def test_a_token_said_to_expire_in_zero_seconds_is_not_refreshed_before_every_request(serve):
    state, handler = oauth_server(expires_in=0)
    rotated = []
    api = serve(handler, on_rotate=rotated.append, **OAUTH)
    for _ in range(3):
        assert api.send("GET", api.url("/v2/people.json")).status_code == 200
    assert state["calls"].count("/oauth/token") == 1
    assert len(rotated) == 1


def test_a_header_spelled_in_another_case_does_not_ride_along_beside_the_credentials(serve):
    from connector.errors import InvalidRequestError

    seen = []

    def handler(request):
        seen.append([v for k, v in request.headers.multi_items() if k.lower() == "authorization"])
        return httpx.Response(200, json={})

    api = serve(handler)
    with pytest.raises(InvalidRequestError, match="carries the connection's credentials"):
        api.send("GET", api.url("/v2/people.json"), headers={"authorization": "Bearer someone-else"})
    api.send("GET", api.url("/v2/people.json"), headers={"X-Other": "1"})
    assert seen == [["Bearer key-123456"]]  # the refused request was never sent


@pytest.mark.parametrize("name", ["Content-Length", "transfer-encoding", "Host", "Connection"])
def test_headers_that_frame_the_message_cannot_be_set_by_a_template(serve, name):
    from connector.errors import InvalidRequestError

    api = serve(lambda request: httpx.Response(200, json={}))
    with pytest.raises(InvalidRequestError, match="written by the HTTP stack"):
        api.send("POST", api.url("/v2/notes.json"), headers={name: "5"}, json_body={"a": 1})
