"""Method + path -> handler. Paths match with or without a ``.json`` suffix and a trailing slash;
``{name}`` segments capture one percent-decoded path segment."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from sandbox.params import FlatQuery, write_params
from sandbox.wire import Request, Response

Handler = Callable[[Any, "Call"], Response]


@dataclass(slots=True)
class Call:
    """One routed request, as handlers see it."""

    request: Request
    args: dict[str, str]
    query: FlatQuery
    body: Any = None
    _params: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def params(self) -> dict[str, Any]:
        """Query-string parameters overlaid by the body's (JSON or form)."""
        if self._params is None:
            self._params = write_params(self.request, self.body)
        return self._params


def split_path(path: str) -> list[str]:
    """``/v2/people/5.json`` -> ``["v2", "people", "5"]`` (segments decoded after splitting)."""
    raw = [s for s in path.split("/") if s != ""]
    if raw and raw[-1].endswith(".json"):
        raw[-1] = raw[-1][:-5]
    return [unquote(s) for s in raw]


@dataclass(slots=True)
class Route:
    method: str
    pattern: tuple[str, ...]
    handler: Handler
    kind: str  # what the route is, for cost and journaling: "list" | "other"


class Router:
    def __init__(self) -> None:
        self._routes: dict[tuple[str, int], list[Route]] = {}

    def add(self, method: str, pattern: str, handler: Handler, kind: str = "other") -> None:
        parts = tuple(s for s in pattern.split("/") if s)
        route = Route(method, parts, handler, kind)
        bucket = self._routes.setdefault((method, len(parts)), [])
        bucket.append(route)
        bucket.sort(key=lambda r: sum(p.startswith("{") for p in r.pattern))  # static segments win

    def match(self, method: str, segments: list[str]) -> tuple[Route, dict[str, str]] | None:
        for route in self._routes.get((method, len(segments)), ()):
            args: dict[str, str] = {}
            for want, got in zip(route.pattern, segments, strict=True):
                if want[0] == "{":
                    args[want[1:-1]] = got
                elif want != got:
                    break
            else:
                return route, args
        return None
