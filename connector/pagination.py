"""Pagination: one small class per kind (its YAML fields and how it finds the next page), one Paginator.

Every kind shares the stop conditions (``has_more``, ``total``, ``stop_when``) and where its parameters
go (``in: query`` or ``in: body``). The Paginator refuses to request a page it already requested in the
same pass: an API that repeats a page number, a cursor or a next link (at once or in a cycle) stops the
stream with an error instead of ending it early or looping forever.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Annotated, Any, ClassVar, Literal

import msgspec

from connector.errors import ConnectorError
from connector.kinds import Model, describe
from connector.render import Compiled, Origin, compile_condition, dot_path


class PaginationLoop(ConnectorError):
    """The API led back to a page already read in this pass: its paging cannot be trusted."""


@dataclass
class PageRequest:
    """What changes from one page to the next: extra params (query or body), or a whole next URL."""

    params: dict[str, Any] = field(default_factory=dict)
    url: str | None = None  # absolute URL on the connection's origin (next links)
    number: int = 1
    token: Any = None  # what identifies this page (page number, offset, cursor, URL), for messages

    def key(self) -> tuple:
        return (self.url, tuple(sorted((k, repr(v)) for k, v in self.params.items())))


@dataclass
class Known:
    """What a page's answer says about the whole pass: how many pages, how many records, the page size."""

    pages: int | None
    records: int | None
    page_size: int | None

    def after(self, pages: int) -> Known:
        """What is left once ``pages`` full pages are behind (a restarted pass reads on from about there)."""
        size = self.page_size
        return Known(
            max(self.pages - pages, 0) if self.pages is not None else None,
            max(self.records - pages * size, 0) if self.records is not None and size else None,
            size,
        )


@dataclass
class Answer:
    """One page's answer, as the pagination kinds see it. Its Link header and URL are read only by the kinds
    that ask for them (parsing both for every page cost about 1 us per record of a page-number read)."""

    body: Any
    records: list
    headers: Any
    short: bool  # fewer records than a full page (or none)
    response: Any
    current_url: str | None  # the URL of the page asked for, when the response does not say

    @cached_property
    def links(self) -> dict:
        return getattr(self.response, "links", None) or {}

    @cached_property
    def url(self) -> str | None:
        """The URL this page was read from: relative next links resolve against it."""
        request = getattr(self.response, "request", None)
        return str(request.url) if request is not None else self.current_url


class PaginationBase(Model, tag_field="type", kw_only=True, frozen=True):
    """Fields every pagination kind accepts."""

    size_param: Annotated[str, describe("Parameter carrying the page size (per_page, limit).")] | None = None
    size: Annotated[int, describe("Page size sent in size_param.", ge=1)] | None = None
    in_: Annotated[
        Literal["query", "body"],
        describe("Where the paging parameters go: the query string, or top-level fields of the JSON body."),
    ] = msgspec.field(default="query", name="in")
    has_more: (
        Annotated[
            str,
            describe(
                "Dot path to a boolean in the body; paging ends when it is false (absent from a full page: "
                "an error)."
            ),
        ]
        | None
    ) = None
    total: (
        Annotated[
            str,
            describe(
                "Dot path to the total record count; paging ends once that many were read (a page without "
                "one ends paging only when it is short). Every page's total "
                "must match the pass's first: a change means the list moved while it was read, and the pass "
                "reads on from a safe point instead of skipping the rows that moved."
            ),
        ]
        | None
    ) = None
    stop_when: (
        Annotated[
            str,
            describe(
                "Jinja condition over response (the body), headers, records and page; paging ends when true."
            ),
        ]
        | None
    ) = None
    restart_after: (
        Annotated[
            int,
            describe(
                "With an ascending replication key: after this many pages, start again at the first page "
                "from the last replication value read (deep pages cost more, or are capped)."
            ),
        ]
        | None
    ) = None

    uses_short_page: ClassVar[bool] = False  # a short page ends paging when nothing else says

    def first(self) -> dict[str, Any]:
        return {}

    def advance(self, current: PageRequest, answer: Answer, origin: Origin) -> PageRequest | None:
        raise NotImplementedError

    def later(self, current: PageRequest, steps: int, known: Known) -> dict[str, Any] | None:
        """The params of the page ``steps`` pages after ``current``, when the answers so far prove it exists
        (a page count, a record total); None when they do not. Such pages may be requested early."""
        return None

    @property
    def explicit_stop(self) -> bool:
        return bool(self.has_more or self.total or self.stop_when)

    @property
    def kind(self) -> str:
        return str(self.__struct_config__.tag)

    def how(self) -> str:
        """How this kind finds the next page, in words (docs, preview)."""
        return ""

    def summary(self) -> str:
        """One line for docs and previews: the kind, how it moves, and what ends it."""
        parts = [self.how()] if self.how() else []
        where = " in the body" if self.in_ == "body" else ""
        if where and parts:
            parts[0] += where
        if self.has_more:
            parts.append(f"while `{self.has_more}` is true")
        if self.total:
            parts.append(f"until `{self.total}` records")
        if self.stop_when:
            parts.append(f"until `{self.stop_when}`")
        if self.uses_short_page and not self.explicit_stop and not getattr(self, "next", None):
            parts.append("until a short page")
        if self.restart_after:
            parts.append(f"restarts from the bookmark after {self.restart_after} pages")
        return f"{self.kind} ({', '.join(parts)})" if parts else self.kind


