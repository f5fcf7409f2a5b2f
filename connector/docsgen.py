"""``connector docs``: the reference page of each bundled connection, generated from its templates.

The page is what a user of the tap or target needs without reading YAML: settings, streams and sinks
with their URLs, keys, pagination and batching. ``--check`` keeps the committed pages honest.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import Path

from connector import bundle
from connector.plugin import ENGINE_SETTINGS
from connector.target import TARGET_SETTINGS
from connector.templates import (
    TEMPLATES_ROOT,
    Connection,
    Setting,
    SinkTemplate,
    StreamTemplate,
    available_connections,
)
from connector.workspace import load, relative

# Next to templates/ (the repository's docs); an installed package's own data is no place for them.
DEFAULT_OUT = (
    Path("docs") if bundle.is_shipped(TEMPLATES_ROOT) else TEMPLATES_ROOT.parent / "docs"
) / "connectors"


def _cell(text: object) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _code(text: str | None) -> str:
    return f"`{_cell(text)}`" if text else ""


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _settings_rows(settings: list[Setting]) -> list[list[str]]:
    rows = []
    for s in settings:
        kind = (
            s.type
            + (", secret" if s.secret else "")
            + (", required" if s.required else "")
            + (f", {s.only} only" if s.only else "")
        )
        default = (
            _code(str(s.default).lower() if isinstance(s.default, bool) else str(s.default))
            if s.default is not None
            else ""
        )
        rows.append([_code(s.name), kind, default, _cell(s.description)])
    return rows


def pagination_summary(stream: StreamTemplate) -> str:
    return stream.pagination.summary()


def _stream_row(stream: StreamTemplate) -> list[str]:
    replication = stream.replication_key or ""
    if replication and stream.incremental_param:
        replication = f"`{replication}` (`{_cell(stream.incremental_param)}`)"
    elif replication:
        replication = f"`{replication}`"
    return [
        f"`{stream.name}`",
        _code(stream.request.url.source),
        ", ".join(f"`{k}`" for k in stream.primary_key),
        replication,
        _cell(pagination_summary(stream)),
        _code(stream.parent),
        _cell(stream.description),
    ]


def _filter_rows(connection: Connection) -> list[list[str]]:
    rows = []
    for name, stream in sorted(connection.streams.items()):
        for index, item in enumerate(stream.filters.values()):
            takes = "list" if item.param.endswith("[]") else "value"
            rows.append([f"`{name}`" if index == 0 else "", _code(item.name), takes, _cell(item.description)])
    return rows


def _filters_section(connection: Connection) -> list[str]:
    rows = _filter_rows(connection)
    if not rows:
        return []
    return [
        "## Stream filters",
        "",
        "Passed with the tap's `stream_params` setting, e.g. "
        '`{"stream_params": {"people": {"ids": [1, 2], "updated_at[gte]": "2024-01-01T00:00:00Z"}}}`. A list filter '
        "takes a list, sent as the repeated parameter (`ids[]=1&ids[]=2`), the others one value. An unknown "
        "stream or filter stops the run "
        "before any request; a filtered incremental stream keeps a bookmark of its own.",
        "",
        *_table(["Stream", "Filter", "Takes", "Description"], rows),
        "",
    ]


def _sink_url(sink: SinkTemplate) -> str:
    if sink.request is None:
        return ""
    url = sink.request.url.source
    constant = (
        {k: v for k, v in sink.raw.get("params", {}).items()}
        if isinstance(sink.raw.get("params"), dict)
        else {}
    )
    if constant:
        url += "?" + "&".join(f"{k}={v}" for k, v in constant.items())
    return _code(url)


def batching_summary(sink: SinkTemplate) -> str:
    if sink.kind == "bulk_job" and sink.job is not None:
        per_upload = sink.job.upload.max_records
        return "bulk job" + (f", {per_upload:,} records per upload" if per_upload else "")
    if sink.batch_size == 1:
        return "1 record per request"
    grouped = f", grouped by {', '.join(f'`{g}`' for g in sink.group_by)}" if sink.group_by else ""
    return f"up to {sink.batch_size:,} records per request{grouped}"


def _sink_row(sink: SinkTemplate) -> list[str]:
    if sink.kind == "bulk_job" and sink.job is not None:
        method, url = "bulk job", _code(sink.job.create.request.url.source)
    else:
        assert sink.request is not None
        method = sink.request.method.source
        method, url = (_code(method) if "{{" in method else method), _sink_url(sink)
    return [
        f"`{sink.name}`",
        method,
        url,
        _code(sink.id_field),
        ", ".join(f"`{e}`" for e in sorted(sink.exclude)),
        _cell(batching_summary(sink)),
        _cell(sink.description),
    ]


def _commands(role: str, name: str) -> str:
    """How to run it: the console script when the package installs one, and the generic command."""
    scripts = {e.name for e in entry_points(group="console_scripts") if e.value.startswith("connector.")}
    generic = f"`connector {role} {name} --config config.json`"
    script = f"{role}-{name.replace('_', '-')}"
    return f"`{script} --config config.json` or {generic}" if script in scripts else generic


def render(connection: Connection) -> str:
    name = connection.name
    lines = [
        f"<!-- Generated by `connector docs` from templates/{name}/: do not edit by hand. -->",
        f"# {name}",
        "",
        _cell(connection.description),
        "",
        f"- Tap: {_commands('tap', name)}",
        f"- Target: {_commands('target', name)}",
        f"- Try a sink without sending anything: `connector preview SINK --connection {name} --input records.jsonl`",
        "",
        "## Settings",
        "",
        *_table(["Setting", "Type", "Default", "Description"], _settings_rows(connection.settings)),
        "",
        "Engine settings, for the tap and the target:",
        "",
        *_table(["Setting", "Type", "Default", "Description"], _settings_rows(ENGINE_SETTINGS)),
        "",
        "Target settings:",
        "",
        *_table(["Setting", "Type", "Default", "Description"], _settings_rows(TARGET_SETTINGS)),
        "",
        f"## Streams ({len(connection.streams)})",
        "",
        *_table(
            ["Stream", "URL", "Primary key", "Replication key", "Pagination", "Parent", "Description"],
            [_stream_row(s) for _, s in sorted(connection.streams.items())],
        ),
        "",
        *_filters_section(connection),
        f"## Sinks ({len(connection.sinks)})",
        "",
        "Every sink checks `id_field` first (a record without it is rejected, never sent) and removes the",
        "excluded attributes before the body is rendered.",
        "",
        *_table(
            ["Sink", "Method", "URL", "id_field", "Excluded attributes", "Batching", "Description"],
            [_sink_row(s) for _, s in sorted(connection.sinks.items())],
        ),
        "",
    ]
    return "\n".join(lines)


CLI_INTRO = """\
<!-- Generated by `connector docs` from connector/cli.py: do not edit by hand. -->
# The `connector` command

