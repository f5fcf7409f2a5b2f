"""Everything one running sandbox holds: options, data, auth, budget, faults, journal."""

from __future__ import annotations

import gc
import time
from typing import Any

from sandbox.auth import Auth
from sandbox.budget import Budget
from sandbox.config import Options
from sandbox.datagen import Generator
from sandbox.faults import Faults
from sandbox.journal import Journal
from sandbox.resources import CATALOG
from sandbox.specs import load_schemas
from sandbox.store import Record, Store, Table
from sandbox.timestamps import Clock


class Indexes:
    """Lookups that writes need to be fast and correct: unique keys and idempotency keys."""

    def __init__(self, store: Store):
        self.emails: dict[str, int] = {}
        self.domains: dict[str, int] = {}
        self.person_crm: dict[str, int] = {}
        self.account_crm: dict[str, int] = {}
        self.task_keys: dict[str, int] = {}
        self.configurations: dict[tuple[str, str], int] = {}
        self.mappings: dict[tuple[str, str, str], int] = {}
        # Person id -> every import the person was part of (the record shows only the latest one).
        self.person_imports: dict[int, set[int]] = {}
        for person in store["people"].records.values():
            self.add_person(person)
        for account in store["accounts"].records.values():
            self.add_account(account)
        for config in store["external_configurations"].records.values():
            self.configurations[(config["external_type"], config["object_type"])] = config["id"]
        for mapping in store["external_mappings"].records.values():
            self.mappings[(mapping["external_type"], mapping["object_type"], mapping["external_id"])] = (
                mapping["id"]
            )

    @staticmethod
    def _norm(value: Any) -> str | None:
        return value.strip().lower() if isinstance(value, str) and value.strip() else None

    def add_person(self, person: Record) -> None:
        email = self._norm(person.get("email_address"))
        if email:
            self.emails[email] = person["id"]
        if person.get("crm_id"):
            self.person_crm[person["crm_id"]] = person["id"]
        if person.get("import"):
            self.person_imports.setdefault(person["id"], set()).add(person["import"]["id"])

    def drop_person(self, person: Record) -> None:
        email = self._norm(person.get("email_address"))
        if email and self.emails.get(email) == person["id"]:
            del self.emails[email]
        if person.get("crm_id") and self.person_crm.get(person["crm_id"]) == person["id"]:
            del self.person_crm[person["crm_id"]]

    def add_account(self, account: Record) -> None:
        domain = self._norm(account.get("domain"))
        if domain:
            self.domains[domain] = account["id"]
        if account.get("crm_id"):
            self.account_crm[account["crm_id"]] = account["id"]

    def drop_account(self, account: Record) -> None:
        domain = self._norm(account.get("domain"))
        if domain and self.domains.get(domain) == account["id"]:
            del self.domains[domain]
        if account.get("crm_id") and self.account_crm.get(account["crm_id"]) == account["id"]:
            del self.account_crm[account["crm_id"]]


class State:
    def __init__(self, options: Options, base_url: str):
        self.options = options
        self.base_url = base_url.rstrip("/")
        self.schemas = load_schemas(options.specs_dir)
        self.clock = Clock()
        self.auth = Auth(
            options.api_key,
            options.client_id,
            options.client_secret,
            options.refresh_token,
            options.token_ttl,
            options.reject_refresh,
        )
        self.budget = Budget(options.budget, options.time_scale, options.retry_after)
        self.faults = Faults(options.faults)
        self.journal = Journal(options.journal_limit)
        self.started = time.time()
        self.requests = 0
        self.in_flight = 0  # API requests received and not answered yet
        self.peak_in_flight = 0  # the most at once since start (or the last journal clear)
        self.load_data()

    def load_data(self) -> None:
        """(Re)generate every table from the seed. The GC is paused while millions of objects
        are created, then they are frozen so later collections do not rescan them."""
        gc.disable()
        try:
            self.store = Store(self.schemas)
            self.generator = Generator(self.options.seed, self.options.sizes, self.base_url, self.schemas)
            self.clock.observe(self.generator.generate_all(self.store))
            self.indexes = Indexes(self.store)
            from sandbox.bulk import BulkRunner  # bulk imports writers, which import this module

            self.bulk = BulkRunner(self, self.generator.bulk_result_jobs)
        finally:
            gc.enable()
            gc.freeze()

    def reset(self) -> None:
        self.load_data()
        self.journal.clear()
        self.budget.reset()
        self.auth.reset()

    # -- helpers for handlers ------------------------------------------------------------

    def table(self, name: str) -> Table:
        return self.store[name]

    @property
    def me_id(self) -> int:
        """The user the API key belongs to: the first user."""
        return CATALOG["users"].first_id

    def ref(self, resource: str, record_id: int) -> dict:
        return self.generator.ref(resource, record_id)

    def exists(self, resource: str, record_id: int | None) -> bool:
        return record_id is not None and record_id in self.store[resource].records
