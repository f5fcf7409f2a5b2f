"""A date-windowed export API: Zendesk's time-based incremental ticket export and Mixpanel's raw event
export.

The awkward parts are kept on purpose: the ticket export's next page starts at the previous page's last
second inclusive (records at the boundary repeat; a client dedupes), a start time within the last minute is
refused, changes of the last minute are held back, ``end_time`` is not a parameter (it is ignored); the
event export takes whole UTC days, at most 31 a request and none after today, answers JSON lines in
ingestion order, and events arrive late: an event's time can be up to two days before it becomes visible,
so a client needs a lookback window. See docs/families.md.

    python -m sandbox.families.export --port 8573 [--seed 7] [--size 300]
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlencode

from sandbox.families.common import (
    UTC,
    ApiError,
    FamilyApi,
    FamilySandbox,
    RateWindow,
    Reply,
    Request,
    iso,
    main,
    running,
)

EMAIL = "admin@example.com"
TOKEN = "export-token"
RECENT = 60  # seconds: a start_time this recent is refused, changes this recent are held back
MAX_DAYS = 31
LATE = 2 * 86400  # the longest an event takes to become visible
EVENTS = ("Signed Up", "Logged In", "Viewed Page", "Purchased", "Invited Teammate")
STATUSES = ("new", "open", "pending", "hold", "solved", "closed")
_WORDS = ("printer", "invoice", "refund", "password", "export", "vpn", "billing", "login", "backup", "sync")


class ExportApi(FamilyApi):
    name = "export"
    description = "A local export API: Zendesk's incremental ticket export and Mixpanel's raw event export."
    default_port = 8573
    default_size = 300

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--email", default=EMAIL, help=f"the agent's email for Basic auth (default {EMAIL})"
        )
        parser.add_argument("--token", default=TOKEN, help=f"the API token (default {TOKEN})")
        parser.add_argument(
            "--per-page", type=int, default=1000, help="tickets per export page (default 1000)"
        )
        parser.add_argument(
            "--events-per-day", type=int, default=40, help="generated events a day (default 40)"
        )
        parser.add_argument("--days", type=int, default=60, help="days of generated events (default 60)")
        parser.add_argument(
            "--export-rate",
            type=int,
            default=0,
            help="ticket export requests a minute (Zendesk: 10; 0 = none)",
        )

    def generate(self) -> None:
        rng = self.rng = random.Random(self.options.seed)
        self.window = RateWindow(self.options.export_rate, 60.0)
        anchor = int(self.clock.anchor)
        self.tickets: dict[int, dict[str, Any]] = {}
        created = sorted(
            rng.randint(anchor - 200 * 86400, anchor - 2 * 86400) for _ in range(self.options.size)
        )
        burst = anchor - 3 * 86400 + 1234  # a bulk update: many tickets changed in one second
        for ident, made in enumerate(created, start=1):
            changed = min(made + rng.randint(0, 30 * 86400), anchor - 2 * RECENT)
            if made <= burst and rng.random() < 0.2:
                changed = burst
            elif ident > 1 and rng.random() < 0.2:
                changed = max(made, self.tickets[ident - 1]["generated_timestamp"])
            self.tickets[ident] = self._ticket(ident, made, changed, rng)
        self.events: list[dict[str, Any]] = []
        first_day = anchor - self.options.days * 86400
        for day in range(self.options.days):
            for _ in range(self.options.events_per_day):
                moment = first_day + day * 86400 + rng.randint(0, 86399)
                self.events.append(self._event(moment, self._lag(rng), rng))

    def _lag(self, rng: random.Random) -> int:
        """Most events are visible within a minute; some only hours or up to two days later."""
        return rng.randint(1, 60) if rng.random() < 0.85 else rng.randint(3600, LATE)

    def _ticket(self, ident: int, created: int, updated: int, rng: random.Random) -> dict[str, Any]:
        subject = f"{rng.choice(_WORDS).title()} {rng.choice(_WORDS)} problem"
        return {
            "id": ident,
            "url": f"/api/v2/tickets/{ident}.json",
            "external_id": None,
            "type": rng.choice(("question", "incident", "problem", "task", None)),
            "subject": subject,
            "raw_subject": subject,
            "description": f"Customer reports: {subject.lower()}.",
            "priority": rng.choice(("low", "normal", "high", "urgent", None)),
            "status": "deleted" if rng.random() < 0.03 else rng.choice(STATUSES),
            "requester_id": rng.randint(10_000, 10_500),
            "submitter_id": rng.randint(10_000, 10_500),
            "assignee_id": rng.choice((None, 501, 502, 503)),
            "organization_id": rng.choice((None, 9001, 9002)),
            "group_id": rng.choice((71, 72)),
            "tags": sorted(rng.sample(_WORDS, rng.randint(0, 3))),
            "via": {"channel": rng.choice(("email", "web", "api"))},
            "custom_fields": [],
            "created_at": iso(created),
            "updated_at": iso(updated),
            "generated_timestamp": updated,
        }

    def _event(self, moment: int, lag: int, rng: random.Random) -> dict[str, Any]:
        return {
            "event": rng.choice(EVENTS),
            "properties": {
                "time": moment,
                "distinct_id": f"user-{rng.randint(1, max(10, self.options.size // 3))}",
                "$insert_id": base64.b32encode(rng.randbytes(15)).decode().lower(),
                "mp_processing_time_ms": (moment + lag) * 1000 + rng.randint(0, 999),
                "$city": rng.choice(("Paris", "Austin", "Osaka", None)),
                "plan": rng.choice(("free", "pro")),
            },
        }

    # -- plumbing

    def credentials(self) -> dict[str, Any]:
        return {"email": self.options.email, "token": self.options.token}

    def error(self, status: int, message: str) -> Reply:
        if status == 429:
            return self._limited(60).reply
        return Reply(
            status, {"error": {404: "InvalidEndpoint"}.get(status, "InternalError"), "description": message}
        )

    def _limited(self, retry_after: int) -> ApiError:
        body = {
            "error": "TooManyRequests",
            "description": "Number of allowed incremental export API requests per minute exceeded",
        }
        return ApiError(429, body, {"Retry-After": str(retry_after)})

    def authenticate(self, request: Request) -> str:
        scheme, _, value = (request.header("authorization") or "").partition(" ")
        user = secret = ""
        if scheme.lower() == "basic":
            try:
                user, _, secret = base64.b64decode(value.strip(), validate=True).decode().partition(":")
            except ValueError:
                user = ""
            ok = user == f"{self.options.email}/token" and secret == self.options.token
        else:
            ok = scheme.lower() == "bearer" and value.strip() == self.options.token
        if not ok:
            raise ApiError(
                401,
                {"error": "Couldn't authenticate you"},
                {"WWW-Authenticate": 'Basic realm="Web Password"'},
            )
        return self.options.email

    def routes(self) -> list[tuple[str, str, Any]]:
        return [
            ("GET", r"/api/v2/incremental/tickets\.json", self.tickets_export),
            ("GET", r"/api/2\.0/export/events", self.events_export),
        ]

    def records(self, resource: str) -> list[dict[str, Any]]:
        if resource == "tickets":
            return list(self.tickets.values())
        if resource == "events":
            return sorted(self.events, key=lambda e: e["properties"]["mp_processing_time_ms"])
        raise KeyError(resource)

    def touch(self, resource: str, count: int) -> list[dict[str, Any]]:
        """Tickets: ``count`` updated now (one shared second). Events: ``count`` arriving now, timed up to
        two days earlier (late arrivals)."""
        now = int(self.clock.now())
        if resource == "tickets":
            chosen = self.rng.sample(sorted(self.tickets), min(count, len(self.tickets)))
            for ident in chosen:
                self.tickets[ident].update(updated_at=iso(now), generated_timestamp=now)
            return [self.tickets[i] for i in chosen]
        if resource == "events":
            added = []
            for _ in range(count):
                lag = self.rng.randint(0, LATE)
                event = self._event(now - lag, lag, self.rng)
                event["properties"]["mp_processing_time_ms"] = int(self.clock.now() * 1000)
                added.append(event)
            self.events += added
            return added
        raise KeyError(resource)

    # -- Zendesk: time-based incremental ticket export

    def tickets_export(self, request: Request, caller: str) -> Reply:
        now = self.clock.now()
        raw = request.param("start_time")
        if raw is None or not raw.strip().isdigit():
            detail = (
                "start_time is required" if raw is None else f"start_time must be epoch seconds (got {raw!r})"
            )
            raise ApiError(400, {"error": "InvalidValue", "description": detail})
        start = int(raw)
        if start > now - RECENT:
            raise ApiError(
                400,
                {
                    "error": "StartTimeTooRecent",
                    "description": f"Too recent start_time. Use a start_time older than {RECENT} seconds.",
                },
            )
        per_page = self.options.per_page
        if request.param("per_page") is not None:
            text = request.param("per_page") or ""
            if not text.isdigit() or not 1 <= int(text) <= 1000:
                raise ApiError(
                    400, {"error": "InvalidValue", "description": "per_page must be between 1 and 1000"}
                )
            per_page = int(text)
        if not self.window.hit(caller):
            raise self._limited(60)
        horizon = now - RECENT  # changes of the last minute are held back
        rows = sorted(
            (t for t in self.tickets.values() if start <= t["generated_timestamp"] <= horizon),
            key=lambda t: (t["generated_timestamp"], t["id"]),
        )
        page = rows[:per_page]
        end_time = page[-1]["generated_timestamp"] if page else start
        if page and len(rows) > per_page and page[0]["generated_timestamp"] == end_time:
            # A page of one second would repeat forever: the whole second is returned and the next page
            # starts after it.
            page = [t for t in rows if t["generated_timestamp"] == end_time]
            end_time += 1
        query = {"start_time": end_time, **({"per_page": per_page} if request.param("per_page") else {})}
        tickets = [{**t, "url": request.origin + t["url"]} for t in page]
        return Reply(
            200,
            {
                "tickets": tickets,
                "count": len(tickets),
                "end_time": end_time,
                "next_page": f"{request.origin}{request.path}?{urlencode(query)}",
                "end_of_stream": len(page) < per_page,
            },
        )

    # -- Mixpanel: raw event export by whole UTC days

    def events_export(self, request: Request, caller: str) -> Reply:
        where = request.path + ("?" + urlencode(request.query) if request.query else "")

        def refuse(message: str) -> ApiError:
            return ApiError(400, {"request": where, "error": message})

        days = {}
        for name in ("from_date", "to_date"):
            text = request.param(name)
            if not text:
                raise refuse(f"{name} is a required parameter")
            try:
                days[name] = dt.date.fromisoformat(text)
            except ValueError:
                raise refuse(f"{name} must be a date formatted YYYY-MM-DD (got {text!r})") from None
        first, last = days["from_date"], days["to_date"]
        today = dt.datetime.fromtimestamp(self.clock.now(), UTC).date()
        if first > last:
            raise refuse("from_date must be on or before to_date")
        if last > today:
            raise refuse(f"to_date cannot be later than today ({today.isoformat()})")
        if (last - first).days + 1 > MAX_DAYS:
            raise refuse(f"a request covers at most {MAX_DAYS} days (got {(last - first).days + 1})")
        names = None
        if request.param("event"):
            try:
                names = set(json.loads(request.param("event") or ""))
            except (ValueError, TypeError):
                raise refuse("event must be a JSON array of event names") from None
        limit = request.param("limit")
        if limit is not None and (not limit.isdigit() or not 1 <= int(limit) <= 100_000):
            raise refuse("limit must be between 1 and 100000")
        low = dt.datetime.combine(first, dt.time(), UTC).timestamp()
        high = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), UTC).timestamp()
        visible_ms = self.clock.now() * 1000
        rows = [
            e
            for e in self.events
            if low <= e["properties"]["time"] < high
            and e["properties"]["mp_processing_time_ms"] <= visible_ms
            and (names is None or e["event"] in names)
        ]
        rows.sort(key=lambda e: (e["properties"]["time"] // 86400, e["properties"]["mp_processing_time_ms"]))
        rows = rows[: int(limit)] if limit else rows
        lines = "".join(json.dumps(e, separators=(",", ":")) + "\n" for e in rows)
        return Reply(200, lines, content_type="text/plain; charset=utf-8")


@contextmanager
def running_export(**options: Any) -> Iterator[FamilySandbox]:
    """Serve the export API as a subprocess on a free port (options: seed, size, now, email, token,
    per_page, events_per_day, days, export_rate)."""
    with running("sandbox.families.export", ExportApi.name, **options) as handle:
        yield handle


if __name__ == "__main__":
    raise SystemExit(main(ExportApi))
