"""External IDs (configurations, mappings, upsert/list/delete by external ID), opportunities,
opportunity people, and the data-control redaction requests.

As in Salesloft's guides: an external type must be configured for an object type before
mappings or upserts use it (else 422); a mapping cannot be updated, only deleted; upserting by
external ID creates the object and its mapping, or updates the mapped object; opportunities are
soft-deleted (gone from the API, their mappings marked ``deleted``). Configuration, mapping and
external-ID creates answer 201, as the guides show; updates through an external ID answer 200.
"""

from __future__ import annotations

from typing import Any

from sandbox import contacts
from sandbox import records as rec
from sandbox.params import as_bool, as_int, many, present
from sandbox.routing import Call
from sandbox.state import State
from sandbox.store import Record
from sandbox.timestamps import TEAM_TZ, InvalidInstant, parse, render
from sandbox.wire import Response, blank, data_response, invalid, no_content, not_found, taken

OBJECT_TYPES = {
    "people": "people",
    "accounts": "accounts",
    "users": "users",
    "opportunities": "opportunities",
}
UPSERTABLE = ("people", "accounts", "opportunities")


# -- configurations and mappings ---------------------------------------------------------------


def create_configuration(state: State, call: Call) -> Response:
    p = call.params
    rec.required(p, "external_type", "object_type")
    if p["object_type"] not in OBJECT_TYPES:
        raise invalid("object_type", "must be one of: " + ", ".join(OBJECT_TYPES))
    key = (str(p["external_type"]), str(p["object_type"]))
    if key in state.indexes.configurations:
        raise taken("external_type")
    config = rec.blank_record(state, "external_configurations")
    config.update(external_type=key[0], object_type=key[1], deleted=False, source_id=None, source_type=None)
    config = rec.insert(state, "external_configurations", config)
    state.indexes.configurations[key] = config["id"]
    return data_response(config, 201)


def delete_configuration(state: State, call: Call) -> Response:
    config = rec.delete(state, "external_configurations", call.args["id"])
    if config is not None:
        state.indexes.configurations.pop((config["external_type"], config["object_type"]), None)
    return no_content()


def _require_configuration(state: State, external_type: str, object_type: str) -> None:
    if (external_type, object_type) not in state.indexes.configurations:
        raise invalid("external_type", f"has no external ID configuration for {object_type}")


def _new_mapping(
    state: State, external_type: str, object_type: str, external_id: str, object_id: int
) -> Record:
    mapping = rec.blank_record(state, "external_mappings")
    mapping.update(
        external_type=external_type,
        object_type=object_type,
        external_id=external_id,
        object_id=object_id,
        deleted=False,
        tenant_id=100013,
    )
    mapping = rec.insert(state, "external_mappings", mapping)
    if "inserted_at" in mapping:
        mapping["inserted_at"] = mapping.get("created_at")
    state.indexes.mappings[(external_type, object_type, external_id)] = mapping["id"]
    return mapping


def create_mapping(state: State, call: Call) -> Response:
    p = call.params
    rec.required(p, "external_type", "object_type", "external_id", "object_id")
    external_type, object_type, external_id = (
        str(p["external_type"]),
        str(p["object_type"]),
        str(p["external_id"]),
    )
    if object_type not in OBJECT_TYPES:
        raise invalid("object_type", "must be one of: " + ", ".join(OBJECT_TYPES))
    _require_configuration(state, external_type, object_type)
    object_id = rec.existing_id(state, p, "object_id", OBJECT_TYPES[object_type])
    if (external_type, object_type, external_id) in state.indexes.mappings:
        raise taken("external_id")
    return data_response(_new_mapping(state, external_type, object_type, external_id, object_id), 201)


def delete_mapping(state: State, call: Call) -> Response:
    mapping = rec.delete(state, "external_mappings", call.args["id"])
    if mapping is not None:
        state.indexes.mappings.pop(
            (mapping["external_type"], mapping["object_type"], mapping["external_id"]), None
        )
    return no_content()


def _mapping(state: State, external_type: str, object_type: str, external_id: str) -> Record | None:
    mapping_id = state.indexes.mappings.get((external_type, object_type, external_id))
    return state.store["external_mappings"].get(mapping_id) if mapping_id is not None else None


# -- by external ID ------------------------------------------------------------------------------


