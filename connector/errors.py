"""One hierarchy of errors a user can act on."""

from __future__ import annotations


class ConnectorError(Exception):
    """Base of every error this package raises on purpose."""


class TemplateError(ConnectorError):
    """A template or connection file is wrong: ``file:line: field: message``."""

    def __init__(self, file: str, field: str, message: str, line: int | None = None) -> None:
        self.file = file
        self.field = field
        self.message = message
        self.line = line
        where = f"{file}:{line}" if line else file
        super().__init__(f"{where}: {field}: {message}" if field else f"{where}: {message}")


class TemplateErrors(ConnectorError):
    """Several template errors reported at once."""

    def __init__(self, errors: list[TemplateError]) -> None:
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))


class RenderError(ConnectorError):
    """A template could not be rendered for one record (undefined variable, bad value)."""


class InvalidRequestError(RenderError):
    """A rendered request is not valid HTTP (a header with CR, LF or NUL, a name that is no token, a
    target with spaces or line breaks): written as is, it could inject headers or smuggle a second
    request. Refused before anything is sent, on every transport; never retried."""


class UnsafeRequestError(ConnectorError):
    """A rendered request would leave the connection's host or escape its path."""


class HTTPStatusError(ConnectorError):
    """The API answered with a status the template does not accept."""

    def __init__(self, status: int, message: str, method: str, url: str) -> None:
        self.status = status
        self.api_message = message
        self.method = method
        self.url = url
        super().__init__(f"{method} {url} -> {status}: {message}")


class ResponseTooLarge(ConnectorError):
    """An answer was larger than ``max_response_bytes`` (raw or decompressed): not read further, not retried."""


class RunStopped(ConnectorError):
    """The whole run stops now: a signal (SIGTERM, SIGINT), or an API asking to wait longer than
    ``max_retry_after_seconds``. Records not sent yet get no outcome and stay after the last STATE."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class RequestFailed(ConnectorError):
    """A request failed at the network level on every attempt."""


class AuthError(ConnectorError):
    """Credentials were refused and cannot be refreshed."""
