"""singer-sdk's own standard tap and target test suites, run against a live sandbox."""

from __future__ import annotations

import atexit
import contextlib
import re

from singer_sdk.testing import get_tap_test_class, get_target_test_class
from singer_sdk.testing.config import SuiteConfig

from connector.tap import build_tap_class
from connector.target import build_target_class
from connector.templates import load_bundled
from sandbox.resources import CATALOG
from sandbox.testing import running_sandbox

# The suites take their config when the test classes are made, so the sandbox starts at import.
_stack = contextlib.ExitStack()
_SANDBOX = _stack.enter_context(running_sandbox())
atexit.register(_stack.close)

CONNECTION = load_bundled("salesloft")
# A number some person carries, so the caller_ids stream (one lookup per number) has records.
_PHONE = "+" + re.sub(r"\D", "", next(p["phone"] for p in _SANDBOX.records("people") if p.get("phone")))

# The streams reading given records read one of each (the sandbox's first id of a resource is block * 10**7 + 1);
# the sandbox has no external ID configuration for users.
_GIVEN = {
    f"{setting}_ids": [CATALOG[resource].first_id]
    for setting, resource in (
        ("account", "accounts"),
        ("bulk_job", "bulk_jobs"),
        ("cadence", "cadences"),
        ("cadence_membership", "cadence_memberships"),
        ("call", "calls"),
        ("custom_field", "custom_fields"),
        ("email", "emails"),
        ("import", "imports"),
        ("note", "notes"),
        ("people", "people"),
        ("person_stage", "person_stages"),
        ("step", "steps"),
        ("task", "tasks"),
        ("user", "users"),
    )
}
_GIVEN |= {
    "people_external_type": "crm",
    "people_external_ids": ["CONTACT-00001"],
    "account_external_type": "crm",
    "account_external_ids": ["ACCT-00001"],
    "opportunity_external_type": "crm_opportunity",
    "opportunity_external_ids": ["OPP-00001"],
}

TestTapSalesloft = get_tap_test_class(
    build_tap_class(CONNECTION),
    config={
        "base_url": _SANDBOX.url,
        "api_key": _SANDBOX.api_key,
        **_GIVEN,
        "caller_id_phone_numbers": [_PHONE],
    },
    suite_config=SuiteConfig(max_records_limit=None, ignore_no_records_for_streams=["users_by_external_id"]),
)

TestTargetSalesloft = get_target_test_class(
    build_target_class(CONNECTION),
    config={
        "base_url": _SANDBOX.url,
        "api_key": _SANDBOX.api_key,
        "sink": "create_note",
        "rejected_path": "/dev/null",
    },
)
