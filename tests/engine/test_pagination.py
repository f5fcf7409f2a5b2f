"""Each pagination style, driven by real responses from an httpx MockTransport."""

from __future__ import annotations

import httpx
import msgspec
import pytest

from connector.errors import ConnectorError
from connector.pagination import Pagination, PaginationBase, Paginator
from connector.render import Origin

ORIGIN = Origin.parse("http://127.0.0.1:8555")


def kind(**fields) -> PaginationBase:
    return msgspec.convert(fields, Pagination)


DATA = list(range(1, 8))  # seven records


def walk(spec: PaginationBase, handler, page_size=3) -> tuple[list[int], list[httpx.URL]]:
    client = httpx.Client(transport=httpx.MockTransport(handler), base_url="http://127.0.0.1:8555")
    paginator = Paginator(spec, ORIGIN, page_size)
    page = paginator.first()
    seen: list[int] = []
    urls: list[httpx.URL] = []
    while page is not None:
        response = client.get(page.url or "/items", params=None if page.url else page.params)
        urls.append(response.request.url)
        body = response.json()
        records = body["data"]
        seen += [r["id"] for r in records]
        page = paginator.next(page, response, body, records)
        assert len(urls) < 20
    return seen, urls


def test_page_number_with_next_page_in_body():
    def handler(request):
        page = int(request.url.params.get("page", 1))
        chunk = DATA[(page - 1) * 3 : page * 3]
        nxt = page + 1 if page * 3 < len(DATA) else None
        return httpx.Response(
            200, json={"data": [{"id": i} for i in chunk], "metadata": {"paging": {"next_page": nxt}}}
        )

    seen, urls = walk(kind(type="page_number", next="metadata.paging.next_page"), handler)
    assert seen == DATA
    assert [u.params["page"] for u in urls] == ["1", "2", "3"]


def test_page_number_stops_on_a_short_page_without_next():
    def handler(request):
        page = int(request.url.params["p"])
        return httpx.Response(200, json={"data": [{"id": i} for i in DATA[(page - 1) * 3 : page * 3]]})

    seen, urls = walk(kind(type="page_number", page_param="p"), handler)
    assert seen == DATA and len(urls) == 3


def test_offset():
    def handler(request):
        offset = int(request.url.params["offset"])
        return httpx.Response(200, json={"data": [{"id": i} for i in DATA[offset : offset + 3]]})

    seen, urls = walk(kind(type="offset"), handler)
    assert seen == DATA
    assert [u.params["offset"] for u in urls] == ["0", "3", "6"]


def test_cursor_from_record_and_from_response():
    def by_id(request):
        after = int(request.url.params.get("id[gt]", 0))
        return httpx.Response(200, json={"data": [{"id": i} for i in DATA if i > after][:3]})

    seen, urls = walk(kind(type="cursor", param="id[gt]", from_record="id"), by_id)
    assert seen == DATA
    assert [u.params.get("id[gt]") for u in urls] == [None, "3", "6"]

    def token(request):
        start = int(request.url.params.get("cursor", "0"))
        chunk = DATA[start : start + 3]
        nxt = str(start + 3) if start + 3 < len(DATA) else None
        return httpx.Response(200, json={"data": [{"id": i} for i in chunk], "meta": {"next_cursor": nxt}})

    seen, _ = walk(
        kind(type="cursor", param="cursor", from_response="meta.next_cursor"), token, page_size=None
    )
    assert seen == DATA


def test_next_url_and_link_header_stay_on_the_origin():
    def next_url(request):
        start = int(request.url.params.get("start", "0"))
        nxt = f"/items?start={start + 3}" if start + 3 < len(DATA) else None
        return httpx.Response(
            200, json={"data": [{"id": i} for i in DATA[start : start + 3]], "links": {"next": nxt}}
        )

    seen, _ = walk(kind(type="next_url", from_response="links.next"), next_url)
    assert seen == DATA

    def link(request):
        start = int(request.url.params.get("start", "0"))
        headers = {}
        if start + 3 < len(DATA):
            headers["Link"] = f'<http://127.0.0.1:8555/items?start={start + 3}>; rel="next"'
        return httpx.Response(
            200, json={"data": [{"id": i} for i in DATA[start : start + 3]]}, headers=headers
        )

    seen, _ = walk(kind(type="link_header"), link)
    assert seen == DATA


def test_a_next_link_to_another_host_is_refused():
    import pytest

    from connector.errors import UnsafeRequestError

    def evil(request):
        return httpx.Response(
            200, json={"data": [{"id": 1}]}, headers={"Link": '<http://evil.example/items>; rel="next"'}
        )

    with pytest.raises(UnsafeRequestError):
        walk(kind(type="link_header"), evil)


def test_a_page_without_its_total_does_not_end_paging_early():
    """Some APIs leave the total out of some answers (too costly to count): paging goes on to a short page."""

    def handler(request):
        page = int(request.url.params["page"])
        body = {"data": [{"id": i} for i in DATA[(page - 1) * 3 : page * 3]]}
        if page == 1:
            body["total"] = len(DATA)
        return httpx.Response(200, json=body)

    seen, urls = walk(kind(type="page_number", total="total"), handler)
    assert seen == DATA and len(urls) == 3


def test_a_total_that_is_not_a_count_stops_paging_with_an_error():
    def handler(request):
        return httpx.Response(200, json={"data": [{"id": 1}, {"id": 2}, {"id": 3}], "total": "lots"})

    with pytest.raises(ConnectorError, match="the record total at 'total' is 'lots', not a whole number"):
        walk(kind(type="page_number", total="total"), handler)


def test_a_full_page_without_its_has_more_flag_stops_paging_with_an_error():
    """A has_more path the answers do not hold (a typo: hasMore) would end every read after its first page."""

    def handler(request):
        return httpx.Response(200, json={"data": [{"id": 1}, {"id": 2}, {"id": 3}], "hasMore": True})

    with pytest.raises(ConnectorError, match="a full page's answer has no 'has_more'"):
        walk(kind(type="cursor", param="after", from_record="id", has_more="has_more"), handler)


def test_a_short_last_page_may_leave_its_has_more_flag_out():
    def handler(request):
        after = int(request.url.params.get("after", 0))
        body = {"data": [{"id": i} for i in DATA if i > after][:3]}
        if len(body["data"]) == 3:
            body["has_more"] = True
        return httpx.Response(200, json=body)

    seen, _ = walk(kind(type="cursor", param="after", from_record="id", has_more="has_more"), handler)
    assert seen == DATA
