"""Generate Salesloft record schemas and source templates from the official OpenAPI document.

Run by a maintainer after the document changes (the output is committed):

    python scripts/gen_salesloft_specs.py [reference/salesloft/openapi-v2-2023-12.json]

Types are the document's declared types, ``id`` included (team templates have UUIDs, calendar events
the provider's string id); tests/sandbox/test_official_document.py holds the schemas to that. The
document declares no nullability; the real API returns null for any unset field, so every field but
``id`` is nullable. Stream templates are written only when missing (they are edited by hand after).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OFFICIAL = ROOT / "reference" / "salesloft" / "openapi-v2-2023-12.json"
SPECS = ROOT / "specs" / "salesloft"
STREAMS = ROOT / "templates" / "salesloft" / "streams"

# stream name -> (list path, component schema, description)
STREAM_TABLE: dict[str, tuple[str, str, str]] = {
    "accounts": ("/v2/accounts.json", "Account", "Companies (accounts)."),
    "account_stages": ("/v2/account_stages.json", "AccountStage", "Account stages."),
    "account_tiers": ("/v2/account_tiers.json", "AccountTier", "Account tiers."),
    "actions": ("/v2/actions.json", "Action", "Due actions of cadence steps."),
    "activity_histories": ("/v2/activity_histories", "ActivityHistory", "Activity history feed."),
    "bulk_jobs": ("/v2/bulk_jobs", "BulkJob", "Bulk jobs."),
    "bulk_job_results": (
        "/v2/bulk_jobs/{{ parent.id }}/results",
        "BulkJobResult",
        "Per-record results of each bulk job.",
    ),
    "cadences": ("/v2/cadences.json", "Cadence", "Cadences."),
    "cadence_memberships": (
        "/v2/cadence_memberships.json",
        "CadenceMembership",
        "People's memberships in cadences.",
    ),
    "calendar_events": ("/v2/calendar/events", "CalendarEvent", "Calendar events."),
    "call_data_records": ("/v2/call_data_records.json", "CallDataRecord", "Call data records (telephony)."),
    "call_dispositions": ("/v2/call_dispositions.json", "CallDisposition", "Call dispositions."),
    "call_instructions": (
        "/v2/action_details/call_instructions.json",
        "CallInstruction",
        "Call instructions of call steps.",
    ),
    "call_sentiments": ("/v2/call_sentiments.json", "CallSentiment", "Call sentiments."),
    "calls": ("/v2/activities/calls.json", "Call", "Logged call activities."),
    "crm_activities": ("/v2/crm_activities.json", "CrmActivity", "Activities synced to the CRM."),
    "crm_activity_fields": (
        "/v2/crm_activity_fields.json",
        "CrmActivityField",
        "CRM activity field mappings.",
    ),
    "crm_users": ("/v2/crm_users.json", "CrmUser", "CRM users mapped to Salesloft users."),
    "custom_fields": ("/v2/custom_fields.json", "CustomField", "Custom field definitions."),
    "email_template_attachments": (
        "/v2/email_template_attachments.json",
        "EmailTemplateAttachment",
        "Attachments of email templates.",
    ),
    "email_templates": ("/v2/email_templates.json", "EmailTemplate", "Email templates."),
    "emails": ("/v2/activities/emails.json", "Email", "Email activities."),
    "groups": ("/v2/groups.json", "Group", "Groups (not paged by the API)."),
    "imports": ("/v2/imports.json", "Import", "People imports."),
    "meetings": ("/v2/meetings.json", "Meeting", "Meetings booked through Salesloft."),
    "notes": ("/v2/notes.json", "Note", "Notes on people and accounts."),
    "pending_emails": (
        "/v2/pending_emails.json",
        "PendingEmail",
        "Emails waiting to be sent by an external email client.",
    ),
    "people": ("/v2/people.json", "Person", "People (contacts)."),
    "person_stages": ("/v2/person_stages.json", "PersonStage", "Person stages."),
    "caller_ids": (
        "/v2/phone_numbers/caller_ids.json",
        "CallerId",
        "Who is calling from each phone number of the caller_id_phone_numbers setting.",
    ),
    "phone_number_assignments": (
        "/v2/phone_number_assignments.json",
        "PhoneNumberAssignment",
        "Phone numbers assigned to users.",
    ),
    "saved_list_views": ("/v2/saved_list_views.json", "SavedListView", "Saved list views."),
    "steps": ("/v2/steps.json", "Step", "Cadence steps."),
    "successes": ("/v2/successes.json", "Success", "Successes (wins) of people."),
    "tags": ("/v2/tags.json", "Tag", "Tags."),
    "tasks": ("/v2/tasks.json", "Task", "Tasks."),
    "team_template_attachments": (
        "/v2/team_template_attachments.json",
        "TeamTemplateAttachment",
        "Attachments of team templates.",
    ),
    "team": ("/v2/team.json", "Team", "The team of the authenticated user (one record)."),
    "team_templates": ("/v2/team_templates.json", "TeamTemplate", "Team templates."),
    "users": ("/v2/users.json", "User", "Users of the team."),
    "webhook_subscriptions": ("/v2/webhook_subscriptions", "Subscription", "Webhook subscriptions."),
}

# Fields a stream template adds to the API's records (transform add_fields), declared with them.
ADDED_FIELDS: dict[str, dict[str, dict]] = {
    "caller_ids": {"phone_number": {"type": "string"}},  # the number looked up (the partition)
}

EMBEDDED = {
    "type": ["object", "null"],
    "properties": {"id": {"type": ["integer", "null"]}, "_href": {"type": ["string", "null"]}},
}


def convert(prop: dict, components: dict, seen: frozenset[str] = frozenset()) -> dict:
    """One OpenAPI property -> a nullable JSON Schema property of the declared type.

    Referenced components are inlined whole; a component met again inside itself (a cycle) becomes a
    free object."""
    if "$ref" in prop:
        name = prop["$ref"].rsplit("/", 1)[1]
        if name == "EmbeddedResource":
            return dict(EMBEDDED)
        target = components[name]
        if name in seen or "properties" not in target:
            return {"type": ["object", "null"], "additionalProperties": True}
        return _object(target["properties"], components, seen | {name})
    kind = prop.get("type", "string")
    if kind == "array":
        items = prop.get("items", {})
        return {"type": ["array", "null"], "items": convert(items, components, seen) if items else {}}
    if kind == "object":
        if "properties" in prop:
            return _object(prop["properties"], components, seen)
        return {"type": ["object", "null"], "additionalProperties": True}
    out: dict = {"type": [kind, "null"]}
    if prop.get("format") in ("date-time", "date"):
        out["format"] = date_format(prop)
    return out


def date_format(prop: dict) -> str:
    """The document marks some timestamps as "date" although its own examples (and the API) carry
    times: those are date-times (a date column would drop the time of day)."""
    if prop["format"] == "date" and "T" in str(prop.get("example", "")):
        return "date-time"
    return prop["format"]


def _object(properties: dict, components: dict, seen: frozenset[str]) -> dict:
    return {
        "type": ["object", "null"],
        "properties": {k: convert(v, components, seen) for k, v in sorted(properties.items())},
    }


def record_schema(component: str, components: dict) -> dict:
    declared = components[component]["properties"]
    props = {k: convert(v, components, frozenset({component})) for k, v in sorted(declared.items())}
    if "id" in props:
        props["id"] = {"type": declared["id"].get("type", "string")}
    return {"type": "object", "additionalProperties": True, "properties": props}


def list_params(openapi: dict, path: str) -> set[str]:
    op = openapi["paths"].get(path.replace("{{ parent.id }}", "{bulk_jobs_id}"), {}).get("get", {})
    return {p["name"] for p in op.get("parameters", [])}


def template_yaml(name: str, path: str, component: str, description: str, params: set[str]) -> str:
    incremental = any(p.startswith("updated_at") for p in params)
    lines = [
        f"name: {name}",
        f"description: {description}",
        f"url: {path}",
        "primary_key: [id]",
        f"schema: {name}.json",
    ]
    if name == "bulk_job_results":
        lines += [
            "parent: bulk_jobs",
            "params: {per_page: 100}",
            "pagination: {type: cursor, param: 'id[gt]', from_record: id}",
        ]
    elif name == "bulk_jobs":
        lines += ["params: {per_page: 100}", "pagination: {type: cursor, param: 'id[gt]', from_record: id}"]
    elif "page" not in params:
        lines += ["pagination: {type: none}"]
        if "per_page" in params:
            lines += ["params: {per_page: 100}"]
    if incremental:
        lines += [
            "replication_key: updated_at",
            "params: {per_page: 100, sort_by: updated_at, sort_direction: ASC}",
            "incremental: {param: 'updated_at[gt]'}",
        ]
    elif "sort_by" in params and "page" in params:
        lines += ["params: {per_page: 100, sort_by: id, sort_direction: ASC}"]
    return "\n".join(lines) + "\n"


def main(openapi_path: str | Path = OFFICIAL) -> None:
    openapi = json.loads(Path(openapi_path).read_text())
    components = openapi["components"]["schemas"]
    SPECS.mkdir(parents=True, exist_ok=True)
    STREAMS.mkdir(parents=True, exist_ok=True)
    for name, (path, component, description) in STREAM_TABLE.items():
        schema = record_schema(component, components)
        schema["properties"].update(ADDED_FIELDS.get(name, {}))
        (SPECS / f"{name}.json").write_text(json.dumps(schema, indent=2) + "\n")
        target = STREAMS / f"{name}.yaml"
        if not target.exists():
            target.write_text(template_yaml(name, path, component, description, list_params(openapi, path)))


if __name__ == "__main__":
    main(*sys.argv[1:2])
