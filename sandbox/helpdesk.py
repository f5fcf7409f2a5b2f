"""A tiny local helpdesk API: the server behind the ``helpdesk`` connection's tests, docs and examples.

It is not Salesloft, on purpose: the ``helpdesk`` connection exists to show that a new API needs only
templates. It pages in the styles Salesloft does not use: an opaque cursor in the body (tickets),
offset/limit (agents), a next URL in the body (tags) and RFC 8288 ``Link`` headers (comments).
Authentication is an ``X-Api-Key`` header. Data is generated from a seed, so runs are repeatable.

Start it with ``python -m sandbox.helpdesk --port 8566``, or from tests with ``running_helpdesk()``.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import random
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

API_KEY = "helpdesk-key"
READY_LINE_PREFIX = "Helpdesk sandbox listening on "
STATUSES = ("open", "pending", "solved", "closed")
PRIORITIES = ("low", "normal", "high", "urgent")
IMPORT_LIMIT = 100

_WORDS = [
    "login",
    "printer",
    "invoice",
    "refund",
    "password",
    "export",
    "laptop",
    "vpn",
    "email",
    "sync",
    "crash",
    "upgrade",
    "billing",
    "report",
    "calendar",
    "mobile",
    "license",
    "backup",
    "access",
    "slow",
]
_NAMES = (
    "Ada Lovelace",
    "Grace Hopper",
    "Alan Turing",
    "Edsger Dijkstra",
    "Barbara Liskov",
    "Ken Thompson",
    "Frances Allen",
    "John Backus",
    "Margaret Hamilton",
    "Dennis Ritchie",
    "Radia Perlman",
    "Niklaus Wirth",
)
_COLORS = ("red", "orange", "yellow", "green", "blue", "purple", "grey")


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse_instant(value: str) -> dt.datetime:
    moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00").replace(" ", "+"))
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class HelpdeskData:
    """All records of one helpdesk, generated from a seed; mutated by the write endpoints."""

    tickets: dict[int, dict[str, Any]] = field(default_factory=dict)
    comments: dict[int, dict[str, Any]] = field(default_factory=dict)
    agents: list[dict[str, Any]] = field(default_factory=list)
    tags: list[dict[str, Any]] = field(default_factory=list)
    clock: dt.datetime = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)

    @classmethod
    def generate(cls, tickets: int = 60, seed: int = 7) -> HelpdeskData:
        rng = random.Random(seed)
        data = cls()
        start = dt.datetime(2024, 1, 1, 9, 0, tzinfo=dt.timezone.utc)
        for i, name in enumerate(_NAMES, start=1):
            data.agents.append(
                {
                    "id": i,
                    "name": name,
                    "email": f"{name.split()[0].lower()}@helpdesk.test",
                    "role": "admin" if i <= 2 else "agent",
                    "active": i % 5 != 0,
                    "created_at": _iso(start - dt.timedelta(days=400 - i)),
                }
            )
        for i, word in enumerate(sorted(set(_WORDS)), start=1):
            data.tags.append({"id": i, "name": word, "color": _COLORS[i % len(_COLORS)]})
        comment_id = 0
        for i in range(1, tickets + 1):
            created = start + dt.timedelta(minutes=37 * i + rng.randint(0, 30))
            updated = created + dt.timedelta(minutes=rng.randint(0, 60 * 24 * 20))
            data.tickets[i] = {
                "id": i,
                "subject": f"{rng.choice(_WORDS).title()} {rng.choice(_WORDS)} issue #{i}",
                "status": rng.choice(STATUSES),
                "priority": rng.choice(PRIORITIES),
                "requester_email": f"customer{rng.randint(1, tickets * 2)}@example.org",
                "assignee_id": rng.choice([None, *range(1, len(_NAMES) + 1)]),
                "tags": sorted(rng.sample(_WORDS, rng.randint(0, 3))),
                "external_id": None,
                "created_at": _iso(created),
                "updated_at": _iso(updated),
            }
            for _ in range(rng.randint(0, 4)):
                comment_id += 1
                data.comments[comment_id] = {
                    "id": comment_id,
                    "ticket_id": i,
                    "author_email": f"customer{i}@example.org",
                    "body": f"Comment {comment_id} on ticket {i}",
                    "public": rng.random() < 0.8,
                    "created_at": _iso(updated - dt.timedelta(minutes=comment_id % 50)),
                }
        data.clock = start + dt.timedelta(days=60)
        return data

    def now(self) -> str:
        """A strictly increasing clock, so every write gets a later updated_at than anything before."""
        self.clock += dt.timedelta(seconds=1)
        return _iso(self.clock)


def _cursor(ticket: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(f"{ticket['updated_at']}|{ticket['id']}".encode()).decode().rstrip("=")


def _uncursor(token: str) -> tuple[str, int]:
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        updated_at, ident = text.rsplit("|", 1)
        return updated_at, int(ident)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"invalid cursor {token!r}") from exc


def _int_param(query: dict[str, list[str]], name: str, default: int, low: int, high: int) -> int:
    raw = query.get(name, [str(default)])[-1]
    try:
        value = int(raw)
    except ValueError as exc:
        raise ApiError(400, f"{name} must be an integer (got {raw!r})") from exc
    if not low <= value <= high:
        raise ApiError(400, f"{name} must be between {low} and {high} (got {value})")
    return value


class HelpdeskApi:
    """Request handling, independent of the HTTP server: (method, path, query, body) -> (status, payload)."""

    TICKET_FIELDS = ("subject", "status", "priority", "requester_email", "assignee_id", "tags", "external_id")

    def __init__(self, data: HelpdeskData, api_key: str = API_KEY) -> None:
        self.data = data
        self.api_key = api_key
        self.lock = threading.Lock()

    def handle(
        self, method: str, path: str, query: dict[str, list[str]], body: Any, origin: str, api_key: str | None
    ) -> tuple[int, Any, dict[str, str]]:
        if api_key != self.api_key:
            raise ApiError(401, "missing or invalid API key (send it in the X-Api-Key header)")
        routes = (
            ("GET", r"/api/v1/tickets", self.list_tickets),
            ("POST", r"/api/v1/tickets", self.create_ticket),
            ("POST", r"/api/v1/tickets/import", self.import_tickets),
            ("GET", r"/api/v1/tickets/(\d+)", self.get_ticket),
            ("PATCH", r"/api/v1/tickets/(\d+)", self.update_ticket),
            ("DELETE", r"/api/v1/tickets/(\d+)", self.delete_ticket),
            ("GET", r"/api/v1/tickets/(\d+)/comments", self.list_comments),
            ("POST", r"/api/v1/tickets/(\d+)/comments", self.create_comment),
            ("GET", r"/api/v1/agents", self.list_agents),
            ("GET", r"/api/v1/tags", self.list_tags),
        )
        path_matched = False
        for route_method, pattern, handler in routes:
            match = re.fullmatch(pattern, path)
            if match:
                path_matched = True
                if route_method == method:
                    with self.lock:
                        return handler(*match.groups(), query=query, body=body, origin=origin)
        if path_matched:
            raise ApiError(405, f"{method} is not allowed on {path}")
        raise ApiError(404, f"no such endpoint: {path}")

    # -- tickets: cursor in the body

    def list_tickets(self, *, query: dict, body: Any, origin: str) -> tuple[int, Any, dict]:
        limit = _int_param(query, "limit", 25, 1, 100)
        rows = sorted(self.data.tickets.values(), key=lambda t: (_parse_instant(t["updated_at"]), t["id"]))
        if "updated_since" in query:
            since = _parse_instant(query["updated_since"][-1])
            rows = [t for t in rows if _parse_instant(t["updated_at"]) > since]
        if "cursor" in query:
            after = _uncursor(query["cursor"][-1])
            key = (_parse_instant(after[0]), after[1])
            rows = [t for t in rows if (_parse_instant(t["updated_at"]), t["id"]) > key]
        page = rows[:limit]
        next_cursor = _cursor(page[-1]) if len(rows) > limit else None
        return 200, {"tickets": page, "meta": {"next_cursor": next_cursor, "count": len(page)}}, {}

    def get_ticket(self, ident: str, **_: Any) -> tuple[int, Any, dict]:
        return 200, {"ticket": self._ticket(int(ident))}, {}

    def _ticket(self, ident: int) -> dict[str, Any]:
        try:
            return self.data.tickets[ident]
        except KeyError:
            raise ApiError(404, f"ticket {ident} not found") from None

    def _check_ticket(self, fields: Any, creating: bool) -> dict[str, Any]:
        if not isinstance(fields, dict):
            raise ApiError(422, 'body must be {"ticket": {...}}')
        unknown = sorted(set(fields) - set(self.TICKET_FIELDS))
        if unknown:
            raise ApiError(422, f"unknown ticket fields: {', '.join(unknown)}")
        if creating and not str(fields.get("subject") or "").strip():
            raise ApiError(422, "subject is required")
        if "status" in fields and fields["status"] not in STATUSES:
            raise ApiError(422, f"status must be one of {', '.join(STATUSES)} (got {fields['status']!r})")
        if "priority" in fields and fields["priority"] not in PRIORITIES:
            raise ApiError(
                422, f"priority must be one of {', '.join(PRIORITIES)} (got {fields['priority']!r})"
            )
        external_id = fields.get("external_id")
        if (
            creating
            and external_id
            and any(t["external_id"] == external_id for t in self.data.tickets.values())
        ):
            raise ApiError(422, f"external_id {external_id!r} is already used by another ticket")
        return fields

    def _new_ticket(self, fields: dict[str, Any]) -> dict[str, Any]:
        now = self.data.now()
        ident = max(self.data.tickets, default=0) + 1
        ticket = {
            "id": ident,
            "status": "open",
            "priority": "normal",
            "requester_email": None,
            "assignee_id": None,
            "tags": [],
            "external_id": None,
            **fields,
            "created_at": now,
            "updated_at": now,
        }
        self.data.tickets[ident] = ticket
        return ticket

    def create_ticket(self, *, query: dict, body: Any, origin: str) -> tuple[int, Any, dict]:
        fields = self._check_ticket(
            (body or {}).get("ticket") if isinstance(body, dict) else None, creating=True
        )
        return 201, {"ticket": self._new_ticket(fields)}, {}

    def import_tickets(self, *, query: dict, body: Any, origin: str) -> tuple[int, Any, dict]:
        rows = body.get("tickets") if isinstance(body, dict) else None
        if not isinstance(rows, list) or not rows:
            raise ApiError(422, 'body must be {"tickets": [...]} with at least one ticket')
        if len(rows) > IMPORT_LIMIT:
            raise ApiError(422, f"at most {IMPORT_LIMIT} tickets per import (got {len(rows)})")
        for n, row in enumerate(rows):
            try:
                self._check_ticket(row, creating=True)
            except ApiError as exc:
                raise ApiError(422, f"tickets[{n}]: {exc.message}") from None
        created = [self._new_ticket(row) for row in rows]
        return 200, {"imported": len(created), "ids": [t["id"] for t in created]}, {}

    def update_ticket(self, ident: str, *, query: dict, body: Any, origin: str) -> tuple[int, Any, dict]:
        ticket = self._ticket(int(ident))
        fields = self._check_ticket(
            (body or {}).get("ticket") if isinstance(body, dict) else None, creating=False
        )
        ticket.update(fields)
        ticket["updated_at"] = self.data.now()
        return 200, {"ticket": ticket}, {}

    def delete_ticket(self, ident: str, **_: Any) -> tuple[int, Any, dict]:
        self._ticket(int(ident))
        del self.data.tickets[int(ident)]
        for key in [k for k, c in self.data.comments.items() if c["ticket_id"] == int(ident)]:
            del self.data.comments[key]
        return 204, None, {}

    # -- comments: a bare list, the next page in a Link header

    def list_comments(self, ident: str, *, query: dict, body: Any, origin: str) -> tuple[int, Any, dict]:
        self._ticket(int(ident))
        per_page = _int_param(query, "per_page", 10, 1, 100)
        page = _int_param(query, "page", 1, 1, 10_000)
        rows = sorted(
            (c for c in self.data.comments.values() if c["ticket_id"] == int(ident)), key=lambda c: c["id"]
        )
        chunk = rows[(page - 1) * per_page : page * per_page]
        headers = {}
        if page * per_page < len(rows):
            link = f"/api/v1/tickets/{ident}/comments?{urlencode({'page': page + 1, 'per_page': per_page})}"
            headers["Link"] = f'<{origin}{link}>; rel="next"'
        return 200, chunk, headers

    def create_comment(self, ident: str, *, query: dict, body: Any, origin: str) -> tuple[int, Any, dict]:
        ticket = self._ticket(int(ident))
        fields = body.get("comment") if isinstance(body, dict) else None
        if not isinstance(fields, dict) or not str(fields.get("body") or "").strip():
            raise ApiError(422, "comment body is required")
        comment_id = max(self.data.comments, default=0) + 1
        comment = {
            "id": comment_id,
            "ticket_id": ticket["id"],
            "author_email": fields.get("author_email"),
            "body": fields["body"],
            "public": bool(fields.get("public", True)),
            "created_at": self.data.now(),
        }
        self.data.comments[comment_id] = comment
        ticket["updated_at"] = comment["created_at"]
        return 201, {"comment": comment}, {}

    # -- agents: offset and limit

    def list_agents(self, *, query: dict, body: Any, origin: str) -> tuple[int, Any, dict]:
        offset = _int_param(query, "offset", 0, 0, 1_000_000)
        limit = _int_param(query, "limit", 10, 1, 50)
        return 200, {"agents": self.data.agents[offset : offset + limit], "total": len(self.data.agents)}, {}

    # -- tags: the next page's full URL in the body

    def list_tags(self, *, query: dict, body: Any, origin: str) -> tuple[int, Any, dict]:
        size = 8
        token = query.get("page_token", ["0"])[-1]
        try:
            start = (
                int(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()) if token != "0" else 0
            )
        except ValueError as exc:
            raise ApiError(400, f"invalid page_token {token!r}") from exc
        chunk = self.data.tags[start : start + size]
        following = start + size
        next_url = None
        if following < len(self.data.tags):
            next_token = base64.urlsafe_b64encode(str(following).encode()).decode().rstrip("=")
            next_url = f"{origin}/api/v1/tags?page_token={next_token}"
        return 200, {"data": chunk, "links": {"next": next_url}}, {}


@dataclass
class JournalEntry:
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any
    status: int


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's signature
        if self.server.verbose:
            super().log_message(format, *args)

    def _serve(self) -> None:
        parts = urlsplit(self.path)
        query = parse_qs(parts.query, keep_blank_values=True)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body: Any = None
        status: int
        headers: dict[str, str] = {}
        try:
            try:
                body = json.loads(raw) if raw else None
            except ValueError as exc:
                raise ApiError(400, f"body is not valid JSON: {exc}") from exc
            host = self.headers.get("Host") or f"127.0.0.1:{self.server.server_address[1]}"
            origin = f"http://{host}"
            status, payload, headers = self.server.api.handle(
                self.command, parts.path, query, body, origin, self.headers.get("X-Api-Key")
            )
        except ApiError as exc:
            status, payload = exc.status, {"error": {"status": exc.status, "message": exc.message}}
        self.server.record(JournalEntry(self.command, parts.path, query, body, status))
        content = b"" if status == 204 else json.dumps(payload).encode()
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        if status != 204:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, api: HelpdeskApi, verbose: bool = False) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.api = api
        self.verbose = verbose
        self.entries: list[JournalEntry] = []
        self._journal_lock = threading.Lock()

    def record(self, entry: JournalEntry) -> None:
        with self._journal_lock:
            self.entries.append(entry)


class HelpdeskSandbox:
    """A running helpdesk server: its URL, key, request journal and data."""

    def __init__(
        self, tickets: int = 60, seed: int = 7, api_key: str = API_KEY, port: int = 0, verbose: bool = False
    ) -> None:
        self.tickets = tickets
        self.seed = seed
        self.api_key = api_key
        self.api = HelpdeskApi(HelpdeskData.generate(tickets, seed), api_key)
        self._server = _Server(port, self.api, verbose)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def config(self, **extra: Any) -> dict[str, Any]:
        """A tap/target config pointing at this server."""
        return {"base_url": self.url, "api_token": self.api_key, **extra}

    def start(self) -> HelpdeskSandbox:
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="helpdesk-sandbox", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def serve_forever(self) -> None:
        """Serve in this thread until interrupted (``python -m sandbox.helpdesk``)."""
        try:
            self._server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            self._server.server_close()

    def journal(self) -> list[JournalEntry]:
        with self._server._journal_lock:
            return list(self._server.entries)

    def records(self, resource: str) -> list[dict[str, Any]]:
        """A copy of a resource's records: tickets, comments, agents or tags."""
        with self.api.lock:
            rows = getattr(self.api.data, resource)
            values = rows.values() if isinstance(rows, dict) else rows
            return json.loads(json.dumps(list(values)))

    def reset(self) -> None:
        with self.api.lock:
            self.api.data = HelpdeskData.generate(self.tickets, self.seed)
        with self._server._journal_lock:
            self._server.entries.clear()