class NoPagination(PaginationBase, tag="none", kw_only=True, frozen=True):
    """One request, no paging."""

    def advance(self, current: PageRequest, answer: Answer, origin: Origin) -> PageRequest | None:
        return None


class PageNumber(PaginationBase, tag="page_number", kw_only=True, frozen=True):
    """Pages numbered 1, 2, 3 ... in a parameter."""

    page_param: Annotated[str, describe("Parameter carrying the page number.")] = "page"
    start: Annotated[int, describe("Number of the first page.")] = 1
    next: (
        Annotated[
            str,
            describe(
                "Dot path to the next page number in the body; null ends paging. Without it, a short page does."
            ),
        ]
        | None
    ) = None
    total_pages: (
        Annotated[
            str,
            describe(
                "Dot path to the number of pages of this pass. With it (or `total`), the pages after the first "
                "are known from its answer and several are requested at once (max_concurrency)."
            ),
        ]
        | None
    ) = None

    uses_short_page = True

    def how(self) -> str:
        return f"`{self.page_param}`" + (f", next from `{self.next}`" if self.next else "")

    def later(self, current: PageRequest, steps: int, known: Known) -> dict[str, Any] | None:
        pages = known.pages
        if pages is None and known.records is not None and known.page_size:
            pages = -(-known.records // known.page_size)
        number = int(current.params.get(self.page_param, self.start)) + steps
        if pages is None or number > self.start + pages - 1:
            return None
        return {**current.params, self.page_param: number}

    def first(self) -> dict[str, Any]:
        return {self.page_param: self.start}

    def advance(self, current: PageRequest, answer: Answer, origin: Origin) -> PageRequest | None:
        if self.next:
            value = dot_path(self.next)(answer.body)
            if value in (None, "", 0, False) or not answer.records:
                return None
            page = int(value)
        else:
            page = int(current.params.get(self.page_param, self.start)) + 1
        return PageRequest(params={**current.params, self.page_param: page}, token=page)


class Offset(PaginationBase, tag="offset", kw_only=True, frozen=True):
    """An offset that grows by the records read (offset/limit)."""

    offset_param: Annotated[str, describe("Parameter carrying the offset.")] = "offset"
    start: Annotated[int, describe("First offset.")] = 0

    uses_short_page = True

    def how(self) -> str:
        return f"`{self.offset_param}` + records read" + (f", `{self.size_param}`" if self.size_param else "")

    def first(self) -> dict[str, Any]:
        return {self.offset_param: self.start}

    def advance(self, current: PageRequest, answer: Answer, origin: Origin) -> PageRequest | None:
        if not answer.records:
            return None
        offset = int(current.params.get(self.offset_param, self.start)) + len(answer.records)
        return PageRequest(params={**current.params, self.offset_param: offset}, token=offset)

    def later(self, current: PageRequest, steps: int, known: Known) -> dict[str, Any] | None:
        if known.records is None or not known.page_size:
            return None
        offset = int(current.params.get(self.offset_param, self.start)) + steps * known.page_size
        if offset - self.start >= known.records:
            return None
        return {**current.params, self.offset_param: offset}


class Cursor(PaginationBase, tag="cursor", kw_only=True, frozen=True):
    """An opaque token or the last record's key, passed back in a parameter."""

    param: Annotated[
        str, describe("Parameter carrying the cursor (cursor, after, starting_after, 'id[gt]').")
    ]
    from_record: (
        Annotated[str, describe("Dot path in the last record of a page to the next cursor (its id).")] | None
    ) = None
    from_response: Annotated[str, describe("Dot path in the body to the next cursor.")] | None = None
    from_header: Annotated[str, describe("Response header carrying the next cursor.")] | None = None

    def __post_init__(self) -> None:
        sources = [s for s in (self.from_record, self.from_response, self.from_header) if s]
        if len(sources) != 1:
            raise ValueError("cursor pagination needs exactly one of from_record, from_response, from_header")

    @property
    def uses_short_page(self) -> bool:  # type: ignore[override]
        return bool(self.from_record)

    def how(self) -> str:
        source = (
            f"record `{self.from_record}`"
            if self.from_record
            else f"header `{self.from_header}`"
            if self.from_header
            else f"`{self.from_response}`"
        )
        return f"`{self.param}` from {source}"

    def advance(self, current: PageRequest, answer: Answer, origin: Origin) -> PageRequest | None:
        if self.from_record:
            if not answer.records:
                return None
            value = dot_path(self.from_record)(answer.records[-1])
        elif self.from_response:
            value = dot_path(self.from_response)(answer.body)
        else:
            value = answer.headers.get(self.from_header) if answer.headers is not None else None
        if value in (None, ""):
            return None
        return PageRequest(params={**current.params, self.param: value}, token=value)


class NextUrl(PaginationBase, tag="next_url", kw_only=True, frozen=True):
    """A next-page URL (absolute or relative) in the body."""

    from_response: Annotated[str, describe("Dot path in the body to the next page's URL.")]

    def how(self) -> str:
        return f"`{self.from_response}`, same origin only"

    def advance(self, current: PageRequest, answer: Answer, origin: Origin) -> PageRequest | None:
        return _follow(dot_path(self.from_response)(answer.body), answer, origin)


class LinkHeader(PaginationBase, tag="link_header", kw_only=True, frozen=True):
    """RFC 8288 ``Link: <...>; rel="next"`` response headers."""

    def how(self) -> str:
        return 'rel="next", same origin only'

    def advance(self, current: PageRequest, answer: Answer, origin: Origin) -> PageRequest | None:
        return _follow(answer.links.get("next", {}).get("url"), answer, origin)


def _follow(link: Any, answer: Answer, origin: Origin) -> PageRequest | None:
    if not link:
        return None
    url = origin.absolute(str(link), answer.url)
    return PageRequest(url=url, token=url)


Pagination = NoPagination | PageNumber | Offset | Cursor | NextUrl | LinkHeader


class Paginator:
    """Walks the pages of one request: the kind says what comes next, the shared rules say when to stop."""

    def __init__(self, spec: PaginationBase, origin: Origin, page_size: int | None, where: str = "") -> None:
        self.spec = spec
        self.origin = origin
        self.page_size = page_size or spec.size
        self.where = where  # names the stream in errors
        self._has_more = dot_path(spec.has_more) if spec.has_more else None
        self._total = dot_path(spec.total) if spec.total else None
        pages = getattr(spec, "total_pages", None)
        self._pages = dot_path(pages) if pages else None
        self._stop: Compiled | None = compile_condition(spec.stop_when) if spec.stop_when else None
        self._seen: set[tuple] = set()
        self._read = 0

    @classmethod
    def for_params(
        cls, spec: PaginationBase, origin: Origin, params: dict[str, Any], where: str = ""
    ) -> Paginator:
        """A paginator for a request with these params: the page size it asks for (``size_param``, else a
        ``per_page`` already in params) tells a short, last page."""
        size = params.get(spec.size_param or "per_page")
        return cls(spec, origin, int(size) if size else None, where)

    def first(self) -> PageRequest:
        """The first page of a pass (a restart begins a new pass)."""
        self._seen.clear()
        self._read = 0
        params: dict[str, Any] = {}
        if self.spec.size_param and self.spec.size:
            params[self.spec.size_param] = self.spec.size
        own = self.spec.first()
        params.update(own)
        page = PageRequest(params=params, number=1, token=next(iter(own.values()), None))
        self._seen.add(page.key())
        return page

    def next(
        self,
        current: PageRequest,
        response: Any,
        body: Any,
        records: list,
        context: dict[str, Any] | None = None,
    ) -> PageRequest | None:
        spec = self.spec
        self._read += len(records)
        headers = getattr(response, "headers", None)
        short = not records or (self.page_size is not None and len(records) < self.page_size)
        if self._has_more is not None:
            more = self._has_more(body)
            if more is None and not short:
                raise ConnectorError(
                    f"{self.where}a full page's answer has no {spec.has_more!r} (the has_more path): paging cannot "
                    "tell whether pages are left, so the stream stops here rather than end after this page"
                )
            if not more:
                return None
        if self._total is not None:
            raw = self._total(body)
            total = _whole(raw)
            if raw is not None and total is None:
                raise ConnectorError(
                    f"{self.where}the record total at {spec.total!r} is {str(raw)[:40]!r}, not a whole number "
                    "of 0 or more; paging cannot tell whether pages are left, so the stream stops here"
                )
            if not records or (total is not None and self._read >= total):
                return None
            if total is None and short:
                return None  # no total on this page: its short page ends paging, as without one
        if self._stop is not None and self._stop.render(
            {**(context or {}), "response": body, "headers": headers, "records": records, "page": current}
        ):
            return None
        if spec.uses_short_page and not spec.explicit_stop and short:
            return None
        answer = Answer(body, records, headers, short, response, current.url)
        page = spec.advance(current, answer, self.origin)
        if page is None:
            return None
        page.number = current.number + 1
        key = page.key()
        if key in self._seen:
            raise PaginationLoop(
                f"{self.where}{spec.__struct_config__.tag} pagination came back to a page it already read "
                f"(page {page.number} would request {page.token!r} again); the API's paging cannot be "
                "trusted, so the stream stops here"
            )
        self._seen.add(key)
        return page

    def known(self, body: Any) -> Known:
        """What an answer says about its pass: a page count, a record total."""
        return Known(_count(self._pages, body), _count(self._total, body), self.page_size)

    def later(self, current: PageRequest, known: Known, steps: int) -> PageRequest | None:
        """The page ``steps`` pages after ``current`` if what is ``known`` says it exists, to request it before
        its turn. It is only used if ``next`` reaches the same page; paging is decided by ``next``."""
        params = self.spec.later(current, steps, known)
        if params is None:
            return None
        return PageRequest(params=params, number=current.number + steps)


def _count(getter: Any, body: Any) -> int | None:
    """A page count or record total from the body; None when absent or not a non-negative whole number."""
    return None if getter is None else _whole(getter(body))


def _whole(value: Any) -> int | None:
    """A count as an int; None when absent or not a non-negative whole number."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        return None
    try:
        number = int(value)
    except ValueError:
        return None
    return number if number >= 0 else None
