"""Benchmark: tap-salesloft and target-salesloft against the sandbox, side by side with a floor and peers.

    .venv/bin/python bench/run.py                 # full run: 100,000 people, 10,000 accounts, 100,000 bulk
    .venv/bin/python bench/run.py --peers         # also Airbyte's Salesloft manifest and tap-rest-api-msdk
    .venv/bin/python bench/run.py --quick         # a small smoke run (the test suite runs this)
    .venv/bin/python bench/run.py --only changes  # just the changes_only runs (100,000 accounts, three runs)
    .venv/bin/python bench/run.py --only latency --peers  # reads under latency, against the rate budget

Every program runs as its own process against the same sandbox data on 127.0.0.1; CPU seconds and
peak RSS are the process's own (wait4), requests and cost points come from the sandbox's journal.
Results are printed as a table and written to bench/results.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import peers  # noqa: E402
from connector.serverclock import UNKNOWN_MARGIN  # noqa: E402
from sandbox.testing import running_sandbox  # noqa: E402

BIN = Path(sys.executable).parent
WORK = ROOT / ".bench"


@dataclass
class Result:
    name: str
    kind: str
    records: int
    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    requests: int
    cost: int
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def records_per_s(self) -> float:
        return self.records / self.wall_s if self.wall_s else 0.0

    @property
    def cpu_us_per_record(self) -> float:
        return self.cpu_s / self.records * 1e6 if self.records else 0.0


def measure(
    cmd: list[str], *, stdin_path: Path | None = None, env: dict | None = None, count_records: bool = True
) -> tuple[int, float, float, float, str]:
    """Run one process; return (RECORD lines on stdout, wall s, CPU s, peak RSS MB, stderr tail)."""
    start = time.perf_counter()
    stdin = open(stdin_path, "rb") if stdin_path else subprocess.DEVNULL  # noqa: SIM115
    err_path = WORK / "stderr.log"
    with open(err_path, "wb") as err:
        proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=err, stdin=stdin, env={**os.environ, **(env or {})}
        )
        records = 0
        assert proc.stdout is not None
        for line in proc.stdout:
            if count_records and (b'"type":"RECORD"' in line[:40] or b'"type": "RECORD"' in line[:40]):
                records += 1
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if stdin_path:
        stdin.close()
    tail = err_path.read_text(errors="replace")[-4000:]
    if status != 0:
        raise RuntimeError(f"{cmd[0]} exited with {status}:\n{tail}")
    return records, wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, tail


def journal_totals(sb, entries: list[dict] | None = None) -> tuple[int, int]:
    entries = sb.journal() if entries is None else entries
    return len(entries), sum(int(e.get("cost") or 0) for e in entries)


def budget_windows(entries: list[dict]) -> int:
    """The sandbox's budget windows from the run's first request to its last: the budget it could use."""
    windows = [e["window"] for e in entries]
    return max(windows) - min(windows) + 1 if windows else 0


def write_json(path: Path, value: Any) -> Path:
    path.write_text(json.dumps(value))
    return path


def people_catalog(config_path: Path) -> Path:
    out = subprocess.run(
        [str(BIN / "tap-salesloft"), "--config", str(config_path), "--discover"],
        capture_output=True,
        check=True,
    )
    catalog = json.loads(out.stdout)
    for entry in catalog["streams"]:
        for meta in entry["metadata"]:
            if meta["breadcrumb"] == []:
                meta["metadata"]["selected"] = entry["tap_stream_id"] == "people"
    return write_json(WORK / "catalog-people.json", catalog)


def bench_reads(args: argparse.Namespace, results: list[Result]) -> None:
    with running_sandbox(sizes={"people": args.people}, budget=10**9) as sb:
        config = write_json(
            WORK / "tap-config.json",
            {"base_url": sb.url, "api_key": sb.api_key, "http_transport": args.transport},
        )
        catalog = people_catalog(config)

        def run(
            name: str, cmd: list[str], kind: str = "read", env: dict | None = None, **extra: Any
        ) -> Result:
            sb.clear_journal()
            records, wall, cpu, rss, tail = measure(cmd, env=env)
            requests, cost = journal_totals(sb)
            result = Result(name, kind, records, wall, cpu, rss, requests, cost, extra)
            results.append(result)
            print(f"  {name}: {records} records in {wall:.1f}s", file=sys.stderr)
            return result

        run("floor: httpx + orjson", [sys.executable, str(ROOT / "bench" / "floor.py"), sb.url, sb.api_key])
        tap_cmd = [str(BIN / "tap-salesloft"), "--config", str(config), "--catalog", str(catalog)]
        state_file = WORK / "tap-state.json"
        sb.clear_journal()
        records, wall, cpu, rss, _ = measure_with_state(tap_cmd, state_file)
        requests, cost = journal_totals(sb)
        results.append(Result("tap-salesloft (full)", "read", records, wall, cpu, rss, requests, cost))
        print(f"  tap-salesloft full: {records} records in {wall:.1f}s", file=sys.stderr)
        changed = max(1, args.people // 100)
        sb.touch("people", count=changed)
        # A read's range ends at the API's present, less a margin until the tap has heard the API's clock.
        time.sleep(UNKNOWN_MARGIN.total_seconds() + 0.5)
        run(
            "tap-salesloft (incremental, 1% changed)",
            [*tap_cmd, "--state", str(state_file)],
            kind="read-incremental",
        )
        if args.peers:
            for peer in peers.available(WORK):
                cmd, env = peer.command(WORK, sb.url, sb.api_key)
                try:
                    run(peer.name, cmd, env=env)
                except RuntimeError as exc:
                    print(f"  {peer.name}: failed: {exc}", file=sys.stderr)


def window_shares(entries: list[dict], budget: int) -> list[float]:
    """The share of each rate window's points the run spent, from the window its first request was charged
    in to the one before its last (the last is cut short by the run's end)."""
    spent: dict[int, int] = {}
    for entry in entries:
        spent[entry["window"]] = spent.get(entry["window"], 0) + int(entry.get("cost") or 0)
    if len(spent) < 2:
        return []
    first, last = min(spent), max(spent)
    return [spent.get(w, 0) / budget for w in range(first, last)]


def bench_latency(args: argparse.Namespace, results: list[Result]) -> None:
    """Reads with every answer delayed: how much of the API's rate budget each reader can spend.

    Two settings: ``--latency-people`` people at ``--latency`` seconds with the sandbox's time scaled by
    ``--latency-time-scale`` (a window of 600 points lasts 60/scale s), and ``--slow-people`` at
    ``--slow-latency`` seconds in real time. The budget is reset as each run starts, so its first window is
    whole; a window's share is the points the run spent in it over the budget."""
    budget = 600
    settings = [
        (args.latency_people, args.latency, args.latency_time_scale),
        (args.slow_people, args.slow_latency, 1.0),
    ]
    for people, latency, scale in settings:
        window = 60.0 / scale
        with running_sandbox(
            sizes={"people": people}, budget=budget, time_scale=scale, latency=latency
        ) as sb:
            config = write_json(
                WORK / "tap-config-latency.json",
                {
                    "base_url": sb.url,
                    "api_key": sb.api_key,
                    "http_transport": args.transport,
                    "rate_window_seconds": window,
                },
            )
            catalog = people_catalog(config)
            programs = [
                (
                    "tap-salesloft (defaults)",
                    [str(BIN / "tap-salesloft"), "--config", str(config), "--catalog", str(catalog)],
                    {},
                )
            ]
            if args.peers:
                for peer in peers.available(WORK):
                    if peer.name.startswith("airbyte"):
                        cmd, env = peer.command(WORK, sb.url, sb.api_key)
                        # With its concurrency setting (worker threads for streams and partitions) set high:
                        # as shipped (none) it reads the same (measured: 274 records/s either way).
                        programs.append((f"{peer.name}, concurrency_level 16", [*cmd, "16"], env))
            for name, cmd, env in programs:
                sb.clear_journal()
                sb.configure(budget=budget)  # a fresh window starts with the run
                launched = time.time()
                try:
                    records, wall, cpu, rss, _ = measure(cmd, env=env)
                except RuntimeError as exc:
                    print(f"  {name}: failed: {exc}", file=sys.stderr)
                    continue
                entries = sb.journal()
                requests, cost = journal_totals(sb, entries)
                shares = window_shares(entries, budget)
                bound = cost / budget * window  # the fastest the budget allows: every point, no wait
                extra = {
                    "latency_s": latency,
                    # process start to its first request, inside the first window
                    "startup_s": round(min(e["time"] for e in entries) - launched, 2) if entries else None,
                    "window_s": round(window, 2),
                    "429s": sum(1 for e in entries if e.get("status") == 429),
                    "window_share": "/".join(f"{x:.0%}" for x in shares) or "n/a (under one window)",
                    "mean_share": f"{sum(shares) / len(shares):.0%}" if shares else None,
                    "budget_bound_s": round(bound, 1),
                    "x_bound": round(wall / bound, 2) if bound else None,
                }
                results.append(Result(name, "read-latency", records, wall, cpu, rss, requests, cost, extra))
                print(f"  {name} at {latency}s: {records} records in {wall:.1f}s {extra}", file=sys.stderr)


def measure_with_state(cmd: list[str], state_file: Path) -> tuple[int, float, float, float, str]:
    """Like measure, keeping the last STATE line so the incremental run can start from it."""
    start = time.perf_counter()
    with open(WORK / "stderr.log", "wb") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL)
        records = 0
        last_state = None
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith(b'{"type":"RECORD"'):
                records += 1
            elif line.startswith(b'{"type":"STATE"'):
                last_state = line
        _, status, usage = os.wait4(proc.pid, 0)
    if status != 0 or last_state is None:
        raise RuntimeError(f"tap failed ({status}): {(WORK / 'stderr.log').read_text()[-3000:]}")
    state_file.write_text(json.dumps(json.loads(last_state)["value"]))
    return records, time.perf_counter() - start, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, ""


