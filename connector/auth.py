"""Authentication: one class per kind (its YAML fields and the credentials it puts on a request).

A connection lists methods in order; the first whose ``when`` condition holds for the config applies.
Every credential is Jinja over ``config`` (``token: "{{ config.api_key }}"``), like any other value.
Kinds that obtain a token (OAuth2 refresh and client credentials, session login) renew it before it
expires and once on a 401, under a lock shared by every thread of the run.
"""

from __future__ import annotations

import base64
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from typing import Annotated, Any, ClassVar, Literal

import httpx
import msgspec
import orjson

from connector.errors import AuthError
from connector.kinds import Model, describe
from connector.render import CompiledValue, Origin, compile_condition, compile_text, dot_path
from connector.secrets import REDACTOR
from connector.tokens import TokenFile, Tokens

logger = logging.getLogger("connector.auth")

_SETTING = re.compile(r"^\{\{\s*config\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}$")
_CONFIG_NAMES = re.compile(r"\bconfig\.([A-Za-z_][A-Za-z0-9_]*)")


def setting_of(source: str | None) -> str | None:
    """The setting a value names when it is exactly ``{{ config.NAME }}`` (rotated tokens go back there)."""
    match = _SETTING.match(source or "")
    return match[1] if match else None


class AuthBase(Model, tag_field="type", kw_only=True, frozen=True):
    when: (
        Annotated[
            str, describe("Jinja condition over config; the first method whose condition holds applies.")
        ]
        | None
    ) = None

    renews: ClassVar[bool] = False  # obtains tokens that expire: renewed before expiry and on a 401

    def settings_read(self) -> list[str]:
        """The settings ``when`` reads (what a user must set for this method)."""
        return _CONFIG_NAMES.findall(self.when or "")

    def credential_fields(self) -> list[str]:
        """Fields holding Jinja over config."""
        return []


class NoAuth(AuthBase, tag="none", kw_only=True, frozen=True):
    """No credentials."""


class Bearer(AuthBase, tag="bearer", kw_only=True, frozen=True):
    """A token in a header: ``Authorization: Bearer <token>`` (header and prefix can change)."""

    token: Annotated[str, describe("Jinja for the token, e.g. '{{ config.api_key }}'.")]
    header: Annotated[str, describe("Header carrying it.")] = "Authorization"
    prefix: Annotated[str, describe("Text before the token ('Bearer', 'token', 'Token'); '' for none.")] = (
        "Bearer"
    )

    def credential_fields(self) -> list[str]:
        return ["token"]


class ApiKey(AuthBase, tag="api_key", kw_only=True, frozen=True):
    """A key in a header (``X-Api-Key: <key>``) or in the query string (``?api_key=<key>``)."""

    name: Annotated[str, describe("Header or query parameter name.")]
    value: Annotated[str, describe("Jinja for the key, e.g. '{{ config.api_key }}'.")]
    in_: Annotated[Literal["header", "query"], describe("Where the key goes.")] = msgspec.field(
        default="header", name="in"
    )
    prefix: Annotated[str, describe("Text before the key in a header.")] = ""

    def credential_fields(self) -> list[str]:
        return ["value"]


class Basic(AuthBase, tag="basic", kw_only=True, frozen=True):
    """HTTP Basic: ``Authorization: Basic base64(username:password)`` (a secret key as username is common)."""

    username: Annotated[str, describe("Jinja for the user name.")]
    password: Annotated[str, describe("Jinja for the password ('' for none).")] = ""

    def credential_fields(self) -> list[str]:
        return ["username", "password"]


