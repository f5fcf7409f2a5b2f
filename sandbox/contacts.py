"""People and accounts: create, update, delete and upsert, with Salesloft's validations.

- accounts need ``name`` and ``domain``; ``domain`` is unique (case-insensitive);
- people need ``email_address``, or ``phone`` and ``last_name``; ``email_address`` is unique;
- a ``crm_id`` needs ``crm_id_type=salesforce``; referenced ids must exist (else 422);
- upserts match on ``upsert_key`` (people: id, crm_id, email_address; accounts: id, crm_id,
  domain); no ``upsert_key`` means create. ``upsert_key=id`` with an unknown id is 404.

Records are rebuilt as copies and only stored when valid, so a 422 changes nothing.
"""

from __future__ import annotations

from typing import Any

from sandbox import records as rec
from sandbox.params import as_bool, as_int, present
from sandbox.state import State
from sandbox.store import Record
from sandbox.wire import blank, invalid, not_found, taken

SENIORITIES = {"director", "executive", "individual_contributor", "manager", "vice_president", "unknown"}
CRM_ID_TYPES = {"salesforce"}
PERSON_REFS = (
    ("account_id", "account", "accounts"),
    ("owner_id", "owner", "users"),
    ("person_stage_id", "person_stage", "person_stages"),
    ("import_id", "import", "imports"),
)
ACCOUNT_REFS = (
    ("owner_id", "owner", "users"),
    ("account_tier_id", "account_tier", "account_tiers"),
    ("company_stage_id", "company_stage", "account_stages"),
    ("account_stage_id", "company_stage", "account_stages"),
)
UPSERT_KEYS = {"people": ("id", "crm_id", "email_address"), "accounts": ("id", "crm_id", "domain")}


def _check_crm(params: dict[str, Any]) -> None:
    if present(params.get("crm_id")):
        kind = params.get("crm_id_type")
        if not present(kind):
            raise blank("crm_id_type")
        if kind not in CRM_ID_TYPES:
            raise invalid("crm_id_type", "must be one of: salesforce")


def _tags(record: Record) -> None:
    tags = record.get("tags")
    if tags is not None:
        record["tags"] = [str(t) for t in tags if present(t)]


# -- people ------------------------------------------------------------------------------


def build_person(state: State, params: dict[str, Any], current: Record | None = None) -> Record:
    person = rec.blank_record(state, "people") if current is None else dict(current)
    if current is None:
        person.update(
            bouncing=False,
            starred=False,
            untouched=True,
            eu_resident=False,
            do_not_contact=False,
            success_count=0,
            cadences=[],
            tags=[],
            contact_restrictions=[],
            custom_fields={},
            counts={
                "emails_sent": 0,
                "emails_viewed": 0,
                "emails_clicked": 0,
                "emails_replied_to": 0,
                "emails_bounced": 0,
                "calls": 0,
            },
        )
    _check_crm(params)
    rec.assign(state, "people", person, params)
    for param, field, resource in PERSON_REFS:
        rec.set_ref(state, person, params, param, field, resource)
    if current is None and person.get("owner") is None:
        person["owner"] = state.ref("users", state.me_id)
    _tags(person)
    if person.get("job_seniority") is not None and person["job_seniority"] not in SENIORITIES:
        raise invalid("job_seniority", "must be one of: " + ", ".join(sorted(SENIORITIES)))
    email = person.get("email_address")
    if present(email) and ("@" not in email or email.strip().startswith("@") or email.strip().endswith("@")):
        raise invalid("email_address", "is invalid")
    if not present(email) and not (present(person.get("phone")) and present(person.get("last_name"))):
        raise blank("email_address")
    if present(email):
        owner = state.indexes.emails.get(email.strip().lower())
        if owner is not None and owner != person.get("id"):
            raise taken("email_address")
    first, last = person.get("first_name") or "", person.get("last_name") or ""
    display = f"{first} {last}".strip() or (email or "")
    person["display_name"] = display or None
    person["full_email_address"] = f"{display} <{email}>" if present(email) else None
    account = person.get("account")
    if account and (current is None or (current.get("account") or {}).get("id") != account["id"]):
        company = state.store["accounts"].get(account["id"])
        if company and not present(params.get("person_company_name")):
            person["person_company_name"] = company.get("name")
    return person


def create_person(state: State, params: dict[str, Any]) -> Record:
    person = rec.insert(state, "people", build_person(state, params))
    state.indexes.add_person(person)
    return person


