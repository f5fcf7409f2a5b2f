"""Requests and responses as the application sees them, and the errors handlers raise."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

JSON = "application/json; charset=utf-8"


@dataclass(slots=True)
class Request:
    method: str
    path: str  # without the query string, still percent-encoded
    query_string: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    peer: str = ""


@dataclass(slots=True)
class Response:
    status: int
    body: bytes = b""
    content_type: str | None = JSON
    headers: list[tuple[str, str]] = field(default_factory=list)
    # Transport-level faults: close without answering, or promise the whole body and send half.
    drop: bool = False
    truncate: bool = False


def json_response(status: int, payload: Any, headers: list[tuple[str, str]] | None = None) -> Response:
    return Response(status, orjson.dumps(payload), JSON, headers or [])


def data_response(record: Any, status: int = 200) -> Response:
    return json_response(status, {"data": record})


def no_content() -> Response:
    return Response(204, b"", None)


class ApiError(Exception):
    """Raised by handlers; the application turns it into the response Salesloft would send."""

    def __init__(self, status: int, payload: dict[str, Any]):
        super().__init__(status, payload)
        self.status = status
        self.payload = payload

    def response(self) -> Response:
        return json_response(self.status, self.payload)


def not_found() -> ApiError:
    return ApiError(404, {"error": "Not Found"})


def bad_request(message: str = "Bad Request") -> ApiError:
    return ApiError(400, {"error": message})


def invalid(field_name: str, message: str) -> ApiError:
    """422 ``{"errors": {"domain": ["has already been taken"]}}``."""
    return ApiError(422, {"errors": {field_name: [message]}})


def blank(field_name: str) -> ApiError:
    return invalid(field_name, "can't be blank")


def taken(field_name: str) -> ApiError:
    return invalid(field_name, "has already been taken")


def describe(error: ApiError) -> str:
    """One line for a bulk job result: ``email_address has already been taken``."""
    if "errors" in error.payload:
        parts = []
        for name, messages in error.payload["errors"].items():
            for message in messages if isinstance(messages, list) else [messages]:
                parts.append(f"{name} {message}")
        return "; ".join(parts)
    return str(error.payload.get("error", "error"))
