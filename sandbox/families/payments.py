"""A payments API following Stripe's: customers, charges and invoices.

The awkward parts are kept on purpose: lists are newest first and paged by object id
(``starting_after``/``ending_before``), ids are random-looking (not sortable by creation), times are unix
seconds with ties, an unknown parameter is a 400, writes take form bodies with bracket notation (a JSON
body is a 400), and ``Idempotency-Key`` replays the first answer. See docs/families.md.

    python -m sandbox.families.payments --port 8571 [--seed 7] [--size 100]
"""

from __future__ import annotations

import argparse
import base64
import bisect
import copy
import random
import re
import string
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qsl

from sandbox.families.common import (
    ApiError,
    FamilyApi,
    FamilySandbox,
    RateWindow,
    Reply,
    Request,
    main,
    running,
)

SECRET_KEY = "sk_test_families"
RESOURCES = {
    "customers": ("cus", 14, "customer"),
    "charges": ("ch", 24, "charge"),
    "invoices": ("in", 24, "invoice"),
}
CUSTOMER_FIELDS = (
    "address",
    "balance",
    "description",
    "email",
    "metadata",
    "name",
    "phone",
    "preferred_locales",
    "tax_exempt",
)
ADDRESS_FIELDS = ("city", "country", "line1", "line2", "postal_code", "state")
LIST_PARAMS = {"limit", "starting_after", "ending_before", "created", "expand"}
FILTERS = {"customers": {"email"}, "charges": {"customer"}, "invoices": {"customer", "status"}}
INVOICE_STATUSES = ("draft", "open", "paid", "uncollectible", "void")
IDEMPOTENCY_WINDOW = 24 * 3600
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")
_ID_CHARS = bytes((string.ascii_letters + string.digits).encode()[i % 62] for i in range(256))
_KEY = re.compile(r"([^\[\]]+)((?:\[[^\[\]]*\])*)")
_FIRST = ("Ada", "Grace", "Alan", "Edsger", "Barbara", "Ken", "Frances", "John", "Margaret", "Radia")
_LAST = ("Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Thompson", "Allen", "Backus", "Hamilton")
_CITIES = (
    ("Berlin", "DE", "10115"),
    ("Paris", "FR", "75001"),
    ("Austin", "US", "78701"),
    ("Lyon", "FR", "69001"),
)


def invalid(message: str, param: str | None = None, code: str | None = None, status: int = 400) -> ApiError:
    error: dict[str, Any] = {"type": "invalid_request_error", "message": message}
    if param is not None:
        error["param"] = param
    if code is not None:
        error["code"] = code
    return ApiError(status, {"error": error})