def update_person(state: State, current: Record, params: dict[str, Any]) -> Record:
    person = build_person(state, params, current)
    state.indexes.drop_person(current)
    person = rec.save(state, "people", person)
    state.indexes.add_person(person)
    return person


def delete_person(state: State, raw_id: str) -> None:
    person = rec.delete(state, "people", raw_id)
    if person is not None:
        state.indexes.drop_person(person)
        state.indexes.person_imports.pop(person["id"], None)


# -- accounts ----------------------------------------------------------------------------


def build_account(state: State, params: dict[str, Any], current: Record | None = None) -> Record:
    account = rec.blank_record(state, "accounts") if current is None else dict(current)
    if current is None:
        account.update(do_not_contact=False, tags=[], custom_fields={}, counts={"people": 0})
        for name in ("name", "domain"):
            if not present(params.get(name)):
                raise blank(name)
    else:
        for name in ("name", "domain"):
            if name in params and not present(params[name]):
                raise blank(name)
    _check_crm(params)
    rec.assign(state, "accounts", account, params)
    for param, field, resource in ACCOUNT_REFS:
        rec.set_ref(state, account, params, param, field, resource)
    if current is None and account.get("owner") is None:
        account["owner"] = state.ref("users", state.me_id)
    if current is None:
        account["creator"] = state.ref("users", state.me_id)
    if "archived" in params:
        archived = as_bool(params["archived"])
        if archived is None:
            raise invalid("archived", "must be true or false")
        if archived and not account.get("archived_at"):
            account["archived_at"] = state.clock.now()[1]
        elif not archived:
            account["archived_at"] = None
    _tags(account)
    domain = str(account.get("domain") or "").strip().lower()
    holder = state.indexes.domains.get(domain)
    if holder is not None and holder != account.get("id"):
        raise taken("domain")
    return account


def create_account(state: State, params: dict[str, Any]) -> Record:
    account = rec.insert(state, "accounts", build_account(state, params))
    state.indexes.add_account(account)
    return account


def update_account(state: State, current: Record, params: dict[str, Any]) -> Record:
    account = build_account(state, params, current)
    state.indexes.drop_account(current)
    account = rec.save(state, "accounts", account)
    state.indexes.add_account(account)
    return account


def delete_account(state: State, raw_id: str) -> None:
    """Deleting an account removes its people from it (Salesloft: "will remove all connected
    people from that account"); they get a new updated_at."""
    account = rec.delete(state, "accounts", raw_id)
    if account is None:
        return
    state.indexes.drop_account(account)
    people = state.store["people"]
    for person in [p for p in people.records.values() if (p.get("account") or {}).get("id") == account["id"]]:
        changed = dict(person)
        changed["account"] = None
        rec.save(state, "people", changed)


# -- upserts -----------------------------------------------------------------------------


def _find(state: State, resource: str, key: str, value: Any) -> Record | None:
    table = state.store[resource]
    if key == "id":
        record_id = as_int(value)
        found = table.get(record_id) if record_id is not None else None
        if found is None:
            raise not_found()
        return found
    if key == "crm_id":
        index = state.indexes.person_crm if resource == "people" else state.indexes.account_crm
        record_id = index.get(str(value))
    else:
        index = state.indexes.emails if resource == "people" else state.indexes.domains
        record_id = index.get(str(value).strip().lower())
    return table.get(record_id) if record_id is not None else None


def upsert(state: State, resource: str, params: dict[str, Any]) -> tuple[Record, str]:
    """-> (record, "create" | "update")."""
    creator, updater = (
        (create_person, update_person) if resource == "people" else (create_account, update_account)
    )
    key = params.get("upsert_key")
    fields = {k: v for k, v in params.items() if k not in ("upsert_key", "id")}
    if not present(key):
        return creator(state, fields), "create"
    allowed = UPSERT_KEYS[resource]
    if key not in allowed:
        raise invalid("upsert_key", "must be one of: " + ", ".join(allowed))
    if not present(params.get(key)):
        raise blank(key)
    found = _find(state, resource, key, params[key])
    if (
        found is not None
        and key != "id"
        and present(params.get("id"))
        and as_int(params["id"]) != found["id"]
    ):
        raise invalid("id", "does not match the record found by upsert_key")
    if found is None:
        return creator(state, fields), "create"
    return updater(state, found, fields), "update"


def upsert_payload(resource: str, record: Record, kind: str) -> dict[str, Any]:
    """The response body of ``/v2/person_upserts`` and ``/v2/account_upserts``."""
    return {"person" if resource == "people" else "account": record, "upsert_type": kind}
