"""``connector new stream|sink``: a starting template (and record schema) that already validates.

Nothing is overwritten. The new files are validated with the rest of the connection; if they do not
pass, they are removed again and the problems are printed, so a failed scaffold leaves no trace.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from connector import bundle
from connector.templates import SPECS_ROOT, default_connection, load_yaml
from connector.validate import usage, validate_folder
from connector.workspace import CommandError, connection_folder, relative

NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_PLAIN = re.compile(r"^[A-Za-z0-9_/.\-\[\]{}|(),' ]+$")

PAGINATION_STARTERS = {
    "none": "{type: none}",
    "page_number": "{type: page_number, page_param: page}",
    "offset": "{type: offset, offset_param: offset, size_param: limit, size: 100}",
    "cursor": "{type: cursor, param: cursor, from_response: meta.next_cursor}  # where the API puts the next cursor",
    "next_url": "{type: next_url, from_response: links.next}  # where the API puts the next page's URL",
    "link_header": "{type: link_header}",
}


def _scalar(value: str) -> str:
    """A YAML scalar: plain when it reads the same, else double-quoted (JSON strings are valid YAML)."""
    if value and _PLAIN.match(value) and not value.startswith(("{", "[", "|")) and not value.endswith(" "):
        return value
    return json.dumps(value)


def _flow_list(values: list[str]) -> str:
    return "[" + ", ".join(_scalar(v) for v in values) + "]"


def _check_name(kind: str, name: str) -> None:
    if not NAME.match(name):
        raise CommandError(
            f"{kind} name {name!r}: use lower case letters, digits and underscores, starting with a "
            "letter (it becomes the Singer stream or sink name)"
        )


def _check_url(url: str) -> None:
    if not url.startswith("/") or url.startswith("//"):
        raise CommandError(
            f"--url {url!r}: give a path on the API starting with '/', e.g. /v2/things; the "
            "connection's base URL is put in front of it"
        )


def _specs_dir(folder: Path, connection_name: str) -> Path:
    """Where the loader looks for this connection's record schemas."""
    bundled = SPECS_ROOT / connection_name
    return bundled if bundled.is_dir() else folder / "specs"


def _editable_folder(connection_spec: str) -> Path:
    """The connection's folder, unless it is an installed package's data (lost on the next upgrade)."""
    folder = connection_folder(connection_spec)
    if bundle.is_shipped(folder):
        raise CommandError(
            f"{connection_spec!r} is the copy installed with the package ({relative(folder)}): copy its "
            f"templates and specs to folders of your own and point CONNECTOR_TEMPLATES and CONNECTOR_SPECS at them"
        )
    return folder


def _connection_name(folder: Path) -> str:
    doc = load_yaml(folder / "connection.yaml")
    return str(doc.get("name") if isinstance(doc, dict) else folder.name)


def _write_new(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "x", encoding="utf-8") as handle:  # "x": never overwrite, even in a race
        handle.write(text)


def _finish(folder: Path, created: list[Path], kind: str, name: str, connection_spec: str) -> int:
    report = validate_folder(folder)
    mine = {p.resolve() for p in created}
    own = [f for f in report.errors if Path(f.file).resolve() in mine]
    if own or not report.loaded and report.errors:
        for path in created:
            path.unlink(missing_ok=True)
        problems = "\n".join(str(f) for f in (own or report.errors))
        raise CommandError(f"the new {kind} does not validate, nothing was written:\n{problems}", exit_code=1)
    for path in created:
        print(f"created {relative(path)}")
    print(report.summary())
    try_it = f"connector preview {name}" + (
        "" if connection_spec == default_connection() else f" --connection {connection_spec}"
    )
    if kind == "stream":
        print(f"next: describe the record's fields in {relative(created[-1])}, then try it:\n  {try_it}")
    else:
        print(f"next: try it on a few records (nothing is sent):\n  {try_it} --input records.jsonl")
    return 0


