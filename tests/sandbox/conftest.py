"""Fixtures for the sandbox's own tests: one sandbox per session, reset before each test that
asks for a clean one, and an httpx client carrying the API key."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from sandbox.testing import Sandbox, running_sandbox

# A minute lasts one second, so budget and bulk-job tests do not wait.
TIME_SCALE = 60
DEFAULTS = {
    "faults": {"rate": 0, "next": [], "delay": 0.3, "burst": 3},
    "budget": 600,
    "time_scale": TIME_SCALE,
    "retry_after": True,
    "token_ttl": 7200,
    "reject_refresh": False,
    "deny_authorize": False,
    "bulk_rate": 5000,
    "bulk_latency": 0.5,
}


@pytest.fixture(scope="session")
def sb_session() -> Iterator[Sandbox]:
    with running_sandbox(time_scale=TIME_SCALE, budget=600) as handle:
        yield handle


@pytest.fixture
def sb(sb_session: Sandbox) -> Sandbox:
    """The session sandbox, with its data, journal, tokens and settings back to the start."""
    sb_session.reset()
    sb_session.configure(**DEFAULTS)
    return sb_session


@pytest.fixture
def api(sb: Sandbox) -> Iterator[httpx.Client]:
    with sb.client() as client:
        yield client


@pytest.fixture
def anon(sb: Sandbox) -> Iterator[httpx.Client]:
    """A client without credentials."""
    with httpx.Client(base_url=sb.url, trust_env=False, timeout=30) as client:
        yield client
