"""Reads that are not lists of a stored resource: the current team (one object, every documented
field) and the caller-ID lookup of a phone number among the people."""

from __future__ import annotations

import re
from typing import Any

import orjson

from sandbox.params import first
from sandbox.routing import Call
from sandbox.state import State
from sandbox.wire import JSON, Response, blank, data_response

TEAM_ID = 100013


def team(state: State, call: Call) -> Response:
    """``GET /v2/team``: the authenticated user's team, with every field of the document's Team."""
    first_user = state.store["users"].get(state.me_id) or {}
    return data_response(
        {
            "_private_fields": {},
            "allow_automated_email_steps": True,
            "call_recording_disabled": False,
            "click_tracking_default": True,
            "created_at": first_user.get("created_at"),
            "custom_tracking_domain": "go.northwind-revenue.com",
            "deactivated": False,
            "dispositions_required": False,
            "email_daily_limit": 1000,
            "group_privacy_setting": "all_public",
            "id": TEAM_ID,
            "license_limit": max(len(state.store["users"]), 1),
            "local_dial_enabled": True,
            "name": "Northwind Revenue",
            "plan": "enterprise",
            "plan_features": {"opportunity_management": "Opportunity Management"},
            "record_by_default": True,
            "sentiments_required": False,
            "team_visibility_default": "public",
            "updated_at": first_user.get("updated_at"),
        }
    )


def _digits(phone: Any) -> str:
    return re.sub(r"\D", "", phone) if isinstance(phone, str) else ""


def caller_ids(state: State, call: Call) -> Response:
    """``GET /v2/phone_numbers/caller_ids?phone_number=+1...``: every person carrying that number
    (work, mobile or home phone; compared by digits, as E.164 and display forms differ)."""
    wanted = _digits(first(call.query, "phone_number"))
    if not wanted:
        raise blank("phone_number")
    accounts = state.store["accounts"]
    out = []
    for person in state.store["people"].values():
        if wanted not in {_digits(person.get(f)) for f in ("phone", "mobile_phone", "home_phone")}:
            continue
        account = accounts.get(person["account"]["id"]) if person.get("account") else None
        out.append(
            {
                "account_name": account.get("name") if account else None,
                "display_name": person.get("display_name"),
                "person": state.ref("people", person["id"]),
                "title": person.get("title"),
            }
        )
    return Response(200, orjson.dumps({"data": out}), JSON)
