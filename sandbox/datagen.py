"""Seeded, deterministic records for every resource, shaped by the record schemas.

Each resource has its own random stream (seeded by ``"<seed>/<resource>"``), so the data is the
same for the same seed and sizes. Every declared field is present with its declared type; some
optional ones are null, as the real API's are. Well-known fields get realistic values (names,
emails at the account's domain, phones, CRM ids, ``custom_fields``, ``counts``), and embedded
references point at records that exist. ``updated_at`` spans two years in several UTC offsets,
and some records share an identical ``updated_at`` (every 17th record copies its predecessor's).

Field functions are compiled once per resource, then run per record: 100,000 people take a
couple of seconds.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import datetime, timezone
from random import Random
from typing import Any

from sandbox import vocab
from sandbox.resources import CATALOG, REF_TARGETS, UNSERVED_REFS
from sandbox.store import Record, Store
from sandbox.timestamps import OFFSETS, render, render_date, to_us

T_START = to_us(datetime(2023, 1, 2, tzinfo=timezone.utc))
T_END = to_us(datetime(2025, 1, 31, tzinfo=timezone.utc))
DAY = 86_400_000_000
TIE_EVERY = 17
TEAM_DOMAIN = "northwind-revenue.com"
TENANT_ID = 100013
EU_COUNTRIES = {"Germany", "France", "Ireland"}

# Generation order: a resource may read the already generated records of those before it.
ORDER = [
    "users",
    "groups",
    "account_stages",
    "account_tiers",
    "person_stages",
    "tags",
    "custom_fields",
    "accounts",
    "imports",
    "cadences",
    "call_instructions",
    "steps",
    "call_dispositions",
    "call_sentiments",
    "people",
    "cadence_memberships",
    "actions",
    "notes",
    "calls",
    "emails",
    "crm_activities",
    "crm_activity_fields",
    "crm_users",
    "call_data_records",
    "successes",
    "tasks",
    "meetings",
    "calendar_events",
    "activity_histories",
    "team_templates",  # before email templates, which refer to them
    "email_templates",
    "email_template_attachments",
    "team_template_attachments",
    "phone_number_assignments",
    "pending_emails",
    "saved_list_views",
    "webhook_subscriptions",
    "opportunity_stages",
    "opportunities",
    "opportunity_people",
    "external_configurations",
    "external_mappings",
    "bulk_jobs",
    "bulk_job_results",
    "activities",
    "redaction_requests",
]

# Null this often when a field has no recipe of its own (default: NULL_DEFAULT).
NULL_HEAVY = 0.7
NULL_SOME = 0.3
NULL_DEFAULT = 0.05
NULL_RATES = {
    **dict.fromkeys(
        [
            "archived_at",
            "canceled_at",
            "completed_at",
            "deleted_at",
            "pinned_at",
            "error",
            "error_message",
            "finished_at",
            "secondary_email_address",
            "personal_email_address",
            "home_phone",
            "phone_extension",
            "personal_website",
            "last_replied_at",
            "canceled_at",
            "last_used_at",
            "completed_by",
            "crm_last_updated_date",
        ],
        NULL_HEAVY,
    ),
    **dict.fromkeys(
        [
            "last_contacted_at",
            "last_contacted_type",
            "last_contacted_by",
            "last_contacted_person",
            "mobile_phone",
            "twitter_handle",
            "work_city",
            "work_state",
            "work_country",
            "import",
            "person_stage",
            "most_recent_cadence",
            "last_completed_step",
            "last_completed_step_cadence",
            "latest_action",
            "latest_call",
            "latest_email",
            "latest_step",
            "latest_cadence",
            "note",
            "crm_activity",
            "action",
            "task",
            "mailing",
            "cadence_priority",
            "multitouch_group_id",
        ],
        NULL_SOME,
    ),
}


class Ctx:
    """Per-record scratch space handed to field functions."""

    __slots__ = ("rng", "k", "id", "created", "updated", "tz", "memo")

    def __init__(self, rng: Random):
        self.rng = rng
        self.k = 0
        self.id = 0
        self.created = 0
        self.updated = 0
        self.tz = OFFSETS[0]
        self.memo: dict[str, Any] = {}


FieldFn = Callable[[Ctx], Any]
Row = tuple[Record, int, int]


def _choice(rng: Random, items: tuple | list) -> Any:
    return items[int(rng.random() * len(items))]


def _digits(rng: Random, n: int) -> str:
    return str(int(rng.random() * 10**n)).zfill(n)


def _alnum(rng: Random, n: int) -> str:
    return format(rng.getrandbits(4 * n), f"0{n}X")


def _uuid(rng: Random) -> str:
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}"


def _phone(rng: Random) -> str:
    return f"+1 ({200 + int(rng.random() * 700)}) 555-{_digits(rng, 4)}"


def _slug(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalnum())


class Generator:
    def __init__(self, seed: int, sizes: dict[str, int], base_url: str, schemas: dict[str, dict]):
        self.seed = seed
        self.sizes = {name: sizes.get(name, res.default_size) for name, res in CATALOG.items()}
        self.base = base_url.rstrip("/")
        self.schemas = schemas
        self.records: dict[str, list[Record]] = {}
        self._refs: dict[tuple[str, int], dict] = {}
        self._first_ids = {name: res.first_id for name, res in CATALOG.items()}
        self.string_ids: dict[str, dict[int, str]] = {}  # resource -> block id -> the API's string id
        self._bulk_job_rows: list[Row] = []
        self.bulk_result_jobs: dict[int, int] = {}  # bulk job result id -> its job id

    # -- references ----------------------------------------------------------------------

    def href(self, resource: str, record_id: int) -> str:
        api_id = self.string_ids.get(resource, {}).get(record_id, record_id)
        return f"{self.base}{CATALOG[resource].path}/{api_id}"

    def _string_id(self, resource: str, make: Callable[[Ctx], str]) -> FieldFn:
        """The id field of a resource whose API ids are strings; remembers each record's block id."""
        ids = self.string_ids.setdefault(resource, {})

        def fn(c: Ctx) -> str:
            value = ids[c.id] = make(c)
            return value

        return fn

    def ref(self, resource: str, record_id: int) -> dict:
        """``{"id": 60000005, "_href": "http://127.0.0.1:8555/v2/people/60000005"}`` (shared)."""
        key = (resource, record_id)
        cached = self._refs.get(key)
        if cached is None:
            cached = {"id": record_id, "_href": self.href(resource, record_id)}
            self._refs[key] = cached
        return cached

    def pick_index(self, rng: Random, resource: str) -> int | None:
        size = self.sizes[resource]
        return int(rng.random() * size) if size else None

    def pick_ref(self, rng: Random, resource: str) -> dict | None:
        size = self.sizes[resource]
        if not size:
            return None
        record_id = self._first_ids[resource] + int(rng.random() * size)
        cached = self._refs.get((resource, record_id))
        return cached if cached is not None else self.ref(resource, record_id)

    # -- driver --------------------------------------------------------------------------

    def generate_all(self, store: Store) -> int:
        """Fill every table; returns the latest instant generated (for the write clock)."""
        latest = 0
        for name in ORDER:
            rows = self.generate(name)
            self.records[name] = [row[0] for row in rows]
            self.sizes[name] = len(rows)  # later references only point at what exists
            store[name].load(rows)
            for _, updated, _ in rows:
                if updated > latest:
                    latest = updated
        self._finish(store)
        return latest

    def generate(self, name: str) -> list[Row]:
        size = self.sizes[name]
        special = getattr(self, f"_generate_{name}", None)
        if special is not None:
            return special(size)
        schema = self.schemas.get(name)
        if not schema or size <= 0:
            return []
        prepare, recipe = self._recipe(name)
        plan = self._plan(name, schema, recipe)
        return self._run(name, size, prepare, plan)

    def _run(self, name: str, size: int, prepare: Callable[[Ctx], bool] | None, plan: list) -> list[Row]:
        rng = Random(f"{self.seed}/{name}")
        c = Ctx(rng)
        first_id = CATALOG[name].first_id
        rows: list[Row] = []
        prev_updated, prev_tz = 0, OFFSETS[0]
        span = T_END - T_START
        for k in range(1, size + 1):
            c.k = k
            c.id = first_id + k - 1
            c.memo = {}
            created = T_START + int(rng.random() * (span - 30 * DAY))
            r = rng.random()
            updated = created + int(r * r * (T_END - created))
            tz = OFFSETS[int(rng.random() * len(OFFSETS))]
            if k > 1 and (k % TIE_EVERY == 0 or rng.random() < 0.03):
                updated, tz = prev_updated, prev_tz
                if created > updated:
                    created = updated - int(rng.random() * 30 * DAY) - 1
            c.created, c.updated, c.tz = created, updated, tz
            prev_updated, prev_tz = updated, tz
            if prepare is not None and prepare(c) is False:
                break
            record = {field: fn(c) for field, fn in plan}
            rows.append((record, updated, created))
        return rows

    def _plan(self, name: str, schema: dict, recipe: dict[str, FieldFn]) -> list[tuple[str, FieldFn]]:
        plan = []
        for field, prop in schema.get("properties", {}).items():
            if field in recipe:
                fn = recipe[field]
            elif field == "id":
                fn = _id
            elif field == "created_at":
                fn = _created
            elif field == "updated_at":
                fn = _updated
            else:
                fn = self._generic(name, field, prop)
            plan.append((field, fn))
        return plan

    def _recipe(self, name: str) -> tuple[Callable[[Ctx], bool] | None, dict[str, FieldFn]]:
        method = getattr(self, f"_recipe_{name}", None)
        if method is None:
            return None, {}
        return method()

    # -- generic fields by name and type ---------------------------------------------------

    def _generic(self, resource: str, field: str, prop: dict) -> FieldFn:
        fn = self._generic_value(resource, field, prop)
        rate = NULL_RATES.get(field, NULL_DEFAULT)
        kinds = _types(prop)
        if "boolean" in kinds or "integer" in kinds or "array" in kinds:
            rate = NULL_RATES.get(field, 0.0)
        if rate <= 0:
            return fn

        def maybe_null(c: Ctx) -> Any:
            return None if c.rng.random() < rate else fn(c)

        return maybe_null

    def _generic_value(self, resource: str, field: str, prop: dict) -> FieldFn:
        kinds = _types(prop)
        props = prop.get("properties")
        if "object" in kinds:
            if props is not None and set(props) <= {"id", "_href"}:
                return self._ref_fn(resource, field)
            if props:
                sub = [(k, self._generic_value(resource, k, v)) for k, v in props.items()]
                return lambda c: {k: fn(c) for k, fn in sub}
            return self._object_fn(resource, field)
        if "array" in kinds:
            items = prop.get("items") or {}
            item_props = items.get("properties")
            if item_props is not None and set(item_props) <= {"id", "_href"}:
                target = REF_TARGETS.get(field)
                if target is None:
                    return lambda c: []
                return lambda c: list(
                    {
                        r["id"]: r
                        for r in (self.pick_ref(c.rng, target) for _ in range(int(c.rng.random() * 3)))
                        if r
                    }.values()
                )
            if item_props:
                sub = [(k, self._generic_value(resource, k, v)) for k, v in item_props.items()]
                return lambda c: [{k: fn(c) for k, fn in sub} for _ in range(1 + int(c.rng.random() * 2))]
            if "string" in _types(items):
                return self._string_list_fn(field)
            return lambda c: []
        if "boolean" in kinds:
            p = {
                "do_not_contact": 0.03,
                "bouncing": 0.02,
                "active": 0.9,
                "enabled": 0.85,
                "disabled": 0.1,
            }.get(field, 0.5)
            return lambda c: c.rng.random() < p
        if "integer" in kinds or "number" in kinds:
            return _int_fn(field)
        fmt = prop.get("format")
        if fmt == "date":
            if field.endswith("_date"):
                return lambda c: render_date(c.updated + int(c.rng.random() * 30 * DAY), c.tz)
            return _datetime_fn(field)
        if fmt == "date-time" or field.endswith("_at") or field in ("start_time", "end_time", "due_on"):
            return _datetime_fn(field)
        return self._string_fn(resource, field)

    def _ref_fn(self, resource: str, field: str) -> FieldFn:
        if field in UNSERVED_REFS:
            return lambda c: {"id": 1000 + int(c.rng.random() * 90000)}
        target = REF_TARGETS.get(field)
        if target is None:
            return lambda c: None
        return lambda c: self.pick_ref(c.rng, target)

    def _object_fn(self, resource: str, field: str) -> FieldFn:
        if field == "custom_fields":
            return lambda c: {"Lead Source": _choice(c.rng, vocab.LEAD_SOURCES)}
        if field == "external_feature_flags":
            return lambda c: {"ma_enabled": True, "ma_live_feed": True, "hot_leads": c.rng.random() < 0.5}
        if field == "_links":
            path = CATALOG[resource].path
            return lambda c: {"attachments": f"{self.base}{path}/{c.id}/attachments"}
        if field == "headers":
            return lambda c: {"cc": None, "bcc": f"bcc-{c.k}@{TEAM_DOMAIN}"}
        if field == "static_data":
            return lambda c: {"subject": _choice(c.rng, vocab.TASK_SUBJECTS)}
        if field == "view_params":
            return lambda c: {"sort_by": "updated_at", "sort_direction": "DESC"}
        if field == "picklist_values":
            return lambda c: {"Yes": "Yes", "No": "No"}
        return lambda c: {}

    def _string_list_fn(self, field: str) -> FieldFn:
        if field == "tags":
            return lambda c: sorted({_choice(c.rng, vocab.TAG_NAMES) for _ in range(int(c.rng.random() * 3))})
        if field == "contact_restrictions":
            return lambda c: ["call"] if c.rng.random() < 0.05 else []
        if field == "guests":
            return lambda c: [
                f"{_choice(c.rng, vocab.FIRST_NAMES).lower()}@{TEAM_DOMAIN}"
                for _ in range(int(c.rng.random() * 2))
            ]
        return lambda c: []

    def _string_fn(self, resource: str, field: str) -> FieldFn:  # noqa: C901 - a lookup table
        rng_choice = _choice
        if field in ("email", "email_address", "recipient_email_address", "recipient_email", "organizer"):
            return lambda c: c.memo.get("email") or _person_email(c.rng)
        if field.endswith("email_address"):
            return lambda c: _person_email(c.rng)
        if field in ("phone", "mobile_phone", "home_phone", "number", "to", "from"):
            return lambda c: _phone(c.rng)
        if field == "phone_extension":
            return lambda c: _digits(c.rng, 3)
        if field == "twitter_handle":
            return lambda c: "@" + _choice(c.rng, vocab.LAST_NAMES).lower() + _digits(c.rng, 2)
        if field == "linkedin_url":
            return lambda c: (
                f"https://www.linkedin.com/in/{_choice(c.rng, vocab.LAST_NAMES).lower()}-{_alnum(c.rng, 6).lower()}"
            )
        if field in ("crm_id", "owner_crm_id", "account_crm_id", "company_crm_id", "created_by_crm_id"):
            return lambda c: "00" + _alnum(c.rng, 13)
        if field == "crm_url":
            return lambda c: f"https://northwind.my.salesforce.com/{_alnum(c.rng, 15)}"
        if field.endswith("_url") or field in ("website", "html_link", "personal_website"):
            return lambda c: f"https://www.example.com/{resource}/{c.id}"
        if field in (
            "guid",
            "user_guid",
            "call_uuid",
            "i_cal_uid",
            "event_id",
            "calendar_id",
            "external_identifier",
        ):
            return lambda c: _uuid(c.rng)
        if field in ("city", "work_city"):
            return lambda c: _place(c)[0]
        if field in ("state", "work_state"):
            return lambda c: _place(c)[1]
        if field in ("country", "work_country"):
            return lambda c: _place(c)[2]
        if field == "locale":
            return lambda c: rng_choice(c.rng, vocab.LOCALES)
        if field == "time_zone":
            return lambda c: rng_choice(c.rng, vocab.TIME_ZONES)
        if field in ("title", "name", "display_name"):
            return lambda c: (
                f"{rng_choice(c.rng, vocab.WORDS).title()} {rng_choice(c.rng, vocab.WORDS)} {c.k}"
            )
        if field == "subject":
            return lambda c: rng_choice(c.rng, vocab.SUBJECTS).format(
                company=rng_choice(c.rng, vocab.COMPANY_HEADS)
            )
        if field in (
            "body",
            "body_preview",
            "content",
            "description",
            "instructions",
            "body_html",
            "personalization",
        ):
            return lambda c: " ".join(rng_choice(c.rng, vocab.WORDS) for _ in range(8)).capitalize() + "."
        if field == "email_signature":
            return lambda c: "Best regards,\n" + c.memo.get("name", "The team")
        values = _ENUMS.get((resource, field)) or _ENUMS.get(("*", field))
        if values:
            return lambda c: rng_choice(c.rng, values)
        return lambda c: rng_choice(c.rng, vocab.WORDS)

    # -- per-resource recipes ------------------------------------------------------------

    def _named(self, names: tuple[str, ...]) -> FieldFn:
        return lambda c: names[c.k - 1] if c.k <= len(names) else f"{names[(c.k - 1) % len(names)]} {c.k}"

    def _recipe_users(self):
        def prepare(c: Ctx) -> bool:
            first = _choice(c.rng, vocab.FIRST_NAMES)
            last = _choice(c.rng, vocab.LAST_NAMES)
            c.memo.update(
                first=first,
                last=last,
                name=f"{first} {last}",
                email=f"{first}.{last}{c.k}@{TEAM_DOMAIN}".lower(),
            )
            return True

        pna = CATALOG["phone_number_assignments"]
        recipe = {
            "first_name": lambda c: c.memo["first"],
            "last_name": lambda c: c.memo["last"],
            "name": lambda c: c.memo["name"],
            "email": lambda c: c.memo["email"],
            "sending_email_address": lambda c: c.memo["email"],
            "email_client_email_address": lambda c: c.memo["email"],
            "bcc_email_address": lambda c: c.memo["email"].replace("@", "+bcc@"),
            "from_address": lambda c: f"{c.memo['name']} <{c.memo['email']}>",
            "full_email_address": lambda c: f"{c.memo['name']} <{c.memo['email']}>",
            "slack_username": lambda c: c.memo["email"].split("@")[0],
            "active": lambda c: c.k == 1 or c.rng.random() < 0.9,
            "team_admin": lambda c: c.k == 1,
            "job_role": lambda c: _choice(c.rng, vocab.JOB_ROLES),
            "email_signature_type": lambda c: "text",
            "team": lambda c: {"id": TENANT_ID},
            "phone_number_assignment": lambda c: (
                self.ref("phone_number_assignments", pna.first_id + c.k - 1)
                if c.k <= self.sizes["phone_number_assignments"]
                else None
            ),
        }
        return prepare, recipe

    def _recipe_groups(self):
        names = ("Sales", "Marketing", "Inside Sales", "Field Sales", "Customer Success", "Partnerships")
        first = CATALOG["groups"].first_id
        return None, {
            "name": self._named(names),
            "parent_id": lambda c: None if c.k <= 2 else first + int(c.rng.random() * 2),
        }

    def _recipe_account_stages(self):
        return None, {"name": self._named(vocab.ACCOUNT_STAGES), "order": lambda c: c.k}

    def _recipe_account_tiers(self):
        return None, {"name": self._named(vocab.ACCOUNT_TIERS), "order": lambda c: c.k}

    def _recipe_person_stages(self):
        return None, {"name": self._named(vocab.PERSON_STAGES), "order": lambda c: c.k}

    def _recipe_opportunity_stages(self):
        return None, {"name": self._named(vocab.OPPORTUNITY_STAGES), "order": lambda c: c.k}

    def _recipe_tags(self):
        return None, {"name": self._named(vocab.TAG_NAMES)}

    def _recipe_call_dispositions(self):
        return None, {"name": self._named(vocab.DISPOSITIONS)}

    def _recipe_call_sentiments(self):
        return None, {"name": self._named(vocab.SENTIMENTS)}

    def _recipe_custom_fields(self):
        fields = vocab.CUSTOM_FIELDS
        return None, {
            "name": self._named(tuple(f[0] for f in fields)),
            "field_type": lambda c: fields[(c.k - 1) % len(fields)][1],
            "value_type": lambda c: "text",
        }

    def _recipe_accounts(self):
        used: set[str] = set()

        def prepare(c: Ctx) -> bool:
            head = _choice(c.rng, vocab.COMPANY_HEADS)
            tail = _choice(c.rng, vocab.COMPANY_TAILS)
            name = f"{head} {tail}"
            domain = f"{_slug(head)}{_slug(tail)}.{_choice(c.rng, vocab.TLDS)}"
            if domain in used:
                name = f"{name} {c.k}"
                domain = f"{_slug(head)}{_slug(tail)}{c.k}.{domain.split('.', 1)[1]}"
            used.add(domain)
            c.memo.update(name=name, domain=domain, head=head, place=_choice(c.rng, vocab.PLACES))
            return True

        recipe = {
            "name": lambda c: c.memo["name"],
            "domain": lambda c: c.memo["domain"],
            "website": lambda c: f"https://www.{c.memo['domain']}",
            "conversational_name": lambda c: c.memo["head"],
            "linkedin_url": lambda c: f"https://www.linkedin.com/company/{_slug(c.memo['name'])}",
            "twitter_handle": lambda c: "@" + _slug(c.memo["head"]),
            "street": lambda c: f"{1 + int(c.rng.random() * 9000)} {_choice(c.rng, vocab.LAST_NAMES)} Street",
            "postal_code": lambda c: _digits(c.rng, 5),
            "industry": lambda c: _choice(c.rng, vocab.INDUSTRIES),
            "description": lambda c: (
                f"{c.memo['name']} builds {_choice(c.rng, vocab.WORDS)} tools for "
                f"{_choice(c.rng, vocab.INDUSTRIES).lower()} teams."
            ),
            "founded": lambda c: str(1950 + int(c.rng.random() * 73)),
            "crm_object_type": lambda c: "Account",
            "counts": lambda c: {"people": 0},
            "custom_fields": lambda c: {
                "Customer Segment": _choice(c.rng, vocab.SEGMENTS),
                "Annual Contract Value": str(5000 * (1 + int(c.rng.random() * 60))),
            },
            "archived_at": lambda c: render(c.updated, c.tz) if c.rng.random() < 0.04 else None,
        }
        return prepare, recipe

    def _recipe_people(self):
        used: set[str] = set()
        accounts = self.records.get("accounts", [])
        n_accounts = len(accounts)

        def prepare(c: Ctx) -> bool:
            rng = c.rng
            first = vocab.FIRST_NAMES[int(rng.random() * len(vocab.FIRST_NAMES))]
            last = vocab.LAST_NAMES[int(rng.random() * len(vocab.LAST_NAMES))]
            account = accounts[int(rng.random() * n_accounts)] if n_accounts and rng.random() < 0.92 else None
            domain = account["domain"] if account else _choice(rng, ("gmail.com", "outlook.com", "yahoo.com"))
            email = f"{first}.{last}@{domain}".lower()
            if email in used:
                email = f"{first}.{last}{c.k}@{domain}".lower()
            used.add(email)
            c.memo.update(
                first=first, last=last, email=email, account=account, place=_choice(rng, vocab.PLACES)
            )
            return True

        def account_field(key: str) -> FieldFn:
            return lambda c: c.memo["account"][key] if c.memo["account"] else None

        recipe = {
            "first_name": lambda c: c.memo["first"],
            "last_name": lambda c: c.memo["last"],
            "display_name": lambda c: f"{c.memo['first']} {c.memo['last']}",
            "email_address": lambda c: c.memo["email"],
            "full_email_address": lambda c: f"{c.memo['first']} {c.memo['last']} <{c.memo['email']}>",
            "account": lambda c: self.ref("accounts", c.memo["account"]["id"]) if c.memo["account"] else None,
            "person_company_name": account_field("name"),
            "person_company_website": account_field("website"),
            "person_company_industry": account_field("industry"),
            "title": lambda c: _choice(c.rng, vocab.TITLES),
            "job_seniority": lambda c: _choice(c.rng, vocab.SENIORITIES),
            "phone": lambda c: _phone(c.rng),
            "crm_object_type": lambda c: "Contact",
            "eu_resident": lambda c: _place(c)[2] in EU_COUNTRIES,
            "locale_utc_offset": lambda c: int(c.tz.utcoffset(None).total_seconds() // 60),
            "success_count": lambda c: 1 if c.rng.random() < 0.1 else 0,
            "starred": lambda c: c.rng.random() < 0.1,
            "untouched": lambda c: c.rng.random() < 0.2,
            "owner": lambda c: self.pick_ref(c.rng, "users"),
            "custom_fields": lambda c: {
                "Lead Source": _choice(c.rng, vocab.LEAD_SOURCES),
                "Region": _choice(c.rng, vocab.REGIONS),
            },
            "counts": lambda c: {
                "emails_sent": int(c.rng.random() * 12),
                "emails_viewed": int(c.rng.random() * 8),
                "emails_clicked": int(c.rng.random() * 3),
                "emails_replied_to": int(c.rng.random() * 2),
                "emails_bounced": 0,
                "calls": int(c.rng.random() * 5),
            },
        }
        return prepare, recipe

    def _recipe_cadences(self):
        return None, {
            "name": self._named(vocab.CADENCE_NAMES),
            "draft": lambda c: c.rng.random() < 0.1,
            "team_cadence": lambda c: c.rng.random() < 0.6,
            "cadence_function": lambda c: _choice(c.rng, ("outbound", "inbound", "event", "other")),
            "archived_at": lambda c: render(c.updated, c.tz) if c.rng.random() < 0.1 else None,
        }

    def _recipe_steps(self):
        n = self.sizes["cadences"]
        first = CATALOG["cadences"].first_id
        return None, {
            "cadence": lambda c: self.ref("cadences", first + (c.k - 1) % n) if n else None,
            "step_number": lambda c: 1 + (c.k - 1) // max(n, 1),
            "day": lambda c: 1 + 2 * ((c.k - 1) // max(n, 1)),
            "type": lambda c: _choice(c.rng, vocab.STEP_TYPES),
            "name": lambda c: f"Step {1 + (c.k - 1) // max(n, 1)}",
            "display_name": lambda c: (
                f"Day {1 + 2 * ((c.k - 1) // max(n, 1))}: {_choice(c.rng, vocab.STEP_TYPES)}"
            ),
        }

    def _recipe_cadence_memberships(self):
        n_people = self.sizes["people"]
        n_cad = self.sizes["cadences"]
        people0 = CATALOG["people"].first_id
        cad0 = CATALOG["cadences"].first_id
        stride = next(a for a in (7919, 104729, 1299709, 1) if n_people == 0 or _gcd(a, n_people) == 1)

        def prepare(c: Ctx) -> bool:
            i = c.k - 1
            if not n_people or not n_cad or i >= n_people * n_cad:
                return False
            c.memo.update(person=people0 + (i * stride) % n_people, cadence=cad0 + (i // n_people) % n_cad)
            c.memo["active"] = c.rng.random() < 0.7
            return True

        return prepare, {
            "person": lambda c: self.ref("people", c.memo["person"]),
            "cadence": lambda c: self.ref("cadences", c.memo["cadence"]),
            "currently_on_cadence": lambda c: c.memo["active"],
            "current_state": lambda c: (
                "active" if c.memo["active"] else _choice(c.rng, ("finished", "removed"))
            ),
            "person_deleted": lambda c: False,
            "added_at": lambda c: render(c.created, c.tz),
        }

    def _recipe_notes(self):
        def prepare(c: Ctx) -> bool:
            c.memo["type"] = "person" if c.rng.random() < 0.75 else "account"
            return True

        return prepare, {
            "associated_type": lambda c: c.memo["type"],
            "associated_with": lambda c: self.pick_ref(
                c.rng, "people" if c.memo["type"] == "person" else "accounts"
            ),
            "content": lambda c: _choice(c.rng, vocab.NOTE_LINES).format(
                name=_choice(c.rng, vocab.FIRST_NAMES)
            ),
        }

    def _recipe_calls(self):
        return None, {
            "disposition": lambda c: _choice(c.rng, vocab.DISPOSITIONS),
            "sentiment": lambda c: _choice(c.rng, vocab.SENTIMENTS),
            "duration": lambda c: int(c.rng.random() * 1200),
            "called_person": lambda c: self.pick_ref(c.rng, "people"),
            "user": lambda c: self.pick_ref(c.rng, "users"),
        }

    def _recipe_tasks(self):
        return None, {
            "subject": lambda c: _choice(c.rng, vocab.TASK_SUBJECTS),
            "task_type": lambda c: _choice(c.rng, ("call", "email", "general")),
            "current_state": lambda c: "completed" if c.rng.random() < 0.4 else "scheduled",
            "due_date": lambda c: render_date(c.updated + 3 * DAY, c.tz),
            "due_at": lambda c: render(c.updated + 3 * DAY, c.tz),
            "person": lambda c: self.pick_ref(c.rng, "people"),
            "user": lambda c: self.pick_ref(c.rng, "users"),
        }

    def _recipe_crm_users(self):
        n = self.sizes["users"]
        first = CATALOG["users"].first_id
        return None, {"user": lambda c: self.ref("users", first + (c.k - 1) % n) if n else None}

    def _recipe_phone_number_assignments(self):
        n = self.sizes["users"]
        first = CATALOG["users"].first_id
        return None, {
            "user": lambda c: self.ref("users", first + (c.k - 1) % n) if n else None,
            "number": lambda c: _phone(c.rng),
        }

    def _recipe_saved_list_views(self):
        return None, {
            "view": lambda c: _choice(c.rng, ("people", "companies", "recordings")),
            "name": lambda c: (
                f"{_choice(c.rng, vocab.TAG_NAMES)} {_choice(c.rng, ('prospects', 'accounts', 'calls'))}"
            ),
            "is_default": lambda c: c.k == 1,
        }

    def _recipe_webhook_subscriptions(self):
        return None, {
            "callback_url": lambda c: f"https://hooks.example.com/salesloft/{c.k}",
            "callback_token": lambda c: f"cb-{_alnum(c.rng, 12).lower()}",
            "event_type": self._named(vocab.WEBHOOK_EVENTS),
            "tenant_id": lambda c: TENANT_ID,
        }

    def _recipe_meetings(self):
        return None, {
            "title": lambda c: _choice(c.rng, vocab.MEETING_TITLES),
            "start_time": lambda c: render(c.updated + DAY, c.tz),
            "end_time": lambda c: render(c.updated + DAY + 1_800_000_000, c.tz),
            "canceled_at": lambda c: None,
            "account_id": lambda c: str(
                CATALOG["accounts"].first_id + (self.pick_index(c.rng, "accounts") or 0)
            ),
            "task_id": lambda c: None,
            "status": lambda c: _choice(c.rng, ("booked", "completed", "no_show")),
        }

    def _recipe_calendar_events(self):
        def provider(c: Ctx) -> str:
            if "provider" not in c.memo:
                c.memo["provider"] = _choice(c.rng, ("google", "microsoft"))
            return c.memo["provider"]

        def event_id(c: Ctx) -> str:
            if provider(c) == "google":  # Google Calendar: base32hex, 26 characters
                return "".join(_choice(c.rng, "0123456789abcdefghijklmnopqrstuv") for _ in range(26))
            return "AAMkAD" + base64.b64encode(c.rng.getrandbits(8 * 48).to_bytes(48, "big")).decode()

        return None, {
            "id": self._string_id("calendar_events", event_id),
            "all_day": lambda c: "false",
            "recurring": lambda c: "true" if c.rng.random() < 0.2 else "false",
            "start_time": lambda c: render(c.updated + DAY, c.tz),
            "end_time": lambda c: render(c.updated + DAY + 1_800_000_000, c.tz),
            "canceled_at": lambda c: None,
            "title": lambda c: _choice(c.rng, vocab.MEETING_TITLES),
            "provider": provider,
            "status": lambda c: "confirmed",
            "tenant_id": lambda c: TENANT_ID,
        }

    def _recipe_pending_emails(self):
        users = self.records.get("users", [])
        return None, {
            "mailbox": lambda c: users[int(c.rng.random() * len(users))]["email"] if users else None,
            "mime_email_payload": lambda c: {
                "id": c.id,
                "_href": f"{self.base}/v2/mime_email_payloads/{c.id}",
            },
        }

    def _recipe_team_templates(self):
        return None, {"id": self._string_id("team_templates", lambda c: _uuid(c.rng))}

    def _recipe_opportunities(self):
        accounts = self.records.get("accounts", [])
        users = self.records.get("users", [])
        stages = [s["name"] for s in self.records.get("opportunity_stages", [])] or list(
            vocab.OPPORTUNITY_STAGES
        )

        def prepare(c: Ctx) -> bool:
            if not accounts:
                return False
            account = accounts[int(c.rng.random() * len(accounts))]
            owner = users[int(c.rng.random() * len(users))] if users else None
            stage = _choice(c.rng, stages)
            c.memo.update(account=account, owner=owner, stage=stage)
            return True

        def owner_ref(c: Ctx) -> dict | None:
            return self.ref("users", c.memo["owner"]["id"]) if c.memo["owner"] else None

        return prepare, {
            "name": lambda c: (
                f"{c.memo['account']['conversational_name'] or c.memo['account']['name']} - "
                f"{_choice(c.rng, vocab.OPPORTUNITY_TYPES)}"
            ),
            "account": lambda c: self.ref("accounts", c.memo["account"]["id"]),
            "account_name": lambda c: c.memo["account"]["name"],
            "amount": lambda c: f"{1000 * (5 + int(c.rng.random() * 250))}.00",
            "probability": lambda c: f"{10 * int(c.rng.random() * 10)}.0",
            "stage_name": lambda c: c.memo["stage"],
            "is_closed": lambda c: c.memo["stage"].startswith("Closed"),
            "is_won": lambda c: c.memo["stage"] == "Closed Won",
            "close_date": lambda c: render_date(c.updated + 45 * DAY, c.tz),
            "created_date": lambda c: render(c.created - c.created % DAY, c.tz),
            "opportunity_type": lambda c: _choice(c.rng, vocab.OPPORTUNITY_TYPES),
            "owner": owner_ref,
            "creator": owner_ref,
            "owner_crm_name": lambda c: c.memo["owner"]["name"] if c.memo["owner"] else None,
            "custom_fields": lambda c: {"Primary Contact": _choice(c.rng, vocab.FIRST_NAMES)},
            "currency_iso_code": lambda c: "USD",
            **dict.fromkeys(
                [
                    "account_crm_id",
                    "company_crm_id",
                    "created_by_crm_id",
                    "crm_id",
                    "crm_last_updated_date",
                    "crm_type",
                    "crm_url",
                    "owner_crm_id",
                    "most_recent_step",
                    "most_recent_step_number",
                    "most_recent_step_account",
                    "opportunity_window_person_id",
                    "opportunity_window_started_at",
                ],
                _none,
            ),
        }

    def _recipe_opportunity_people(self):
        n_opp = self.sizes["opportunities"]
        n_people = self.sizes["people"]
        opp0, people0 = CATALOG["opportunities"].first_id, CATALOG["people"].first_id

        def prepare(c: Ctx) -> bool:
            if not n_opp or not n_people or c.k > n_opp * n_people:
                return False
            i = c.k - 1
            c.memo.update(opp=opp0 + i % n_opp, person=people0 + (i * 31 + i // n_opp) % n_people)
            return True

        return prepare, {
            "opportunity": lambda c: self.ref("opportunities", c.memo["opp"]),
            "person": lambda c: self.ref("people", c.memo["person"]),
        }

    EXTERNAL_CONFIGS = (
        ("crm", "people", "CONTACT"),
        ("crm", "accounts", "ACCT"),
        ("crm_opportunity", "opportunities", "OPP"),
        ("marketing", "people", "MKTO"),
        ("erp", "accounts", "ERP"),
    )

    def _recipe_external_configurations(self):
        configs = self.EXTERNAL_CONFIGS

        def prepare(c: Ctx) -> bool:
            return c.k <= len(configs)

        return prepare, {
            "external_type": lambda c: configs[c.k - 1][0],
            "object_type": lambda c: configs[c.k - 1][1],
            "deleted": lambda c: False,
            "source_id": _none,
            "source_type": _none,
        }

    def _recipe_external_mappings(self):
        configs = self.EXTERNAL_CONFIGS[: self.sizes["external_configurations"]]

        def prepare(c: Ctx) -> bool:
            if not configs:
                return False
            i = c.k - 1
            external_type, object_type, prefix = configs[i % len(configs)]
            index = i // len(configs)
            if index >= self.sizes[object_type]:
                return False
            c.memo.update(
                external_type=external_type,
                object_type=object_type,
                object_id=CATALOG[object_type].first_id + index,
                external_id=f"{prefix}-{index + 1:05d}",
            )
            return True

        return prepare, {
            "external_type": lambda c: c.memo["external_type"],
            "object_type": lambda c: c.memo["object_type"],
            "object_id": lambda c: c.memo["object_id"],
            "external_id": lambda c: c.memo["external_id"],
            "deleted": lambda c: False,
            "inserted_at": lambda c: render(c.created, c.tz),
            "tenant_id": lambda c: TENANT_ID,
        }

    # -- bulk jobs and their results are generated together --------------------------------

    def _generate_bulk_jobs(self, size: int) -> list[Row]:
        """Seeded jobs: all done (with results) but the last, which is open and empty."""
        rng = Random(f"{self.seed}/bulk_jobs")
        first = CATALOG["bulk_jobs"].first_id
        rows = []
        for k in range(1, size + 1):
            created = T_START + int(rng.random() * (T_END - T_START - 30 * DAY))
            tz = OFFSETS[int(rng.random() * len(OFFSETS))]
            done = k < size
            finished = created + 600_000_000 if done else None
            rows.append(
                (
                    {
                        "id": first + k - 1,
                        "name": f"Person import {k}",
                        "type": "person/upsert",
                        "state": "done" if done else "open",
                        "ready_to_execute": done,
                        "total": 0,
                        "processed": 0,
                        "errors": 0,
                        "scopes": [],
                        "created_at": render(created, tz),
                        "updated_at": render(finished or created, tz),
                        "marked_ready_at": render(created + 60_000_000, tz) if done else None,
                        "started_at": render(created + 61_000_000, tz) if done else None,
                        "finished_at": render(finished, tz) if finished else None,
                    },
                    finished or created,
                    created,
                )
            )
        self._bulk_job_rows = rows
        return rows

    def _generate_bulk_job_results(self, size: int) -> list[Row]:
        jobs = [row[0] for row in self._bulk_job_rows if row[0]["state"] == "done"]
        self.bulk_result_jobs = {}
        people = self.records.get("people", [])
        if not jobs or not people:
            return []
        rng = Random(f"{self.seed}/bulk_job_results")
        first = CATALOG["bulk_job_results"].first_id
        rows = []
        for k in range(1, size + 1):
            job = jobs[(k - 1) * len(jobs) // size]
            result_id = first + k - 1
            person = people[int(rng.random() * len(people))]
            if rng.random() < 0.15:
                record = {
                    "email_address": f"{person['first_name'].lower()}@invalid",
                    "upsert_key": "email_address",
                }
                result = {"id": result_id, "status": "error", "error": "email_address is invalid"}
                result.update(record=record, resource=None)
                job["errors"] += 1
            else:
                record = {
                    "email_address": person["email_address"],
                    "title": person["title"],
                    "upsert_key": "email_address",
                }
                resource = {
                    "person": {k2: person[k2] for k2 in ("id", "email_address", "first_name", "last_name")}
                }
                resource["upsert_type"] = "update"
                result = {
                    "id": result_id,
                    "status": "success",
                    "error": None,
                    "record": record,
                    "resource": resource,
                }
            job["total"] += 1
            job["processed"] += 1
            self.bulk_result_jobs[result_id] = job["id"]
            rows.append((result, 0, 0))
        return rows

    # -- cross-resource touches --------------------------------------------------------------

    def _finish(self, store: Store) -> None:
        accounts = store["accounts"]
        counts: dict[int, int] = {}
        for person in store["people"].records.values():
            account = person.get("account")
            if account:
                counts[account["id"]] = counts.get(account["id"], 0) + 1
        for account in accounts.records.values():
            if isinstance(account.get("counts"), dict):
                account["counts"] = {"people": counts.get(account["id"], 0)}


# -- small field functions -------------------------------------------------------------------


def _id(c: Ctx) -> int:
    return c.id


def _created(c: Ctx) -> str:
    return render(c.created, c.tz)


def _updated(c: Ctx) -> str:
    return render(c.updated, c.tz)


def _none(c: Ctx) -> None:
    return None


def _gcd(a: int, b: int) -> int:
    while b:
        a, b = b, a % b
    return a


def _types(prop: dict) -> set[str]:
    kind = prop.get("type", [])
    return {kind} if isinstance(kind, str) else set(kind)


def _place(c: Ctx) -> tuple[str, str, str]:
    place = c.memo.get("place")
    if place is None:
        place = c.memo["place"] = _choice(c.rng, vocab.PLACES)
    return place


def _person_email(rng: Random) -> str:
    return f"{_choice(rng, vocab.FIRST_NAMES)}.{_choice(rng, vocab.LAST_NAMES)}@example.com".lower()


_FUTURE = {"due_on", "due_at", "remind_at", "send_after", "start_time", "end_time", "succeeded_at"}


def _datetime_fn(field: str) -> FieldFn:
    if field in _FUTURE:
        return lambda c: render(c.updated + int(c.rng.random() * 20 * DAY), c.tz)
    return lambda c: render(c.created + int(c.rng.random() * (c.updated - c.created + 1)), c.tz)


_INT_RANGES = {
    "duration": (5, 1800),
    "day": (1, 15),
    "step_number": (1, 8),
    "attachment_file_size": (10_000, 2_000_000),
    "tenant_id": (TENANT_ID, TENANT_ID + 1),
    "current_people_count": (0, 500),
    "imported_people_count": (0, 500),
    "cadence_framework_id": (1, 5),
    "resource_type": (0, 4),
    "locale_utc_offset": (-480, 331),
}


def _int_fn(field: str) -> FieldFn:
    if field in ("attachment_id", "attachment_fingerprint", "multitouch_group_id", "resource_id"):
        return lambda c: 1_000_000 + int(c.rng.random() * 9_000_000)
    if field == "order":
        return lambda c: c.k
    lo, hi = _INT_RANGES.get(field, (0, 25))
    return lambda c: lo + int(c.rng.random() * (hi - lo))


_ENUMS: dict[tuple[str, str], tuple] = {
    ("*", "status"): ("active", "pending", "completed"),
    ("actions", "status"): ("pending", "completed"),
    ("actions", "type"): ("email", "phone", "other", "integration"),
    ("emails", "status"): ("sent", "delivered", "bounced", "scheduled"),
    ("call_data_records", "status"): ("completed", "no-answer", "busy"),
    ("call_data_records", "call_type"): ("call", "conference"),
    ("*", "direction"): ("outbound", "inbound"),
    ("*", "recording_status"): ("completed", "processing"),
    ("activity_histories", "type"): ("email", "call", "note", "meeting", "success"),
    ("crm_activities", "activity_type"): ("call", "email", "note"),
    ("*", "crm_object_type"): ("Contact", "Lead", "Account"),
    ("*", "field_type"): ("string", "picklist", "boolean", "date"),
    ("crm_activity_fields", "source"): ("call", "email", "task"),
    ("crm_activity_fields", "salesforce_object_type"): ("Task", "Event"),
    ("crm_activity_fields", "field"): ("Subject", "Type", "Priority", "Status", "Description"),
    ("*", "value_type"): ("text", "number", "date"),
    ("*", "last_contacted_type"): ("email", "call", "other"),
    ("*", "job_seniority"): vocab.SENIORITIES,
    ("*", "job_role"): vocab.JOB_ROLES,
    ("*", "industry"): vocab.INDUSTRIES,
    ("*", "company_type"): ("Private", "Public", "Nonprofit", "Government"),
    ("*", "revenue_range"): ("$1M-$10M", "$10M-$50M", "$50M-$100M", "$100M-$500M", "$500M+"),
    ("*", "size"): ("1-10", "11-50", "51-200", "201-500", "501-1000", "1001-5000", "5000+"),
    ("*", "email_signature_type"): ("text", "html"),
    ("*", "meeting_type"): ("Discovery", "Demo", "Follow-up"),
    ("*", "event_source"): ("external", "salesloft"),
    ("*", "calendar_type"): ("gmail", "ms365"),
    ("*", "provider"): ("google", "microsoft"),
    ("*", "event_type"): vocab.WEBHOOK_EVENTS,
    ("*", "type"): ("email", "phone", "other"),
    ("*", "attachment_content_type"): ("application/pdf", "image/png"),
    ("*", "sentiment"): vocab.SENTIMENTS,
    ("*", "disposition"): vocab.DISPOSITIONS,
}
