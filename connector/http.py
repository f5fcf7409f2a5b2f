"""The one HTTP client shared by streams and sinks: auth, rate budget, retries, origin checks.

Requests go out through a ``Sender`` (``connector/sender.py``: httpx's stack by default, the lean wire on
request), which checks them and bounds each attempt. Thread-safe: sinks send the requests of a batch
from a thread pool through the same client and the same budget.
"""

from __future__ import annotations

import email.utils
import logging
import math
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from connector import __version__
from connector.auth import Authenticator, choose
from connector.bodies import encode_body
from connector.errors import (
    ConnectorError,
    HTTPStatusError,
    InvalidRequestError,
    RequestFailed,
    RunStopped,
    UnsafeRequestError,
)
from connector.render import CONDITION_ENV, Origin, dot_path
from connector.secrets import REDACTOR, safe_headers
from connector.sender import (
    DEFAULT_MAX_RESPONSE_BYTES,
    HttpxSender,
    Limits,
    Request,
    Response,
    ResponseHeaders,
    Sender,
    build_request,
    check_headers,
    header_problem,
    httpx_client,
)
from connector.serverclock import ServerClock
from connector.templates import Connection, RateLimit, Retry
from connector.throttle import Spacing
from connector.wire import NoResponse, WireSender, refuse_proxied

logger = logging.getLogger("connector.http")

TRANSIENT_ERRORS = (
    httpx.TransportError,  # connect/read/write errors, timeouts, dropped connections, truncated bodies
)
# Failures before the request could reach the API: it cannot have been applied.
NOT_SENT_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
UNANSWERED = "connector.unanswered_attempts"
DEFAULT_MAX_RETRY_AFTER = 3600.0  # a 429 asking to wait longer stops the run: an hour's sleep is a stuck run


def unanswered_attempts(response: Response) -> int:
    """Earlier attempts of this request that got no answer (timeout, dropped or cut): the API may have applied them."""
    return int(response.extensions.get(UNANSWERED, 0))


@dataclass
class HttpStats:
    """What a run cost: shown in summaries and written by benchmarks. Updated from several threads."""

    requests: int = 0
    retries: int = 0
    throttled: int = 0  # 429 answers
    server_errors: int = 0
    transport_errors: int = 0
    cost: int = 0
    waited_seconds: float = 0.0  # wall-clock time the rate budget held requests back
    backoff_seconds: float = 0.0  # time requests slept before a retry (summed over requests)
    min_remaining: int | None = None
    by_status: dict[int, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, name: str, amount: float = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + amount)

    def answered(self, status: int) -> None:
        with self._lock:
            self.by_status[status] = self.by_status.get(status, 0) + 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "retries": self.retries,
            "throttled": self.throttled,
            "server_errors": self.server_errors,
            "transport_errors": self.transport_errors,
            "cost": self.cost,
            "paced_wait_seconds": round(self.waited_seconds, 3),
            "backoff_seconds": round(self.backoff_seconds, 3),
            "min_remaining": self.min_remaining,
            "by_status": {str(k): v for k, v in sorted(self.by_status.items())},
        }


@dataclass
class Ticket:
    """One request's claim on the budget: its cost, the window it was sent in, and its place in the run."""

    cost: int
    window: int
    seq: int = 0
    open: bool = True


