"""Pagination styles as data: each turns the last page into the next request, or None at the end."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from connector.errors import ConnectorError
from connector.http import Response
from connector.render import Origin, dot_path
from connector.templates import Pagination


@dataclass
class PageRequest:
    """What changes from one page to the next: extra params, or a whole next URL."""

    params: dict[str, Any] = field(default_factory=dict)
    url: str | None = None  # absolute URL on the connection's origin (next links)
    number: int = 1


class Paginator:
    """Walks the pages of one request template according to its ``pagination`` block."""

    def __init__(self, spec: Pagination, origin: Origin, page_size: int | None) -> None:
        self.spec = spec
        self.origin = origin
        self.page_size = page_size or spec.size
        self._next = dot_path(spec.next) if spec.next else None
        self._from_response = dot_path(spec.from_response) if spec.from_response else None
        self._followed: set[str] = set()  # next links of this walk: one seen again is a loop

    def first(self) -> PageRequest:
        self._followed.clear()
        spec = self.spec
        params: dict[str, Any] = {}
        if spec.size_param and spec.size:
            params[spec.size_param] = spec.size
        if spec.type == "page_number":
            params[spec.page_param] = spec.start if spec.start is not None else 1
        elif spec.type == "offset":
            params[spec.offset_param] = spec.start or 0
        return PageRequest(params=params)

    def _short(self, records: list) -> bool:
        return not records or (self.page_size is not None and len(records) < self.page_size)

    def next(self, current: PageRequest, response: Response, body: Any, records: list) -> PageRequest | None:
        spec = self.spec
        kind = spec.type
        number = current.number + 1
        if kind == "none":
            return None
        if kind == "page_number":
            if self._next is not None:
                value = self._next(body)
                if value in (None, "", 0) or not records:
                    return None
                page = int(value)
            elif self._short(records):
                return None
            else:
                page = int(current.params.get(spec.page_param, 1)) + 1
            return PageRequest(params={**current.params, spec.page_param: page}, number=number)
        if kind == "offset":
            if self._short(records):
                return None
            offset = int(current.params.get(spec.offset_param, 0)) + len(records)
            return PageRequest(params={**current.params, spec.offset_param: offset}, number=number)
        if kind == "cursor":
            if spec.from_record:
                if self._short(records):
                    return None
                value = records[-1].get(spec.from_record)
            else:
                value = self._from_response(body) if self._from_response else None
            if value in (None, ""):
                return None
            if current.params.get(spec.param) == value:
                return None  # the API repeated its cursor: stop rather than loop
            return PageRequest(params={**current.params, spec.param: value}, number=number)
        if kind == "next_url":
            link = self._from_response(body) if self._from_response else None
            return self._follow(link, current, number)
        if kind == "link_header":
            link = response.links.get("next", {}).get("url")
            return self._follow(link, current, number)
        raise ValueError(f"unknown pagination type {kind!r}")

    def _follow(self, link: str | None, current: PageRequest, number: int) -> PageRequest | None:
        if not link:
            return None
        url = self.origin.absolute(str(link))
        if url == current.url:
            return None
        if url in self._followed:
            raise ConnectorError(f"pagination loop: the next link {url!r} was followed before; stopping")
        self._followed.add(url)
        return PageRequest(url=url, number=number)