def singer_input(path: Path, stream: str, records: list[dict], key: str) -> Path:
    schema = {"type": "object", "properties": {k: {"type": ["string", "null"]} for k in records[0]}}
    with open(path, "w") as out:
        out.write(
            json.dumps({"type": "SCHEMA", "stream": stream, "schema": schema, "key_properties": [key]}) + "\n"
        )
        for record in records:
            out.write(json.dumps({"type": "RECORD", "stream": stream, "record": record}) + "\n")
        out.write(json.dumps({"type": "STATE", "value": {"bookmarks": {stream: {"done": True}}}}) + "\n")
    return path


def target_summary(stderr: str) -> dict[str, Any]:
    marker = "Target summary: "
    line = next((ln for ln in reversed(stderr.splitlines()) if marker in ln), None)
    return json.loads(line.split(marker, 1)[1]) if line else {}


def bench_writes(args: argparse.Namespace, results: list[Result]) -> None:
    accounts = [
        {"name": f"Bench {i}", "domain": f"bench-{i}.example", "industry": "Software"}
        for i in range(args.accounts)
    ]
    accounts_in = singer_input(WORK / "accounts.jsonl", "accounts", accounts, "domain")
    window = 60.0 / args.time_scale
    with running_sandbox(budget=600, time_scale=args.time_scale, journal_limit=10**7) as sb:
        base = {
            "base_url": sb.url,
            "http_transport": args.transport,
            "api_key": sb.api_key,
            "sink": "upsert_account",
            "rejected_path": str(WORK / "rejected.jsonl"),
            "rate_window_seconds": window,
            "concurrency": args.concurrency,
        }
        # Our own CPU per record: render + bookkeeping without the network (dry run), then for real,
        # each net of the target's start-up (a run with no records).
        dry = write_json(WORK / "target-dry.json", {**base, "dry_run": True})
        empty = singer_input(WORK / "empty.jsonl", "accounts", accounts[:1], "domain")
        _, _, startup_cpu, _, _ = measure(
            [str(BIN / "target-salesloft"), "--config", str(dry)], stdin_path=empty, count_records=False
        )
        _, wall, cpu, rss, _ = measure(
            [str(BIN / "target-salesloft"), "--config", str(dry)], stdin_path=accounts_in, count_records=False
        )
        results.append(
            Result(
                "target-salesloft upsert_account (dry run)",
                "write",
                len(accounts),
                wall,
                cpu,
                rss,
                0,
                0,
                {"net_cpu_us_per_record": round((cpu - startup_cpu) / len(accounts) * 1e6, 1)},
            )
        )
        sb.clear_journal()
        live = write_json(WORK / "target-live.json", base)
        _, wall, cpu, rss, tail = measure(
            [str(BIN / "target-salesloft"), "--config", str(live)],
            stdin_path=accounts_in,
            count_records=False,
        )
        journal = sb.journal()
        requests, cost = journal_totals(sb, journal)
        throttled = sum(1 for e in journal if e["status"] == 429)
        summary = target_summary(tail)
        minutes = wall / window
        windows = budget_windows(journal)
        results.append(
            Result(
                "target-salesloft upsert_account",
                "write",
                len(accounts),
                wall,
                cpu,
                rss,
                requests,
                cost,
                {
                    "net_cpu_us_per_record": round((cpu - startup_cpu) / len(accounts) * 1e6, 1),
                    "accepted": summary.get("accepted"),
                    "rejected": summary.get("rejected"),
                    "throttled_429": throttled,
                    "budget_used_pct": round(100 * cost / (600 * windows), 1) if windows else None,
                    "budget_windows": windows,
                    "scaled_minutes": round(minutes, 2),
                    "time_scale": args.time_scale,
                },
            )
        )
        print(f"  upsert_account: {len(accounts)} in {wall:.1f}s", file=sys.stderr)

    people = [
        {"email_address": f"bulk{i}@bench.example", "first_name": f"P{i}", "last_name": "Bench"}
        for i in range(args.bulk)
    ]
    for i in range(0, args.bulk, 100):  # 1 % fail: not an email address
        people[i] = {"email_address": f"broken-{i}", "first_name": "Broken", "last_name": "Bench"}
    people_in = singer_input(WORK / "people.jsonl", "people", people, "email_address")
    with running_sandbox(budget=600, time_scale=args.time_scale, bulk_latency=0.2) as sb:
        config = write_json(
            WORK / "target-bulk.json",
            {
                "base_url": sb.url,
                "http_transport": args.transport,
                "api_key": sb.api_key,
                "sink": "bulk_upsert_people",
                "rejected_path": str(WORK / "rejected-bulk.jsonl"),
                "rate_window_seconds": window,
            },
        )
        sb.clear_journal()
        _, wall, cpu, rss, tail = measure(
            [str(BIN / "target-salesloft"), "--config", str(config)],
            stdin_path=people_in,
            count_records=False,
        )
        requests, cost = journal_totals(sb)
        summary = target_summary(tail)
        results.append(
            Result(
                "target-salesloft bulk_upsert_people (1% invalid)",
                "write-bulk",
                len(people),
                wall,
                cpu,
                rss,
                requests,
                cost,
                {
                    "accepted": summary.get("accepted"),
                    "rejected": summary.get("rejected"),
                    "requests_per_record": round(requests / len(people), 5),
                },
            )
        )
        print(f"  bulk: {len(people)} in {wall:.1f}s", file=sys.stderr)


