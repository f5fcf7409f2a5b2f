"""Write endpoints other than people/accounts (see contacts.py), external IDs (external.py) and
bulk jobs (bulk.py): notes, tasks, custom fields, person stages, imports, saved list views,
cadence memberships, calls, activities and webhook subscriptions."""

from __future__ import annotations

from typing import Any

import orjson

from sandbox import contacts
from sandbox import records as rec
from sandbox.params import as_bool, as_int, first, present
from sandbox.routing import Call
from sandbox.state import State
from sandbox.store import Record
from sandbox.timestamps import InvalidInstant, parse, render
from sandbox.wire import Response, blank, data_response, invalid, no_content, not_found, taken


def _user_from_guid(state: State, guid: Any) -> dict:
    if not present(guid):
        return state.ref("users", state.me_id)
    for user in state.store["users"].records.values():
        if user.get("guid") == guid:
            return state.ref("users", user["id"])
    raise invalid("user_guid", "is invalid")


def _instant(name: str, value: Any) -> int:
    try:
        return parse(str(value))
    except InvalidInstant:
        raise invalid(name, "must be an ISO-8601 date or datetime") from None


# -- people and accounts -------------------------------------------------------------------


def create_person(state: State, call: Call) -> Response:
    return data_response(contacts.create_person(state, call.params))


def update_person(state: State, call: Call) -> Response:
    current = rec.path_id(state, "people", call.args["id"])
    return data_response(contacts.update_person(state, current, call.params))


def delete_person(state: State, call: Call) -> Response:
    contacts.delete_person(state, call.args["id"])
    return no_content()


def create_account(state: State, call: Call) -> Response:
    return data_response(contacts.create_account(state, call.params))


def update_account(state: State, call: Call) -> Response:
    current = rec.path_id(state, "accounts", call.args["id"])
    return data_response(contacts.update_account(state, current, call.params))


def delete_account(state: State, call: Call) -> Response:
    contacts.delete_account(state, call.args["id"])
    return no_content()


def upsert_person(state: State, call: Call) -> Response:
    record, kind = contacts.upsert(state, "people", call.params)
    return data_response(contacts.upsert_payload("people", record, kind))


def upsert_account(state: State, call: Call) -> Response:
    record, kind = contacts.upsert(state, "accounts", call.params)
    return data_response(contacts.upsert_payload("accounts", record, kind))


# -- notes -----------------------------------------------------------------------------------


def create_note(state: State, call: Call) -> Response:
    p = call.params
    rec.required(p, "content", "associated_with_type", "associated_with_id")
    kind = str(p["associated_with_type"]).lower()
    if kind not in ("person", "account"):
        raise invalid("associated_with_type", "must be one of: person, account")
    target = "people" if kind == "person" else "accounts"
    note = rec.blank_record(state, "notes")
    note["associated_with"] = state.ref(target, rec.existing_id(state, p, "associated_with_id", target))
    note["associated_type"] = kind
    note["content"] = str(p["content"])
    note["user"] = _user_from_guid(state, p.get("user_guid"))
    rec.set_ref(state, note, p, "call_id", "call", "calls")
    return data_response(rec.insert(state, "notes", note))


def update_note(state: State, call: Call) -> Response:
    note = dict(rec.path_id(state, "notes", call.args["id"]))
    p = call.params
    rec.required(p, "content")
    note["content"] = str(p["content"])
    rec.set_ref(state, note, p, "call_id", "call", "calls")
    return data_response(rec.save(state, "notes", note))


def delete_note(state: State, call: Call) -> Response:
    rec.delete(state, "notes", call.args["id"])
    return no_content()


# -- tasks -----------------------------------------------------------------------------------

TASK_TYPES = ("call", "email", "general")


def create_task(state: State, call: Call) -> Response:
    """``idempotency_key``: a second create with the same key returns the first task."""
    p = call.params
    key = p.get("idempotency_key")
    if present(key):
        existing = state.indexes.task_keys.get(str(key))
        if existing is not None and existing in state.store["tasks"].records:
            return data_response(state.store["tasks"].records[existing])
    rec.required(p, "subject", "person_id", "user_id", "task_type", "due_date", "current_state")
    if p["task_type"] not in TASK_TYPES:
        raise invalid("task_type", "must be one of: " + ", ".join(TASK_TYPES))
    if p["current_state"] != "scheduled":
        raise invalid("current_state", "must be one of: scheduled")
    task = rec.blank_record(state, "tasks")
    task["person"] = state.ref("people", rec.existing_id(state, p, "person_id", "people"))
    task["user"] = state.ref("users", rec.existing_id(state, p, "user_id", "users"))
    task["created_by_user"] = state.ref("users", state.me_id)
    _task_fields(task, p)
    task["current_state"] = "scheduled"
    task["task_type"] = p["task_type"]
    task = rec.insert(state, "tasks", task)
    if present(key):
        state.indexes.task_keys[str(key)] = task["id"]
    return data_response(task)


