"""Bearer authentication: the API key, and OAuth access tokens issued by ``POST /oauth/token``.

Refresh tokens are single use (each refresh rotates them); access tokens expire after a TTL in
real seconds, measured against the TTL configured *now* (so a test can shorten it at runtime).
The authorization-code grant starts a chain: ``GET /oauth/authorize`` stands for the user signing
in and approving at once, redirecting to ``redirect_uri`` with a code (single use, 10 minutes, bound
to that redirect URI, RFC 6749 4.1) that the token endpoint exchanges for the first tokens.
Only SHA-256 digests of tokens and secrets are kept; nothing here is ever logged or journaled.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any

CODE_TTL = 600.0  # seconds an authorization code stays exchangeable


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8")).digest()


@dataclass(slots=True)
class AuthResult:
    ok: bool
    bearer: bool  # an Authorization: Bearer header was present
    kind: str | None = None  # "api_key" | "oauth"
    error: str = "Unauthorized"
    token: int | None = None  # which access token (1 = the first issued since reset), never the token itself


class Auth:
    def __init__(
        self,
        api_key: str,
        client_id: str,
        client_secret: str,
        refresh_token: str,
        token_ttl: float,
        reject_refresh: bool = False,
    ):
        self._api_key = _digest(api_key)
        self._client_id = client_id
        self._client_secret = _digest(client_secret)
        self._initial_refresh = _digest(refresh_token)
        self.token_ttl = float(token_ttl)
        self.reject_refresh = reject_refresh
        self.deny_authorize = False  # the user declines at the authorization page
        self.reset()

    def reset(self) -> None:
        self._refresh_tokens: set[bytes] = {self._initial_refresh}
        self._access_tokens: dict[bytes, tuple[float, int]] = {}  # digest -> (issued at (monotonic), serial)
        self._codes: dict[bytes, tuple[str, float]] = {}  # digest -> (redirect_uri, issued at)
        self.refreshes = 0
        self.codes_exchanged = 0

    # -- GET /oauth/authorize --------------------------------------------------------------

    def authorize(self, params: dict[str, list[str]]) -> tuple[int, str | None, dict[str, Any] | None]:
        """(status, Location, error body): a redirect to ``redirect_uri``, or an error shown to the user
        when the client or the redirect URI cannot be trusted (never redirected to, RFC 6749 4.1.2.1)."""

        def one(name: str) -> str | None:
            values = params.get(name) or []
            return values[0] if len(values) == 1 else None

        client_id, redirect_uri, state = one("client_id"), one("redirect_uri"), one("state")
        if client_id != self._client_id:
            return 400, None, {"error": "invalid_client", "error_description": "Unknown client_id"}
        target = urllib.parse.urlsplit(redirect_uri or "")
        if target.scheme not in ("http", "https") or not target.netloc or target.fragment:
            return 400, None, {"error": "invalid_request", "error_description": "Invalid redirect_uri"}
        answer: dict[str, str]
        if one("response_type") != "code":
            answer = {"error": "unsupported_response_type"}
        elif self.deny_authorize:
            answer = {"error": "access_denied", "error_description": "The user denied the request"}
        else:
            code = secrets.token_urlsafe(24)
            self._codes[_digest(code)] = (redirect_uri or "", time.monotonic())
            answer = {"code": code}
        if state is not None:
            answer["state"] = state
        query = urllib.parse.urlencode([*urllib.parse.parse_qsl(target.query), *answer.items()])
        return 302, urllib.parse.urlunsplit(target._replace(query=query)), None

    # -- /v2 requests ------------------------------------------------------------------

    def check(self, authorization: str | None) -> AuthResult:
        if not authorization:
            return AuthResult(False, False)
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return AuthResult(False, False)
        digest = _digest(token.strip())
        if hmac.compare_digest(digest, self._api_key):
            return AuthResult(True, True, "api_key")
        known = self._access_tokens.get(digest)
        if known is None:
            return AuthResult(False, True, error="Invalid access token")
        issued, serial = known
        if time.monotonic() - issued >= self.token_ttl:
            return AuthResult(False, True, "oauth", "Access token expired", serial)
        return AuthResult(True, True, "oauth", token=serial)

    # -- POST /oauth/token -------------------------------------------------------------

    def token(self, params: dict[str, Any], authorization: str | None) -> tuple[int, dict[str, Any]]:
        client_id = params.get("client_id")
        client_secret = params.get("client_secret")
        if authorization and authorization.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(authorization[6:].strip()).decode("utf-8")
                client_id, _, client_secret = decoded.partition(":")
            except ValueError:
                return 401, {"error": "invalid_client"}
        grant_type = params.get("grant_type")
        if grant_type not in ("refresh_token", "authorization_code"):
            return 400, {"error": "unsupported_grant_type"}
        if (
            not isinstance(client_id, str)
            or not isinstance(client_secret, str)
            or client_id != self._client_id
            or not hmac.compare_digest(_digest(client_secret), self._client_secret)
        ):
            return 401, {"error": "invalid_client"}
        if grant_type == "authorization_code":
            return self._exchange(params)
        refresh_token = params.get("refresh_token")
        if not isinstance(refresh_token, str) or not refresh_token:
            return 400, {"error": "invalid_request"}
        digest = _digest(refresh_token)
        if self.reject_refresh or digest not in self._refresh_tokens:
            return 401, {"error": "invalid_grant"}
        self._refresh_tokens.discard(digest)
        self.refreshes += 1
        return self._issue()

    def _exchange(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        code, redirect_uri = params.get("code"), params.get("redirect_uri")
        if not isinstance(code, str) or not code:
            return 400, {"error": "invalid_request"}
        issued = self._codes.pop(_digest(code), None)  # single use, even when the rest is wrong
        if (
            issued is None
            or time.monotonic() - issued[1] >= CODE_TTL
            or not isinstance(redirect_uri, str)
            or redirect_uri != issued[0]
        ):
            return 400, {"error": "invalid_grant"}
        self.codes_exchanged += 1
        return self._issue()

    def _issue(self) -> tuple[int, dict[str, Any]]:
        access = secrets.token_urlsafe(32)
        refresh = secrets.token_urlsafe(32)
        self._access_tokens[_digest(access)] = (time.monotonic(), len(self._access_tokens) + 1)
        self._refresh_tokens.add(_digest(refresh))
        return 200, {
            "access_token": access,
            "refresh_token": refresh,
            "token_type": "bearer",
            "expires_in": int(self.token_ttl),
            "created_at": int(time.time()),
        }