def bench_changes(args: argparse.Namespace, results: list[Result]) -> None:
    """changes_only: N accounts through upsert_account, the same input again (nothing is sent), then with 1 %
    of the rows changed (exactly those are sent). CPU per unchanged record is net of the target's start-up."""
    count = args.changes
    accounts = [
        {"name": f"Bench {i}", "domain": f"changes-{i}.example", "industry": "Software"} for i in range(count)
    ]
    same_in = singer_input(WORK / "changes-same.jsonl", "accounts", accounts, "domain")
    changed = [dict(a) for a in accounts]
    for i in range(0, count, 100):
        changed[i]["industry"] = "Hardware"
    changed_in = singer_input(WORK / "changes-1pct.jsonl", "accounts", changed, "domain")
    state_db = WORK / "changes-state.db"
    for leftover in WORK.glob("changes-state.db*"):
        leftover.unlink()
    # The API's budget is not what is measured here: a budget that never binds, so the first run is quick.
    with running_sandbox(budget=10**9) as sb:
        base = {
            "base_url": sb.url,
            "api_key": sb.api_key,
            "sink": "upsert_account",
            "rejected_path": str(WORK / "rejected-changes.jsonl"),
            "concurrency": args.concurrency,
            "http_transport": args.transport,
        }
        config = write_json(
            WORK / "target-changes.json", {**base, "changes_only": True, "state_db": str(state_db)}
        )
        empty = singer_input(WORK / "changes-empty.jsonl", "accounts", accounts[:1], "domain")
        startup = write_json(WORK / "target-startup.json", {**base, "dry_run": True})
        _, _, startup_cpu, _, _ = measure(
            [str(BIN / "target-salesloft"), "--config", str(startup)], stdin_path=empty, count_records=False
        )
        for name, source in (
            ("first run", same_in),
            ("same input again", same_in),
            ("1% of rows changed", changed_in),
        ):
            # Counted from the sandbox's totals, not its journal: 100,000 entries held by this process would
            # show up in the next child's peak RSS (a forked child starts with its parent's pages).
            before = sb.stats()
            _, wall, cpu, rss, tail = measure(
                [str(BIN / "target-salesloft"), "--config", str(config)],
                stdin_path=source,
                count_records=False,
            )
            after = sb.stats()
            requests = after["requests"] - before["requests"]
            cost = after["budget"]["charged_total"] - before["budget"]["charged_total"]
            summary = target_summary(tail)
            results.append(
                Result(
                    f"target-salesloft upsert_account changes_only: {name}",
                    "write-changes",
                    count,
                    wall,
                    cpu,
                    rss,
                    requests,
                    cost,
                    {
                        "net_cpu_us_per_record": round((cpu - startup_cpu) / count * 1e6, 1),
                        "accepted": summary.get("accepted"),
                        "unchanged": summary.get("unchanged"),
                        "rejected": summary.get("rejected"),
                        "budget_minutes_at_600": round(cost / 600, 1),
                        "state_db_mb": round(
                            sum(p.stat().st_size for p in WORK.glob("changes-state.db*")) / 2**20, 1
                        ),
                    },
                )
            )
            print(f"  changes_only {name}: {requests} requests in {wall:.1f}s", file=sys.stderr)
        results[-2].extra["filter_us_per_record"] = filter_cost(
            changed, state_db, sb.url
        )  # what is stored now