One command for users and template authors. Each command's work lives in its own module
(`connector/validate.py`, `preview.py`, `sendtest.py`, `scaffold.py`, `docsgen.py`, `demo.py`,
`plugins.py`); `connector/cli.py` only parses and dispatches.

Exit status: 0 success, 1 a check or a record failed, 2 a usage or input error (unknown sink,
missing file, templates that do not load). Errors go to stderr as `connector COMMAND: message`;
template problems as `file:line: field: message`.

A template author's loop is in the [template guide](template-guide.md); each connection's streams
and sinks are listed in [docs/connectors/](connectors/).
"""


def cli_reference() -> str:
    """docs/cli.md: every command's --help, as the parser prints it."""
    import argparse

    from connector.cli import build_parser

    parser = build_parser()
    parts = [CLI_INTRO, "## connector", "", "```text", parser.format_help().rstrip(), "```", ""]
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, sub in commands.choices.items():
        if name == "sandbox":
            parts += [
                f"## connector {name}",
                "",
                "All arguments go to the sandbox's own parser "
                "(`python -m sandbox`); see [sandbox.md](sandbox.md) or `connector sandbox --help`.",
                "",
            ]
            continue
        parts += [f"## connector {name}", "", "```text", sub.format_help().rstrip(), "```", ""]
        nested = [a for a in sub._actions if isinstance(a, argparse._SubParsersAction)]
        for kind, kind_parser in nested[0].choices.items() if nested else []:
            parts += [
                f"### connector {name} {kind}",
                "",
                "```text",
                kind_parser.format_help().rstrip(),
                "```",
                "",
            ]
    return "\n".join(parts)