class RateBudget:
    """Paces requests from the API's cost and remaining-budget headers, for all threads of a run together.

    Each answer says what is left of the API's window. Requests still in flight are not in that figure yet,
    so what may be spent now is the lowest figure seen in the window minus the cost in flight; once that is
    spent, callers wait for the window to end. A new window shows as a request reporting more left than one
    sent before it did, half a window or more after the last one began (threads send and read out of order:
    a stale higher figure must not pass for a refill). After a 429 or a wait for the window to end, one
    request probes the budget before the others follow.

    The API sends no reset time, so windows are counted from moments known to be at or after the start of
    the API's current one: the first answer's arrival (the API's window that charged it had begun by
    then), a refill's arrival, the probe sent once the previous window ended. Counted a whole window from
    such a moment, a window never ends before the API's; it can end later by the answer's latency only.
    """

    def __init__(self, limit: RateLimit, stats: HttpStats) -> None:
        self.limit = limit
        self.stats = stats
        self._cond = threading.Condition()
        self._window = 0  # this client's count of the API's windows
        self._floor: int | None = None  # lowest remaining reported in this window; None: unknown, probe it
        self._floor_seq = 0  # the request that reported it
        self._seq = 0
        self._window_start = 0.0
        self._window_end: float | None = None
        self._blocked_until = 0.0
        self._in_flight = 0  # cost of requests sent and not answered
        self._in_flight_here = 0  # ... of those, sent in this window
        self._peak_in_flight = 1
        self._unmetered = False  # the last answer carried no budget figure: nothing to pace by
        self._waiting = 0
        self._wait_started = 0.0
        self._anchored = False  # the first window counted from an answer
        self._stopped: str | None = None  # why the run stops: every wait ends at once

    def stop(self, reason: str) -> None:
        """Wake every request waiting for the budget; they and later ones raise ``RunStopped``."""
        with self._cond:
            self._stopped = reason
            self._cond.notify_all()

    def _check_stopped(self) -> None:
        if self._stopped is not None:
            raise RunStopped(self._stopped)

    @property
    def enabled(self) -> bool:
        return bool(self.limit.remaining_header)

    @property
    def _window_length(self) -> float:
        """The window as this client counts it, from a moment at or after the API's window began (an answer's
        arrival, or the probe sent once the last one ended): by its end the API's has ended too."""
        return self.limit.window_seconds + 0.005

    def acquire(self, cost: int = 1) -> Ticket:
        """Wait until the budget allows a request of this cost."""
        if not self.enabled:  # nothing to pace by, but a 429's wait still holds
            with self._cond:
                if self._blocked_until > time.monotonic():
                    self._start_waiting(time.monotonic())
                    try:
                        while (wait := self._blocked_until - time.monotonic()) > 0:
                            self._check_stopped()
                            self._cond.wait(wait)
                        self._check_stopped()
                    finally:
                        self._stop_waiting()
            return Ticket(cost, 0, open=False)
        with self._cond:
            waiting = False
            try:
                while True:
                    self._check_stopped()
                    now = time.monotonic()
                    if self._window_end is None:
                        self._window_start, self._window_end = now, now + self._window_length
                    wait = self._blocked_until - now
                    if wait <= 0:
                        if self._floor is None:
                            if self._in_flight_here == 0 or self._unmetered:
                                break  # the probe of a window whose budget is not known yet
                            wait = self.limit.window_seconds  # woken by the probe's answer
                        elif self._floor - self._in_flight - self.limit.reserve >= cost:
                            break
                        elif self._window_end <= now:
                            self._new_window(now, None)
                            continue
                        else:
                            wait = self._window_end - now
                    if not waiting:
                        waiting = True
                        self._start_waiting(now)
                    self._cond.wait(wait)
            finally:
                if waiting:
                    self._stop_waiting()
            self._in_flight += cost
            self._in_flight_here += cost
            self._peak_in_flight = max(self._peak_in_flight, self._in_flight)
            self._seq += 1
            return Ticket(cost, self._window, self._seq)

    def _start_waiting(self, now: float) -> None:
        if self._waiting == 0:
            self._wait_started = now
        self._waiting += 1

    def _stop_waiting(self) -> None:
        self._waiting -= 1
        if self._waiting == 0:
            self.stats.add("waited_seconds", time.monotonic() - self._wait_started)

    def _new_window(self, now: float, remaining: int | None, seq: int = 0) -> None:
        self._window += 1
        self._floor = remaining
        self._floor_seq = seq
        self._window_start, self._window_end = now, now + self._window_length
        self._in_flight_here = 0

    def _close(self, ticket: Ticket) -> None:
        if ticket.open:
            ticket.open = False
            self._in_flight -= ticket.cost
            if ticket.window == self._window:
                self._in_flight_here -= ticket.cost

    def release(self, ticket: Ticket) -> None:
        """The request got no answer (or was never sent)."""
        if not ticket.open:
            return
        with self._cond:
            self._close(ticket)
            self._cond.notify_all()

    def observe(
        self, headers: ResponseHeaders | httpx.Headers, status: int, ticket: Ticket | None = None
    ) -> None:
        if not self.enabled:
            return
        remaining = _int_header(headers, self.limit.remaining_header)
        cost = _int_header(headers, self.limit.cost_header) if self.limit.cost_header else None
        with self._cond:
            if ticket is not None:
                self._close(ticket)
                if not self._anchored and ticket.window == 0 and self._window == 0:
                    # The first window began with the first request sent, which may be before the API's window
                    # that charged it began; its answer arrived after: count from there.
                    self._anchored = True
                    now = time.monotonic()
                    self._window_start, self._window_end = now, now + self._window_length
            probing = self._floor is None
            try:
                self._learn(remaining, cost, status, ticket)
            finally:
                # Wake the waiters only when one of them may go on (or must re-plan after a probe's answer):
                # waking them all on every answer while the window is spent costs CPU for nothing.
                if (
                    probing
                    or self._unmetered
                    or self._floor is None
                    or self._floor - self._in_flight - self.limit.reserve > 0
                ):
                    self._cond.notify_all()

    def _learn(self, remaining: int | None, cost: int | None, status: int, ticket: Ticket | None) -> None:
        """Fold one answer's budget figures into what this client knows (called under the lock)."""
        if cost is not None and status != 429:
            self.stats.cost += cost
        self._unmetered = remaining is None and status != 429
        if remaining is None:
            return
        if self.stats.min_remaining is None or remaining < self.stats.min_remaining:
            self.stats.min_remaining = remaining
        spent = cost if cost is not None else (ticket.cost if ticket else 1)
        seq = ticket.seq if ticket is not None else self._seq + 1
        if ticket is not None and ticket.window != self._window:
            # Sent before the window this client now counts in: it may have been charged to this one.
            if self._floor is not None and status != 429:
                self._floor -= spent
        elif self._floor is None:
            self._floor, self._floor_seq = remaining, seq
        elif (
            seq > self._floor_seq
            and remaining > self._floor + self._peak_in_flight + spent
            and time.monotonic() - self._window_start >= self.limit.window_seconds / 2
        ):
            self._new_window(time.monotonic(), remaining, seq)  # the budget refilled
        elif remaining < self._floor:
            self._floor, self._floor_seq = remaining, seq
        elif seq > self._floor_seq:
            # Sent later, yet reporting more left: a refill too early in the window to trust. Spend from
            # what is known instead, or the higher figures would never lower it.
            self._floor -= spent

    def throttled(self, retry_after: float | None) -> float:
        """A 429: block everyone until Retry-After, or until the window should end; then probe again."""
        with self._cond:
            now = time.monotonic()
            if retry_after is not None:
                until = now + retry_after
            elif self._window_end is not None and self._window_end > now:
                until = self._window_end
            else:
                until = now + self.limit.window_seconds
            self._blocked_until = max(self._blocked_until, until)
            self._new_window(self._blocked_until, None)
            self._cond.notify_all()
            return self._blocked_until - now