def filter_cost(accounts: list[dict], state_db: Path, base_url: str) -> float:
    """The change filter's own CPU per unchanged record, in this process: render the record's request, digest
    it, look the stored digest up (by batches of 1,000, as the target does). Without singer-sdk's reading
    and validating of the input, which every record pays whether it is sent or not."""
    from connector.builder import RequestBuilder
    from connector.changes import SinkChanges
    from connector.ordering import object_key
    from connector.render import Origin
    from connector.statestore import open_store
    from connector.target import Item
    from connector.templates import load_bundled

    template = load_bundled("salesloft").sinks["upsert_account"]
    assert template.request is not None
    builder = RequestBuilder(template.request, Origin.parse(base_url), {})
    exclude = template.exclude | {"_sdc_extracted_at"}
    items = [Item(i, a, {k: v for k, v in a.items() if k not in exclude}) for i, a in enumerate(accounts)]
    store = open_store(str(state_db))
    changes = SinkChanges(
        store,
        "salesloft",
        "upsert_account",
        "domain",
        key_of=object_key(template),
        ordered=True,
        read_only=True,
    )
    skipped = 0
    start = time.process_time()
    for begin in range(0, len(items), 1000):
        batch = items[begin : begin + 1000]
        changes.begin(batch)
        for item in batch:
            built = builder.build(
                {"record": item.record, "stream": "accounts"},
                body_context={"record": item.body, "records": [item.body], "stream": "accounts"},
                default_body=item.body,
            )
            skipped += changes.unchanged(item, built)
    spent = time.process_time() - start
    store.close()
    assert skipped == len(items), f"only {skipped} of {len(items)} found unchanged"
    return round(spent / len(items) * 1e6, 2)