@contextmanager
def running_helpdesk(tickets: int = 60, seed: int = 7, api_key: str = API_KEY) -> Iterator[HelpdeskSandbox]:
    """Serve a fresh helpdesk on a free 127.0.0.1 port for the duration of the block."""
    sandbox = HelpdeskSandbox(tickets, seed, api_key).start()
    try:
        yield sandbox
    finally:
        sandbox.stop()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m sandbox.helpdesk",
        description="Serve the local helpdesk API (the `helpdesk` connection's sandbox) on 127.0.0.1.",
    )
    parser.add_argument(
        "--port", type=int, default=8566, help="port to listen on (0 = any free port; default 8566)"
    )
    parser.add_argument("--tickets", type=int, default=60, help="number of generated tickets (default 60)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the generated data (default 7)")
    parser.add_argument("--api-key", default=API_KEY, help=f"the accepted X-Api-Key (default {API_KEY})")
    parser.add_argument("--verbose", action="store_true", help="log every request")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    sandbox = HelpdeskSandbox(args.tickets, args.seed, args.api_key, args.port, args.verbose)
    print(f"{READY_LINE_PREFIX}{sandbox.url} (X-Api-Key: {args.api_key}, {args.tickets} tickets)", flush=True)
    sandbox.serve_forever()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
