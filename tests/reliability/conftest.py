"""Reliability tests: each may report the figures of its run (requests, faults, records compared, lost...).

The figures are attached to the test's report (so they survive pytest-xdist) and printed in one table at
the end of the session.
"""

from __future__ import annotations

import json

import pytest


@pytest.fixture
def figures(record_property):
    """``figures(requests=..., faults={...}, records_compared=..., records_lost=...)``: report this run's figures."""

    def report(**values):
        record_property("figures", values)

    return report


def pytest_terminal_summary(terminalreporter):
    rows = []
    for outcome in ("passed", "failed", "xfailed", "xpassed"):
        for report in terminalreporter.stats.get(outcome, []):
            if getattr(report, "when", None) != "call":
                continue
            for name, values in getattr(report, "user_properties", []):
                if name == "figures":
                    rows.append((report.nodeid.split("::")[-1], outcome, values))
    if not rows:
        return
    terminalreporter.section("reliability figures")
    for test, outcome, values in rows:
        terminalreporter.write_line(f"{test} [{outcome}]: {json.dumps(values, sort_keys=True)}")