def parse_nested(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Stripe's bracket notation: ``a[b]=1``, ``a[]=x``, ``a[0]=x`` -> nested dicts and lists."""
    root: dict[str, Any] = {}
    appended = 0
    for key, value in pairs:
        match = _KEY.fullmatch(key)
        if match is None:
            raise invalid(f"Invalid parameter name: {key}", key)
        parts = [match.group(1), *re.findall(r"\[([^\[\]]*)\]", match.group(2))]
        node = root
        for depth, part in enumerate(parts):
            if part == "":
                appended += 1
                part = f"\x00{appended:09d}"
            if depth == len(parts) - 1:
                if isinstance(node.get(part), dict):
                    raise invalid(f"Invalid hash: {key}", key)
                node[part] = value
            else:
                child = node.setdefault(part, {})
                if not isinstance(child, dict):
                    raise invalid(f"Invalid hash: {key}", key)
                node = child
    return _lists(root)


def _lists(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    items = {k: _lists(v) for k, v in node.items()}
    if items and all(k.startswith("\x00") or k.isdigit() for k in items):
        return [items[k] for k in sorted(items, key=lambda k: (k.startswith("\x00"), int(k.strip("\x00"))))]
    return items


def _integer(value: Any, param: str) -> int:
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value):
        return int(value)
    raise invalid(f"Invalid integer: {value}", param, "parameter_invalid_integer")


class PaymentsApi(FamilyApi):
    name = "payments"
    description = "A local payments API following Stripe's (customers, charges, invoices)."
    default_port = 8571
    default_size = 100

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--api-key", default=SECRET_KEY, help=f"the secret key (default {SECRET_KEY})")
        parser.add_argument(
            "--rate-limit", type=int, default=1000, help="requests per second per key before 429 (0 = none)"
        )

    def generate(self) -> None:
        rng = random.Random(self.options.seed)
        self.rng = rng
        self.store: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in RESOURCES}
        self.order: dict[str, int] = {}
        self.deleted: set[str] = set()
        self.customer_times: list[int] = []
        self.customer_ids: list[str] = []
        self.idempotent: dict[tuple[str, str], tuple[Any, float, Reply, str]] = {}
        self.limiter = RateWindow(self.options.rate_limit, 1.0)
        self.requests = 0
        anchor = int(self.clock.anchor)
        size = self.options.size
        for resource, count in (("customers", size), ("charges", 2 * size), ("invoices", size)):
            moments = sorted(rng.randint(anchor - 365 * 86400, anchor - 3600) for _ in range(count))
            for i in range(1, len(moments)):
                if rng.random() < 0.15:
                    moments[i] = moments[i - 1]
            for moment in moments:
                self._add(resource, moment, rng)

    def _new_id(self, resource: str, rng: random.Random) -> str:
        prefix, length, _ = RESOURCES[resource]
        return f"{prefix}_" + rng.randbytes(length).translate(_ID_CHARS).decode()

    def _add(
        self, resource: str, created: int, rng: random.Random, fields: dict[str, Any] | None = None
    ) -> dict:
        ident = self._new_id(resource, rng)
        record = {"id": ident, "object": RESOURCES[resource][2], "created": created, "livemode": False}
        record.update(getattr(self, f"_fake_{resource}")(rng, ident, created) if fields is None else fields)
        self.store[resource][ident] = record
        if resource == "customers":
            self.customer_times.append(created)
            self.customer_ids.append(ident)
        self.order[ident] = len(self.order)
        return record

    def _fake_customers(self, rng: random.Random, ident: str, created: int) -> dict[str, Any]:
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        city, country, postal = rng.choice(_CITIES)
        address = {"city": city, "country": country, "line1": f"{rng.randint(1, 99)} Main St", "line2": None,
                   "postal_code": postal, "state": None}  # fmt: skip
        metadata = {"plan": rng.choice(("free", "pro", "team"))} if rng.random() < 0.6 else {}
        return self._customer_defaults() | {
            "address": address if rng.random() < 0.7 else None,
            "email": f"{first}.{last}{rng.randint(1, 999)}@example.com".lower()
            if rng.random() < 0.9
            else None,
            "name": f"{first} {last}",
            "metadata": metadata,
            "preferred_locales": rng.choice(([], ["en"], ["fr", "en"])),
            "invoice_prefix": "".join(rng.choice(string.ascii_uppercase) for _ in range(8)),
        }

    def _customer_defaults(self) -> dict[str, Any]:
        return {"address": None, "balance": 0, "currency": "usd", "default_source": None, "delinquent": False,
                "description": None, "discount": None, "email": None, "invoice_prefix": "SANDBOX1",
                "invoice_settings": {"custom_fields": None, "default_payment_method": None, "footer": None,
                                     "rendering_options": None},
                "metadata": {}, "name": None, "next_invoice_sequence": 1, "phone": None, "preferred_locales": [],
                "shipping": None, "tax_exempt": "none", "test_clock": None}  # fmt: skip

    def _some_customer(self, rng: random.Random, created: int) -> str | None:
        """A customer created no later than ``created`` (customers are added in creation order)."""
        count = bisect.bisect_right(self.customer_times, created)
        return self.customer_ids[rng.randrange(count)] if count else None

    def _fake_charges(self, rng: random.Random, ident: str, created: int) -> dict[str, Any]:
        amount = rng.choice((500, 1200, 2500, 9900, 19900)) + rng.randint(0, 99)
        paid = rng.random() < 0.9
        refunded = paid and rng.random() < 0.1
        return {
            "amount": amount,
            "amount_captured": amount if paid else 0,
            "amount_refunded": amount if refunded else 0,
            "balance_transaction": self._new_id("invoices", rng).replace("in_", "txn_") if paid else None,
            "captured": paid,
            "currency": "usd",
            "customer": self._some_customer(rng, created),
            "description": rng.choice((None, "Subscription", "One-off purchase")),
            "failure_code": None if paid else "card_declined",
            "failure_message": None if paid else "Your card was declined.",
            "metadata": {"order_id": str(rng.randint(10000, 99999))} if rng.random() < 0.5 else {},
            "outcome": {"network_status": "approved_by_network" if paid else "declined_by_network",
                        "risk_level": "normal", "risk_score": rng.randint(0, 99),
                        "seller_message": "Payment complete." if paid else "The bank did not return any further details.",
                        "type": "authorized" if paid else "issuer_declined"},
            "paid": paid,
            "payment_method_details": {"type": "card", "card": {"brand": rng.choice(("visa", "mastercard", "amex")),
                                       "last4": f"{rng.randint(0, 9999):04d}", "exp_month": rng.randint(1, 12),
                                       "exp_year": rng.randint(2026, 2031), "funding": "credit"}},
            "refunded": refunded,
            "status": "succeeded" if paid else "failed",
        }  # fmt: skip

    def _fake_invoices(self, rng: random.Random, ident: str, created: int) -> dict[str, Any]:
        quantity, unit = rng.randint(1, 5), rng.choice((900, 1900, 4900))
        status = rng.choice(INVOICE_STATUSES)
        total = quantity * unit
        line = {"id": f"il_{ident[3:]}", "object": "line_item", "amount": total, "currency": "usd",
                "description": f"{quantity} x Seat", "quantity": quantity, "metadata": {}}  # fmt: skip
        return {
            "amount_due": total,
            "amount_paid": total if status == "paid" else 0,
            "amount_remaining": 0 if status == "paid" else total,
            "attempt_count": int(status != "draft"),
            "billing_reason": "subscription_cycle",
            "collection_method": "charge_automatically",
            "currency": "usd",
            "customer": self._some_customer(rng, created),
            "lines": {"object": "list", "data": [line], "has_more": False, "total_count": 1,
                      "url": f"/v1/invoices/{ident}/lines"},
            "metadata": {},
            "number": None if status == "draft" else f"INV-{rng.randint(1000, 9999)}",
            "paid": status == "paid",
            "status": status,
            "subtotal": total,
            "total": total,
        }  # fmt: skip

    # -- plumbing

    def credentials(self) -> dict[str, Any]:
        return {"api_key": self.options.api_key}

    def error(self, status: int, message: str) -> Reply:
        if status == 429:
            return self._rate_limited().reply
        kind = "api_error" if status >= 500 else "invalid_request_error"
        return Reply(status, {"error": {"type": kind, "message": message}})

    def _rate_limited(self) -> ApiError:
        message = (
            "Too many requests hit the API too quickly. We recommend an exponential backoff of your requests."
        )
        return ApiError(
            429, {"error": {"type": "rate_limit_error", "code": "rate_limit", "message": message}}
        )

    def authenticate(self, request: Request) -> str:
        key = self._key(request)
        if not self.limiter.hit(key):
            raise self._rate_limited()
        return key

    def _key(self, request: Request) -> str:
        """The secret key of a request (Basic username or Bearer token), or a 401."""
        header = request.header("authorization") or ""
        scheme, _, value = header.partition(" ")
        key = ""
        if scheme.lower() == "bearer":
            key = value.strip()
        elif scheme.lower() == "basic":
            try:
                key = base64.b64decode(value.strip(), validate=True).decode().partition(":")[0]
            except ValueError:
                key = ""
        challenge = {"WWW-Authenticate": 'Basic realm="Stripe"'}
        if not key:
            message = ("You did not provide an API key. You need to provide your API key in the Authorization header, "
                       "using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').")  # fmt: skip
            raise ApiError(401, {"error": {"type": "invalid_request_error", "message": message}}, challenge)
        if key != self.options.api_key:
            masked = key[:8] + "*" * 4 + key[-4:] if len(key) > 12 else "****"
            body = {
                "error": {"type": "invalid_request_error", "message": f"Invalid API Key provided: {masked}"}
            }
            raise ApiError(401, body, challenge)
        return key

    def handle(self, request: Request) -> Reply:
        """Every answer carries a Request-Id; POSTs with an Idempotency-Key may be replays."""
        self.requests += 1
        request_id = f"req_{self.options.seed:x}{self.requests:010d}"
        try:
            reply = self._idempotent(request, request_id)
        except ApiError as error:
            reply = error.reply
        reply.headers.setdefault("Request-Id", request_id)
        return reply

    def _idempotent(self, request: Request, request_id: str) -> Reply:
        key = request.header("idempotency-key")
        if key is None or request.method != "POST":
            return super().handle(request)
        if len(key) > 255:
            raise invalid("Idempotency-Key must be at most 255 characters long.", "Idempotency-Key")
        caller = self._key(request)
        fingerprint = (request.path, sorted(self._form(request)))
        now = self.clock.now()
        saved = self.idempotent.get((caller, key))
        if saved is not None and now - saved[1] < IDEMPOTENCY_WINDOW:
            if saved[0] != fingerprint:
                message = (f"Keys for idempotent requests can only be used with the same parameters they were "
                           f"first used with. Try using a key other than '{key}' if you meant to execute a "
                           "different request.")  # fmt: skip
                raise ApiError(400, {"error": {"type": "idempotency_error", "message": message}})
            original = saved[2]
            headers = {k: v for k, v in original.headers.items() if k != "Request-Id"}
            headers.update(
                {"Idempotent-Replayed": "true", "Original-Request": saved[3], "Idempotency-Key": key}
            )
            return Reply(original.status, copy.deepcopy(original.body), headers)
        try:
            reply = super().handle(request)
        except ApiError as error:
            reply = error.reply
        # Stripe saves a result once the endpoint ran; a request refused by validation is not saved.
        if reply.status not in (400, 401, 429):  # the answer as sent, not the live record
            saved_reply = Reply(reply.status, copy.deepcopy(reply.body), dict(reply.headers))
            self.idempotent[(caller, key)] = (fingerprint, now, saved_reply, request_id)
        reply.headers["Idempotency-Key"] = key
        return reply

    def routes(self) -> list[tuple[str, str, Any]]:
        kinds = "customers|charges|invoices"
        return [
            ("GET", rf"/v1/({kinds})", self.list),
            ("GET", rf"/v1/({kinds})/([^/]+)", self.retrieve),
            ("POST", r"/v1/customers", self.create_customer),
            ("POST", r"/v1/customers/([^/]+)", self.update_customer),
            ("DELETE", r"/v1/customers/([^/]+)", self.delete_customer),
        ]

    def records(self, resource: str) -> list[dict[str, Any]]:
        rows = self.store[resource].values()
        return sorted(rows, key=lambda r: (r["created"], self.order[r["id"]]), reverse=True)

    def touch(self, resource: str, count: int) -> list[dict[str, Any]]:
        """Stripe objects have no updated time: touching adds ``count`` objects created now."""
        if resource not in self.store:
            raise KeyError(resource)
        now = int(self.clock.now())
        return [self._add(resource, now, self.rng) for _ in range(count)]

    # -- reads

    def _sort_key(self, record: dict[str, Any]) -> tuple[int, int]:
        return record["created"], self.order[record["id"]]

    def list(self, request: Request, caller: str, resource: str) -> Reply:
        params = parse_nested(request.query)
        for name in params:
            if name not in LIST_PARAMS | FILTERS[resource]:
                raise invalid(f"Received unknown parameter: {name}", name, "parameter_unknown")
        limit = _integer(params.get("limit", "10"), "limit")
        if not 1 <= limit <= 100:
            bound = "greater than or equal to 1" if limit < 1 else "less than or equal to 100"
            raise invalid(f"This value must be {bound}.", "limit", "parameter_invalid_integer")
        rows = sorted(self.store[resource].values(), key=self._sort_key, reverse=True)
        rows = [r for r in rows if self._created_matches(r["created"], params.get("created"))]
        for name in FILTERS[resource] & set(params):
            value = params[name]
            if name == "status" and value not in INVOICE_STATUSES:
                raise invalid(f"Invalid status: must be one of {', '.join(INVOICE_STATUSES)}", "status")
            rows = [r for r in rows if r.get(name) == value]
        after, before = params.get("starting_after"), params.get("ending_before")
        if after is not None and before is not None:
            raise invalid("You may only specify one of these parameters: ending_before, starting_after.")
        if after is not None:
            cursor = self._sort_key(self._cursor(resource, after, "starting_after"))
            rows = [r for r in rows if self._sort_key(r) < cursor]
            page, has_more = rows[:limit], len(rows) > limit
        elif before is not None:
            cursor = self._sort_key(self._cursor(resource, before, "ending_before"))
            rows = [r for r in rows if self._sort_key(r) > cursor]
            page, has_more = rows[-limit:], len(rows) > limit
        else:
            page, has_more = rows[:limit], len(rows) > limit
        page = [self._expand(r, params.get("expand")) for r in page]
        return Reply(200, {"object": "list", "url": f"/v1/{resource}", "has_more": has_more, "data": page})

    def _cursor(self, resource: str, ident: Any, param: str) -> dict[str, Any]:
        record = self.store[resource].get(ident) if isinstance(ident, str) else None
        if record is None:
            raise invalid(f"No such {RESOURCES[resource][2]}: '{ident}'", param, "resource_missing")
        return record

    def _created_matches(self, created: int, spec: Any) -> bool:
        if spec is None:
            return True
        if not isinstance(spec, dict):
            return created == _integer(spec, "created")
        tests = {"gt": int.__gt__, "gte": int.__ge__, "lt": int.__lt__, "lte": int.__le__}
        for op, bound in spec.items():
            if op not in tests:
                raise invalid(
                    f"Received unknown parameter: created[{op}]", f"created[{op}]", "parameter_unknown"
                )
            if not tests[op](created, _integer(bound, f"created[{op}]")):
                return False
        return True

    def _expand(self, record: dict[str, Any], expand: Any) -> dict[str, Any]:
        if not expand:
            return record
        for path in expand if isinstance(expand, list) else [expand]:
            if path != "data.customer" or "customer" not in record:
                raise invalid(f"This property cannot be expanded ({path}).", "expand")
            customer = record["customer"]
            full = self.store["customers"].get(customer) if customer else None
            record = {**record, "customer": full or customer}
        return record

    def retrieve(self, request: Request, caller: str, resource: str, ident: str) -> Reply:
        if resource == "customers" and ident in self.deleted:
            return Reply(200, {"id": ident, "object": "customer", "deleted": True})
        record = self.store[resource].get(ident)
        if record is None:
            raise invalid(f"No such {RESOURCES[resource][2]}: '{ident}'", "id", "resource_missing", 404)
        return Reply(200, record)

    # -- writes (form bodies)

    def _form(self, request: Request) -> list[tuple[str, str]]:
        if request.body and request.content_type != "application/x-www-form-urlencoded":
            raise invalid(
                f"Invalid request: unsupported Content-Type {request.content_type or '(none)'}. "
                "Send parameters as application/x-www-form-urlencoded."
            )
        return request.query + parse_qsl(request.body.decode("utf-8", "replace"), keep_blank_values=True)

    def _customer_fields(self, request: Request, current: dict[str, Any]) -> dict[str, Any]:
        params = parse_nested(self._form(request))
        changes: dict[str, Any] = {}
        for name, value in params.items():
            if name not in CUSTOMER_FIELDS:
                raise invalid(f"Received unknown parameter: {name}", name, "parameter_unknown")
            if name == "metadata":
                changes[name] = self._metadata(current.get("metadata") or {}, value)
            elif name == "address":
                changes[name] = self._address(value)
            elif name == "preferred_locales":
                if value != "" and not isinstance(value, list):
                    raise invalid("Invalid array", name)
                changes[name] = [] if value == "" else value
            elif not isinstance(value, str):
                raise invalid(f"Invalid string: {value}", name)
            elif name == "balance":
                changes[name] = _integer(value, name)
            elif name == "tax_exempt":
                if value not in ("none", "exempt", "reverse"):
                    raise invalid("Invalid tax_exempt: must be one of none, exempt, or reverse", name)
                changes[name] = value
            elif name == "email" and value and not _EMAIL.fullmatch(value):
                raise invalid(f"Invalid email address: {value}", "email", "email_invalid")
            else:
                changes[name] = value or None
        return changes

    def _metadata(self, current: dict[str, str], value: Any) -> dict[str, str]:
        """Keys merge into the existing metadata; an empty value unsets a key, an empty ``metadata`` all."""
        if value == "":
            return {}
        if not isinstance(value, dict):
            raise invalid("Invalid hash", "metadata")
        merged = dict(current)
        for key, text in value.items():
            if not isinstance(text, str):
                raise invalid(
                    f"Invalid value for metadata[{key}]: metadata values must be strings", f"metadata[{key}]"
                )
            if len(key) > 40 or len(text) > 500:
                raise invalid(
                    "Metadata keys are at most 40 characters and values at most 500.", f"metadata[{key}]"
                )
            if text == "":
                merged.pop(key, None)
            else:
                merged[key] = text
        if len(merged) > 50:
            raise invalid("You can have at most 50 metadata keys.", "metadata")
        return merged

    def _address(self, value: Any) -> dict[str, Any] | None:
        if value == "":
            return None
        if not isinstance(value, dict):
            raise invalid("Invalid hash", "address")
        for key in value:
            if key not in ADDRESS_FIELDS:
                raise invalid(
                    f"Received unknown parameter: address[{key}]", f"address[{key}]", "parameter_unknown"
                )
        return {key: value.get(key) or None for key in ADDRESS_FIELDS}

    def create_customer(self, request: Request, caller: str) -> Reply:
        fields = self._customer_defaults()
        fields.update(self._customer_fields(request, fields))
        return Reply(200, self._add("customers", int(self.clock.now()), self.rng, fields))

    def _live_customer(self, ident: str) -> dict[str, Any]:
        record = self.store["customers"].get(ident)
        if record is None:
            raise invalid(f"No such customer: '{ident}'", "id", "resource_missing", 404)
        return record

    def update_customer(self, request: Request, caller: str, ident: str) -> Reply:
        record = self._live_customer(ident)
        record.update(self._customer_fields(request, record))
        return Reply(200, record)

    def delete_customer(self, request: Request, caller: str, ident: str) -> Reply:
        self._live_customer(ident)
        del self.store["customers"][ident]
        self.deleted.add(ident)
        return Reply(200, {"id": ident, "object": "customer", "deleted": True})


@contextmanager
def running_payments(**options: Any) -> Iterator[FamilySandbox]:
    """Serve the payments API as a subprocess on a free port (options: seed, size, now, api_key, rate_limit)."""
    with running("sandbox.families.payments", PaymentsApi.name, **options) as handle:
        yield handle


if __name__ == "__main__":
    raise SystemExit(main(PaymentsApi))
