"""The /v2 route table: every endpoint the sandbox answers, and which handler answers it."""

from __future__ import annotations

from sandbox import bulk, external, lookups, writes
from sandbox.listing import page_response, unpaged_response
from sandbox.resources import CATALOG
from sandbox.routing import Call, Router
from sandbox.state import State
from sandbox.wire import Response, data_response


def _list(resource: str):
    paging = CATALOG[resource].paging

    def handler(state: State, call: Call) -> Response:
        table = state.store[resource]
        if paging == "none":
            return unpaged_response(table, call.query)
        return page_response(table, call.query)

    return handler


def me(state: State, call: Call) -> Response:
    return data_response(state.store["users"].get(state.me_id))


def build_router() -> Router:
    r = Router()
    for name, resource in CATALOG.items():
        if resource.paging in ("page", "none"):
            r.add("GET", resource.path, _list(name), "list" if resource.paging == "page" else "other")
            r.add("GET", resource.path + "/{id}", writes.get_by_id(name))
    r.add("GET", "/v2/me", me)
    r.add("GET", "/v2/team", lookups.team)
    r.add("GET", "/v2/phone_numbers/caller_ids", lookups.caller_ids)

    for path, create, update, delete in (
        ("/v2/accounts", writes.create_account, writes.update_account, writes.delete_account),
        ("/v2/people", writes.create_person, writes.update_person, writes.delete_person),
        ("/v2/notes", writes.create_note, writes.update_note, writes.delete_note),
        (
            "/v2/custom_fields",
            writes.create_custom_field,
            writes.update_custom_field,
            writes.delete_custom_field,
        ),
        (
            "/v2/person_stages",
            writes.create_stage("person_stages"),
            writes.update_person_stage,
            writes.delete_person_stage,
        ),
        ("/v2/imports", writes.create_import, writes.update_import, writes.delete_import),
        (
            "/v2/saved_list_views",
            writes.create_saved_list_view,
            writes.update_saved_list_view,
            writes.delete_saved_list_view,
        ),
        (
            "/v2/webhook_subscriptions",
            writes.create_webhook_subscription,
            writes.update_webhook_subscription,
            writes.delete_webhook_subscription,
        ),
    ):
        r.add("POST", path, create)
        r.add("PUT", path + "/{id}", update)
        r.add("DELETE", path + "/{id}", delete)

    r.add("POST", "/v2/tasks", writes.create_task)
    r.add("PUT", "/v2/tasks/{id}", writes.update_task)
    r.add("POST", "/v2/account_upserts", writes.upsert_account)
    r.add("POST", "/v2/person_upserts", writes.upsert_person)
    r.add("POST", "/v2/cadence_memberships", writes.create_cadence_membership)
    r.add("DELETE", "/v2/cadence_memberships/{id}", writes.delete_cadence_membership)
    r.add("POST", "/v2/activities/calls", writes.create_call)
    r.add("POST", "/v2/activities", writes.create_activity)

    r.add("POST", "/v2/external/configurations", external.create_configuration)
    r.add("DELETE", "/v2/external/configurations/{id}", external.delete_configuration)
    r.add("POST", "/v2/external/mappings", external.create_mapping)
    r.add("DELETE", "/v2/external/mappings/{id}", external.delete_mapping)
    r.add("GET", "/v2/external/ids/{external_type}/{object_type}", external.list_by_external_ids)
    r.add(
        "POST", "/v2/external/ids/{external_type}/{object_type}/{external_id}", external.upsert_by_external_id
    )
    r.add(
        "DELETE",
        "/v2/external/ids/{external_type}/{object_type}/{external_id}",
        external.delete_by_external_id,
    )
    r.add("POST", "/v2/opportunity_stages", writes.create_stage("opportunity_stages"))
    r.add("DELETE", "/v2/opportunities/{id}", external.delete_opportunity)
    r.add("POST", "/v2/opportunity_people", external.create_opportunity_person)
    r.add("DELETE", "/v2/opportunity_people/{id}", external.delete_opportunity_person)
    r.add("DELETE", "/v2/opportunity_people", external.delete_opportunity_person)
    r.add("POST", "/v2/data_control/account_redaction", external.redaction("account_redaction"))
    r.add(
        "POST",
        "/v2/data_control/account_and_people_redaction",
        external.redaction("account_and_people_redaction"),
    )
    r.add("POST", "/v2/data_control/accounts/redaction", external.redaction("account_redaction"))

    r.add("POST", "/v2/bulk_jobs", bulk.create_job)
    r.add("GET", "/v2/bulk_jobs", bulk.list_jobs)
    r.add("GET", "/v2/bulk_jobs/{id}", bulk.get_job)
    r.add("PUT", "/v2/bulk_jobs/{id}", bulk.update_job)
    r.add("POST", "/v2/bulk_jobs/{id}/job_data", bulk.add_job_data)
    r.add("GET", "/v2/bulk_jobs/{id}/job_data", bulk.list_job_data)
    r.add("GET", "/v2/bulk_jobs/{id}/results", bulk.list_results)
    return r