class OAuth2Refresh(AuthBase, tag="oauth2_refresh", kw_only=True, frozen=True):
    """OAuth2 refresh-token grant; rotated refresh tokens are written back to the setting they came from."""

    token_url: Annotated[str, describe("Jinja for the token endpoint.")]
    client_id: Annotated[str, describe("Jinja for the client ID.")]
    client_secret: Annotated[str, describe("Jinja for the client secret.")]
    refresh_token: Annotated[str, describe("'{{ config.NAME }}' of the setting holding the refresh token.")]
    access_token: (
        Annotated[str, describe("'{{ config.NAME }}' of a setting with a current access token (optional).")]
        | None
    ) = None
    refresh_margin_seconds: Annotated[float, describe("Refresh this long before expiry.", ge=0)] = 300.0
    authorize_url: (
        Annotated[
            str,
            describe(
                "Jinja for the authorization endpoint of the code grant; with it, `connector auth` obtains "
                "the first tokens through a browser login."
            ),
        ]
        | None
    ) = None
    scope: Annotated[str, describe("Jinja for the scope asked for at the authorization endpoint.")] | None = (
        None
    )

    renews = True

    def credential_fields(self) -> list[str]:
        return [
            "token_url",
            "client_id",
            "client_secret",
            "refresh_token",
            "access_token",
            "authorize_url",
            "scope",
        ]

    def __post_init__(self) -> None:
        for name in ("refresh_token", "access_token"):
            value = getattr(self, name)
            if value is not None and setting_of(value) is None:
                raise ValueError(
                    f"{name} must name a setting as '{{{{ config.NAME }}}}' (rotated tokens are written back to it)"
                )


class OAuth2ClientCredentials(AuthBase, tag="oauth2_client_credentials", kw_only=True, frozen=True):
    """OAuth2 client-credentials grant: a token from client ID and secret, renewed before expiry."""

    token_url: Annotated[str, describe("Jinja for the token endpoint.")]
    client_id: Annotated[str, describe("Jinja for the client ID.")]
    client_secret: Annotated[str, describe("Jinja for the client secret.")]
    scope: Annotated[str, describe("Jinja for the scope (optional).")] | None = None
    params: Annotated[dict[str, str], describe("Extra form fields of the token request (audience...).")] = {}
    credentials_in: Annotated[
        Literal["body", "basic"], describe("Client ID and secret in the form body, or as HTTP Basic.")
    ] = "body"
    refresh_margin_seconds: Annotated[float, describe("Renew this long before expiry.", ge=0)] = 60.0

    renews = True

    def credential_fields(self) -> list[str]:
        return ["token_url", "client_id", "client_secret", "scope"]


class SessionLogin(Model, kw_only=True, frozen=True):
    method: Literal["POST", "GET", "PUT"] = "POST"
    url: Annotated[str, describe("Path on the connection's base URL (or Jinja for an absolute URL).")] = (
        "/login"
    )
    body: Annotated[Any, describe("Body: a mapping whose strings are Jinja over config.")] = None
    body_format: Literal["json", "form"] = "json"
    headers: dict[str, str] = {}


class Session(AuthBase, tag="session", kw_only=True, frozen=True):
    """Log in with credentials for a session token; send it on every request; log in again when it expires."""

    login: Annotated[SessionLogin, describe("The login request.")]
    token: Annotated[str, describe("Dot path to the token in the login answer.")] = "token"
    expires_in: (
        Annotated[str, describe("Dot path to the token's lifetime in seconds in the login answer.")] | None
    ) = None
    ttl_seconds: Annotated[float, describe("Lifetime when the answer gives none.", gt=0)] = 3600.0
    header: Annotated[str, describe("Header carrying the token.")] = "Authorization"
    prefix: Annotated[str, describe("Text before the token ('Bearer', 'Session', '').")] = "Bearer"
    in_: Annotated[Literal["header", "query"], describe("Where the token goes.")] = msgspec.field(
        default="header", name="in"
    )
    param: Annotated[str, describe("Query parameter carrying the token when in: query.")] = "token"
    refresh_margin_seconds: Annotated[float, describe("Log in again this long before expiry.", ge=0)] = 30.0

    renews = True


Auth = NoAuth | Bearer | ApiKey | Basic | OAuth2Refresh | OAuth2ClientCredentials | Session


def choose(methods: list[AuthBase], config: Mapping[str, Any]) -> AuthBase | None:
    for method in methods:
        if method.when is None or compile_condition(method.when).render({"config": config}):
            return method
    return None


def _header_value(prefix: str, token: str) -> str:
    return f"{prefix} {token}" if prefix else token


