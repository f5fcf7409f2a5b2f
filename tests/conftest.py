"""Shared fixtures: a real sandbox server on 127.0.0.1, started once per test session."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def sandbox():
    from sandbox.testing import running_sandbox

    with running_sandbox() as handle:
        yield handle
