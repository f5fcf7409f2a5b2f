"""``connector demo``: the whole product in well under a minute, against the local Salesloft sandbox.

Sandbox up -> ``tap-salesloft`` syncs a few streams to JSON Lines files -> the accounts it read go
back, with a new description, through ``target-salesloft``'s ``upsert_account`` sink together with a
few bad records -> the same records once more, which sends only the rejected ones again (``changes_only``:
the API already has the rest) -> a summary of what was read, sent, accepted and rejected (and why),
counted from the files the tools wrote and from the sandbox's own request journal.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from connector.workspace import CommandError, relative

DEMO_STREAMS = ["users", "account_stages", "accounts", "people", "cadences"]
SINK = "upsert_account"
STREAM_TIMEOUT = 120.0


@dataclass
class StreamResult:
    name: str
    records: int = 0
    requests: int = 0
    file: Path | None = None


@dataclass
class DemoResult:
    streams: dict[str, StreamResult] = field(default_factory=dict)
    sent: int = 0
    accepted: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)
    write_requests: int = 0
    again: dict[str, int] = field(default_factory=dict)  # the second write-back: requests, unchanged, ...
    seconds: float = 0.0


def _command(role: str) -> list[str]:
    """The installed console script next to this Python, or the same thing through ``connector``."""
    script = Path(sys.executable).parent / f"{role}-salesloft"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "connector.cli", role, "salesloft"]


def _catalog(config_path: Path, out: Path) -> Path:
    proc = subprocess.run(
        [*_command("tap"), "--config", str(config_path), "--discover"],
        capture_output=True,
        text=True,
        timeout=STREAM_TIMEOUT,
    )
    if proc.returncode != 0:
        raise CommandError(f"tap-salesloft --discover failed:\n{proc.stderr[-2000:]}", exit_code=1)
    catalog = json.loads(proc.stdout)
    for entry in catalog["streams"]:
        for meta in entry["metadata"]:
            if meta["breadcrumb"] == []:
                meta["metadata"]["selected"] = entry["tap_stream_id"] in DEMO_STREAMS
    path = out / "catalog.json"
    path.write_text(json.dumps(catalog, indent=1))
    return path


def _sync(config_path: Path, catalog: Path, out: Path, result: DemoResult, on_record: Any) -> dict[str, Any]:
    """Run the tap; each stream's records go to <stream>.jsonl, its SCHEMA is kept for the way back."""
    schemas: dict[str, Any] = {}
    files: dict[str, Any] = {}
    with open(out / "tap.log", "w") as log:
        proc = subprocess.Popen(
            [*_command("tap"), "--config", str(config_path), "--catalog", str(catalog)],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
        assert proc.stdout is not None
        try:
            for line in proc.stdout:
                message = json.loads(line)
                stream = message.get("stream")
                if message["type"] == "SCHEMA":
                    schemas[stream] = message
                elif message["type"] == "RECORD":
                    if stream not in files:
                        path = out / f"{stream}.jsonl"
                        files[stream] = open(path, "w")  # noqa: SIM115 - closed below
                        result.streams[stream].file = path
                    files[stream].write(json.dumps(message["record"]) + "\n")
                    result.streams[stream].records += 1
                    on_record()
                elif message["type"] == "STATE":
                    (out / "state.json").write_text(json.dumps(message["value"], indent=1))
            proc.wait(timeout=STREAM_TIMEOUT)
        finally:
            for handle in files.values():
                handle.close()
            if proc.poll() is None:
                proc.kill()
    if proc.returncode != 0:
        raise CommandError(
            f"tap-salesloft failed (exit {proc.returncode}); see {relative(out / 'tap.log')}", 1
        )
    return schemas


def _changes(out: Path, schema: dict[str, Any], stamp: str) -> tuple[Path, int]:
    """The accounts read, as changes to send back: domain (the upsert key), name, a new description.

    Then three records that must not get through: one without a domain (rejected before sending),
    a new domain without a name and one with an owner that does not exist (both refused by the API).
    """
    accounts = [json.loads(line) for line in (out / "accounts.jsonl").read_text().splitlines()]
    rows = [
        {
            "domain": a["domain"],
            "name": a["name"],
            "description": f"Reviewed by the connector demo on {stamp}",
        }
        for a in accounts
        if a.get("domain")
    ]
    rows += [
        {"name": "Nameless Domain Co", "description": "no domain: the sink's id_field is missing"},
        {"domain": "brand-new-demo.example", "description": "a new account without the required name"},
        {
            "domain": rows[0]["domain"] if rows else "demo.example",
            "name": "Ghost owner",
            "owner_id": 999999999,
        },
    ]
    path = out / "accounts-changes.jsonl"
    with open(path, "w") as handle:
        handle.write(
            json.dumps(
                {"type": "SCHEMA", "stream": "accounts", "schema": schema["schema"], "key_properties": []}
            )
            + "\n"
        )
        for row in rows:
            handle.write(json.dumps({"type": "RECORD", "stream": "accounts", "record": row}) + "\n")
    return path, len(rows)


def _write_back(config: dict[str, Any], changes: Path, out: Path, name: str = "target") -> None:
    config_path = out / f"{name}-config.json"
    config_path.write_text(json.dumps(config, indent=1))
    with (
        open(changes) as stdin,
        open(out / f"{name}.log", "w") as log,
        open(out / f"{name}-state.jsonl", "w") as state,
    ):
        proc = subprocess.run(
            [*_command("target"), "--config", str(config_path)],
            stdin=stdin,
            stdout=state,
            stderr=log,
            timeout=STREAM_TIMEOUT,
        )
    if proc.returncode != 0:
        raise CommandError(
            f"target-salesloft failed (exit {proc.returncode}); see {relative(out / 'target.log')}", 1
        )


def _lines(path: Path) -> list[dict[str, Any]]:
    return (
        [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
    )


def _target_summary(log: Path) -> dict[str, Any]:
    marker = "Target summary: "
    lines = [line for line in log.read_text().splitlines() if marker in line]
    return json.loads(lines[-1].split(marker, 1)[1]) if lines else {}


def _count_requests(journal: list[dict[str, Any]], result: DemoResult) -> None:
    from connector.templates import load_bundled

    streams = load_bundled("salesloft").streams
    paths = {streams[name].request.url.source: name for name in DEMO_STREAMS}
    for entry in journal:
        name = paths.get(entry["path"])
        if entry["method"] == "GET" and name:
            result.streams[name].requests += 1
        elif entry["method"] == "POST" and entry["path"].startswith("/v2/account_upserts"):
            result.write_requests += 1


def run_demo(people: int, out: Path, seed: int, console: Console) -> DemoResult:
    try:
        from sandbox.testing import running_sandbox
    except ImportError as exc:  # pragma: no cover - the sandbox ships with the project
        raise CommandError(
            f"the Salesloft sandbox is not importable ({exc}); run from the project's virtualenv"
        ) from exc
    out.mkdir(parents=True, exist_ok=True)
    stale_files = ("rejected.jsonl", "responses.jsonl", "rejected-again.jsonl", "responses-again.jsonl")
    for stale in (*stale_files, "target-state.db", *(f"{s}.jsonl" for s in DEMO_STREAMS)):
        (out / stale).unlink(missing_ok=True)
    result = DemoResult(streams={name: StreamResult(name) for name in DEMO_STREAMS})
    started = time.monotonic()
    columns = (
        SpinnerColumn(finished_text="[green]✓"),
        TextColumn("{task.description}"),
        TextColumn("[dim]{task.fields[detail]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:
        step = progress.add_task("Sandbox", total=1, detail=f"starting, {people:,} people")
        with running_sandbox(seed=seed, sizes={"people": people}) as sandbox:
            config = {"base_url": sandbox.url, "api_key": sandbox.api_key}
            progress.update(step, completed=1, detail=f"{sandbox.url}, {people:,} people")

            step = progress.add_task("Discover", total=1, detail="tap-salesloft --discover")
            tap_config = out / "tap-config.json"
            tap_config.write_text(json.dumps(config, indent=1))
            catalog = _catalog(tap_config, out)
            progress.update(step, completed=1, detail=f"{len(DEMO_STREAMS)} streams selected")

            expected = sum(sandbox.stats()["records"].get(name, 0) for name in DEMO_STREAMS)
            step = progress.add_task("Sync", total=expected, detail="tap-salesloft")

            def on_record() -> None:
                progress.update(
                    step,
                    advance=1,
                    detail=f"tap-salesloft, {sum(s.records for s in result.streams.values()):,} records",
                )

            schemas = _sync(tap_config, catalog, out, result, on_record)
            progress.update(step, completed=expected)

            step = progress.add_task("Write back", total=1, detail=f"target-salesloft, {SINK}")
            changes, result.sent = _changes(out, schemas["accounts"], dt.date.today().isoformat())
            target = {**config, "sink": SINK, "changes_only": True, "state_db": str(out / "target-state.db")}
            _write_back(
                {
                    **target,
                    "rejected_path": str(out / "rejected.jsonl"),
                    "responses_path": str(out / "responses.jsonl"),
                },
                changes,
                out,
            )
            result.rejected = _lines(out / "rejected.jsonl")
            result.accepted = len(_lines(out / "responses.jsonl"))
            progress.update(
                step,
                completed=1,
                detail=f"{SINK}: {result.accepted} accepted, {len(result.rejected)} rejected",
            )
            _count_requests(sandbox.journal(), result)

            step = progress.add_task("Again", total=1, detail=f"the same records, {SINK}, changes_only")
            since = max((entry["seq"] for entry in sandbox.journal()), default=0)
            _write_back(
                {
                    **target,
                    "rejected_path": str(out / "rejected-again.jsonl"),
                    "responses_path": str(out / "responses-again.jsonl"),
                },
                changes,
                out,
                name="target-again",
            )
            again = _target_summary(out / "target-again.log")
            result.again = {
                "requests": sum(1 for entry in sandbox.journal(since) if entry["method"] != "GET"),
                "unchanged": int(again.get("unchanged", 0)),
                "accepted": int(again.get("accepted", 0)),
                "rejected": int(again.get("rejected", 0)),
            }
            progress.update(
                step,
                completed=1,
                detail=f"{result.again['unchanged']} unchanged, {result.again['requests']} requests",
            )
    result.seconds = time.monotonic() - started
    return result


def summary_tables(result: DemoResult, out: Path) -> list[Table]:
    read = Table(title="Read: tap-salesloft -> JSON Lines", title_justify="left")
    read.add_column("Stream")
    read.add_column("Records", justify="right")
    read.add_column("Requests", justify="right")
    read.add_column("File")
    for stream in result.streams.values():
        read.add_row(
            stream.name,
            f"{stream.records:,}",
            str(stream.requests),
            relative(stream.file) if stream.file else "-",
        )
    wrote = Table(title=f"Written: target-salesloft, sink {SINK}, changes_only", title_justify="left")
    wrote.add_column("Run")
    for name in ("Records in", "Requests", "Accepted", "Unchanged (not sent)", "Rejected"):
        wrote.add_column(name, justify="right")
    wrote.add_row(
        "first",
        str(result.sent),
        str(result.write_requests),
        f"[green]{result.accepted}",
        "0",
        f"[red]{len(result.rejected)}" if result.rejected else "0",
    )
    if result.again:
        wrote.add_row(
            "same records again",
            str(result.sent),
            str(result.again["requests"]),
            str(result.again["accepted"]),
            f"[green]{result.again['unchanged']}",
            f"[red]{result.again['rejected']}" if result.again["rejected"] else "0",
        )
        wrote.caption = (
            "The second run sends only the records the API rejected (tried again): it already has the others."
        )
    reasons = Table(
        title=f"Rejected, with reasons ({relative(out / 'rejected.jsonl')})", title_justify="left"
    )
    reasons.add_column("Record")
    reasons.add_column("Reason")
    reasons.add_column("Status", justify="right")
    reasons.add_column("Error")
    for row in result.rejected:
        record = row.get("record") or {}
        reasons.add_row(
            str(record.get("domain") or record.get("name")),
            str(row.get("reason")),
            str(row.get("status") or "-"),
            str(row.get("error")),
        )
    return [read, wrote, reasons]


def main(people: int = 1000, out: str = "demo-output", seed: int = 1) -> int:
    if people < 1:
        raise CommandError(f"--people must be at least 1 (got {people})")
    console = Console()
    folder = Path(out)
    result = run_demo(people, folder, seed, console)
    console.print()
    for table in summary_tables(result, folder):
        console.print(table)
        console.print()
    ok = result.accepted == result.sent - len(result.rejected) and all(
        s.records for s in result.streams.values()
    )
    console.print(
        f"Done in {result.seconds:.1f}s. Files are in {relative(folder.resolve())}/. Next, see what a sink "
        f"would send without sending it:\n  connector preview {SINK} --input "
        f"{relative((folder / 'accounts-changes.jsonl').resolve())}"
    )
    (folder / "summary.json").write_text(
        json.dumps(
            {
                "streams": {
                    s.name: {"records": s.records, "requests": s.requests} for s in result.streams.values()
                },
                "sent": result.sent,
                "accepted": result.accepted,
                "rejected": len(result.rejected),
                "rejected_reasons": dict(Counter(str(r.get("reason")) for r in result.rejected)),
                "write_requests": result.write_requests,
                "again": result.again,
                "seconds": round(result.seconds, 2),
            },
            indent=1,
        )
        + "\n"
    )
    return 0 if ok else 1