class Authenticator:
    """Puts the chosen method's credentials on requests; renews expiring tokens (thread-safe)."""

    def __init__(
        self,
        method: AuthBase | None,
        config: Mapping[str, Any],
        http: httpx.Client,
        origin: Origin | None = None,
        on_rotate: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.method = method
        self.config = config
        self.http = http
        self.origin = origin
        self.on_rotate = on_rotate
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires_at = 0.0
        self._lifetime = 0.0
        self._refresh_token: str | None = None
        self.token_file: TokenFile | None = None
        self._static_headers: dict[str, str] = {}
        self._static_params: dict[str, str] = {}
        if isinstance(method, Bearer):
            self._static_headers = {method.header: _header_value(method.prefix, self._text(method.token))}
        elif isinstance(method, ApiKey):
            key = self._text(method.value)
            if method.in_ == "query":
                self._static_params = {method.name: key}
            else:
                self._static_headers = {method.name: _header_value(method.prefix, key)}
        elif isinstance(method, Basic):
            pair = f"{self._text(method.username)}:{self._text(method.password)}"
            encoded = base64.b64encode(pair.encode()).decode()
            REDACTOR.add(encoded)
            self._static_headers = {"Authorization": f"Basic {encoded}"}
        elif isinstance(method, OAuth2Refresh):
            self._refresh_token = self._text(method.refresh_token) or None
            self._token = (self._text(method.access_token) or None) if method.access_token else None
            self._lifetime = 60.0 if self._token else 0.0
            self._expires_at = time.monotonic() + self._lifetime
            if config.get("token_file"):
                self.token_file = TokenFile(str(config["token_file"]), self._refresh_token)
                current = self.token_file.current()
                if current is not None:
                    self._adopt(current)
                    logger.info(
                        "OAuth tokens taken from token_file %s (rotated by an earlier run)",
                        self.token_file.path,
                    )

    def _text(self, source: str | None) -> str:
        if source is None:
            return ""
        name = setting_of(source)
        if name is not None:  # a plain setting may be unset (another method applies then)
            value = self.config.get(name)
            return "" if value is None else str(value)
        value = compile_text(source).render({"config": self.config})
        return "" if value is None else str(value)

    @property
    def renews(self) -> bool:
        return bool(self.method and self.method.renews)

    @property
    def header_names(self) -> list[str]:
        """Headers that carry credentials (masked wherever requests are shown)."""
        method = self.method
        if isinstance(method, (Bearer, Session)) and getattr(method, "in_", "header") == "header":
            return [method.header]
        if isinstance(method, ApiKey):
            return [method.name] if method.in_ == "header" else []
        if isinstance(method, (Basic, OAuth2Refresh, OAuth2ClientCredentials)):
            return ["Authorization"]
        return []

    def apply(self) -> tuple[dict[str, str], dict[str, str]]:
        """(headers, query params) carrying the credentials of one request."""
        method = self.method
        if not self.renews:
            return self._static_headers, self._static_params
        token = self.access_token()
        if isinstance(method, Session):
            if method.in_ == "query":
                return {}, {method.param: token}
            return {method.header: _header_value(method.prefix, token)}, {}
        return {"Authorization": f"Bearer {token}"}, {}

    def current(self) -> str | None:
        """The token requests carry now (to tell, on a 401, whether another thread renewed it already)."""
        return self._token

    def access_token(self) -> str:
        with self._lock:
            if self._token is None or time.monotonic() >= self._expires_at - self._margin():
                self._renew_locked()
            return self._token or ""

    def invalidate(self, used_token: str | None) -> None:
        """A 401 with this token: renew, unless another thread already did."""
        with self._lock:
            if used_token is None or used_token == self._token:
                self._token = None

    def _margin(self) -> float:
        margin = getattr(self.method, "refresh_margin_seconds", 0.0)
        # Renew ahead of expiry, but never for most of a short token's life (each refresh may rotate).
        return min(margin, self._lifetime / 2)

    def _adopt(self, tokens: Tokens) -> None:
        """Take the tokens another run or process left in the token file."""
        REDACTOR.add(tokens.refresh_token, tokens.access_token)
        self._refresh_token = tokens.refresh_token or self._refresh_token
        left = tokens.expires_at - time.time()
        if tokens.access_token and left > 0:
            self._token, self._lifetime = tokens.access_token, left
            self._expires_at = time.monotonic() + left
        else:
            self._token, self._lifetime = None, 0.0

    def _renew_locked(self) -> None:
        if isinstance(self.method, OAuth2Refresh) and self.token_file is not None:
            with self.token_file.locked() as current:
                if (
                    current is not None
                    and current.refresh_token
                    and current.refresh_token != self._refresh_token
                ):
                    # Another run or process refreshed since this one read the file: its tokens are the live ones.
                    self._adopt(current)
                    if self._token and time.monotonic() < self._expires_at - self._margin():
                        return
                self._renew()
                self.token_file.save(Tokens(self._refresh_token, self._token, time.time() + self._lifetime))
            return
        self._renew()

    def _renew(self) -> None:
        method = self.method
        if isinstance(method, OAuth2Refresh):
            self._oauth_refresh(method)
        elif isinstance(method, OAuth2ClientCredentials):
            self._client_credentials(method)
        elif isinstance(method, Session):
            self._login(method)

    # -- token endpoints

    def _post_token(self, url: str, form: dict[str, str], auth: httpx.BasicAuth | None, what: str) -> dict:
        if not url:
            raise AuthError(f"{what} needs a token URL")
        try:
            headers = {"Accept": "application/json"}
            response = (
                self.http.post(url, data=form, auth=auth, headers=headers)
                if auth is not None
                else self.http.post(url, data=form, headers=headers)
            )
        except httpx.TransportError as exc:
            raise AuthError(f"{what}: token endpoint {url} unreachable: {type(exc).__name__}") from exc
        if response.status_code != 200:
            detail = REDACTOR.shorten(response.text, 300)
            raise AuthError(f"{what} refused by {url} ({response.status_code}): {detail}")
        return _json_object(response, what, url)

    def _oauth_refresh(self, method: OAuth2Refresh) -> None:
        token_url = self._text(method.token_url)
        if not self._refresh_token:
            raise AuthError(f"OAuth refresh needs the '{setting_of(method.refresh_token)}' setting")
        form = {
            "grant_type": "refresh_token",
            "client_id": self._text(method.client_id),
            "client_secret": self._text(method.client_secret),
            "refresh_token": self._refresh_token,
        }
        try:
            payload = self._post_token(token_url, form, None, "OAuth refresh")
        except AuthError as exc:
            if "refused" in str(exc):
                raise AuthError(
                    f"{exc}. The refresh token may have been used already (they are single-use) or revoked: "
                    "authorize again and put the new refresh token in the config."
                ) from None
            raise
        self._token = _token_from(payload, "access_token", "OAuth refresh")
        new_refresh = payload.get("refresh_token") or self._refresh_token
        REDACTOR.add(self._token, new_refresh)
        self._set_lifetime(payload.get("expires_in"), 7200.0)
        rotated = new_refresh != self._refresh_token
        self._refresh_token = new_refresh
        logger.info("OAuth access token refreshed (expires in %.0fs)", self._lifetime)
        self._hand_back(method, rotated)

    def _hand_back(self, method: OAuth2Refresh, rotated: bool) -> None:
        """Give the new tokens to ``on_rotate`` under the settings they came from (the config write-back)."""
        if not self.on_rotate:
            return
        update: dict[str, Any] = {}
        if method.access_token:
            update[setting_of(method.access_token) or "access_token"] = self._token
        if rotated:
            update[setting_of(method.refresh_token) or "refresh_token"] = self._refresh_token
        if update:
            self.on_rotate(update)

    def exchange_code(self, code: str, redirect_uri: str) -> None:
        """The authorization-code grant: the first tokens of a refresh chain, handed back and kept in the
        token file exactly like rotated ones, so the next run starts from them."""
        method = self.method
        if not isinstance(method, OAuth2Refresh):
            raise AuthError("an authorization code is exchanged only by an oauth2_refresh method")
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "client_id": self._text(method.client_id),
            "client_secret": self._text(method.client_secret),
        }
        REDACTOR.add(code)
        payload = self._post_token(self._text(method.token_url), form, None, "OAuth code exchange")
        with self._lock:
            self._token = _token_from(payload, "access_token", "OAuth code exchange")
            refresh = payload.get("refresh_token")
            if not refresh or not isinstance(refresh, str):
                raise AuthError(
                    "OAuth code exchange: the answer has no refresh_token, so later runs could not renew access"
                )
            REDACTOR.add(self._token, refresh)
            self._set_lifetime(payload.get("expires_in"), 7200.0)
            self._refresh_token = refresh
            self._hand_back(method, rotated=True)
            if self.config.get("token_file"):  # a new chain: its origin is the refresh token just obtained
                self.token_file = TokenFile(str(self.config["token_file"]), refresh)
                with self.token_file.locked():
                    self.token_file.save(Tokens(refresh, self._token, time.time() + self._lifetime))

    def _client_credentials(self, method: OAuth2ClientCredentials) -> None:
        client_id, secret = self._text(method.client_id), self._text(method.client_secret)
        form = {"grant_type": "client_credentials", **{k: self._text(v) for k, v in method.params.items()}}
        if method.scope:
            form["scope"] = self._text(method.scope)
        auth: httpx.BasicAuth | None = None
        if method.credentials_in == "basic":
            auth = httpx.BasicAuth(client_id, secret)
        else:
            form.update(client_id=client_id, client_secret=secret)
        payload = self._post_token(self._text(method.token_url), form, auth, "OAuth client credentials")
        self._token = _token_from(payload, "access_token", "OAuth client credentials")
        REDACTOR.add(self._token)
        self._set_lifetime(payload.get("expires_in"), 3600.0)
        logger.info("OAuth client-credentials token obtained (expires in %.0fs)", self._lifetime)

    def _login(self, method: Session) -> None:
        login = method.login
        scope = {"config": self.config}
        url = self._text(login.url)
        if self.origin is not None:
            url = self.origin.join(url) if url.startswith("/") else url
        body = CompiledValue(login.body).render(scope) if login.body is not None else None
        headers = {k: self._text(v) for k, v in login.headers.items()}
        try:
            if login.body_format == "form":
                response = self.http.request(login.method, url, data=body, headers=headers)
            else:
                response = self.http.request(login.method, url, json=body, headers=headers)
        except httpx.TransportError as exc:
            raise AuthError(f"session login at {url} unreachable: {type(exc).__name__}") from exc
        if response.status_code not in (200, 201):
            detail = REDACTOR.shorten(response.text, 300)
            raise AuthError(f"session login refused by {url} ({response.status_code}): {detail}")
        payload = _json_object(response, "session login", url)
        token = dot_path(method.token)(payload)
        if not token or not isinstance(token, (str, int)):
            raise AuthError(f"session login at {url}: no token at {method.token!r} in the answer")
        self._token = str(token)
        REDACTOR.add(self._token)
        lifetime = dot_path(method.expires_in)(payload) if method.expires_in else None
        self._set_lifetime(lifetime, method.ttl_seconds)
        logger.info("session opened (expires in %.0fs)", self._lifetime)

    def _set_lifetime(self, value: Any, default: float) -> None:
        try:
            lifetime = float(value) if value is not None else default
        except (TypeError, ValueError):
            lifetime = default
        if not lifetime > 0 or lifetime != lifetime:  # 0, negative or NaN: the API gave no usable lifetime
            lifetime = default
        self._lifetime = min(lifetime, 10 * 365 * 86400.0)
        self._expires_at = time.monotonic() + self._lifetime


def _json_object(response: httpx.Response, what: str, url: str) -> dict:
    try:
        payload = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        payload = None
    if not isinstance(payload, dict):
        kind = response.headers.get("content-type", "unknown content")
        raise AuthError(f"{what}: {url} answered {response.status_code} with {kind}, not a JSON object")
    return payload


def _token_from(payload: dict, key: str, what: str) -> str:
    token = payload.get(key)
    if not token or not isinstance(token, str):
        raise AuthError(f"{what}: the answer has no {key}")
    return token