def _sync_page(page: Path, text: str, check: bool, stale: list[Path]) -> None:
    current = page.read_text(encoding="utf-8") if page.exists() else None
    if check:
        if current != text:
            stale.append(page)
            print(f"{relative(page)} is {'missing' if current is None else 'out of date'}")
        else:
            print(f"{relative(page)} is up to date")
    elif current == text:
        print(f"{relative(page)} unchanged")
    else:
        page.parent.mkdir(parents=True, exist_ok=True)
        page.write_text(text, encoding="utf-8")
        print(f"wrote {relative(page)}")


REFERENCE_INTRO = """\
<!-- Generated by `connector docs` from the template models (connector/*.py): do not edit by hand. -->
# Template reference

Every concept of the template format, each kind with its fields, as the engine's models define them.
The [template guide](template-guide.md) shows each one in use; `specs/template.schema.json` is generated
from the same models. Durations are seconds or `'30m'`, `'12h'`, `'2d'`, `'1w'`, `'P1DT12H'`.
"""


def template_reference() -> str:
    """docs/template-reference.md: every concept's kinds and fields, from the models themselves."""
    from connector.kinds import _members, _tag, fields_of
    from connector.template_schema import CONCEPTS

    titles = {
        "pagination": ("Pagination", "`pagination:` of a stream or a bulk job step; `type` picks the kind."),
        "auth": ("Auth", "`auth:` of connection.yaml, a list tried in order; `type` picks the kind."),
        "incremental": ("Incremental", "`incremental:` of a stream with a `replication_key`."),
        "transformation": (
            "Transformations",
            "`transform:` of a stream, a list of steps; `type` picks the kind.",
        ),
        "response_rule": ("Response rules", "`on_response:` of a stream or sink, a list tried in order."),
        "item_results": ("Per-item results", "`results:` of a batched sink."),
        "values": ("Values", "`values:` of a stream: the pairs `connector values` lists."),
    }
    lines = [REFERENCE_INTRO]
    for name, model in CONCEPTS.items():
        title, where = titles[name]
        lines += [f"## {title}", "", where, ""]
        for cls in _members(model):
            tag = _tag(cls)
            heading = f"`{tag}`" if tag else f"`{name}`"
            doc = " ".join((cls.__doc__ or "").split())
            lines += [f"### {heading}", "", doc, ""] if doc else [f"### {heading}", ""]
            rows = [
                [
                    _code(field),
                    _cell(description),
                    _code(repr(default)) if default not in (None, {}, []) else "",
                ]
                for field, description, default in fields_of(cls)
                if field != "type"
            ]
            if rows:
                lines += [*_table(["field", "meaning", "default"], rows), ""]
    return "\n".join(lines)


def main(names: list[str], out: str | None = None, check: bool = False) -> int:
    """Write (or with ``check``, compare) one page per connection (a bundled name or a folder), and
    docs/cli.md and docs/template-reference.md when all are asked for; exit 1 if a page is stale."""
    folder = Path(out) if out else DEFAULT_OUT
    stale: list[Path] = []
    for name in names or available_connections():
        connection = load(name)
        _sync_page(folder / f"{connection.name}.md", render(connection), check, stale)
    if not names:
        _sync_page(folder.parent / "cli.md", cli_reference(), check, stale)
        _sync_page(folder.parent / "template-reference.md", template_reference(), check, stale)
    if stale:
        print("run `connector docs` to regenerate them, then commit the result")
        return 1
    return 0
