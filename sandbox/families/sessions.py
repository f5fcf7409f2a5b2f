"""A session-login API, shaped like many on-premise and enterprise APIs.

The awkward parts are kept on purpose: a client logs in for a short-lived token sent as
``Authorization: Session <token>`` (or passes ``?api_key=``), and logging in too often revokes its oldest
sessions; projects are paged by page number with a total and no next link (and an over-large page_size is
silently clamped); some projects' members answer 404 or 403; the audit log's next cursor comes only in
the ``X-Next-Cursor`` response header; timestamps carry various UTC offsets; member batches answer 200 with
an outcome per input index. See docs/families.md.

    python -m sandbox.families.sessions --port 8574 [--seed 7] [--size 45]
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sandbox.families.common import (
    ApiError,
    FamilyApi,
    FamilySandbox,
    Reply,
    Request,
    iso,
    main,
    parse_instant,
    running,
)

USERNAME, PASSWORD, API_KEY = "admin", "sessions-pass", "sessions-api-key"
ROLES = ("viewer", "editor", "admin")
BATCH_LIMIT = 50
OFFSETS = (0, 120, -300, 330, 60, -480)  # minutes east of UTC that timestamps are written in
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")
_NAMES = ("apollo", "gemini", "mercury", "voyager", "pioneer", "viking", "cassini", "juno", "dawn", "rosetta")
_PEOPLE = ("ada", "grace", "alan", "edsger", "barbara", "ken", "frances", "john", "margaret", "radia")
_ACTIONS = (
    "login",
    "project.updated",
    "member.added",
    "member.removed",
    "export.started",
    "settings.changed",
)


def _fail(status: int, message: str) -> ApiError:
    return ApiError(status, {"error": message})


class SessionsApi(FamilyApi):
    name = "sessions"
    description = "A local session-login API (projects, members, audit log)."
    default_port = 8574
    default_size = 45

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--username", default=USERNAME, help=f"login name (default {USERNAME})")
        parser.add_argument("--password", default=PASSWORD, help=f"login password (default {PASSWORD})")
        parser.add_argument(
            "--api-key", default=API_KEY, help=f"the ?api_key= alternative (default {API_KEY})"
        )
        parser.add_argument(
            "--token-ttl", type=int, default=300, help="seconds a session lives (default 300)"
        )
        parser.add_argument(
            "--max-sessions",
            type=int,
            default=5,
            help="live sessions per user; a new login revokes the oldest",
        )
        parser.add_argument(
            "--audit-size", type=int, default=250, help="generated audit entries (default 250)"
        )

    def generate(self) -> None:
        rng = self.rng = random.Random(self.options.seed)
        self.sessions: dict[str, float] = {}  # token -> expiry, oldest first
        anchor = int(self.clock.anchor)
        self.projects: dict[int, dict[str, Any]] = {}
        self.members: dict[int, list[dict[str, Any]]] = {}
        self.next_member = 1
        for ident in range(1, self.options.size + 1):
            created = anchor - rng.randint(30, 700) * 86400
            roll = rng.random()
            self.projects[ident] = {
                "id": ident,
                "key": f"PRJ-{ident}",
                "name": f"{rng.choice(_NAMES).title()} {ident}",
                "status": "archived" if roll < 0.1 else "active",
                "visibility": "restricted" if 0.1 <= roll < 0.2 else rng.choice(("private", "internal")),
                "owner": {"id": rng.randint(1, 10), "name": rng.choice(_PEOPLE).title()},
                "created_at": self._stamp(created, rng),
                "updated_at": self._stamp(created + rng.randint(0, 29 * 86400), rng),
            }
            self.members[ident] = []
            for _ in range(rng.randint(0, 8)):
                person = f"{rng.choice(_PEOPLE)}{rng.randint(1, 999)}@example.com"
                self._add_member(ident, person, rng.choice(ROLES), created + rng.randint(0, 86400), rng)
        self.audit: list[dict[str, Any]] = []
        moments = sorted(
            rng.randint(anchor - 90 * 86400, anchor - 60) for _ in range(self.options.audit_size)
        )
        for moment in moments:
            self._log(moment, rng.choice(_ACTIONS), f"project:{rng.randint(1, self.options.size)}", rng)

    def _stamp(self, seconds: int, rng: random.Random) -> str:
        return iso(seconds, offset_minutes=rng.choice(OFFSETS))

    def _add_member(self, project: int, email: str, role: str, at: int, rng: random.Random) -> dict[str, Any]:
        member = {
            "id": self.next_member,
            "project_id": project,
            "email": email,
            "role": role,
            "added_at": self._stamp(at, rng),
        }
        self.next_member += 1
        self.members[project].append(member)
        return member

    def _log(self, moment: int, action: str, target: str, rng: random.Random) -> dict[str, Any]:
        entry = {"id": len(self.audit) + 1, "at": self._stamp(moment, rng), "actor": rng.choice(_PEOPLE),
                 "action": action, "target": target}  # fmt: skip
        self.audit.append(entry)
        return entry

    # -- plumbing

    def credentials(self) -> dict[str, Any]:
        return {
            "username": self.options.username,
            "password": self.options.password,
            "api_key": self.options.api_key,
        }

    def error(self, status: int, message: str) -> Reply:
        return Reply(status, {"error": {429: "too many requests"}.get(status, message)})

    def authenticate(self, request: Request) -> str:
        if request.path == "/api/v1/login":
            return ""
        key = request.param("api_key")
        if key is not None:
            if key != self.options.api_key:
                raise _fail(401, "invalid api key")
            return "api_key"
        scheme, _, token = (request.header("authorization") or "").partition(" ")
        if scheme != "Session" or not token.strip():
            raise _fail(401, "authentication required")
        expiry = self.sessions.get(token.strip())
        if expiry is None or expiry <= self.clock.now():
            raise _fail(401, "session expired")
        return token.strip()

    def routes(self) -> list[tuple[str, str, Any]]:
        return [
            ("POST", r"/api/v1/login", self.login),
            ("POST", r"/api/v1/logout", self.logout),
            ("GET", r"/api/v1/projects", self.list_projects),
            ("GET", r"/api/v1/projects/(\d+)/members", self.list_members),
            ("POST", r"/api/v1/projects/(\d+)/members/batch", self.add_members),
            ("GET", r"/api/v1/audit", self.list_audit),
        ]

    def records(self, resource: str) -> list[dict[str, Any]]:
        if resource == "projects":
            return list(self.projects.values())
        if resource == "members":
            return [m for rows in self.members.values() for m in rows]
        if resource == "audit":
            return list(self.audit)
        raise KeyError(resource)

    def touch(self, resource: str, count: int) -> list[dict[str, Any]]:
        """Projects: ``count`` updated now. Audit: ``count`` entries logged now."""
        now = int(self.clock.now())
        if resource == "projects":
            chosen = self.rng.sample(sorted(self.projects), min(count, len(self.projects)))
            for ident in chosen:
                self.projects[ident]["updated_at"] = self._stamp(now, self.rng)
            return [self.projects[i] for i in chosen]
        if resource == "audit":
            return [self._log(now, "settings.changed", "system", self.rng) for _ in range(count)]
        raise KeyError(resource)

    # -- session login

    def login(self, request: Request, caller: str) -> Reply:
        try:
            body = json.loads(request.body or b"null")
        except ValueError:
            raise _fail(400, "body must be JSON") from None
        if not isinstance(body, dict) or not body.get("username") or not body.get("password"):
            raise _fail(400, "username and password are required")
        if body["username"] != self.options.username or body["password"] != self.options.password:
            raise _fail(401, "invalid credentials")
        token = self.rng.randbytes(20).hex()
        self.sessions[token] = self.clock.now() + self.options.token_ttl
        while len(self.sessions) > self.options.max_sessions:  # the oldest session is revoked
            del self.sessions[next(iter(self.sessions))]
        return Reply(200, {"token": token, "expires_in": self.options.token_ttl})

    def logout(self, request: Request, caller: str) -> Reply:
        self.sessions.pop(caller, None)
        return Reply(204)

    # -- reads

    def _page(self, request: Request, rows: list[dict[str, Any]]) -> Reply:
        """Page numbers from 1; page_size above 100 is clamped to 100 without a word."""
        numbers = {}
        for name, default in (("page", 1), ("page_size", 20)):
            text = request.param(name) or str(default)
            if not text.isdigit() or int(text) < 1:
                raise _fail(400, f"{name} must be a positive integer (got {text!r})")
            numbers[name] = int(text)
        page, size = numbers["page"], min(numbers["page_size"], 100)
        items = rows[(page - 1) * size : page * size]
        return Reply(200, {"items": items, "page": page, "page_size": size, "total": len(rows)})

    def list_projects(self, request: Request, caller: str) -> Reply:
        return self._page(request, list(self.projects.values()))

    def _project(self, ident: str) -> dict[str, Any]:
        project = self.projects.get(int(ident))
        if project is None:
            raise _fail(404, "project not found")
        if project["status"] == "archived":
            raise _fail(404, "project archived")
        if project["visibility"] == "restricted":
            raise _fail(403, "forbidden")
        return project

    def list_members(self, request: Request, caller: str, ident: str) -> Reply:
        project = self._project(ident)
        return self._page(request, self.members[project["id"]])

    def list_audit(self, request: Request, caller: str) -> Reply:
        """A bare array, oldest first; the next cursor is the X-Next-Cursor header, absent at the end."""
        text = request.param("limit") or "50"
        if not text.isdigit() or not 1 <= int(text) <= 200:
            raise _fail(400, f"limit must be between 1 and 200 (got {text!r})")
        limit = int(text)
        rows = sorted(self.audit, key=lambda e: (parse_instant(e["at"]), e["id"]))
        since = request.param("since")
        if since:
            try:
                moment = parse_instant(since)
            except ValueError:
                raise _fail(400, f"since must be an ISO-8601 instant (got {since!r})") from None
            rows = [e for e in rows if parse_instant(e["at"]) > moment]
        cursor = request.param("cursor")
        if cursor:
            try:
                after = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))["after"]
                position = next(i for i, e in enumerate(rows) if e["id"] == after) + 1
            except (ValueError, KeyError, TypeError, StopIteration):
                raise _fail(400, "invalid cursor") from None
            rows = rows[position:]
        page = rows[:limit]
        headers = {}
        if len(rows) > limit:
            token = json.dumps({"after": page[-1]["id"]}).encode()
            headers["X-Next-Cursor"] = base64.urlsafe_b64encode(token).decode().rstrip("=")
        return Reply(200, page, headers)

    # -- writes

    def add_members(self, request: Request, caller: str, ident: str) -> Reply:
        """200 with one outcome per input index, whatever the mix of successes and failures."""
        project = self._project(ident)
        try:
            body = json.loads(request.body or b"null")
        except ValueError:
            raise _fail(400, "body must be JSON") from None
        inputs = body.get("members") if isinstance(body, dict) else None
        if not isinstance(inputs, list) or not inputs:
            raise _fail(400, 'body must be {"members": [...]} with at least one member')
        if len(inputs) > BATCH_LIMIT:
            raise _fail(400, f"at most {BATCH_LIMIT} members per batch (got {len(inputs)})")
        now = int(self.clock.now())
        results = []
        for index, item in enumerate(inputs):
            item = item if isinstance(item, dict) else {}
            email, role = item.get("email"), item.get("role", "viewer")
            taken = {m["email"].lower() for m in self.members[project["id"]]}
            if not email:
                problem = ("missing_field", "email is required")
            elif not isinstance(email, str) or not _EMAIL.fullmatch(email):
                problem = ("invalid_email", f"{email!r} is not an email address")
            elif role not in ROLES:
                problem = ("invalid_role", f"role must be one of {', '.join(ROLES)} (got {role!r})")
            elif email.lower() in taken:
                problem = ("already_member", f"{email} is already a member of {project['key']}")
            else:
                member = self._add_member(project["id"], email, role, now, self.rng)
                self._log(now, "member.added", f"project:{project['id']}", self.rng)
                results.append({"index": index, "ok": True, "id": member["id"]})
                continue
            results.append(
                {"index": index, "ok": False, "error": {"code": problem[0], "message": problem[1]}}
            )
        if any(r["ok"] for r in results):
            project["updated_at"] = self._stamp(now, self.rng)
        return Reply(200, {"results": results})


@contextmanager
def running_sessions(**options: Any) -> Iterator[FamilySandbox]:
    """Serve the sessions API as a subprocess on a free port (options: seed, size, now, username, password,
    api_key, token_ttl, max_sessions, audit_size)."""
    with running("sandbox.families.sessions", SessionsApi.name, **options) as handle:
        yield handle


if __name__ == "__main__":
    raise SystemExit(main(SessionsApi))
