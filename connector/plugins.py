"""``connector tap NAME`` / ``connector target NAME``: any connection's tap or target, bundled or in a folder.

The console scripts ``tap-<name>``/``target-<name>`` exist only for connections the package declares;
this runs the same singer-sdk command for any connection a template author is working on. For the
tap, ``--streams a,b`` selects streams without writing a catalog by hand.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from connector.templates import Connection
from connector.workspace import CommandError, load


def take_streams(args: list[str]) -> tuple[list[str], list[str] | None]:
    """Split ``--streams a,b`` (or ``--streams=a,b``) off the arguments meant for singer-sdk."""
    rest: list[str] = []
    streams: list[str] | None = None
    items = iter(args)
    for arg in items:
        if arg == "--streams":
            value = next(items, None)
            if value is None:
                raise CommandError("--streams needs a comma-separated list of stream names")
        elif arg.startswith("--streams="):
            value = arg.split("=", 1)[1]
        else:
            rest.append(arg)
            continue
        streams = [*(streams or []), *(s.strip() for s in value.split(",") if s.strip())]
    return rest, streams


def _config_files(args: list[str]) -> list[str]:
    files = [args[i + 1] for i, a in enumerate(args[:-1]) if a == "--config"]
    return files + [a.split("=", 1)[1] for a in args if a.startswith("--config=")]


def selected_catalog(
    connection: Connection, streams: list[str], config_files: list[str], folder: Path
) -> Path:
    """A catalog of the connection with only these streams selected (singer-sdk still reads their parents)."""
    from connector.tap import build_tap_class

    unknown = sorted(set(streams) - set(connection.streams))
    if unknown:
        raise CommandError(
            f"{connection.name} has no stream {', '.join(unknown)} "
            f"(streams: {', '.join(sorted(connection.streams))})"
        )
    wanted = set(streams)
    configs = [f for f in config_files if f != "ENV"]
    tap = build_tap_class(connection)(config=configs or None, validate_config=False)
    catalog = tap.catalog_dict
    for entry in catalog["streams"]:
        for meta in entry["metadata"]:
            if meta["breadcrumb"] == []:
                meta["metadata"]["selected"] = entry["tap_stream_id"] in wanted
    path = folder / "catalog.json"
    path.write_text(json.dumps(catalog))
    return path


def main(role: str, connection_spec: str, args: list[str]) -> int:
    """Hand the remaining arguments to singer-sdk's command line of the connection's tap or target."""
    connection = load(connection_spec)
    args, streams = take_streams(list(args)) if role == "tap" else (list(args), None)
    refresh = role == "target" and "--full-refresh" in args
    args = [a for a in args if a != "--full-refresh"] if refresh else args
    if role == "tap":
        from connector.tap import build_tap_class

        command = build_tap_class(connection).cli
    else:
        from connector.target import build_target_class

        command = build_target_class(connection).cli
    with tempfile.TemporaryDirectory(prefix="connector-") as tmp:
        if refresh:  # one more config file: singer-sdk merges them, the last one winning
            extra = Path(tmp) / "full-refresh.json"
            extra.write_text(json.dumps({"changes_only_refresh": True}))
            args += ["--config", str(extra)]
        if streams:
            if "--catalog" in args or any(a.startswith("--catalog=") for a in args):
                raise CommandError("give either --streams or --catalog, not both")
            args += ["--catalog", str(selected_catalog(connection, streams, _config_files(args), Path(tmp)))]
        try:
            command.main(args=args, prog_name=f"{role}-{connection.name}", standalone_mode=True)
        except SystemExit as exc:
            return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0