def _task_fields(task: Record, p: dict[str, Any]) -> None:
    if "subject" in p:
        if not present(p["subject"]):
            raise blank("subject")
        task["subject"] = str(p["subject"])
    if "description" in p:
        task["description"] = None if p["description"] is None else str(p["description"])
    if present(p.get("due_date")):
        raw = str(p["due_date"]).strip()
        due = _instant("due_date", raw)
        if len(raw) == 10:  # a date stays that date; due at its start in the team's zone
            due = _instant("due_date", raw + "T00:00:00" + render(due)[-6:])
            task["due_date"] = raw
        else:
            task["due_date"] = raw[:10]
        task["due_at"] = render(due)
    if "remind_at" in p:
        task["remind_at"] = render(_instant("remind_at", p["remind_at"])) if present(p["remind_at"]) else None


def update_task(state: State, call: Call) -> Response:
    task = dict(rec.path_id(state, "tasks", call.args["id"]))
    p = call.params
    _task_fields(task, p)
    if present(p.get("current_state")):
        if p["current_state"] != "completed":
            raise invalid("current_state", "must be one of: completed")
        if task.get("current_state") != "completed":
            task["current_state"] = "completed"
            task["completed_at"] = state.clock.now()[1]
            task["completed_by"] = state.ref("users", state.me_id)
    return data_response(rec.save(state, "tasks", task))


# -- custom fields, person stages, imports, saved list views ---------------------------------

FIELD_TYPES = ("person", "company", "opportunity")


def _custom_field(state: State, field: Record, p: dict[str, Any], creating: bool) -> Record:
    if creating or "name" in p:
        rec.required(p, "name")
        field["name"] = str(p["name"])
    if present(p.get("field_type")) or creating:
        kind = p.get("field_type") or "person"
        if kind not in FIELD_TYPES:
            raise invalid("field_type", "must be one of: " + ", ".join(FIELD_TYPES))
        field["field_type"] = kind
    for other in state.store["custom_fields"].records.values():
        if other["id"] != field.get("id") and (other["name"], other["field_type"]) == (
            field["name"],
            field["field_type"],
        ):
            raise taken("name")
    field["value_type"] = field.get("value_type") or "text"
    return field


def create_custom_field(state: State, call: Call) -> Response:
    field = _custom_field(state, rec.blank_record(state, "custom_fields"), call.params, True)
    return data_response(rec.insert(state, "custom_fields", field))


def update_custom_field(state: State, call: Call) -> Response:
    field = dict(rec.path_id(state, "custom_fields", call.args["id"]))
    return data_response(rec.save(state, "custom_fields", _custom_field(state, field, call.params, False)))


def delete_custom_field(state: State, call: Call) -> Response:
    rec.delete(state, "custom_fields", call.args["id"])
    return no_content()


def _stage_name(state: State, resource: str, stage: Record, p: dict[str, Any]) -> None:
    rec.required(p, "name")
    name = str(p["name"])
    for other in state.store[resource].records.values():
        if other["id"] != stage.get("id") and str(other.get("name")).lower() == name.lower():
            raise taken("name")
    stage["name"] = name


def create_stage(resource: str):
    """POST person_stages / opportunity_stages: a unique name, and an order (default: last)."""

    def handler(state: State, call: Call) -> Response:
        p = call.params
        stage = rec.blank_record(state, resource)
        _stage_name(state, resource, stage, p)
        if "order" in stage:
            order = as_int(p.get("order")) if present(p.get("order")) else None
            if present(p.get("order")) and order is None:
                raise invalid("order", "must be an integer")
            existing = [s.get("order") or 0 for s in state.store[resource].records.values()]
            stage["order"] = order if order is not None else max(existing, default=0) + 1
        return data_response(rec.insert(state, resource, stage))

    return handler


def update_person_stage(state: State, call: Call) -> Response:
    stage = dict(rec.path_id(state, "person_stages", call.args["id"]))
    _stage_name(state, "person_stages", stage, call.params)
    return data_response(rec.save(state, "person_stages", stage))


def delete_person_stage(state: State, call: Call) -> Response:
    rec.delete(state, "person_stages", call.args["id"])
    return no_content()


def create_import(state: State, call: Call) -> Response:
    p = call.params
    item = rec.blank_record(state, "imports")
    if present(p.get("user_id")):
        rec.existing_id(state, p, "user_id", "users")
    item["name"] = str(p["name"]) if present(p.get("name")) else None
    item["current_people_count"] = 0
    item["imported_people_count"] = 0
    return data_response(rec.insert(state, "imports", item))