def _int_header(headers: ResponseHeaders | httpx.Headers, name: str | None) -> int | None:
    if not name:
        return None
    value = headers.get(name)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def retry_after_seconds(headers: Any) -> float | None:
    """Seconds a Retry-After asks for: a number (``inf`` or ``1e400``: forever; negative: none), or an HTTP
    date; None when absent or unreadable."""
    value = headers.get("retry-after")
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None
        return max(0.0, when.timestamp() - time.time())
    if math.isnan(seconds):
        return None
    return max(0.0, seconds)


def configured_retry(retry: Retry, config: Mapping[str, Any]) -> Retry:
    """A connection's retry policy with the user's settings (``max_attempts``, ``max_backoff_seconds``,
    ``request_timeout``) laid over it."""
    return Retry(
        max_attempts=int(config.get("max_attempts") or retry.max_attempts),
        backoff_seconds=retry.backoff_seconds,
        max_backoff_seconds=float(config.get("max_backoff_seconds") or retry.max_backoff_seconds),
        statuses=retry.statuses,
        timeout_seconds=float(config.get("request_timeout") or retry.timeout_seconds),
    )


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
        self.retry = configured_retry(connection.retry, config)
        limit = connection.rate_limit
        self.rate_limit = RateLimit(
            budget=int(config.get("rate_budget") or limit.budget or 0) or None,
            window_seconds=float(config.get("rate_window_seconds") or limit.window_seconds),
            cost_header=limit.cost_header,
            remaining_header=limit.remaining_header,
            reserve=int(config.get("rate_reserve") or limit.reserve),
        )
        self.max_retry_after = float(config.get("max_retry_after_seconds") or DEFAULT_MAX_RETRY_AFTER)
        self.stats = HttpStats()
        self.budget = RateBudget(self.rate_limit, self.stats)
        self.clock = ServerClock()
        self._stop = threading.Event()
        self._stop_reason = ""
        self.limits = Limits(
            timeout=self.retry.timeout_seconds,
            connect_timeout=min(10.0, self.retry.timeout_seconds),
            max_response_bytes=int(config.get("max_response_bytes") or DEFAULT_MAX_RESPONSE_BYTES),
        )
        # httpx's client: the default sender's, and the OAuth token endpoint's whichever sender runs.
        self.http = httpx_client(self.limits, max_connections, transport)
        self.sender: Sender = self._sender(transport, str(config.get("http_transport") or "httpx"))
        self._default_headers = {
            "Accept-Encoding": "gzip, deflate",
            "User-Agent": f"declarative-connector/{__version__}",
        }
        REDACTOR.add(*(config.get(name) for name in connection.secret_settings))
        self.auth = Authenticator(choose(connection.auth, config), config, self.http, self.origin, on_rotate)
        static_headers = {"Accept": "application/json"}
        if config.get("user_agent"):
            static_headers["User-Agent"] = str(config["user_agent"])
        static_headers.update({k: str(v.render({"config": config})) for k, v in connection.headers.items()})
        check_headers(static_headers)  # a config value with a line break stops the run before any request
        if self.auth.method is not None and not self.auth.renews:
            for name, value in self.auth.apply()[0].items():
                problem = header_problem(name, value)
                if problem is not None:
                    raise ConnectorError(
                        f"a credential setting cannot be sent: its header {name!r} {problem} "
                        "(a line break pasted with the key?); refused before sending"
                    )
        self.static_headers = static_headers
        self._error_getters = [_error_getter(p) for p in connection.error_paths]

    def _sender(self, transport: httpx.BaseTransport | None, name: str) -> Sender:
        """httpx's stack by default (and always with a test transport); the lean one on request."""
        if name == "wire" and transport is None:
            refuse_proxied(self.origin.base)
            return WireSender(self.limits)
        return HttpxSender(self.http, self.limits)

    def close(self) -> None:
        self.sender.close()
        self.http.close()

    def stop(self, reason: str) -> None:
        """End every wait of this client at once (backoff, rate budget, Retry-After, job polling): they
        and every later request raise ``RunStopped``. Requests already on the wire finish."""
        self._stop_reason = reason
        self._stop.set()
        self.budget.stop(reason)

    def wait(self, seconds: float) -> None:
        """Sleep unless the run is stopped, or stops meanwhile."""
        if self._stop.wait(seconds) or self._stop.is_set():
            raise RunStopped(self._stop_reason)

    def visible_headers(self, headers: Mapping[str, str] | None = None) -> dict[str, str]:
        """The headers a request carries, as a user may see them: credentials masked."""
        names = dict.fromkeys(self.auth.header_names, "***")
        return {**safe_headers({**self.static_headers, **(headers or {})}.items()), **names}

    def url(self, path: str) -> str:
        return self.origin.join(path)

    def _check_not_credentials(self, headers: Mapping[str, str]) -> None:
        """A template's (or a record's) header may not carry the connection's credential header: in any
        case spelling it would be sent beside the real one, or replace it."""
        taken = {name.lower() for name in self.auth.header_names}
        for name in headers:
            if name.lower() in taken:
                raise InvalidRequestError(
                    f"header {name!r} carries the connection's credentials; a template or record cannot set it: "
                    "refused before sending"
                )

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
        pace: Spacing | None = None,
    ) -> Response:
        """Send one request, retrying transient failures; return the final response (any status)."""
        if not self.origin.same_origin(url):
            raise UnsafeRequestError(f"refusing to send a request to {url!r}: not on {self.origin.base}")
        if headers:
            self._check_not_credentials(headers)
        content, headers = encode_body(json_body, form_body, content, headers)
        attempt = 0
        refreshed_for: set[str | None] = set()  # tokens a 401 was answered to: refresh once for each
        unanswered = 0
        fresh_retry = False
        while True:
            attempt += 1
            if self._stop.is_set():
                raise RunStopped(self._stop_reason)
            if pace is not None:
                pace.wait(self.wait)
            ticket = self.budget.acquire(cost)
            try:
                auth_headers, auth_params = self.auth.apply()
                used = self.auth.current()
                request = self._build(
                    method,
                    url,
                    {**(params or {}), **auth_params} if auth_params else params,
                    {**self.static_headers, **(headers or {}), **auth_headers},
                    content,
                    None,
                )
                self.stats.add("requests")
                response = self._send_following(request)
            except TRANSIENT_ERRORS as exc:
                self.budget.release(ticket)
                self.stats.add("transport_errors")
                if not isinstance(exc, NOT_SENT_ERRORS):
                    unanswered += 1
                if attempt >= self.retry.max_attempts:
                    raise RequestFailed(
                        f"{method} {request.url.path}: {type(exc).__name__} on all {attempt} attempts: {exc}"
                    ) from exc
                if isinstance(exc, NoResponse) and not fresh_retry:
                    # Most often a kept-alive connection the server had closed: try a fresh one at once.
                    fresh_retry = True
                    self.stats.add("retries")
                    continue
                self._backoff(attempt, None, f"{method} {request.url.path}: {type(exc).__name__}")
                continue
            except BaseException:
                self.budget.release(ticket)
                raise
            status = response.status_code
            self.stats.answered(status)
            self.clock.observe(response.headers.get("date"))
            self.budget.observe(response.headers, status, ticket)
            if (
                status == 401
                and self.auth.renews
                and used not in refreshed_for
                and (not refreshed_for or attempt < self.retry.max_attempts)
            ):
                # Expired or revoked: refresh and try again, once per token (it may expire again in a 429 wait).
                refreshed_for.add(used)
                self.auth.invalidate(used)
                continue
            if status in self.retry.statuses and attempt < self.retry.max_attempts:
                if status == 429:
                    self.stats.add("throttled")
                    retry_after = retry_after_seconds(response.headers)
                    if retry_after is not None and retry_after > self.max_retry_after:
                        raise RunStopped(
                            f"{method} {request.url.path} -> 429 with Retry-After: "
                            f"{response.headers.get('retry-after')[:60]!r}, longer than max_retry_after_seconds "
                            f"({self.max_retry_after:g}s): stopping rather than waiting; run again later"
                        )
                    wait = self.budget.throttled(retry_after)
                    logger.warning(
                        "429 from %s %s: waiting %.2fs for the rate budget", method, request.url.path, wait
                    )
                    self.stats.add("retries")
                    continue
                self.stats.add("server_errors")
                self._backoff(
                    attempt, retry_after_seconds(response.headers), f"{method} {request.url.path} -> {status}"
                )
                continue
            if unanswered:
                response.extensions[UNANSWERED] = unanswered
            return response

    def _send_following(self, request: Request) -> Response:
        """Follow redirects on the same origin only; never carry credentials elsewhere."""
        for _ in range(5):
            response = self.sender.send(request)
            if not response.is_redirect:
                return response
            location = response.headers.get("location", "")
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
    ) -> Request:
        """The request as a sender sends it, checked so that no value can inject headers or requests."""
        return build_request(method, url, params, {**self._default_headers, **headers}, content, form_body)

    def pause(self, attempt: int, what: str) -> None:
        """Back off before trying again something a response rule says to retry."""
        self._backoff(attempt, None, what)

    def _backoff(self, attempt: int, retry_after: float | None, what: str) -> None:
        self.stats.add("retries")
        if retry_after is not None:
            delay = min(retry_after, self.retry.max_backoff_seconds)
        else:
            cap = min(self.retry.max_backoff_seconds, self.retry.backoff_seconds * (2 ** (attempt - 1)))
            delay = random.uniform(cap / 2, cap)
        logger.warning(
            "retrying %s in %.2fs (attempt %d of %d)", what, delay, attempt + 1, self.retry.max_attempts
        )
        self.stats.add("backoff_seconds", delay)
        self.wait(delay)

    def error_message(self, response: Response) -> str:
        """The API's own words for an error, flattened to one line (and whether an earlier attempt may have landed)."""
        message = self._api_message(response)
        if unanswered_attempts(response) and not response.is_success:
            message += " (an earlier attempt of this request got no answer: the API may have applied it)"
        return message

    def _api_message(self, response: Response) -> str:
        try:
            payload = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            text = response.text.strip()
            return REDACTOR.shorten(text, 500) or response.reason_phrase
        for getter in self._error_getters:
            found = getter(payload)
            if found:
                return REDACTOR.redact(_flatten_error(found))
        return REDACTOR.shorten(orjson.dumps(payload).decode(), 500)

    def raise_for_status(self, response: Response, accept: frozenset[int] | None = None) -> None:
        ok = response.status_code in accept if accept else response.is_success
        if not ok:
            raise HTTPStatusError(
                response.status_code,
                self.error_message(response),
                response.request.method,
                response.request.url.path,
            )


def _error_getter(source: str) -> Callable[[Any], Any]:
    """A place of the error message in an error body: a dot path, or Jinja over ``response`` that composes
    one from several fields (``"{{ response.error.type }}: {{ response.error.message }}"``)."""
    if "{{" not in source and "{%" not in source:
        return dot_path(source)
    template = CONDITION_ENV.from_string(source)

    def compose(payload: Any) -> Any:
        try:
            text = template.render(response=payload).strip()
        except Exception:  # a body of another shape: try the next place
            return None
        return text if text.strip(" :;,-") else None

    return compose


def _flatten_error(value: Any) -> str:
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_flatten_error(v)}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(_flatten_error(v) for v in value)
    return str(value)
