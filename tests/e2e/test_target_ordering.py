"""Last write wins for records about the same object, even when the API matches their keys loosely."""

from __future__ import annotations

import pytest
from helpers import run_target, singer_lines


@pytest.fixture(scope="module")
def sb():
    from sandbox.testing import running_sandbox

    with running_sandbox() as handle:
        yield handle


def spellings(domain: str, count: int) -> list[str]:
    """The same domain in mixed case and with stray spaces, all different strings."""
    out = []
    for i in range(count):
        letters = [c.upper() if (i >> (n % 4)) & 1 else c for n, c in enumerate(domain)]
        out.append(" " * (i % 3 == 2) + "".join(letters) + " " * (i % 4 == 3))
    return out


@pytest.mark.parametrize("run", range(8))
def test_sixteen_upserts_of_one_domain_in_mixed_case_end_with_the_last_name(sb, tmp_path, run):
    domain = f"ordering-{run}.example.com"
    names = spellings(domain, 16)
    assert len(set(names)) == 16
    rows = [{"domain": spelled, "name": f"Name {i}"} for i, spelled in enumerate(names)]
    config = {"base_url": sb.url, "api_key": sb.api_key, "sink": "upsert_account", "concurrency": 8}
    result = run_target(config, tmp_path, singer_lines("accounts", rows))
    assert result.returncode == 0 and result.rejected == [], result.stderr[-3000:]
    (account,) = [a for a in sb.records("accounts") if a["domain"].strip().lower() == domain]
    assert account["name"] == "Name 15"


def test_distinct_objects_still_go_out_concurrently(sb, tmp_path):
    """Normalising keys must not serialise everything: different domains are different chains."""
    rows = [{"domain": f"parallel-{i}.example.com", "name": f"P{i}"} for i in range(16)]
    config = {"base_url": sb.url, "api_key": sb.api_key, "sink": "upsert_account", "concurrency": 8}
    result = run_target(config, tmp_path, singer_lines("accounts", rows))
    assert result.returncode == 0 and result.rejected == []
    names = {a["domain"]: a["name"] for a in sb.records("accounts") if a["domain"].startswith("parallel-")}
    assert names == {r["domain"]: r["name"] for r in rows}
