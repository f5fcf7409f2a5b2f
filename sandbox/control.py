"""``/__sandbox/*``: the control endpoints tests use. No auth, no cost, no faults, not journaled.

GET    /__sandbox/journal[?since=SEQ]   {"data": [entries], "last_seq": n}
DELETE /__sandbox/journal               204
GET    /__sandbox/records/{resource}    {"data": [every current record, by id]}
POST   /__sandbox/reset                 regenerate data from the seed, clear journal, budget, tokens
POST   /__sandbox/touch/{resource}      {"count": n} or {"ids": [...]} -> {"data": [touched]}
GET    /__sandbox/config                the runtime settings
POST   /__sandbox/config                change them: faults, budget, time_scale, retry_after,
                                        token_ttl, reject_refresh, deny_authorize, bulk_rate,
                                        bulk_latency
GET    /__sandbox/stats                 counts, id ranges, budget, faults, bulk jobs
GET    /__sandbox/health                {"ok": true}
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import orjson

from sandbox import records as rec
from sandbox.faults import parse_spec
from sandbox.params import as_bool, as_int, first, flat_query, parse_body
from sandbox.resources import CATALOG
from sandbox.routing import split_path
from sandbox.wire import ApiError, Request, Response, json_response, no_content

if TYPE_CHECKING:
    from sandbox.app import App


def _error(status: int, message: str) -> Response:
    return json_response(status, {"error": message})


def handle(app: App, request: Request) -> Response:
    segments = split_path(request.path)[1:]
    method = request.method
    try:
        body = parse_body(request)
    except ApiError as error:
        return error.response()
    try:
        if segments == ["journal"] and method == "GET":
            since = as_int(first(flat_query(request.query_string), "since")) or 0
            journal = app.state.journal
            return _json({"data": journal.entries(since), "last_seq": journal.last_seq})
        if segments == ["journal"] and method == "DELETE":
            app.state.journal.clear()
            app.state.peak_in_flight = app.state.in_flight
            return no_content()
        if len(segments) == 2 and segments[0] == "records" and method == "GET":
            return _records(app, segments[1])
        if segments == ["reset"] and method == "POST":
            app.state.reset()
            return json_response(200, {"ok": True, "records": _counts(app)})
        if len(segments) == 2 and segments[0] == "touch" and method == "POST":
            return _touch(app, segments[1], body or {})
        if segments == ["config"] and method == "GET":
            return json_response(200, {"data": settings(app)})
        if segments == ["config"] and method == "POST":
            return _configure(app, body or {})
        if segments == ["stats"] and method == "GET":
            return json_response(200, _stats(app))
        if segments == ["health"] and method == "GET":
            return json_response(200, {"ok": True})
    except (ValueError, TypeError) as error:
        return _error(400, str(error))
    return _error(404, "Not Found")


def _json(payload: Any) -> Response:
    return Response(200, orjson.dumps(payload))


def _records(app: App, resource: str) -> Response:
    if resource not in app.state.store:
        return _error(404, f"unknown resource {resource!r}")
    return _json({"data": list(app.state.store[resource].values())})


def _touch(app: App, resource: str, body: dict[str, Any]) -> Response:
    """Give records new, later, distinct updated_at values (the lowest ids for ``count``)."""
    state = app.state
    if resource not in state.store:
        return _error(404, f"unknown resource {resource!r}")
    table = state.store[resource]
    if "ids" in body:
        ids = [as_int(i) for i in body["ids"]]
        missing = [
            raw for raw, i in zip(body["ids"], ids, strict=True) if i is None or i not in table.records
        ]
        if missing:
            return _error(404, f"no {resource} with id(s) {missing}")
    else:
        count = as_int(body.get("count", 1))
        if count is None or count < 0:
            return _error(400, "count must be a non-negative integer")
        ids = table.sorted_ids()[:count]
    touched = [rec.save(state, resource, dict(table.records[i])) for i in ids]
    return _json({"data": touched})


def settings(app: App) -> dict[str, Any]:
    state = app.state
    return {
        "seed": state.options.seed,
        "budget": state.budget.per_minute,
        "time_scale": state.budget.time_scale,
        "retry_after": state.budget.retry_after,
        "token_ttl": state.auth.token_ttl,
        "reject_refresh": state.auth.reject_refresh,
        "deny_authorize": state.auth.deny_authorize,
        "faults": state.faults.as_dict(),
        "bulk_rate": state.options.bulk_rate,
        "bulk_latency": state.options.bulk_latency,
        "raw_bodies": state.journal.raw_bodies,
        "latency": state.options.latency,
        "latency_jitter": state.options.latency_jitter,
    }


def _configure(app: App, changes: dict[str, Any]) -> Response:
    state = app.state
    known = {
        "faults",
        "budget",
        "time_scale",
        "retry_after",
        "token_ttl",
        "reject_refresh",
        "deny_authorize",
        "bulk_rate",
        "bulk_latency",
        "raw_bodies",
        "latency",
        "latency_jitter",
    }
    unknown = sorted(set(changes) - known)
    if unknown:
        return _error(400, f"unknown setting(s) {unknown} (known: {', '.join(sorted(known))})")
    if "faults" in changes:
        state.faults.configure(parse_spec(changes["faults"], state.faults.settings))
    if "budget" in changes:
        state.budget.per_minute = int(changes["budget"])
        state.budget.reset()
    if "time_scale" in changes:
        scale = float(changes["time_scale"])
        if scale <= 0:
            raise ValueError("time_scale must be > 0")
        state.budget.time_scale = scale
        state.options.time_scale = scale
        state.budget.reset()
    if "retry_after" in changes:
        state.budget.retry_after = _flag(changes["retry_after"], "retry_after")
    if "token_ttl" in changes:
        state.auth.token_ttl = float(changes["token_ttl"])
    if "reject_refresh" in changes:
        state.auth.reject_refresh = _flag(changes["reject_refresh"], "reject_refresh")
    if "deny_authorize" in changes:
        state.auth.deny_authorize = _flag(changes["deny_authorize"], "deny_authorize")
    if "bulk_rate" in changes:
        state.options.bulk_rate = float(changes["bulk_rate"])
    if "bulk_latency" in changes:
        state.options.bulk_latency = float(changes["bulk_latency"])
    for name in ("latency", "latency_jitter"):
        if name in changes:
            value = float(changes[name])
            if not 0 <= value <= 60:
                raise ValueError(f"{name} must be in 0..60 seconds")
            setattr(state.options, name, value)
    if "raw_bodies" in changes:
        state.journal.raw_bodies = _flag(changes["raw_bodies"], "raw_bodies")
    return json_response(200, {"data": settings(app)})


def _flag(value: Any, name: str) -> bool:
    flag = as_bool(value)
    if flag is None:
        raise ValueError(f"{name} must be true or false")
    return flag


def _counts(app: App) -> dict[str, int]:
    return {name: len(table) for name, table in app.state.store.tables.items()}


def _stats(app: App) -> dict[str, Any]:
    state = app.state
    budget = state.budget
    return {
        "uptime_seconds": round(time.time() - state.started, 3),
        "base_url": state.base_url,
        "requests": state.requests,
        "peak_in_flight": state.peak_in_flight,
        "journal_entries": len(state.journal),
        "records": _counts(app),
        "id_ranges": {
            name: {"first": CATALOG[name].first_id, "next": table.next_id}
            for name, table in state.store.tables.items()
        },
        "budget": {
            "per_minute": budget.per_minute,
            "remaining": budget.remaining,
            "window_seconds": budget.window_seconds,
            "seconds_to_reset": round(budget.seconds_to_reset(), 3),
            "charged_total": budget.charged_total,
            "rejected_total": budget.rejected_total,
        },
        "faults": state.faults.as_dict(),
        "oauth": {"refreshes": state.auth.refreshes, "codes_exchanged": state.auth.codes_exchanged},
        "bulk": {"running": sorted(state.bulk.running)},
        "settings": settings(app),
    }
