"""The sessions sandbox: login for a short-lived token, page numbers with a total, a cursor only in a
response header, per-index batch outcomes (checked with plain httpx)."""

from __future__ import annotations

from datetime import datetime

import pytest

from sandbox.families.sessions import running_sessions

NOW = 1_767_225_600  # 2026-01-01T00:00:00Z


@pytest.fixture(scope="module")
def sb():
    with running_sessions(size=45, now=NOW, token_ttl=30) as handle:
        yield handle


def login(client, sb) -> str:
    response = client.post("/api/v1/login", json={k: sb.credentials[k] for k in ("username", "password")})
    assert response.status_code == 200, response.text
    return response.json()["token"]


@pytest.fixture
def api(sb):
    with sb.client() as client:
        client.headers["Authorization"] = f"Session {login(client, sb)}"
        yield client


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_login_answers_a_token_with_its_lifetime(sb):
    with sb.client() as anon:
        body = anon.post(
            "/api/v1/login", json={"username": "admin", "password": sb.credentials["password"]}
        ).json()
        assert set(body) == {"token", "expires_in"} and body["expires_in"] == 30
        wrong = anon.post("/api/v1/login", json={"username": "admin", "password": "guess"})
        assert wrong.status_code == 401 and wrong.json() == {"error": "invalid credentials"}
        assert anon.post("/api/v1/login", json={"username": "admin"}).status_code == 400


def test_the_session_header_the_api_key_and_nothing_else_authenticate(sb, api):
    assert api.get("/api/v1/projects").status_code == 200
    with sb.client() as anon:
        token = api.headers["Authorization"].split()[1]
        assert anon.get("/api/v1/projects", headers={"Authorization": f"Bearer {token}"}).status_code == 401
        unknown = anon.get("/api/v1/projects", headers={"Authorization": "Session 00ff"})
        assert unknown.status_code == 401 and unknown.json() == {"error": "session expired"}
        key = sb.credentials["api_key"]
        for path in ("/api/v1/projects", "/api/v1/audit", "/api/v1/projects/1/members"):
            assert anon.get(path, params={"api_key": key}).status_code in (200, 403, 404), path
        assert anon.get("/api/v1/audit", params={"api_key": key}).status_code == 200
        assert anon.get("/api/v1/projects", params={"api_key": "nope"}).status_code == 401


def test_a_session_expires_after_its_lifetime(sb):
    with sb.client() as client:
        headers = {"Authorization": f"Session {login(client, sb)}"}
        assert client.get("/api/v1/projects", headers=headers).status_code == 200
        sb.advance(31)
        expired = client.get("/api/v1/projects", headers=headers)
        assert expired.status_code == 401 and expired.json() == {"error": "session expired"}


def test_logging_in_too_often_revokes_the_oldest_session():
    with running_sessions(size=3, max_sessions=2) as sb, sb.client() as client:
        tokens = [login(client, sb) for _ in range(3)]
        statuses = [
            client.get("/api/v1/projects", headers={"Authorization": f"Session {t}"}).status_code
            for t in tokens
        ]
        assert statuses == [401, 200, 200]


def test_projects_page_by_number_and_a_client_stops_from_the_total(sb, api):
    first = api.get("/api/v1/projects", params={"page_size": 10}).json()
    assert set(first) == {"items", "page", "page_size", "total"} and first["total"] == 45
    seen, page = [], 1
    while (page - 1) * 10 < first["total"]:
        seen += api.get("/api/v1/projects", params={"page": page, "page_size": 10}).json()["items"]
        page += 1
    assert seen == sb.records("projects")
    assert api.get("/api/v1/projects", params={"page": 6, "page_size": 10}).json()["items"] == []
    clamped = api.get("/api/v1/projects", params={"page_size": 500}).json()
    assert clamped["page_size"] == 100 and len(clamped["items"]) == 45
    assert api.get("/api/v1/projects", params={"page": 0}).status_code == 400
    offsets = {p["updated_at"][19:] for p in seen}
    assert len(offsets) > 2, "timestamps come in several UTC offsets"