def update_import(state: State, call: Call) -> Response:
    item = dict(rec.path_id(state, "imports", call.args["id"]))
    if "name" in call.params:
        item["name"] = str(call.params["name"]) if present(call.params["name"]) else None
    return data_response(rec.save(state, "imports", item))


UNDO = ("all", "single")


def delete_import(state: State, call: Call) -> Response:
    """``undo=single`` also deletes the people only in this import, ``undo=all`` every person in it
    (even if in other imports too); without ``undo`` no person is deleted."""
    undo = first(call.query, "undo")
    if present(undo) and undo not in UNDO:
        raise invalid("undo", "must be one of: " + ", ".join(UNDO))
    import_id = as_int(call.args["id"])
    if present(undo) and import_id in state.store["imports"]:  # deleted already: its people are too
        for person_id, imports in list(state.indexes.person_imports.items()):
            if import_id in imports and (undo == "all" or imports == {import_id}):
                contacts.delete_person(state, str(person_id))
    rec.delete(state, "imports", call.args["id"])
    return no_content()


VIEWS = ("people", "companies", "recordings")


def _view_params(value: Any) -> Any:
    if isinstance(value, str) and value.strip():
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            raise invalid("view_params", "must be a JSON object") from None
    if value is None or isinstance(value, dict):
        return value
    raise invalid("view_params", "must be a JSON object")


def create_saved_list_view(state: State, call: Call) -> Response:
    p = call.params
    rec.required(p, "name", "view")
    if p["view"] not in VIEWS:
        raise invalid("view", "must be one of: " + ", ".join(VIEWS))
    view = rec.blank_record(state, "saved_list_views")
    view.update(name=str(p["name"]), view=p["view"], view_params=_view_params(p.get("view_params")))
    view["is_default"] = as_bool(p.get("is_default")) is True
    return data_response(rec.insert(state, "saved_list_views", view))


def update_saved_list_view(state: State, call: Call) -> Response:
    view = dict(rec.path_id(state, "saved_list_views", call.args["id"]))
    p = call.params
    if "name" in p:
        rec.required(p, "name")
        view["name"] = str(p["name"])
    if "view_params" in p:
        view["view_params"] = _view_params(p["view_params"])
    if "is_default" in p:
        view["is_default"] = as_bool(p["is_default"]) is True
    return data_response(rec.save(state, "saved_list_views", view))


def delete_saved_list_view(state: State, call: Call) -> Response:
    rec.delete(state, "saved_list_views", call.args["id"])
    return no_content()


# -- cadence memberships ---------------------------------------------------------------------


def create_cadence_membership(state: State, call: Call) -> Response:
    """person_id and cadence_id (query string or body). An active membership of the same person
    and cadence is a 422; an ended one is re-activated (one membership record per pair)."""
    p = call.params
    person_id = rec.existing_id(state, p, "person_id", "people")
    cadence_id = rec.existing_id(state, p, "cadence_id", "cadences")
    user = (
        state.ref("users", rec.existing_id(state, p, "user_id", "users"))
        if present(p.get("user_id"))
        else None
    )
    if present(p.get("step_id")):
        rec.existing_id(state, p, "step_id", "steps")
    table = state.store["cadence_memberships"]
    for membership in table.records.values():
        if membership["person"]["id"] == person_id and membership["cadence"]["id"] == cadence_id:
            if membership.get("currently_on_cadence"):
                raise invalid("person_id", "is already an active member of this cadence")
            again = dict(membership)
            again.update(currently_on_cadence=True, current_state="active", added_at=state.clock.now()[1])
            if user:
                again["user"] = user
            return data_response(rec.save(state, "cadence_memberships", again))
    membership = rec.blank_record(state, "cadence_memberships")
    membership.update(
        person=state.ref("people", person_id),
        cadence=state.ref("cadences", cadence_id),
        user=user or state.ref("users", state.me_id),
        currently_on_cadence=True,
        current_state="active",
        person_deleted=False,
        counts={"views": 0, "clicks": 0, "replies": 0, "calls": 0, "sent_emails": 0, "bounces": 0},
    )
    membership = rec.insert(state, "cadence_memberships", membership)
    if "added_at" in membership:
        membership["added_at"] = membership.get("created_at")
    return data_response(membership)


def delete_cadence_membership(state: State, call: Call) -> Response:
    """Removes the person from the cadence: the membership stays, no longer current."""
    membership = rec.path_id(state, "cadence_memberships", call.args["id"])
    if membership.get("currently_on_cadence"):
        ended = dict(membership)
        ended.update(currently_on_cadence=False, current_state="removed")
        rec.save(state, "cadence_memberships", ended)
    return no_content()


# -- calls and activities --------------------------------------------------------------------


