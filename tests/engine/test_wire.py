"""Both senders against a raw socket server on 127.0.0.1: what each reads must be what plain httpx reads."""

from __future__ import annotations

import gzip
import socketserver
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from connector.sender import HttpxSender, Limits, Sender, build_request, httpx_client
from connector.wire import WireSender

LIMITS = Limits(timeout=5.0, connect_timeout=5.0)
SENDERS = ["httpx", "wire"]


def make_sender(kind: str, limits: Limits = LIMITS) -> Sender:
    return WireSender(limits) if kind == "wire" else HttpxSender(httpx_client(limits, 4), limits)


def prepare(method, url, params, headers, content, form_body):
    return build_request(method, url, params, headers, content, form_body)


RESPONSES: dict[str, bytes] = {
    "/plain": b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n"
    b'{"a": "\xc3\xa9"}',
    "/latin": b"HTTP/1.1 422 Unprocessable Entity\r\nContent-Type: text/plain; charset=latin-1\r\n"
    b"Content-Length: 5\r\n\r\ncaf\xe9!",
    "/chunked": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n"
    b"4\r\n[1, \r\n3\r\n2]\n\r\n0\r\n\r\n",
    "/gzip": b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n",
    "/links": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
    b'Link: <http://127.0.0.1/items?page=2>; rel="next", <http://127.0.0.1/items?page=9>; rel="last"\r\n'
    b"X-Ratelimit-Remaining: 7\r\nX-Dup: one\r\nx-dup: two\r\n\r\n[]",
    "/redirect": b"HTTP/1.1 302 Found\r\nLocation: /plain\r\nContent-Length: 0\r\n\r\n",
    "/continue": b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\n{}",
    "/empty": b"HTTP/1.1 204 No Content\r\n\r\n",
    "/close": b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end",
}
GZIPPED = gzip.compress(b'{"zipped": true}')


class Handler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        self.server.connections += 1  # type: ignore[attr-defined]
        while True:
            line = self.rfile.readline()
            if not line:
                return
            path = line.split()[1].decode().split("?")[0]
            length = 0
            while (header := self.rfile.readline()) not in (b"\r\n", b""):
                if header.lower().startswith(b"content-length:"):
                    length = int(header.split(b":")[1])
            self.rfile.read(length)
            answer = RESPONSES[path]
            if path == "/gzip":
                answer = answer % len(GZIPPED) + GZIPPED
            self.wfile.write(answer)
            if path == "/close":
                return


@contextmanager
def raw_server() -> Iterator[tuple[str, socketserver.ThreadingTCPServer]]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.connections = 0  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", server
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("kind", SENDERS)
@pytest.mark.parametrize("path", sorted(RESPONSES))
def test_each_sender_reads_each_response_as_httpx_does(path, kind):
    with raw_server() as (base, _server), httpx.Client() as reference:
        sender = make_sender(kind)
        try:
            ours = sender.send(prepare("GET", base + path, None, {"Accept": "*/*"}, None, None))
        finally:
            sender.close()
        theirs = reference.get(base + path, follow_redirects=False)
    assert ours.status_code == theirs.status_code
    assert ours.content == theirs.content
    assert ours.text == theirs.text
    assert ours.is_success == theirs.is_success
    assert ours.is_redirect == theirs.is_redirect
    assert ours.reason_phrase == theirs.reason_phrase
    assert ours.links == theirs.links
    for name in ("x-ratelimit-remaining", "X-RateLimit-Remaining", "x-dup", "content-type", "absent"):
        assert ours.headers.get(name) == theirs.headers.get(name), name
        assert (name in ours.headers) == (name in theirs.headers), name
        assert ours.headers.get_list(name) == theirs.headers.get_list(name), name
    assert dict(ours.headers.items()) == dict(theirs.headers.items())
    if ours.content and path in ("/plain", "/chunked", "/gzip"):
        assert ours.json() == theirs.json()


@pytest.mark.parametrize("kind", SENDERS)
def test_one_connection_is_kept_alive_and_a_closed_one_is_replaced(kind):
    with raw_server() as (base, server):
        sender = make_sender(kind)
        try:
            for _ in range(5):
                assert (
                    sender.send(prepare("POST", base + "/plain", {"q": "1"}, {}, b"{}", None)).status_code
                    == 200
                )
            assert server.connections == 1  # type: ignore[attr-defined]
            assert (
                sender.send(prepare("GET", base + "/close", None, {}, None, None)).content == b"until the end"
            )
            assert sender.send(prepare("GET", base + "/plain", None, {}, None, None)).status_code == 200
            assert server.connections == 2  # type: ignore[attr-defined]
        finally:
            sender.close()


def test_form_bodies_and_query_parameters_are_encoded():
    request = prepare(
        "POST", "http://127.0.0.1/x?a=1", {"b": ["2", "3"]}, {"Accept": "*/*"}, None, {"name": "a b&c"}
    )
    assert request.target == "http://127.0.0.1/x?a=1&b=2&b=3"
    assert prepare(
        "GET", "http://127.0.0.1/x", {"t": True, "f": False, "n": None}, {}, None, None
    ).target == ("http://127.0.0.1/x?t=true&f=false&n=")
    assert request.content == b"name=a+b%26c"
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"


@pytest.mark.parametrize(
    ("url", "origin", "target"),
    [
        (
            "http://127.0.0.1:8555/v2/people.json?page=2&per_page=100",
            "http://127.0.0.1:8555",
            "/v2/people.json?page=2&per_page=100",
        ),
        ("http://127.0.0.1:8555", "http://127.0.0.1:8555", "/"),
        ("http://127.0.0.1:8555?x=1", "http://127.0.0.1:8555", "/?x=1"),
        ("https://api.example/v2/a#fragment", "https://api.example", "/v2/a"),
    ],
)
def test_the_request_target_is_the_path_and_query_of_the_url(url, origin, target):
    from connector.wire import _split_target

    assert _split_target(url) == (origin, target)


MALFORMED = {
    "negative-length": b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n{}",
    "two-lengths": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 40\r\n\r\n{}",
    "negative-chunk": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n{}\r\n0\r\n\r\n",
    "empty-chunk-size": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\n{}\r\n0\r\n\r\n",
    "status-99999": b"HTTP/1.1 99999 What\r\nContent-Length: 2\r\n\r\n{}",
}


@pytest.mark.parametrize("kind", SENDERS)
@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_each_sender_refuses_a_malformed_answer_rather_than_guess(name, kind):
    RESPONSES["/malformed"] = MALFORMED[name]
    try:
        with raw_server() as (base, _server):
            sender = make_sender(kind)
            try:
                with pytest.raises(httpx.RemoteProtocolError):
                    sender.send(prepare("GET", base + "/malformed", None, {}, None, None))
            finally:
                sender.close()
    finally:
        del RESPONSES["/malformed"]
