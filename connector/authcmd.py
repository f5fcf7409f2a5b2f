"""``connector auth CONNECTION --config FILE``: the first OAuth login (authorization-code grant).

A refresh chain has to start somewhere: the user signs in once in a browser, the authorization server
redirects to a local address with a code, and the code is exchanged for the first refresh and access
tokens. They are stored exactly as rotated ones are (the config write-back and ``token_file``), so a
tap or target run afterwards simply refreshes. Works for any connection whose auth has an
``oauth2_refresh`` method with an ``authorize_url``.
"""

from __future__ import annotations

import html
import http.server
import queue
import secrets
import sys
import threading
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from connector.auth import Authenticator, OAuth2Refresh, setting_of
from connector.errors import AuthError
from connector.plugin import ConfigWriter
from connector.render import compile_text
from connector.secrets import REDACTOR
from connector.sender import Limits, httpx_client
from connector.templates import Connection
from connector.workspace import CommandError, load, read_config, with_defaults

DEFAULT_PORT = 8976
DEFAULT_TIMEOUT = 300.0
CALLBACK_PATH = "/callback"
_MAX_ERROR_TEXT = 200


@dataclass(frozen=True)
class Redirect:
    """What came back to the callback: a code, or the reason there is none."""

    code: str | None
    problem: str | None


def oauth_method(connection: Connection) -> OAuth2Refresh:
    """The connection's refresh-token method that can start a chain (it names an authorize_url)."""
    for method in connection.auth:
        if isinstance(method, OAuth2Refresh) and method.authorize_url:
            return method
    raise CommandError(
        f"{connection.name} has no oauth2_refresh auth with an authorize_url: "
        "its first tokens cannot be obtained by a browser login"
    )


def authorize_url(base: str, client_id: str, redirect_uri: str, state: str, scope: str | None) -> str:
    """The authorization endpoint with the code grant's parameters (RFC 6749 4.1.1) added to its own."""
    parts = urllib.parse.urlsplit(base)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    query += [
        ("client_id", client_id),
        ("redirect_uri", redirect_uri),
        ("response_type", "code"),
        ("state", state),
    ]
    if scope:
        query.append(("scope", scope))
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def _printable(text: str) -> str:
    """Text from the redirect, safe to show: printable, bounded."""
    clean = "".join(ch for ch in text if ch.isprintable())
    return clean[:_MAX_ERROR_TEXT] + ("..." if len(clean) > _MAX_ERROR_TEXT else "")


def read_redirect(query: str, state: str) -> Redirect:
    """Judge the callback's query: the expected state and one code, or a clear reason."""
    params = urllib.parse.parse_qs(query, keep_blank_values=True)
    got_state = params.get("state", [""])
    if len(got_state) != 1 or not secrets.compare_digest(got_state[0].encode(), state.encode()):
        return Redirect(
            None,
            "the redirect's state does not match the one this login sent (a stale or forged redirect): "
            "nothing was exchanged; run `connector auth` again",
        )
    if "error" in params:
        error = _printable(params["error"][0])
        description = _printable(params.get("error_description", [""])[0])
        detail = f"{error} ({description})" if description else error
        return Redirect(None, f"the authorization server refused the login: {detail}")
    codes = params.get("code", [])
    if len(codes) != 1 or not codes[0]:
        return Redirect(None, "the redirect carries no authorization code")
    return Redirect(codes[0], None)


_PAGE = (
    "<!doctype html><meta charset=utf-8><title>{title}</title>"
    "<p>{title}</p><p>{detail}</p><p>You can close this tab.</p>"
)


class _CallbackServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, state: str) -> None:
        super().__init__(("127.0.0.1", port), _CallbackHandler)
        self.state = state
        self.outcomes: queue.Queue[Redirect] = queue.Queue()


class _CallbackHandler(http.server.BaseHTTPRequestHandler):
    server: _CallbackServer
    timeout = 10  # an idle browser connection (a preconnect) does not hold a thread for ever

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's hook name
        path, _, query = self.path.partition("?")
        if path != CALLBACK_PATH:
            self._answer(404, "Not found", "This address only takes the login's redirect.")
            return
        outcome = read_redirect(query, self.server.state)
        if outcome.code is not None:
            self._answer(200, "Signed in", "The tokens are being stored; see the terminal.")
        else:
            self._answer(400, "Login failed", outcome.problem or "")
        self.server.outcomes.put(outcome)

    def _answer(self, status: int, title: str, detail: str) -> None:
        body = _PAGE.format(title=html.escape(title), detail=html.escape(detail)).encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Referrer-Policy", "no-referrer")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's signature
        """Silent: a request line carries the authorization code."""