def table(results: list[Result]) -> str:
    floor = next((r for r in results if r.name.startswith("floor")), None)
    rows = [
        (
            "program",
            "records",
            "rec/s",
            "CPU s",
            "CPU us/rec",
            "x floor CPU",
            "peak MB",
            "requests",
            "cost",
            "notes",
        )
    ]
    for r in results:
        ratio = (
            f"{r.cpu_us_per_record / floor.cpu_us_per_record:.2f}"
            if floor and r.kind.startswith("read")
            else ""
        )
        notes = ", ".join(f"{k}={v}" for k, v in r.extra.items() if v is not None)
        rows.append(
            (
                r.name,
                str(r.records),
                f"{r.records_per_s:,.0f}",
                f"{r.cpu_s:.2f}",
                f"{r.cpu_us_per_record:.1f}",
                ratio,
                f"{r.peak_rss_mb:.0f}",
                str(r.requests),
                str(r.cost),
                notes,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [" | ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)) for row in rows]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--people", type=int, default=100_000, help="people to read (default 100,000)")
    parser.add_argument(
        "--accounts", type=int, default=10_000, help="accounts to upsert one by one (default 10,000)"
    )
    parser.add_argument("--bulk", type=int, default=100_000, help="people to upsert through a bulk job")
    parser.add_argument(
        "--changes", type=int, default=100_000, help="accounts for the changes_only runs (default 100,000)"
    )
    parser.add_argument(
        "--time-scale",
        type=float,
        default=30.0,
        help="sandbox minutes per real minute for the write budget (default 30: 600 points / 2 s)",
    )
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument(
        "--latency", type=float, default=0.05, help="answer latency of the scaled latency run"
    )
    parser.add_argument("--latency-time-scale", type=float, default=10.0, help="its time scale")
    parser.add_argument("--latency-people", type=int, default=100_000, help="its people")
    parser.add_argument("--slow-latency", type=float, default=0.3, help="answer latency of the real-time run")
    parser.add_argument("--slow-people", type=int, default=20_000, help="its people")
    parser.add_argument(
        "--transport", choices=["httpx", "wire"], default="httpx", help="the tap's and target's HTTP stack"
    )
    parser.add_argument("--peers", action="store_true", help="also run the peers (installs them in .bench/)")
    parser.add_argument("--quick", action="store_true", help="a small smoke run")
    parser.add_argument(
        "--only",
        choices=["reads", "writes", "changes", "latency"],
        help="run one part (results.json gets only it)",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results.json")
    args = parser.parse_args(argv)
    if args.quick:
        args.people, args.accounts, args.bulk, args.time_scale = 2_000, 300, 3_000, 600.0
        args.changes = 2_000
        args.latency_people, args.slow_people, args.slow_latency = 5_000, 500, 0.05
    WORK.mkdir(exist_ok=True)
    results: list[Result] = []
    if args.only in (None, "reads"):
        print("reading...", file=sys.stderr)
        bench_reads(args, results)
    if args.only in (None, "writes"):
        print("writing...", file=sys.stderr)
        bench_writes(args, results)
    if args.only in (None, "changes"):
        print("changes only...", file=sys.stderr)
        bench_changes(args, results)
    if args.only in (None, "latency"):
        print("reads under latency...", file=sys.stderr)
        bench_latency(args, results)
    print(table(results))
    machine = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "system": platform.platform(),
    }
    payload = {
        "machine": machine,
        "args": {k: str(v) for k, v in vars(args).items()},
        "results": [
            {**asdict(r), "records_per_s": r.records_per_s, "cpu_us_per_record": r.cpu_us_per_record}
            for r in results
        ],
    }
    args.out.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"\nwritten to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
