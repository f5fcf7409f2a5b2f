"""The catalog of Salesloft resources the sandbox serves: paths, paging style, id blocks, sizes.

Ids are laid out in blocks so an id names its resource: record ``k`` (1-based) of the resource
in block ``b`` has id ``b * 10_000_000 + k`` (people are block 6: 60000001, 60000002, ...).
Records created later take the next id of their block. Resources whose official ids are strings
(team templates: UUIDs; calendar events: the calendar provider's id) are stored under those strings;
the block id stays their ordinal, which the document's integer references to them carry.
"""

from __future__ import annotations

from dataclasses import dataclass

ID_BLOCK = 10_000_000


@dataclass(frozen=True, slots=True)
class Resource:
    name: str
    path: str  # collection path, without ".json"
    block: int
    paging: str = "page"  # page | none (all at once) | cursor (id[gt]) | internal (no list route)
    default_size: int = 20
    string_ids: bool = False  # the API's ids are strings (see the module's docstring)

    @property
    def first_id(self) -> int:
        return self.block * ID_BLOCK + 1


_ENTRIES = [
    Resource("users", "/v2/users", 1, default_size=25),
    Resource("groups", "/v2/groups", 2, "none", 6),
    Resource("accounts", "/v2/accounts", 3, default_size=120),
    Resource("account_stages", "/v2/account_stages", 4, default_size=8),
    Resource("account_tiers", "/v2/account_tiers", 5, default_size=5),
    Resource("people", "/v2/people", 6, default_size=250),
    Resource("person_stages", "/v2/person_stages", 7, default_size=8),
    Resource("cadences", "/v2/cadences", 8, default_size=30),
    Resource("steps", "/v2/steps", 9, default_size=60),
    Resource("cadence_memberships", "/v2/cadence_memberships", 10, default_size=60),
    Resource("actions", "/v2/actions", 11, default_size=40),
    Resource("activity_histories", "/v2/activity_histories", 12, default_size=50),
    Resource("bulk_jobs", "/v2/bulk_jobs", 13, "cursor", 4),
    Resource("bulk_job_results", "/v2/bulk_jobs/{id}/results", 14, "cursor", 60),
    Resource("calendar_events", "/v2/calendar/events", 15, default_size=30, string_ids=True),
    Resource("call_data_records", "/v2/call_data_records", 16, default_size=40),
    Resource("call_dispositions", "/v2/call_dispositions", 17, default_size=6),
    Resource("call_instructions", "/v2/action_details/call_instructions", 18, default_size=20),
    Resource("call_sentiments", "/v2/call_sentiments", 19, default_size=5),
    Resource("calls", "/v2/activities/calls", 20, default_size=60),
    Resource("crm_activities", "/v2/crm_activities", 21, default_size=40),
    Resource("crm_activity_fields", "/v2/crm_activity_fields", 22, default_size=12),
    Resource("crm_users", "/v2/crm_users", 23, default_size=20),
    Resource("custom_fields", "/v2/custom_fields", 24, default_size=10),
    Resource("email_template_attachments", "/v2/email_template_attachments", 25, default_size=20),
    Resource("email_templates", "/v2/email_templates", 26, default_size=30),
    Resource("emails", "/v2/activities/emails", 27, default_size=60),
    Resource("imports", "/v2/imports", 28, default_size=12),
    Resource("meetings", "/v2/meetings", 29, default_size=30),
    Resource("notes", "/v2/notes", 30, default_size=60),
    Resource("phone_number_assignments", "/v2/phone_number_assignments", 31, default_size=20),
    Resource("saved_list_views", "/v2/saved_list_views", 32, default_size=12),
    Resource("successes", "/v2/successes", 33, default_size=25),
    Resource("tags", "/v2/tags", 34, default_size=15),
    Resource("tasks", "/v2/tasks", 35, default_size=60),
    Resource("team_template_attachments", "/v2/team_template_attachments", 36, default_size=20),
    Resource("team_templates", "/v2/team_templates", 37, default_size=20, string_ids=True),
    Resource("webhook_subscriptions", "/v2/webhook_subscriptions", 38, "none", 5),
    Resource("opportunities", "/v2/opportunities", 39, default_size=40),
    Resource("opportunity_stages", "/v2/opportunity_stages", 40, default_size=8),
    Resource("external_configurations", "/v2/external/configurations", 41, default_size=3),
    Resource("external_mappings", "/v2/external/mappings", 42, default_size=30),
    Resource("pending_emails", "/v2/pending_emails", 46, default_size=6),
    # Written through the API, readable only through /__sandbox/records.
    Resource("opportunity_people", "/v2/opportunity_people", 43, "internal", 20),
    Resource("activities", "/v2/activities", 44, "internal", 0),
    Resource("redaction_requests", "/v2/data_control", 45, "internal", 0),
]

CATALOG: dict[str, Resource] = {r.name: r for r in _ENTRIES}

# Embedded references ({"id", "_href"}) by field name -> the resource they point at.
REF_TARGETS: dict[str, str] = {
    "account": "accounts",
    "owner": "users",
    "creator": "users",
    "user": "users",
    "last_contacted_by": "users",
    "created_by_user": "users",
    "completed_by": "users",
    "booked_by_user": "users",
    "last_modified_user": "users",
    "template_owner": "users",
    "person": "people",
    "called_person": "people",
    "last_contacted_person": "people",
    "recipient": "people",
    "cadence": "cadences",
    "cadences": "cadences",
    "most_recent_cadence": "cadences",
    "last_completed_step_cadence": "cadences",
    "latest_cadence": "cadences",
    "step": "steps",
    "last_completed_step": "steps",
    "latest_step": "steps",
    "account_tier": "account_tiers",
    "company_stage": "account_stages",
    "person_stage": "person_stages",
    "added_stage": "person_stages",
    "bounced_stage": "person_stages",
    "finished_stage": "person_stages",
    "replied_stage": "person_stages",
    "import": "imports",
    "note": "notes",
    "call": "calls",
    "latest_call": "calls",
    "latest_email": "emails",
    "crm_activity": "crm_activities",
    "action": "actions",
    "latest_action": "actions",
    "action_details": "call_instructions",
    "details": "call_instructions",
    "email_template": "email_templates",
    "team_template": "team_templates",
    "group": "groups",
    "groups": "groups",
    "accessible_groups": "groups",
    "phone_number_assignment": "phone_number_assignments",
    "task": "tasks",
    "opportunity": "opportunities",
}

# References to things the API does not serve: Salesloft sends {"id": n} without "_href".
UNSERVED_REFS = frozenset({"mailing", "phone_client", "team", "role", "cadence_priority", "associated_with"})


def block_of(record_id: int) -> int:
    return record_id // ID_BLOCK
