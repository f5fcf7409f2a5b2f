"""The one HTTP client shared by streams and sinks: auth, rate budget, retries, origin checks.

Built on httpx (connection pooling, HTTP/2 where offered). Thread-safe: sinks send the requests of a
batch from a thread pool through the same client and the same budget.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from connector import __version__
from connector.errors import AuthError, HTTPStatusError, RequestFailed, UnsafeRequestError
from connector.render import Origin, dot_path
from connector.secrets import REDACTOR, safe_headers
from connector.templates import AuthMethod, Connection, RateLimit, Retry
from connector.wire import WireRequest, WireSender, prepare

logger = logging.getLogger("connector.http")

TRANSIENT_ERRORS = (
    httpx.TransportError,  # connect/read/write errors, timeouts, dropped connections, truncated bodies
)


@dataclass
class HttpStats:
    """What a run cost: shown in summaries and written by benchmarks."""

    requests: int = 0
    retries: int = 0
    throttled: int = 0  # 429 answers
    server_errors: int = 0
    transport_errors: int = 0
    cost: int = 0
    waited_seconds: float = 0.0
    min_remaining: int | None = None
    by_status: dict[int, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "retries": self.retries,
            "throttled": self.throttled,
            "server_errors": self.server_errors,
            "transport_errors": self.transport_errors,
            "cost": self.cost,
            "paced_wait_seconds": round(self.waited_seconds, 3),
            "min_remaining": self.min_remaining,
            "by_status": {str(k): v for k, v in sorted(self.by_status.items())},
        }


class RateBudget:
    """Paces requests from the API's cost and remaining-budget headers.

    Requests go out at full speed while the window has budget; when the next request would overdraw
    it, callers wait until the window is expected to refill. The window's start is learned by seeing
    the remaining budget jump up; until then the first request of the run is taken as its start.
    """

    def __init__(self, limit: RateLimit, stats: HttpStats) -> None:
        self.limit = limit
        self.stats = stats
        self._lock = threading.Lock()
        self._remaining: int | None = None
        self._last_seen: int | None = None
        self._window_start: float | None = None
        self._blocked_until = 0.0

    @property
    def enabled(self) -> bool:
        return bool(self.limit.remaining_header)

    def acquire(self, cost: int = 1) -> None:
        if not self.enabled:
            return
        while True:
            with self._lock:
                now = time.monotonic()
                if self._window_start is None:
                    self._window_start = now
                wait = self._blocked_until - now
                if wait <= 0:
                    if self._remaining is None or self._remaining - self.limit.reserve >= cost:
                        if self._remaining is not None:
                            self._remaining -= cost
                        return
                    wait = self._window_start + self.limit.window_seconds - now
                    if wait <= 0:
                        # The window should have refilled: let one request learn the new budget.
                        self._window_start = now
                        self._remaining = None
                        continue
                    self._blocked_until = now + wait
            self.stats.waited_seconds += wait
            time.sleep(wait + 0.005)

    def observe(self, headers: httpx.Headers, status: int) -> None:
        if not self.enabled:
            return
        remaining = _int_header(headers, self.limit.remaining_header)
        cost = _int_header(headers, self.limit.cost_header) if self.limit.cost_header else None
        with self._lock:
            now = time.monotonic()
            if cost is not None and status != 429:
                self.stats.cost += cost
            if remaining is None:
                return
            if self.stats.min_remaining is None or remaining < self.stats.min_remaining:
                self.stats.min_remaining = remaining
            if self._last_seen is not None and remaining > self._last_seen + (cost or 1):
                self._window_start = now  # the budget refilled: a new window began about now
                self._remaining = remaining
            elif self._remaining is None or remaining < self._remaining:
                self._remaining = remaining
            self._last_seen = remaining

    def throttled(self, retry_after: float | None) -> float:
        """A 429: block everyone until Retry-After, or until the window should refill."""
        with self._lock:
            now = time.monotonic()
            self._remaining = None  # once the wait is over, the next request learns the budget again
            if retry_after is not None:
                until = now + retry_after
            else:
                start = self._window_start if self._window_start is not None else now
                until = start + self.limit.window_seconds
                if until <= now:
                    until = now + self.limit.window_seconds
                    self._window_start = now
            self._blocked_until = max(self._blocked_until, until)
            return self._blocked_until - now


def _int_header(headers: httpx.Headers, name: str | None) -> int | None:
    if not name:
        return None
    value = headers.get(name)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _retry_after(headers: httpx.Headers) -> float | None:
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


class Authenticator:
    """Adds credentials to requests; refreshes OAuth2 tokens before expiry and on 401."""

    def __init__(
        self,
        method: AuthMethod | None,
        config: Mapping[str, Any],
        http: httpx.Client,
        on_rotate: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.method = method
        self.config = config
        self.http = http
        self.on_rotate = on_rotate
        self._lock = threading.Lock()
        self._access_token: str | None = None
        self._expires_at = 0.0
        self._refresh_token: str | None = None
        if method and method.type == "oauth2_refresh":
            self._refresh_token = config.get(method.refresh_token or "refresh_token")
            self._access_token = config.get(method.access_token) if method.access_token else None
            self._expires_at = time.monotonic() + 60 if self._access_token else 0.0

    @classmethod
    def choose(cls, methods: list[AuthMethod], config: Mapping[str, Any]) -> AuthMethod | None:
        for method in methods:
            if method.when is None or config.get(method.when):
                return method
        return None

    @property
    def refreshes(self) -> bool:
        return bool(self.method and self.method.type == "oauth2_refresh")

    def headers(self) -> dict[str, str]:
        method = self.method
        if method is None or method.type == "none":
            return {}
        if method.type == "bearer":
            return {"Authorization": f"Bearer {self.config.get(method.token or 'api_key', '')}"}
        if method.type == "header":
            return {method.header or "Authorization": str(self.config.get(method.token or "api_key", ""))}
        token = self.access_token()
        return {"Authorization": f"Bearer {token}"}

    def access_token(self) -> str:
        with self._lock:
            margin = self.method.refresh_margin_seconds if self.method else 0
            if self._access_token is None or time.monotonic() >= self._expires_at - margin:
                self._refresh_locked()
            return self._access_token or ""

    def invalidate(self, used_token: str | None) -> None:
        """A 401 with this token: refresh, unless another thread already did."""
        with self._lock:
            if used_token is None or used_token == f"Bearer {self._access_token}":
                self._access_token = None

    def _refresh_locked(self) -> None:
        method = self.method
        assert method is not None
        token_url = self.config.get(method.token_url or "token_url")
        if not token_url:
            raise AuthError(f"OAuth refresh needs the '{method.token_url}' setting")
        if not self._refresh_token:
            raise AuthError(f"OAuth refresh needs the '{method.refresh_token}' setting")
        form = {
            "grant_type": "refresh_token",
            "client_id": self.config.get(method.client_id or "client_id", ""),
            "client_secret": self.config.get(method.client_secret or "client_secret", ""),
            "refresh_token": self._refresh_token,
        }
        try:
            response = self.http.post(token_url, data=form, headers={"Accept": "application/json"})
        except httpx.TransportError as exc:
            raise AuthError(f"OAuth token endpoint {token_url} unreachable: {type(exc).__name__}") from exc
        if response.status_code != 200:
            detail = REDACTOR.redact(response.text[:300])
            raise AuthError(
                f"OAuth refresh refused by {token_url} ({response.status_code}): {detail}. "
                "The refresh token may have been used already (they are single-use) or revoked: "
                "authorize again and put the new refresh token in the config."
            )
        payload = orjson.loads(response.content)
        self._access_token = payload["access_token"]
        new_refresh = payload.get("refresh_token") or self._refresh_token
        REDACTOR.add(self._access_token, new_refresh)
        self._expires_at = time.monotonic() + float(payload.get("expires_in", 7200))
        rotated = new_refresh != self._refresh_token
        self._refresh_token = new_refresh
        logger.info("OAuth access token refreshed (expires in %ss)", payload.get("expires_in", "?"))
        if self.on_rotate:
            update = {method.access_token or "access_token": self._access_token}
            if rotated:
                update[method.refresh_token or "refresh_token"] = new_refresh
            self.on_rotate(update)


class ApiClient:
    """Sends rendered requests to one connection's origin, within its budget, with retries."""

    def __init__(
        self,
        connection: Connection,
        config: Mapping[str, Any],
        *,
        transport: httpx.BaseTransport | None = None,
        on_rotate: Callable[[dict[str, Any]], None] | None = None,
        max_connections: int = 16,
    ) -> None:
        self.connection = connection
        self.config = config
        base_url = str(connection.base_url.render({"config": config}))
        self.origin = Origin.parse(base_url)
        retry = connection.retry
        overrides = {
            k: config.get(k) for k in ("max_attempts", "request_timeout") if config.get(k) is not None
        }
        self.retry = Retry(
            max_attempts=int(overrides.get("max_attempts", retry.max_attempts)),
            backoff_seconds=retry.backoff_seconds,
            max_backoff_seconds=float(config.get("max_backoff_seconds") or retry.max_backoff_seconds),
            statuses=retry.statuses,
            timeout_seconds=float(overrides.get("request_timeout", retry.timeout_seconds)),
        )
        limit = connection.rate_limit
        self.rate_limit = RateLimit(
            budget=int(config.get("rate_budget") or limit.budget or 0) or None,
            window_seconds=float(config.get("rate_window_seconds") or limit.window_seconds),
            cost_header=limit.cost_header,
            remaining_header=limit.remaining_header,
            reserve=int(config.get("rate_reserve") or limit.reserve),
        )
        self.stats = HttpStats()
        self.budget = RateBudget(self.rate_limit, self.stats)
        self.http = httpx.Client(
            transport=transport,
            http2=transport is None,
            timeout=httpx.Timeout(self.retry.timeout_seconds, connect=min(10.0, self.retry.timeout_seconds)),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            follow_redirects=False,
        )
        # The lean sender unless a test transport is given or the user asks for httpx's stack (HTTP/2).
        use_wire = transport is None and str(config.get("http_transport") or "wire") == "wire"
        self.wire = (
            WireSender(self.retry.timeout_seconds, min(10.0, self.retry.timeout_seconds))
            if use_wire
            else None
        )
        self._wire_headers = {"Accept-Encoding": "gzip", "User-Agent": f"declarative-connector/{__version__}"}
        REDACTOR.add(*(config.get(name) for name in connection.secret_settings))
        self.auth = Authenticator(Authenticator.choose(connection.auth, config), config, self.http, on_rotate)
        static_headers = {"Accept": "application/json"}
        if config.get("user_agent"):
            static_headers["User-Agent"] = str(config["user_agent"])
        static_headers.update({k: str(v.render({"config": config})) for k, v in connection.headers.items()})
        self.static_headers = static_headers
        self._error_getters = [dot_path(p) for p in connection.error_paths]

    def close(self) -> None:
        self.http.close()
        if self.wire:
            self.wire.close()

    def visible_headers(self, headers: Mapping[str, str] | None = None) -> dict[str, str]:
        """The headers a request carries, as a user may see them: credentials masked."""
        names = {"Authorization": "***"} if self.auth.method and self.auth.method.type != "none" else {}
        if self.auth.method and self.auth.method.type == "header":
            names = {self.auth.method.header or "Authorization": "***"}
        return {**safe_headers({**self.static_headers, **(headers or {})}.items()), **names}

    def url(self, path: str) -> str:
        return self.origin.join(path)

    def send(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        json_body: Any = None,
        form_body: Mapping[str, Any] | None = None,
        content: bytes | None = None,
        cost: int = 1,
    ) -> httpx.Response:
        """Send one request, retrying transient failures; return the final response (any status)."""
        if not self.origin.same_origin(url):
            raise UnsafeRequestError(f"refusing to send a request to {url!r}: not on {self.origin.base}")
        if json_body is not None and content is None:
            content = orjson.dumps(json_body, option=orjson.OPT_NON_STR_KEYS)
            headers = {**(headers or {}), "Content-Type": "application/json"}
        attempt = 0
        refreshed = False
        while True:
            attempt += 1
            self.budget.acquire(cost)
            auth_headers = self.auth.headers()
            request = self._build(
                method,
                url,
                params,
                {**self.static_headers, **(headers or {}), **auth_headers},
                content,
                form_body,
            )
            self.stats.requests += 1
            try:
                response = self._send_following(request)
                response.read()
            except TRANSIENT_ERRORS as exc:
                self.stats.transport_errors += 1
                if attempt >= self.retry.max_attempts:
                    raise RequestFailed(
                        f"{method} {request.url.path}: {type(exc).__name__} on all {attempt} attempts: {exc}"
                    ) from exc
                self._backoff(attempt, None, f"{method} {request.url.path}: {type(exc).__name__}")
                continue
            status = response.status_code
            self.stats.by_status[status] = self.stats.by_status.get(status, 0) + 1
            self.budget.observe(response.headers, status)
            if status == 401 and self.auth.refreshes and not refreshed:
                refreshed = True
                self.auth.invalidate(auth_headers.get("Authorization"))
                continue
            if status in self.retry.statuses and attempt < self.retry.max_attempts:
                if status == 429:
                    self.stats.throttled += 1
                    wait = self.budget.throttled(_retry_after(response.headers))
                    logger.warning(
                        "429 from %s %s: waiting %.2fs for the rate budget", method, request.url.path, wait
                    )
                    self.stats.retries += 1
                    continue
                self.stats.server_errors += 1
                self._backoff(
                    attempt, _retry_after(response.headers), f"{method} {request.url.path} -> {status}"
                )
                continue
            return response

    def _send_following(self, request: httpx.Request) -> httpx.Response:
        """Follow redirects on the same origin only; never carry credentials elsewhere."""
        for _ in range(5):
            response = self.wire.send(request) if self.wire else self.http.send(request, stream=True)
            if not response.is_redirect:
                return response
            location = response.headers.get("location", "")
            response.close()
            target = request.url.join(location)
            if not self.origin.same_origin(str(target)):
                raise UnsafeRequestError(
                    f"{request.method} {request.url.path} redirected to another origin "
                    f"({target.scheme}://{target.host}); not followed, credentials not sent"
                )
            request = self._build(
                request.method if response.status_code in (307, 308) else "GET",
                str(target),
                None,
                request.headers,
                request.content if response.status_code in (307, 308) else None,
                None,
            )
        raise UnsafeRequestError(f"too many redirects from {request.url.path}")

    def _build(
        self,
        method: str,
        url: str,
        params: Mapping[str, Any] | None,
        headers: Mapping[str, str],
        content: bytes | None,
        form_body: Mapping[str, Any] | None,
    ) -> httpx.Request | WireRequest:
        if self.wire is None:
            return self.http.build_request(
                method, url, params=params, headers=headers, content=content, data=form_body
            )
        return prepare(method, url, params, {**self._wire_headers, **headers}, content, form_body)

    def _backoff(self, attempt: int, retry_after: float | None, what: str) -> None:
        self.stats.retries += 1
        if retry_after is not None:
            delay = min(retry_after, self.retry.max_backoff_seconds)
        else:
            cap = min(self.retry.max_backoff_seconds, self.retry.backoff_seconds * (2 ** (attempt - 1)))
            delay = random.uniform(cap / 2, cap)
        logger.warning(
            "retrying %s in %.2fs (attempt %d of %d)", what, delay, attempt + 1, self.retry.max_attempts
        )
        self.stats.waited_seconds += delay
        time.sleep(delay)

    def error_message(self, response: httpx.Response) -> str:
        """The API's own words for an error, flattened to one line."""
        try:
            payload = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            text = response.text.strip()
            return REDACTOR.redact(text[:500]) or response.reason_phrase
        for getter in self._error_getters:
            found = getter(payload)
            if found:
                return REDACTOR.redact(_flatten_error(found))
        return REDACTOR.redact(orjson.dumps(payload).decode()[:500])

    def raise_for_status(self, response: httpx.Response, accept: frozenset[int] | None = None) -> None:
        ok = response.status_code in accept if accept else response.is_success
        if not ok:
            raise HTTPStatusError(
                response.status_code,
                self.error_message(response),
                response.request.method,
                response.request.url.path,
            )


def _flatten_error(value: Any) -> str:
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_flatten_error(v)}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(_flatten_error(v) for v in value)
    return str(value)