def _render(source: str | None, config: dict[str, Any]) -> str:
    if not source:
        return ""
    value = compile_text(source).render({"config": config})
    return "" if value is None else str(value).strip()


def _required(method: OAuth2Refresh, field: str, config: dict[str, Any], config_path: str) -> str:
    source = getattr(method, field)
    value = _render(source, config)
    if not value:
        name = setting_of(source)
        what = f"the {name!r} setting" if name else f"the auth's {field}"
        raise CommandError(f"{config_path}: {what} is empty; the login needs it")
    if field.endswith("_url") and urllib.parse.urlsplit(value).scheme not in ("http", "https"):
        raise CommandError(f"{config_path}: {field} must be an http(s) URL (got {_printable(value)!r})")
    return value


def main(
    connection_spec: str, config_path: str, port: int | None = None, timeout: float | None = None
) -> int:
    port = DEFAULT_PORT if port is None else port
    timeout = DEFAULT_TIMEOUT if timeout is None else timeout
    connection = load(connection_spec)
    method = oauth_method(connection)
    if not 0 <= port <= 65535:
        raise CommandError(f"--port: must be in 0..65535 (got {port})")
    if not timeout > 0:
        raise CommandError(f"--timeout: must be > 0 seconds (got {timeout})")
    if not Path(config_path).is_file():
        raise CommandError(f"config file {config_path} does not exist (it needs the OAuth client's settings)")
    config = with_defaults(connection, read_config(config_path))
    REDACTOR.add(*(config.get(name) for name in connection.secret_settings))
    client_id = _required(method, "client_id", config, config_path)
    _required(method, "client_secret", config, config_path)
    _required(method, "token_url", config, config_path)
    base = _required(method, "authorize_url", config, config_path)
    state = secrets.token_urlsafe(32)
    try:
        server = _CallbackServer(port, state)
    except OSError as exc:
        raise CommandError(
            f"cannot listen on 127.0.0.1:{port} ({exc.strerror}): free it or pass another --port "
            "(the OAuth app's redirect URI must name the same port)"
        ) from None
    redirect_uri = f"http://127.0.0.1:{server.server_address[1]}{CALLBACK_PATH}"
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()
    try:
        url = authorize_url(base, client_id, redirect_uri, state, _render(method.scope, config) or None)
        print(f"Open this URL: {url}", flush=True)
        print(f"Waiting for the redirect to {redirect_uri} (up to {timeout:g} s)...", file=sys.stderr)
        outcome = _wait(server, timeout, redirect_uri)
    finally:
        server.shutdown()
        server.server_close()
    if outcome.code is None:
        raise CommandError(outcome.problem or "the login failed", 1)
    _store_tokens(connection, method, config, config_path, outcome.code, redirect_uri)
    return 0


def _wait(server: _CallbackServer, timeout: float, redirect_uri: str) -> Redirect:
    try:
        return server.outcomes.get(timeout=timeout)
    except queue.Empty:
        raise CommandError(
            f"no redirect reached {redirect_uri} within {timeout:g} s: open the URL above in a browser "
            "on this machine and sign in, or run again with a longer --timeout",
            1,
        ) from None


def _store_tokens(
    connection: Connection,
    method: OAuth2Refresh,
    config: dict[str, Any],
    config_path: str,
    code: str,
    redirect_uri: str,
) -> None:
    writer = ConfigWriter(config_path, mode=0o600)
    written: list[str] = []

    def on_tokens(update: dict[str, Any]) -> None:
        writer(update)
        written.extend(sorted(update))

    limits = Limits(timeout=60.0, connect_timeout=10.0)
    with httpx_client(limits, 1) as http:
        authenticator = Authenticator(method, config, http, on_rotate=on_tokens)
        try:
            authenticator.exchange_code(code, redirect_uri)
        except AuthError as exc:
            raise CommandError(str(exc), 1) from None
    where = f"{config_path} ({', '.join(written)})"
    if authenticator.token_file is not None:
        where += f" and token_file {authenticator.token_file.path}"
    print(f"Signed in to {connection.name}: tokens written to {where}", file=sys.stderr)