def list_by_external_ids(state: State, call: Call) -> Response:
    external_type, object_type = call.args["external_type"], call.args["object_type"]
    if object_type not in OBJECT_TYPES or (external_type, object_type) not in state.indexes.configurations:
        raise not_found()
    table = state.store[OBJECT_TYPES[object_type]]
    wanted = many(call.query, "external_ids")
    if not wanted:
        mappings = state.store["external_mappings"].records.values()
        wanted = [
            m["external_id"]
            for m in mappings
            if (m["external_type"], m["object_type"]) == (external_type, object_type)
        ]
    out = []
    for external_id in wanted:
        mapping = _mapping(state, external_type, object_type, external_id)
        if mapping is not None and not mapping.get("deleted"):
            found = table.get(mapping["object_id"])
            if found is not None:
                out.append(found)
    return data_response(out)


def upsert_by_external_id(state: State, call: Call) -> Response:
    external_type, object_type = call.args["external_type"], call.args["object_type"]
    external_id = call.args["external_id"]
    if object_type not in UPSERTABLE:
        raise invalid("object_type", "must be one of: " + ", ".join(UPSERTABLE))
    _require_configuration(state, external_type, object_type)
    params = {k: v for k, v in call.params.items() if k != "id"}
    mapping = _mapping(state, external_type, object_type, external_id)
    current = state.store[object_type].get(mapping["object_id"]) if mapping else None
    if current is not None:
        updater = {"people": contacts.update_person, "accounts": contacts.update_account}.get(
            object_type, update_opportunity
        )
        return data_response(updater(state, current, params))
    creator = {"people": contacts.create_person, "accounts": contacts.create_account}.get(
        object_type, create_opportunity
    )
    created = creator(state, params)
    if mapping is None:
        _new_mapping(state, external_type, object_type, external_id, created["id"])
    else:
        revived = dict(mapping)
        revived.update(object_id=created["id"], deleted=False)
        rec.save(state, "external_mappings", revived)
    return data_response(created, 201)


def delete_by_external_id(state: State, call: Call) -> Response:
    external_type, object_type = call.args["external_type"], call.args["object_type"]
    mapping = _mapping(state, external_type, object_type, call.args["external_id"])
    if mapping is None or object_type not in UPSERTABLE:
        raise not_found()
    if not mapping.get("deleted"):
        remover = {"people": contacts.delete_person, "accounts": contacts.delete_account}.get(object_type)
        if remover is not None:
            remover(state, str(mapping["object_id"]))
        else:
            _soft_delete_opportunity(state, mapping["object_id"])
    return no_content()


# -- opportunities -------------------------------------------------------------------------------


def _opportunity_stage(state: State, value: Any) -> str:
    for stage in state.store["opportunity_stages"].records.values():
        if str(stage.get("name")).lower() == str(value).lower():
            return stage["name"]
    raise invalid("stage_name", "is not an existing opportunity stage")


def _day(name: str, value: Any) -> str:
    """The calendar day of a date or datetime, as written (no shift into another zone)."""
    text = str(value).strip()
    try:
        parse(text)
    except InvalidInstant:
        raise invalid(name, "must be an ISO-8601 date") from None
    return text[:10]


def build_opportunity(state: State, params: dict[str, Any], current: Record | None = None) -> Record:
    opp = rec.blank_record(state, "opportunities") if current is None else dict(current)
    creating = current is None
    if creating or "account_id" in params:
        account_id = rec.existing_id(state, params, "account_id", "accounts")
        account = state.store["accounts"].get(account_id)
        opp["account"] = state.ref("accounts", account_id)
        opp["account_name"] = account.get("name")
    if creating or "name" in params:
        rec.required(params, "name")
        opp["name"] = str(params["name"])
    if present(params.get("stage_name")):
        opp["stage_name"] = _opportunity_stage(state, params["stage_name"])
    if creating or "owner_id" in params:
        owner_id = (
            rec.existing_id(state, params, "owner_id", "users")
            if present(params.get("owner_id"))
            else state.me_id
        )
        opp["owner"] = state.ref("users", owner_id)
        opp["owner_crm_name"] = state.store["users"].get(owner_id).get("name")
    if creating:
        opp["creator"] = state.ref("users", state.me_id)
    for name, fmt in (("amount", "{:.2f}"), ("probability", "{:.1f}")):
        if name in params:
            if not present(params[name]):
                opp[name] = None
                continue
            try:
                opp[name] = fmt.format(float(params[name]))
            except (TypeError, ValueError):
                raise invalid(name, "must be a number") from None
    for name in ("is_closed", "is_won"):
        if name in params:
            flag = as_bool(params[name])
            if flag is None:
                raise invalid(name, "must be true or false")
            opp[name] = flag
    if present(params.get("close_date")):
        opp["close_date"] = _day("close_date", params["close_date"])
    if present(params.get("created_date")):
        midnight = parse(_day("created_date", params["created_date"]) + "T00:00:00" + render(0, TEAM_TZ)[-6:])
        opp["created_date"] = render(midnight, TEAM_TZ)
    for name in ("opportunity_type", "currency_iso_code"):
        if name in params:
            opp[name] = str(params[name]) if present(params[name]) else None
    if "tags" in params:
        tags = params["tags"]
        opp["tags"] = [str(t) for t in (tags if isinstance(tags, list) else [tags]) if present(t)]
    if "custom_fields" in params:
        merged = dict(opp.get("custom_fields") or {})
        merged.update(rec.custom_fields(params["custom_fields"]))
        opp["custom_fields"] = merged
    if creating:
        opp.setdefault("custom_fields", {})
        for name in ("is_closed", "is_won"):
            if opp.get(name) is None:
                opp[name] = False
        if opp.get("tags") is None:
            opp["tags"] = []
        if opp.get("custom_fields") is None:
            opp["custom_fields"] = {}
    return opp