def new_stream(
    connection_spec: str,
    name: str,
    *,
    url: str,
    primary_key: list[str],
    replication_key: str | None = None,
    incremental_param: str | None = None,
    records: str | None = None,
    pagination: str | None = None,
    parent: str | None = None,
    description: str = "",
) -> int:
    _check_name("stream", name)
    _check_url(url)
    if not primary_key:
        raise CommandError("--primary-key: give at least one field (e.g. id)")
    if incremental_param and not replication_key:
        raise CommandError(
            "--incremental-param needs --replication-key (the field whose last value it sends)"
        )
    folder = _editable_folder(connection_spec)
    template_file = folder / "streams" / f"{name}.yaml"
    if template_file.exists():
        raise CommandError(
            f"{relative(template_file)} already exists; not overwritten (pick another name or edit it)"
        )
    schema_file = _specs_dir(folder, _connection_name(folder)) / f"{name}.json"
    if parent and "{{" not in url:
        raise CommandError(
            f"--parent {parent}: the url should use the parent record, e.g. {url}/{{{{ parent.id }}}}"
        )
    lines = [
        f"name: {name}",
        f"description: {_scalar(description or f'{name} records (say what they are).')}",
        f"url: {_scalar(url)}",
        f"primary_key: {_flow_list(primary_key)}",
        f"schema: {name}.json",
    ]
    if replication_key:
        lines.append(f"replication_key: {_scalar(replication_key)}")
    if incremental_param:
        lines.append(f"incremental: {{param: {_scalar(incremental_param)}}}")
    if parent:
        lines.append(f"parent: {parent}")
    if records is not None:
        lines.append(f"records: {_scalar(records)}")
    if pagination:
        lines.append(f"pagination: {PAGINATION_STARTERS[pagination]}")
    text = "\n".join(lines) + "\n"
    _same_yaml(text, {"name": name, "url": url, "primary_key": primary_key})
    properties: dict[str, Any] = {key: {"type": ["integer", "null"]} for key in primary_key}
    if replication_key:
        properties[replication_key] = {"type": ["string", "null"], "format": "date-time"}
    created = []
    _write_new(template_file, text)
    created.append(template_file)
    if schema_file.exists():
        print(f"using the existing record schema {relative(schema_file)}")
    else:
        schema = {"type": "object", "additionalProperties": True, "properties": properties}
        _write_new(schema_file, json.dumps(schema, indent=2) + "\n")
        created.append(schema_file)
    return _finish(folder, created, "stream", name, connection_spec)


def new_sink(
    connection_spec: str,
    name: str,
    *,
    method: str,
    url: str,
    id_field: str | None = None,
    exclude: list[str] | None = None,
    schema: str | None = None,
    batch_size: int = 1,
    description: str = "",
) -> int:
    _check_name("sink", name)
    _check_url(url)
    if batch_size < 1:
        raise CommandError(f"--batch-size must be >= 1 (got {batch_size})")
    folder = _editable_folder(connection_spec)
    template_file = folder / "sinks" / f"{name}.yaml"
    if template_file.exists():
        raise CommandError(
            f"{relative(template_file)} already exists; not overwritten (pick another name or edit it)"
        )
    if schema and not (_specs_dir(folder, _connection_name(folder)) / schema).is_file():
        raise CommandError(
            f"--schema {schema}: no such file in {relative(_specs_dir(folder, _connection_name(folder)))}"
        )
    used = usage(url)
    in_url = sorted(attr for var, attr in (used.attributes if used else ()) if var == "record")
    if id_field is None and in_url:
        id_field = in_url[0]
    lines = [
        f"name: {name}",
        f"description: {_scalar(description or f'Send each record to {method} {url}.')}",
        f"method: {method}",
        f"url: {_scalar(url)}",
    ]
    if id_field:
        lines.append(f"id_field: {_scalar(id_field)}")
    if schema:
        lines.append(f"schema: {_scalar(schema)}")
    if exclude:
        lines.append(f"exclude: {_flow_list(exclude)}")
    if method == "DELETE":
        lines.append("body: none")
    if batch_size > 1:
        lines.append(f"batch: {{size: {batch_size}}}")
        lines.append('body: {records: "{{ records }}"}  # the shape the API expects for a batch')
    text = "\n".join(lines) + "\n"
    _same_yaml(text, {"name": name, "url": url, "method": method})
    _write_new(template_file, text)
    return _finish(folder, [template_file], "sink", name, connection_spec)


def _same_yaml(text: str, expected: dict[str, Any]) -> None:
    """Guard against quoting mistakes: the written YAML must read back as the values asked for."""
    loaded = yaml.safe_load(text)
    for key, value in expected.items():
        if loaded.get(key) != value:
            raise CommandError(f"cannot write {key} {value!r} as YAML safely; write the template by hand")