def test_members_of_archived_or_restricted_projects_answer_404_or_403(sb, api):
    projects = sb.records("projects")
    archived = [p for p in projects if p["status"] == "archived"]
    restricted = [p for p in projects if p["visibility"] == "restricted" and p["status"] != "archived"]
    assert archived and restricted
    for project in archived:
        response = api.get(f"/api/v1/projects/{project['id']}/members")
        assert (response.status_code, response.json()) == (404, {"error": "project archived"})
    for project in restricted:
        response = api.get(f"/api/v1/projects/{project['id']}/members")
        assert (response.status_code, response.json()) == (403, {"error": "forbidden"})
    readable = next(p for p in projects if p["status"] == "active" and p["visibility"] != "restricted")
    members = api.get(f"/api/v1/projects/{readable['id']}/members", params={"page_size": 100}).json()
    truth = [m for m in sb.records("members") if m["project_id"] == readable["id"]]
    assert members["items"] == truth and members["total"] == len(truth)
    assert api.get("/api/v1/projects/999/members").json() == {"error": "project not found"}


def walk_audit(api, **params) -> tuple[list[dict], list]:
    rows, cursors = [], []
    for _ in range(100):
        response = api.get("/api/v1/audit", params=params)
        assert response.status_code == 200 and isinstance(response.json(), list)
        rows += response.json()
        cursor = response.headers.get("X-Next-Cursor")
        cursors.append(cursor)
        if cursor is None:
            return rows, cursors
        params = {**params, "cursor": cursor}
    raise AssertionError("the audit cursor never ended")


def test_the_audit_cursor_comes_only_in_a_header_and_ends_absent(sb, api):
    rows, cursors = walk_audit(api, limit=40)
    assert len(cursors) == 7 and cursors[-1] is None and all(cursors[:-1])
    assert [r["id"] for r in rows] == [
        r["id"] for r in sorted(sb.records("audit"), key=lambda r: instant(r["at"]))
    ]
    moments = [instant(r["at"]) for r in rows]
    assert moments == sorted(moments)
    assert [r["at"] for r in rows] != sorted(r["at"] for r in rows), "the text order is not the time order"
    later, _ = walk_audit(api, since=rows[-5]["at"])
    assert [r["id"] for r in later] == [r["id"] for r in rows[-4:]]
    assert api.get("/api/v1/audit", params={"cursor": "garbage"}).status_code == 400
    assert api.get("/api/v1/audit", params={"limit": 201}).status_code == 400


def test_member_batches_answer_an_outcome_per_index(sb, api):
    project = next(
        p for p in sb.records("projects") if p["status"] == "active" and p["visibility"] != "restricted"
    )
    taken = next((m["email"] for m in sb.records("members") if m["project_id"] == project["id"]), None)
    members = [
        {"email": "new.one@example.com", "role": "editor"},
        {"email": "not-an-email"},
        {"email": "new.two@example.com", "role": "owner"},
        {"role": "viewer"},
        {"email": "new.one@example.com"},
        {"email": taken or "new.three@example.com"},
    ]
    response = api.post(f"/api/v1/projects/{project['id']}/members/batch", json={"members": members})
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["index"] for r in results] == list(range(6))
    assert results[0]["ok"] is True and isinstance(results[0]["id"], int)
    codes = [r["error"]["code"] if not r["ok"] else None for r in results]
    assert codes[1:5] == ["invalid_email", "invalid_role", "missing_field", "already_member"]
    assert codes[5] == ("already_member" if taken else None)
    listed = api.get(f"/api/v1/projects/{project['id']}/members", params={"page_size": 100}).json()["items"]
    assert results[0]["id"] in {m["id"] for m in listed}
    too_many = [{"email": f"n{i}@example.com"} for i in range(51)]
    assert (
        api.post(f"/api/v1/projects/{project['id']}/members/batch", json={"members": too_many}).status_code
        == 400
    )
    archived = next(p for p in sb.records("projects") if p["status"] == "archived")
    blocked = api.post(f"/api/v1/projects/{archived['id']}/members/batch", json={"members": members[:1]})
    assert blocked.status_code == 404


def test_the_journal_masks_passwords_tokens_and_api_keys(sb, api):
    sb.clear_journal()
    api.get("/api/v1/projects", params={"api_key": sb.credentials["api_key"], "page": 2})
    entries = sb.journal()
    text = str(entries)
    assert sb.credentials["api_key"] not in text and api.headers["Authorization"].split()[1] not in text
    assert entries[0]["query"] == {"api_key": ["***"], "page": ["2"]}
    assert entries[0]["headers"]["authorization"] == "Session ***"
    with sb.client() as client:
        login(client, sb)
    assert sb.journal()[-1]["body"] == {"username": "admin", "password": "***"}
