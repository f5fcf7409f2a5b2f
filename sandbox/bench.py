"""``python -m sandbox.bench``: how fast the sandbox serves a large people table to a plain client.

Starts a sandbox subprocess with N people and an unlimited budget, then reads every record at
100 per page with one httpx client: once by page number (``page=1..N/100``) and once by the
incremental cursor Salesloft recommends (``updated_at[gt]=<last seen>``, always page 1).
"""

from __future__ import annotations

import argparse
import time

import httpx

from sandbox.testing import running_sandbox


def read_pages(client: httpx.Client, pages: int) -> int:
    seen = 0
    for page in range(1, pages + 1):
        params = {"per_page": 100, "page": page, "sort_by": "updated_at", "sort_direction": "ASC"}
        body = client.get("/v2/people.json", params=params).raise_for_status().json()
        seen += len(body["data"])
        if body["metadata"]["paging"]["next_page"] is None:
            break
    return seen


def read_cursor(client: httpx.Client) -> int:
    seen, cursor, ids = 0, None, set()
    while True:
        params: dict = {"per_page": 100, "sort_by": "updated_at", "sort_direction": "ASC"}
        if cursor:
            params["updated_at[gte]"] = cursor
        data = client.get("/v2/people.json", params=params).raise_for_status().json()["data"]
        fresh = [r for r in data if r["id"] not in ids]
        if not fresh:
            return seen
        ids.update(r["id"] for r in fresh)
        seen += len(fresh)
        cursor = data[-1]["updated_at"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sandbox.bench")
    parser.add_argument("--people", type=int, default=100_000)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    with running_sandbox(sizes={"people": args.people}, budget=10**9, startup_timeout=300) as sb:
        print(f"sandbox with {args.people} people ready in {time.perf_counter() - started:.2f} s")
        with httpx.Client(base_url=sb.url, headers=sb.headers, trust_env=False, timeout=60) as client:
            client.get("/v2/me.json").raise_for_status()
            t0 = time.perf_counter()
            seen = read_pages(client, (args.people + 99) // 100)
            elapsed = time.perf_counter() - t0
            print(
                f"page numbers: {seen} people, {(seen + 99) // 100} pages in {elapsed:.2f} s ({seen / elapsed:,.0f} records/s)"
            )
            t0 = time.perf_counter()
            seen = read_cursor(client)
            elapsed = time.perf_counter() - t0
            print(f"updated_at cursor: {seen} people in {elapsed:.2f} s ({seen / elapsed:,.0f} records/s)")


if __name__ == "__main__":
    main()
