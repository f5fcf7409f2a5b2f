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
from sandbox.testing import running_sandbox

# The suites take their config when the test classes are made, so the sandbox starts at import.
_stack = contextlib.ExitStack()
_SANDBOX = _stack.enter_context(running_sandbox())
atexit.register(_stack.close)

CONNECTION = load_bundled("salesloft")
# A number some person carries, so the caller_ids stream (one lookup per number) has records.
_PHONE = "+" + re.sub(r"\D", "", next(p["phone"] for p in _SANDBOX.records("people") if p.get("phone")))

TestTapSalesloft = get_tap_test_class(
    build_tap_class(CONNECTION),
    config={"base_url": _SANDBOX.url, "api_key": _SANDBOX.api_key, "caller_id_phone_numbers": [_PHONE]},
    suite_config=SuiteConfig(max_records_limit=None),
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