def _named(state: State, resource: str, name: str, value: Any) -> str | None:
    if not present(value):
        return None
    names = {str(r.get("name")).lower(): r.get("name") for r in state.store[resource].records.values()}
    if str(value).lower() not in names:
        raise invalid(name, f"must be present in the {resource.replace('_', ' ')} list")
    return names[str(value).lower()]


def create_call(state: State, call: Call) -> Response:
    p = call.params
    person_id = rec.existing_id(state, p, "person_id", "people")
    record = rec.blank_record(state, "calls")
    record["called_person"] = state.ref("people", person_id)
    record["user"] = _user_from_guid(state, p.get("user_guid"))
    record["to"] = str(p["to"]) if present(p.get("to")) else None
    if present(p.get("duration")):
        duration = as_int(p["duration"])
        if duration is None or duration < 0:
            raise invalid("duration", "must be a non-negative integer")
        record["duration"] = duration
    record["disposition"] = _named(state, "call_dispositions", "disposition", p.get("disposition"))
    record["sentiment"] = _named(state, "call_sentiments", "sentiment", p.get("sentiment"))
    record["recordings"] = []
    if present(p.get("action_id")):
        action = state.store["actions"].get(rec.existing_id(state, p, "action_id", "actions"))
        record["action"] = state.ref("actions", action["id"])
        record["cadence"], record["step"] = action.get("cadence"), action.get("step")
    for cdr in p.get("linked_call_data_record_ids") or []:
        if not state.exists("call_data_records", as_int(cdr)):
            raise invalid("linked_call_data_record_ids", "is invalid")
    record = rec.insert(state, "calls", record)
    if present(p.get("notes")):
        note = rec.blank_record(state, "notes")
        note.update(
            content=str(p["notes"]),
            associated_type="person",
            associated_with=state.ref("people", person_id),
            user=record["user"],
            call=state.ref("calls", record["id"]),
        )
        note = rec.insert(state, "notes", note)
        if "note" in record:
            record["note"] = state.ref("notes", note["id"])
    return data_response(record)


def create_activity(state: State, call: Call) -> Response:
    """Completes an action or a task; the same one can never be completed twice."""
    p = call.params
    if not present(p.get("action_id")) and not present(p.get("task_id")):
        raise blank("action_id")
    activity = {k: v for k, v in p.items() if k not in ("id", "created_at", "updated_at")}
    if present(p.get("task_id")):
        task = state.store["tasks"].get(rec.existing_id(state, p, "task_id", "tasks"))
        if task.get("current_state") == "completed":
            raise invalid("task_id", "has already been completed")
        done = dict(task)
        done.update(current_state="completed", completed_at=state.clock.now()[1])
        done["completed_by"] = state.ref("users", state.me_id)
        rec.save(state, "tasks", done)
        activity["task_id"] = task["id"]
    if present(p.get("action_id")):
        action = state.store["actions"].get(rec.existing_id(state, p, "action_id", "actions"))
        if action.get("status") == "completed":
            raise invalid("action_id", "has already been completed")
        done = dict(action)
        done.update(status="completed", due=False)
        rec.save(state, "actions", done)
        activity["action_id"] = action["id"]
    activity.setdefault("action_id", None)
    activity.setdefault("task_id", None)
    activity["created_at"] = activity["updated_at"] = None
    return data_response(rec.insert(state, "activities", activity))


# -- webhook subscriptions ---------------------------------------------------------------------


def create_webhook_subscription(state: State, call: Call) -> Response:
    p = call.params
    rec.required(p, "callback_url", "callback_token", "event_type")
    sub = rec.blank_record(state, "webhook_subscriptions")
    sub.update(
        callback_url=str(p["callback_url"]),
        callback_token=str(p["callback_token"]),
        event_type=str(p["event_type"]),
        enabled=True,
        tenant_id=100013,
        user_guid=state.store["users"].get(state.me_id).get("guid"),
    )
    return data_response(rec.insert(state, "webhook_subscriptions", sub))


def update_webhook_subscription(state: State, call: Call) -> Response:
    sub = dict(rec.path_id(state, "webhook_subscriptions", call.args["id"]))
    if "enabled" in call.params:
        enabled = as_bool(call.params["enabled"])
        if enabled is None:
            raise invalid("enabled", "must be true or false")
        sub["enabled"] = enabled
    return data_response(rec.save(state, "webhook_subscriptions", sub))


def delete_webhook_subscription(state: State, call: Call) -> Response:
    rec.delete(state, "webhook_subscriptions", call.args["id"])
    return no_content()


def get_by_id(resource: str):
    def handler(state: State, call: Call) -> Response:
        return data_response(rec.path_id(state, resource, call.args["id"]))

    return handler


def not_routed(state: State, call: Call) -> Response:
    raise not_found()
