"""A CRM API following HubSpot's CRM v3 objects API: contacts and companies.

The awkward parts are kept on purpose: reads are a POST search with filters, sorts and the paging token in
the JSON body, capped at 10,000 results per query (paging past it is a 400) and limited to a few requests a
second; every property value is a string; batch writes answer 207 Multi-Status with per-input errors, and
their results do not follow the input order. See docs/families.md.

    python -m sandbox.families.crm --port 8572 [--seed 7] [--size 200]
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import re
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any
from urllib.parse import urlencode

from sandbox.families.common import (
    ApiError,
    FamilyApi,
    FamilySandbox,
    RateWindow,
    Reply,
    Request,
    iso,
    main,
    parse_instant,
    running,
)

TOKEN = "pat-na1-families"
TYPES = ("contacts", "companies")
PROPERTIES = {
    "contacts": ("email", "firstname", "lastname", "phone", "company", "jobtitle", "lifecyclestage", "city"),
    "companies": ("name", "domain", "industry", "city", "country", "numberofemployees", "phone"),
}
READ_ONLY = ("createdate", "hs_lastmodifieddate", "hs_object_id")
DATES = ("createdate", "hs_lastmodifieddate", "lastmodifieddate")
DEFAULTS = {
    "contacts": ("createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname"),
    "companies": ("createdate", "domain", "hs_lastmodifieddate", "hs_object_id", "name"),
}
ALWAYS = {  # returned whatever properties a read asks for
    "contacts": ("createdate", "hs_object_id", "lastmodifieddate"),
    "companies": ("createdate", "hs_lastmodifieddate", "hs_object_id"),
}
UNIQUE = {"contacts": "email", "companies": "domain"}
STAGES = (
    "subscriber",
    "lead",
    "marketingqualifiedlead",
    "salesqualifiedlead",
    "opportunity",
    "customer",
    "other",
)
OPERATORS = (
    "EQ",
    "NEQ",
    "LT",
    "LTE",
    "GT",
    "GTE",
    "BETWEEN",
    "IN",
    "NOT_IN",
    "HAS_PROPERTY",
    "NOT_HAS_PROPERTY",
)
SEARCH_KEYS = ("filterGroups", "sorts", "properties", "limit", "after", "query")
BATCH_LIMIT = 100
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")
_FIRST = (
    "ada",
    "grace",
    "alan",
    "edsger",
    "barbara",
    "ken",
    "frances",
    "john",
    "margaret",
    "radia",
    "niklaus",
)
_LAST = ("lovelace", "hopper", "turing", "dijkstra", "liskov", "thompson", "allen", "backus", "hamilton")
_INDUSTRIES = ("COMPUTER_SOFTWARE", "RETAIL", "BANKING", "HOSPITAL_HEALTH_CARE", None)


class Invalid(Exception):
    """One input's validation failure: HubSpot's error code and message."""

    def __init__(self, code: str, message: str, name: str, category: str = "VALIDATION_ERROR") -> None:
        super().__init__(message)
        self.code, self.message, self.name, self.category = code, message, name, category


class CrmApi(FamilyApi):
    name = "crm"
    description = "A local CRM API following HubSpot's CRM v3 objects API (contacts, companies)."
    default_port = 8572
    default_size = 200

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--token", default=TOKEN, help=f"the accepted bearer token (default {TOKEN})")
        parser.add_argument("--search-rate", type=int, default=5, help="search requests per second per token")
        parser.add_argument(
            "--search-cap", type=int, default=10_000, help="results one search can page through"
        )
        parser.add_argument("--rate-limit", type=int, default=190, help="other requests per 10 s per token")
        parser.add_argument(
            "--search-lag",
            type=float,
            default=0,
            help="seconds before a write is visible to search (default 0)",
        )

    def generate(self) -> None:
        rng = self.rng = random.Random(self.options.seed)
        self.store: dict[str, dict[str, dict[str, Any]]] = {t: {} for t in TYPES}
        self.next_id = {"contacts": 1001, "companies": 50001}
        self.search_window = RateWindow(self.options.search_rate, 1.0)
        self.window = RateWindow(self.options.rate_limit, 10.0)
        self.requests = 0
        anchor_ms = int(self.clock.anchor * 1000)
        self.generating = True
        for kind, count in (("contacts", self.options.size), ("companies", max(1, self.options.size // 2))):
            created = sorted(
                rng.randint(anchor_ms - 400 * 86_400_000, anchor_ms - 86_400_000) for _ in range(count)
            )
            updated = [c + rng.randint(0, 60 * 86_400_000) for c in created]
            for i in range(1, count):
                if rng.random() < 0.2:  # HubSpot records share modification instants (imports, workflows)
                    updated[i] = updated[i - 1]
            for made, changed in zip(created, updated, strict=True):
                self._add(kind, self._fake(kind, rng), made, min(changed, anchor_ms - 1000))
        self.generating = False

    def _fake(self, kind: str, rng: random.Random) -> dict[str, str | None]:
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        if kind == "contacts":
            return {
                "email": f"{first}.{last}.{self.next_id[kind]}@example.com",
                "firstname": first.title(),
                "lastname": last.title(),
                "phone": f"+1 555 {rng.randint(1000, 9999)}" if rng.random() < 0.5 else None,
                "company": None,
                "jobtitle": rng.choice(("Engineer", "CTO", "Buyer", None)),
                "lifecyclestage": rng.choice(STAGES),
                "city": rng.choice(("Boston", "Dublin", "Berlin", None)),
            }
        return {
            "name": f"{last.title()} {rng.choice(('Labs', 'Systems', 'Partners'))}",
            "domain": f"{last}{self.next_id[kind]}.example.com",
            "industry": rng.choice(_INDUSTRIES),
            "city": rng.choice(("Boston", "Dublin", "Berlin")),
            "country": rng.choice(("United States", "Ireland", "Germany")),
            "numberofemployees": str(rng.choice((5, 50, 500, 5000))),
            "phone": None,
        }

    def _add(self, kind: str, props: dict[str, Any], created_ms: int, updated_ms: int) -> dict[str, Any]:
        ident = str(self.next_id[kind])
        self.next_id[kind] += self.rng.randint(1, 7)
        record = {
            "id": ident,
            "props": {name: props.get(name) for name in PROPERTIES[kind]},
            "created": created_ms,
        }
        self.store[kind][ident] = record
        self._stamp(record, updated_ms)
        return record

    def _stamp(self, record: dict[str, Any], updated_ms: int) -> None:
        record["updated"] = updated_ms
        record["props"].update(
            hs_object_id=record["id"],
            createdate=iso(record["created"] / 1000, "milliseconds"),
            hs_lastmodifieddate=iso(updated_ms / 1000, "milliseconds"),
        )
        lag = self.options.search_lag
        if lag > 0:  # the search index sees this version ``lag`` seconds after the write
            versions = record.setdefault("versions", [])
            snapshot = {"id": record["id"], "props": dict(record["props"]), "created": record["created"]}
            at = 0.0 if self.generating else self.clock.now() + lag  # seeded data is indexed from the start
            versions.append((at, snapshot | {"updated": updated_ms}))
            now = self.clock.now()
            shown = [i for i, (at, _) in enumerate(versions) if at <= now]
            del versions[: shown[-1] if shown else 0]

    def _searchable(self, record: dict[str, Any]) -> dict[str, Any] | None:
        """The version of a record the search index has (None before its first version is indexed)."""
        if self.options.search_lag <= 0:
            return record
        now = self.clock.now()
        indexed = [snapshot for at, snapshot in record["versions"] if at <= now]
        return indexed[-1] if indexed else None

    def _render(self, kind: str, record: dict[str, Any], names: list[str] | None = None) -> dict[str, Any]:
        props = dict(record["props"])
        if kind == "contacts":
            props["lastmodifieddate"] = props["hs_lastmodifieddate"]
        wanted = DEFAULTS[kind] if names is None else [*names, *ALWAYS[kind]]
        return {
            "id": record["id"],
            "properties": {n: props[n] for n in wanted if n in props},
            "createdAt": props["createdate"],
            "updatedAt": props["hs_lastmodifieddate"],
            "archived": False,
        }

    # -- plumbing

    def credentials(self) -> dict[str, Any]:
        return {"token": self.options.token}

    def _correlation(self) -> str:
        self.requests += 1
        return f"{self.options.seed:08x}-0000-4000-8000-{self.requests:012d}"

    def fail(self, status: int, message: str, category: str = "VALIDATION_ERROR", **extra: Any) -> ApiError:
        body = {
            "status": "error",
            "message": message,
            "correlationId": self._correlation(),
            "category": category,
        }
        return ApiError(status, body | extra)

    def error(self, status: int, message: str) -> Reply:
        if status == 429:
            return self._limited("TEN_SECONDLY_ROLLING", "ten_secondly_rolling").reply
        category = {404: "OBJECT_NOT_FOUND", 405: "VALIDATION_ERROR"}.get(status, "INTERNAL_ERROR")
        return self.fail(status, message, category).reply

    def _limited(self, policy: str, words: str) -> ApiError:
        body = {"status": "error", "message": f"You have reached your {words} limit.", "errorType": "RATE_LIMIT",
                "correlationId": self._correlation(), "policyName": policy}  # fmt: skip
        return ApiError(429, body)

    def authenticate(self, request: Request) -> str:
        scheme, _, token = (request.header("authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or token.strip() != self.options.token:
            message = ("Authentication credentials not found. This API supports OAuth 2.0 authentication and you can "
                       "find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview")  # fmt: skip
            raise self.fail(401, message, "INVALID_AUTHENTICATION")
        if request.path.endswith("/search"):
            if not self.search_window.hit(token):
                raise self._limited("SECONDLY", "secondly")
        elif not self.window.hit(token):
            raise self._limited("TEN_SECONDLY_ROLLING", "ten_secondly_rolling")
        return token

    def handle(self, request: Request) -> Reply:
        """Non-search answers carry the rate-limit headers; search answers carry none (as documented)."""
        reply = super().handle(request)
        if not request.path.endswith("/search"):
            reply.headers.update(
                {
                    "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
                    "X-HubSpot-RateLimit-Max": str(self.options.rate_limit),
                    "X-HubSpot-RateLimit-Remaining": str(self.window.remaining(self.options.token)),
                }
            )
        return reply

    def routes(self) -> list[tuple[str, str, Any]]:
        base = r"/crm/v3/objects/(contacts|companies)"
        return [
            ("GET", base, self.list),
            ("POST", base + "/search", self.search),
            ("POST", base + "/batch/upsert", self.batch_upsert),
            ("POST", base + "/batch/create", self.batch_create),
            ("GET", base + r"/(\d+)", self.retrieve),
        ]

    def records(self, resource: str) -> list[dict[str, Any]]:
        return [self._render(resource, r, _everything(resource)) for r in self.store[resource].values()]

    def touch(self, resource: str, count: int) -> list[dict[str, Any]]:
        """Modify ``count`` records at the server's now; all share one hs_lastmodifieddate (a tie)."""
        rows = self.store[resource]
        now_ms = int(self.clock.now() * 1000)
        chosen = self.rng.sample(sorted(rows), min(count, len(rows)))
        for ident in chosen:
            self._stamp(rows[ident], now_ms)
        return [self._render(resource, rows[i], _everything(resource)) for i in chosen]

    def _json(self, request: Request) -> dict[str, Any]:
        try:
            body = json.loads(request.body or b"null")
        except ValueError as exc:
            raise self.fail(400, f"Invalid input JSON on line 1, column 1: {exc}") from None
        if not isinstance(body, dict):
            raise self.fail(400, "Invalid input JSON on line 1, column 1: expected an object")
        return body

    # -- reads

    def retrieve(self, request: Request, caller: str, kind: str, ident: str) -> Reply:
        record = self.store[kind].get(ident)
        if record is None:
            raise self.fail(404, "Object not found.  objectId are usually numeric.", "OBJECT_NOT_FOUND")
        return Reply(200, self._render(kind, record, self._property_param(request)))

    def _property_param(self, request: Request) -> list[str] | None:
        values = request.params().get("properties")
        return None if values is None else [n for v in values for n in v.split(",") if n]

    def list(self, request: Request, caller: str, kind: str) -> Reply:
        limit = self._limit(request.param("limit") or "10", 100)
        after = request.param("after")
        rows = sorted(self.store[kind].values(), key=lambda r: int(r["id"]))
        if request.param("archived") == "true":
            rows = []
        if after:
            try:
                start = int(base64.urlsafe_b64decode(after + "=" * (-len(after) % 4)).decode())
            except ValueError:
                raise self.fail(400, f"Invalid after token: {after}") from None
            rows = [r for r in rows if int(r["id"]) >= start]
        page = rows[:limit]
        body: dict[str, Any] = {
            "results": [self._render(kind, r, self._property_param(request)) for r in page]
        }
        if len(rows) > limit:
            token = base64.urlsafe_b64encode(rows[limit]["id"].encode()).decode().rstrip("=")
            query = urlencode(
                [(k, v) for k, v in request.query if k != "after"] + [("after", token)], safe=","
            )
            link = f"{request.origin}{request.path}?{query}"
            body["paging"] = {"next": {"after": token, "link": link}}
        return Reply(200, body)

    def _limit(self, value: Any, most: int) -> int:
        try:
            limit = int(value)
        except (TypeError, ValueError):
            raise self.fail(400, f"limit must be an integer (got {value!r})") from None
        if not 1 <= limit <= most:
            raise self.fail(400, f"limit must be between 1 and {most} (got {limit})")
        return limit

    def search(self, request: Request, caller: str, kind: str) -> Reply:
        body = self._json(request)
        for key in body:
            if key not in SEARCH_KEYS:
                raise self.fail(400, f'Invalid input JSON on line 1, column 2: Unrecognized field "{key}"')
        limit = self._limit(body.get("limit", 10), 200)
        try:
            after = int(body.get("after") or 0)
        except (TypeError, ValueError):
            raise self.fail(400, f"after must be a number (got {body.get('after')!r})") from None
        cap = self.options.search_cap
        if after >= cap:
            raise self.fail(
                400, f"Search results are limited to {cap} per query; after={after} is past that."
            )
        known = set(_everything(kind))
        groups = self._filter_groups(body.get("filterGroups") or [], known)
        indexed = [s for s in map(self._searchable, self.store[kind].values()) if s is not None]
        rows = [r for r in indexed if not groups or any(self._matches(r, g) for g in groups)]
        if body.get("query"):
            text = str(body["query"]).lower()
            rows = [r for r in rows if any(text in str(v or "").lower() for v in r["props"].values())]
        rows = self._sorted(rows, body.get("sorts") or [], known)
        page = rows[after : min(after + limit, cap)]
        names = body.get("properties")
        result: dict[str, Any] = {
            "total": len(rows),
            "results": [self._render(kind, r, names if isinstance(names, list) else None) for r in page],
        }
        if after + limit < len(rows):
            result["paging"] = {"next": {"after": str(after + limit)}}
        return Reply(200, result)

    def _filter_groups(self, groups: Any, known: set[str]) -> list[list[dict[str, Any]]]:
        if not isinstance(groups, list) or len(groups) > 5:
            raise self.fail(400, "filterGroups must be a list of at most 5 groups")
        total = 0
        for group in groups:
            filters = group.get("filters") if isinstance(group, dict) else None
            if not isinstance(filters, list) or len(filters) > 6:
                raise self.fail(400, "each filter group needs a list of at most 6 filters")
            total += len(filters)
            for f in filters:
                if not isinstance(f, dict) or f.get("operator") not in OPERATORS:
                    raise self.fail(
                        400, f"Invalid filter operator in {f!r}; use one of {', '.join(OPERATORS)}"
                    )
                if f.get("propertyName") not in known:
                    raise self.fail(
                        400,
                        f"There was a problem with the request: unknown property {f.get('propertyName')!r}",
                    )
        if total > 18:
            raise self.fail(400, f"A search accepts at most 18 filters in all (got {total})")
        return [g["filters"] for g in groups]

    def _value(self, record: dict[str, Any], name: str) -> Any:
        if name in DATES:
            return record["created"] if name == "createdate" else record["updated"]
        return record["props"].get(name if name != "lastmodifieddate" else "hs_lastmodifieddate")

    def _operand(self, name: str, value: Any) -> Any:
        if value is None:
            return None
        if name in DATES:
            text = str(value)
            try:
                return int(text) if text.lstrip("-").isdigit() else int(parse_instant(text) * 1000)
            except ValueError:
                raise self.fail(
                    400, f"{text!r} is not a valid date for {name} (epoch milliseconds or ISO-8601)"
                ) from None
        return str(value).lower()

    def _matches(self, record: dict[str, Any], filters: list[dict[str, Any]]) -> bool:
        for f in filters:
            name, op = f["propertyName"], f["operator"]
            have = self._value(record, name)
            have = have if name in DATES or have is None else str(have).lower()
            if op in ("HAS_PROPERTY", "NOT_HAS_PROPERTY"):
                if (have is not None) != (op == "HAS_PROPERTY"):
                    return False
                continue
            if op in ("IN", "NOT_IN"):
                values = {self._operand(name, v) for v in f.get("values") or []}
                if (have in values) != (op == "IN"):
                    return False
                continue
            want = self._operand(name, f.get("value"))
            if op == "NEQ":
                if have == want:
                    return False
                continue
            if have is None or want is None:
                return False
            if (
                name not in DATES
                and have.replace(".", "", 1).isdigit()
                and want.replace(".", "", 1).isdigit()
            ):
                have, want = float(have), float(want)
            high = self._operand(name, f.get("highValue")) if op == "BETWEEN" else None
            if isinstance(have, float) and high is not None:
                high = float(high)
            if not _compare(op, have, want, high):
                return False
        return True

    def _sorted(self, rows: list[dict[str, Any]], sorts: Any, known: set[str]) -> list[dict[str, Any]]:
        """One sort at most; ties (and no sort) fall back to the id, ascending."""
        rows = sorted(rows, key=lambda r: int(r["id"]))
        if not isinstance(sorts, list) or len(sorts) > 1:
            raise self.fail(400, "sorts accepts one sort rule")
        for rule in sorts:
            rule = {"propertyName": rule} if isinstance(rule, str) else rule
            name, direction = rule.get("propertyName"), rule.get("direction", "ASCENDING")
            if name not in known or direction not in ("ASCENDING", "DESCENDING"):
                raise self.fail(
                    400, f"Invalid sort {rule!r}: a known propertyName, direction ASCENDING or DESCENDING"
                )
            present = [r for r in rows if self._value(r, name) is not None]
            missing = [r for r in rows if self._value(r, name) is None]
            present.sort(
                key=partial(self._sort_value, name), reverse=direction == "DESCENDING"
            )  # stable: ties stay in id order
            rows = present + missing
        return rows

    def _sort_value(self, name: str, record: dict[str, Any]) -> Any:
        value = self._value(record, name)
        return value if name in DATES else str(value).lower()

    # -- batch writes

    def _inputs(self, request: Request) -> list[Any]:
        inputs = self._json(request).get("inputs")
        if not isinstance(inputs, list) or not inputs:
            raise self.fail(400, "inputs must be a non-empty list")
        if len(inputs) > BATCH_LIMIT:
            raise self.fail(400, f"Batch input limit of {BATCH_LIMIT} exceeded (got {len(inputs)} inputs)")
        return inputs

    def _check_properties(self, kind: str, props: Any) -> dict[str, str | None]:
        if not isinstance(props, dict):
            raise Invalid("INVALID_INPUT", "properties must be an object", "properties")
        clean: dict[str, str | None] = {}
        for name, value in props.items():
            if name in READ_ONLY:
                raise Invalid(
                    "READ_ONLY_VALUE", f'"{name}" is a read only property; its value cannot be set.', name
                )
            if name not in PROPERTIES[kind]:
                raise Invalid("PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist', name)
            if isinstance(value, dict | list):
                raise Invalid("INVALID_INPUT", f"{name} must be a string", name)
            text = None if value is None else (str(value).lower() if isinstance(value, bool) else str(value))
            if name == "email" and text and not _EMAIL.fullmatch(text):
                raise Invalid("INVALID_EMAIL", f"Email address {text} is invalid", name)
            if name == "lifecyclestage" and text and text not in STAGES:
                raise Invalid(
                    "INVALID_OPTION", f"{text} was not one of the allowed options: {', '.join(STAGES)}", name
                )
            if name == "numberofemployees" and text and not text.isdigit():
                raise Invalid("INVALID_INTEGER", f"{text} is not a valid integer", name)
            clean[name] = text
        return clean

    def _error(self, problem: Invalid, context: dict[str, list[str]]) -> dict[str, Any]:
        detail = {"isValid": False, "message": problem.message, "error": problem.code, "name": problem.name}
        message = problem.message if problem.category != "VALIDATION_ERROR" else (
            f"Property values were not valid: {json.dumps([detail])}"
        )  # fmt: skip
        return {"status": "error", "category": problem.category, "message": message, "context": context}

    def _batch_reply(
        self, results: list[dict[str, Any]], errors: list[dict[str, Any]], started: str
    ) -> Reply:
        results.sort(key=lambda r: int(r["id"]))  # HubSpot does not keep the input order
        body: dict[str, Any] = {"status": "COMPLETE", "results": results, "startedAt": started}
        if errors and not results:
            raise self.fail(
                400,
                f"{len(errors)} of {len(errors)} inputs were invalid",
                numErrors=len(errors),
                errors=errors,
            )
        body["completedAt"] = iso(self.clock.now(), "milliseconds")
        if errors:
            return Reply(207, body | {"numErrors": len(errors), "errors": errors})
        return Reply(200, body)

    def batch_upsert(self, request: Request, caller: str, kind: str) -> Reply:
        inputs = self._inputs(request)
        started, now_ms = iso(self.clock.now(), "milliseconds"), int(self.clock.now() * 1000)
        ids = [str(i.get("id")).lower() for i in inputs if isinstance(i, dict) and i.get("id") is not None]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise self.fail(400, f"Duplicate IDs found in batch input: {duplicates}. IDs must be unique")
        results, errors = [], []
        unique = UNIQUE[kind]
        for item in inputs:
            item = item if isinstance(item, dict) else {}
            ident = item.get("id")
            context = {"id": [str(ident)]} if ident is not None else {}
            try:
                if item.get("idProperty") != unique:
                    raise Invalid(
                        "INVALID_ID_PROPERTY",
                        f"idProperty must be the unique property {unique!r}",
                        "idProperty",
                    )
                if not ident:
                    raise Invalid("MISSING_ID", "id is required", "id")
                props = self._check_properties(kind, item.get("properties"))
                self._check_properties(kind, {unique: ident})
            except Invalid as problem:
                errors.append(self._error(problem, context))
                continue
            record = self._find(kind, unique, str(ident))
            created = record is None
            if record is None:
                record = self._add(kind, {unique: str(ident)}, now_ms, now_ms)
            record["props"].update(props)
            self._stamp(record, now_ms)
            results.append(self._render(kind, record, [*props, unique]) | {"new": created})
        return self._batch_reply(results, errors, started)

    def _find(self, kind: str, name: str, value: str) -> dict[str, Any] | None:
        return next(
            (r for r in self.store[kind].values() if (r["props"].get(name) or "").lower() == value.lower()),
            None,
        )

    def batch_create(self, request: Request, caller: str, kind: str) -> Reply:
        """Errors name the input's objectWriteTraceId when it sent one; otherwise only the property."""
        inputs = self._inputs(request)
        started, now_ms = iso(self.clock.now(), "milliseconds"), int(self.clock.now() * 1000)
        results, errors = [], []
        unique = UNIQUE[kind]
        for item in inputs:
            item = item if isinstance(item, dict) else {}
            trace = item.get("objectWriteTraceId")
            try:
                props = self._check_properties(kind, item.get("properties"))
                existing = self._find(kind, unique, props[unique]) if props.get(unique) else None
                if existing is not None:
                    label = "Contact" if kind == "contacts" else "Company"
                    raise Invalid(
                        "CONFLICT",
                        f"{label} already exists. Existing ID: {existing['id']}",
                        unique,
                        "CONFLICT",
                    )
            except Invalid as problem:
                context = (
                    {"objectWriteTraceId": [str(trace)]}
                    if trace is not None
                    else {"propertyName": [problem.name]}
                )
                errors.append(self._error(problem, context))
                continue
            record = self._add(kind, props, now_ms, now_ms)
            rendered = self._render(kind, record, list(props))
            results.append(rendered | ({"objectWriteTraceId": str(trace)} if trace is not None else {}))
        return self._batch_reply(results, errors, started)


def _everything(kind: str) -> list[str]:
    """Every property of a type, as the control endpoints show them."""
    return [
        *PROPERTIES[kind],
        "createdate",
        "hs_lastmodifieddate",
        "hs_object_id",
        *(("lastmodifieddate",) if kind == "contacts" else ()),
    ]


def _compare(op: str, have: Any, want: Any, high: Any) -> bool:
    if op == "BETWEEN":
        return high is not None and want <= have <= high
    return {
        "EQ": have == want,
        "LT": have < want,
        "LTE": have <= want,
        "GT": have > want,
        "GTE": have >= want,
    }[op]


@contextmanager
def running_crm(**options: Any) -> Iterator[FamilySandbox]:
    """Serve the CRM API as a subprocess on a free port (options: seed, size, now, token, search_rate,
    search_cap, search_lag, rate_limit)."""
    with running("sandbox.families.crm", CrmApi.name, **options) as handle:
        yield handle


if __name__ == "__main__":
    raise SystemExit(main(CrmApi))