def create_opportunity(state: State, params: dict[str, Any]) -> Record:
    return rec.insert(state, "opportunities", build_opportunity(state, params))


def update_opportunity(state: State, current: Record, params: dict[str, Any]) -> Record:
    return rec.save(state, "opportunities", build_opportunity(state, params, current))


def _soft_delete_opportunity(state: State, opportunity_id: int) -> None:
    state.store["opportunities"].delete(opportunity_id)
    for mapping in list(state.store["external_mappings"].records.values()):
        points_here = mapping["object_type"] == "opportunities" and mapping["object_id"] == opportunity_id
        if points_here and mapping.get("deleted") is False:
            rec.save(state, "external_mappings", {**mapping, "deleted": True})


def delete_opportunity(state: State, call: Call) -> Response:
    table = state.store["opportunities"]
    opportunity_id = as_int(call.args["id"])
    if opportunity_id is None or (
        opportunity_id not in table.records and opportunity_id not in table.tombstones
    ):
        raise not_found()
    if opportunity_id in table.records:
        _soft_delete_opportunity(state, opportunity_id)
    return no_content()


def create_opportunity_person(state: State, call: Call) -> Response:
    p = call.params
    opportunity_id = rec.existing_id(state, p, "opportunity_id", "opportunities")
    person_id = rec.existing_id(state, p, "person_id", "people")
    for link in state.store["opportunity_people"].records.values():
        if link["opportunity"]["id"] == opportunity_id and link["person"]["id"] == person_id:
            return data_response(link)
    link = rec.blank_record(state, "opportunity_people")
    link.update(opportunity=state.ref("opportunities", opportunity_id), person=state.ref("people", person_id))
    return data_response(rec.insert(state, "opportunity_people", link))


def delete_opportunity_person(state: State, call: Call) -> Response:
    if "id" in call.args:
        rec.delete(state, "opportunity_people", call.args["id"])
        return no_content()
    p = call.params
    opportunity_id, person_id = as_int(p.get("opportunity_id")), as_int(p.get("person_id"))
    if opportunity_id is None or person_id is None:
        raise blank("opportunity_id" if opportunity_id is None else "person_id")
    for link in list(state.store["opportunity_people"].records.values()):
        if link["opportunity"]["id"] == opportunity_id and link["person"]["id"] == person_id:
            state.store["opportunity_people"].delete(link["id"])
            return no_content()
    raise not_found()


# -- data control ----------------------------------------------------------------------------------


def redaction(kind: str):
    """Records the redaction request (it is not applied to the data)."""

    def handler(state: State, call: Call) -> Response:
        p = call.params
        account_id = rec.existing_id(state, p, "account_id", "accounts")
        request = rec.blank_record(state, "redaction_requests")
        dry_run = as_bool(p.get("dry_run")) is True
        people: list[int] = []
        if kind == "account_and_people_redaction":
            people = sorted(
                person["id"]
                for person in state.store["people"].records.values()
                if (person.get("account") or {}).get("id") == account_id
            )
        request.update(
            kind=kind,
            account_id=account_id,
            team_id=as_int(p.get("team_id")),
            dry_run=dry_run,
            schedule=p.get("schedule") if isinstance(p.get("schedule"), dict) else None,
            status="dry_run" if dry_run else "scheduled",
            people_ids=people,
        )
        return data_response(rec.insert(state, "redaction_requests", request))

    return handler
