"""The request pipeline.

For every /v2 request, in order: a fault is drawn (5xx, 429 burst and reset answer at once, so
no write is applied; slow waits first; truncate cuts the real answer); the bearer is checked
(401); the request's cost is charged to the minute's budget (429); the handler runs. Every /v2
answer carries ``x-ratelimit-endpoint-cost`` and ``x-ratelimit-remaining-minute``, and every
/v2 and /oauth request is journaled (codes and tokens redacted). ``/__sandbox/*`` control endpoints skip all of it.
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
import traceback
from typing import Any

from sandbox import control
from sandbox.budget import page_cost
from sandbox.journal import redact, redact_query
from sandbox.params import as_int, first, flat_query, parse_body, write_params
from sandbox.routes import build_router
from sandbox.routing import Call, split_path
from sandbox.state import State
from sandbox.wire import ApiError, Request, Response, json_response

_HTML = "text/html; charset=utf-8"
_FAULT_BODIES = {
    "500": (b'{"error":"Internal Server Error"}', "application/json; charset=utf-8"),
    "502": (b"<html><body><h1>502 Bad Gateway</h1></body></html>", _HTML),
    "503": (b"<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>", _HTML),
}
RATE_LIMITED = {"error": "API rate limit exceeded"}


# Request headers the journal leaves out: credentials (``bearer`` says whether one came).
UNJOURNALED_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})


class App:
    def __init__(self, state: State):
        self.state = state
        self.router = build_router()
        self._jitter = random.Random(state.options.seed)

    async def handle(self, request: Request) -> Response:
        path = request.path
        if path.startswith("/__sandbox"):
            return control.handle(self, request)
        if path.rstrip("/") in ("/oauth/token", "/oauth/token.json"):
            answer = self._oauth
        elif path.rstrip("/") == "/oauth/authorize":
            return self._authorize(request)  # (a browser's redirect: no API latency)
        elif path.startswith("/v2/") or path == "/v2":
            answer = self._api
        else:
            return json_response(404, {"error": "Not Found"})
        state = self.state
        state.in_flight += 1
        state.peak_in_flight = max(state.peak_in_flight, state.in_flight)
        try:
            delay = self._latency()
            if delay:
                await asyncio.sleep(delay / 2)
            response = await answer(request)
            if delay:
                await asyncio.sleep(delay / 2)
            return response
        finally:
            state.in_flight -= 1

    def _latency(self) -> float:
        """This answer's latency in real seconds: half is spent before the request is handled (it travels),
        half after (the answer travels). Only the answering connection waits."""
        options = self.state.options
        jitter = options.latency_jitter
        return options.latency + (self._jitter.uniform(0, jitter) if jitter else 0.0)

    def _begin(self, request: Request) -> tuple[dict, dict[str, Any]]:
        """Count the request and start its journal entry (query secrets redacted)."""
        self.state.requests += 1
        query = flat_query(request.query_string)
        safe_query, safe_raw = redact_query(query, request.query_string)
        entry: dict[str, Any] = {
            "time": time.time(),
            "window": self.state.budget.window,
            "method": request.method,
            "path": request.path,
            "query": safe_query,
            "query_string": safe_raw,
            "headers": {k: v for k, v in request.headers.items() if k not in UNJOURNALED_HEADERS},
            "body": None,
            "status": None,
            "cost": 0,
            "fault": None,
            "bearer": False,
            "auth": None,
            "token": None,
        }
        return query, entry

    # -- /v2 -------------------------------------------------------------------------------

    async def _api(self, request: Request) -> Response:
        state = self.state
        started = time.perf_counter()
        query, entry = self._begin(request)
        body: Any = None
        body_error: ApiError | None = None
        try:
            body = parse_body(request)
            entry["body"] = redact(body)
        except ApiError as error:
            body_error = error
            entry["body"] = {"_unparsed": request.body[:2000].decode("utf-8", "replace")}
        if state.journal.raw_bodies:
            entry["raw_body"] = request.body.decode("utf-8", "backslashreplace")

        matched = self.router.match(request.method, split_path(request.path))
        cost = 1
        if matched is not None and matched[0].kind == "list":
            page = as_int(first(query, "page"))
            cost = page_cost(page) if page and page > 0 else 1

        fault = state.faults.draw()
        entry["fault"] = fault
        response: Response
        if fault in _FAULT_BODIES:
            payload, ctype = _FAULT_BODIES[fault]
            response = Response(int(fault), payload, ctype)
        elif fault == "429":
            response = self._rate_limited()
        elif fault == "reset":
            response = Response(0, drop=True)
        else:
            if fault == "slow":
                await asyncio.sleep(state.faults.settings.delay)
            response = self._authorized(request, entry, matched, query, body, body_error, cost)
            if fault == "truncate":
                response.truncate = True

        if not response.drop:
            response.headers.append(("x-ratelimit-endpoint-cost", str(cost)))
            response.headers.append(("x-ratelimit-remaining-minute", str(state.budget.remaining)))
        entry["status"] = None if response.drop else response.status
        entry["duration_ms"] = round((time.perf_counter() - started) * 1000, 3)
        state.journal.record(entry)
        return response

    def _authorized(
        self,
        request: Request,
        entry: dict[str, Any],
        matched: Any,
        query: dict[str, list[str]],
        body: Any,
        body_error: ApiError | None,
        cost: int,
    ) -> Response:
        state = self.state
        auth = state.auth.check(request.headers.get("authorization"))
        entry["bearer"], entry["auth"], entry["token"] = auth.bearer, auth.kind, auth.token
        if not auth.ok:
            return json_response(
                401, {"error": auth.error}, [("www-authenticate", 'Bearer realm="salesloft"')]
            )
        if not state.budget.charge(cost):
            return self._rate_limited()
        entry["cost"] = cost
        if body_error is not None:
            return body_error.response()
        if matched is None:
            return json_response(404, {"error": "Not Found"})
        route, args = matched
        try:
            return route.handler(state, Call(request, args, query, body))
        except ApiError as error:
            return error.response()
        except Exception:  # a sandbox bug must look like a server error, and be visible
            traceback.print_exc(file=sys.stderr)
            return json_response(500, {"error": "Internal Server Error"})

    def _rate_limited(self) -> Response:
        headers = []
        if self.state.budget.retry_after:
            headers.append(("retry-after", self.state.budget.retry_after_header()))
        return json_response(429, RATE_LIMITED, headers)

    # -- /oauth/token -------------------------------------------------------------------------

    async def _oauth(self, request: Request) -> Response:
        state = self.state
        _, entry = self._begin(request)
        if request.method != "POST":
            response = json_response(404, {"error": "Not Found"})
        else:
            try:
                body = parse_body(request)
                entry["body"] = redact(body)
                params = write_params(request, body)
                status, payload = state.auth.token(params, request.headers.get("authorization"))
                response = json_response(status, payload, [("cache-control", "no-store")])
            except ApiError as error:
                entry["body"] = "[unparsed]"
                response = error.response()
        entry["status"] = response.status
        state.journal.record(entry)
        return response

    def _authorize(self, request: Request) -> Response:
        """The authorization page, signed in and approved at once: a redirect carrying a code."""
        query, entry = self._begin(request)
        if request.method != "GET":
            response = json_response(404, {"error": "Not Found"})
        else:
            status, location, error = self.state.auth.authorize(query)
            if location is not None:
                response = Response(
                    status, b"", None, [("location", location), ("cache-control", "no-store")]
                )
            else:
                response = json_response(status, error)
        entry["status"] = response.status
        self.state.journal.record(entry)
        return response

    # -- background work --------------------------------------------------------------------------

    async def run_background(self) -> None:
        """Bulk jobs progress on a timer, whether or not anyone polls them."""
        while True:
            await asyncio.sleep(0.02)
            try:
                self.state.bulk.advance()
            except Exception:
                traceback.print_exc(file=sys.stderr)
