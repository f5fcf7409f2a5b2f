"""``connector validate``: the loader's checks, plus the ones a run would otherwise trip over later.

The loader (``connector.templates``) checks the template format and compiles the Jinja. On top of it:
variables and ``config.X`` settings a template uses, ``record.X`` / ``id_field`` / ``exclude`` /
``group_by`` against the sink's record schema, ``parent.X`` against the fields a parent passes,
URLs that must stay paths on the connection's host, batched bodies that forget ``records``, record
schemas that are not valid JSON Schema, and pagination fields their type ignores.
Each problem prints as ``file:line: field: message``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import jsonschema
from jinja2 import meta, nodes

from connector.errors import TemplateError, TemplateErrors
from connector.render import ENV, Origin
from connector.templates import (
    Connection,
    SinkTemplate,
    StreamTemplate,
    available_connections,
    connection_dir,
    field_name,
    line_of,
    load_connection,
    load_yaml,
    strings,
)
from connector.workspace import CommandError, connection_folder, display

# Which variables each kind of template is given by the engine (see connector/tap.py, target.py, bulk.py).
STREAM_VARIABLES = frozenset({"config", "parent", "partition", "window", "bookmark", "page"})
SINK_VARIABLES = frozenset({"config", "record", "records", "stream"})
JOB_VARIABLES = frozenset({"config", "job", "records", "stream"})
DONE_VARIABLES = frozenset({"config", "job", "response"})
CONNECTION_VARIABLES = frozenset({"config"})

REQUEST_FIELDS = ("method", "url", "params", "headers", "body")


@dataclass(frozen=True)
class Finding:
    file: str
    line: int | None
    field: str
    message: str
    warning: bool = False

    def __str__(self) -> str:
        where = f"{display(self.file)}:{self.line}" if self.line else display(self.file)
        level = "warning: " if self.warning else ""
        return (
            f"{where}: {self.field}: {level}{self.message}"
            if self.field
            else f"{where}: {level}{self.message}"
        )


@dataclass
class Report:
    name: str
    streams: int = 0
    sinks: int = 0
    findings: list[Finding] = field(default_factory=list)
    loaded: bool = True

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if not f.warning]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.warning]

    def summary(self, strict: bool = False) -> str:
        counts = f"{self.streams} streams, {self.sinks} sinks"
        bad = len(self.errors) + (len(self.warnings) if strict else 0)
        if not self.loaded:
            return (
                f"{self.name}: {len(self.errors)} error{'s' if len(self.errors) != 1 else ''} "
                "(the templates do not load; fix these, then run validate again for the deeper checks)"
            )
        warned = (
            f" ({len(self.warnings)} warning{'s' if len(self.warnings) != 1 else ''})"
            if self.warnings
            else ""
        )
        if not bad:
            return f"{self.name}: {counts} OK{warned}"
        return f"{self.name}: {counts}: {len(self.errors)} error{'s' if len(self.errors) != 1 else ''}" + (
            f", {len(self.warnings)} warning{'s' if len(self.warnings) != 1 else ''}" if self.warnings else ""
        )


# ---------------------------------------------------------------- reading Jinja


@dataclass(frozen=True)
class Usage:
    """What one template string uses: free variables and ``name.attribute`` accesses on them."""

    variables: frozenset[str]
    attributes: frozenset[tuple[str, str]]


def usage(source: str, expression: bool = False) -> Usage | None:
    """Variables and attributes a template string uses; None when it does not parse (the loader reports it)."""
    text = "{{ " + source + " }}" if expression else source
    if not expression and "{{" not in text and "{%" not in text:
        return Usage(frozenset(), frozenset())
    try:
        tree = ENV.parse(text)
    except jinja2.TemplateSyntaxError:
        return None
    free = frozenset(meta.find_undeclared_variables(tree))
    attributes = set()
    methods = {id(call.node) for call in tree.find_all(nodes.Call) if isinstance(call.node, nodes.Getattr)}
    for call in tree.find_all(nodes.Call):
        # record.get('tag') reads the field 'tag' (a mapping method, not a field named 'get')
        func = call.node
        if (
            isinstance(func, nodes.Getattr)
            and func.attr == "get"
            and isinstance(func.node, nodes.Name)
            and func.node.name in free
            and call.args
            and isinstance(call.args[0], nodes.Const)
            and isinstance(call.args[0].value, str)
        ):
            attributes.add((func.node.name, call.args[0].value))
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        target = getattr(node, "node", None)
        if isinstance(target, nodes.Name) and target.name in free:
            if isinstance(node, nodes.Getattr):
                if id(node) not in methods:
                    attributes.add((target.name, node.attr))
            elif (
                isinstance(node, nodes.Getitem)
                and isinstance(node.arg, nodes.Const)
                and isinstance(node.arg.value, str)
            ):
                attributes.add((target.name, node.arg.value))
    return Usage(free, frozenset(attributes))


# ---------------------------------------------------------------- the checks


class Checker:
    """Deeper checks of one loaded connection; each finding points at a file, line and field."""

    def __init__(self, connection: Connection) -> None:
        from connector.plugin import ENGINE_SETTINGS
        from connector.target import TARGET_SETTINGS

        self.connection = connection
        self.findings: list[Finding] = []
        self.conn_file = connection.dir / "connection.yaml"
        self.conn_doc = load_yaml(self.conn_file)
        names = [s.name for s in connection.settings]
        self.settings = set(names)
        self.tap_settings = self.settings | {s.name for s in ENGINE_SETTINGS}
        self.target_settings = self.tap_settings | {s.name for s in TARGET_SETTINGS}
        self.duplicate_settings = {n for n in names if names.count(n) > 1}
        self._checked_schemas: set[Path] = set()

    def report(
        self, file: Path | str, doc: Any, path: list[Any], message: str, warning: bool = False
    ) -> None:
        self.findings.append(Finding(str(file), line_of(doc, path), field_name(path), message, warning))

    # -- connection.yaml

    def check_connection(self) -> None:
        doc, file = self.conn_doc, self.conn_file
        for index, name in enumerate(s.get("name") for s in doc.get("settings", [])):
            if name in self.duplicate_settings:
                self.report(file, doc, ["settings", index, "name"], f"setting {name!r} is defined twice")
        for index, setting in enumerate(doc.get("settings", [])):
            if setting.get("secret") and setting.get("default") not in (None, ""):
                self.report(
                    file,
                    doc,
                    ["settings", index, "default"],
                    "a secret setting should have no default (defaults are shown by --about)",
                    warning=True,
                )
        for index, method in enumerate(doc.get("auth", [])):
            if not isinstance(method, Mapping):
                continue
            for path, source in strings(dict(method), ["auth", index]):
                if (
                    path[-1] in ("type", "in", "method", "body_format", "token", "expires_in")
                    and path[2] != "login"
                ):
                    continue
                if path[-1] == "when":
                    self.check_template(
                        file,
                        doc,
                        path,
                        source.strip().removeprefix("{{").removesuffix("}}"),
                        CONNECTION_VARIABLES,
                        self.tap_settings & self.target_settings,
                        expression=True,
                    )
                else:
                    self.check_template(
                        file,
                        doc,
                        path,
                        source,
                        CONNECTION_VARIABLES,
                        self.tap_settings & self.target_settings,
                    )
        for path, source in strings({"base_url": doc.get("base_url"), "headers": doc.get("headers")}, []):
            self.check_template(
                file, doc, path, source, CONNECTION_VARIABLES, self.tap_settings & self.target_settings
            )
        self.check_base_url()
        for section, allowed, settings in (
            ("stream_defaults", STREAM_VARIABLES, self.tap_settings),
            ("sink_defaults", SINK_VARIABLES, self.target_settings),
        ):
            for path, source in strings({k: doc.get(section, {}).get(k) for k in REQUEST_FIELDS}, [section]):
                self.check_template(file, doc, path, source, allowed, settings)

    def check_base_url(self) -> None:
        source = str(self.conn_doc.get("base_url", ""))
        defaults = {s.name: s.default for s in self.connection.settings if s.default is not None}
        try:
            rendered = str(self.connection.base_url.render({"config": defaults}))
        except Exception:  # noqa: BLE001 - needs a setting without a default: checked at run time
            return
        try:
            Origin.parse(rendered)
        except Exception as exc:  # noqa: BLE001 - UnsafeRequestError, with its own words
            where = "" if rendered == source else f" (with the settings' defaults it renders {rendered!r})"
            self.report(self.conn_file, self.conn_doc, ["base_url"], f"{exc}{where}")

    # -- template strings

    def check_template(
        self,
        file: Path | str,
        doc: Any,
        path: list[Any],
        source: str,
        allowed: frozenset[str],
        settings: set[str],
        schema: dict | None = None,
        parent_fields: set[str] | None = None,
        expression: bool = False,
    ) -> Usage | None:
        used = usage(source, expression)
        if used is None:
            return None
        for name in sorted(used.variables - allowed):
            hint = (
                " (set `parent:` to the parent stream)"
                if name == "parent" and "record" not in allowed
                else ""
            )
            self.report(
                file,
                doc,
                path,
                f"unknown variable {name!r}: these templates see {', '.join(sorted(allowed))}{hint}",
            )
        for name, attr in sorted(used.attributes):
            if name == "config" and attr not in settings:
                self.report(
                    file,
                    doc,
                    path,
                    f"config.{attr} is not a setting of {self.connection.name} "
                    f"(settings: {', '.join(sorted(self.settings))})",
                )
            elif name == "record" and schema and attr not in schema.get("properties", {}):
                self.report(file, doc, path, f"record.{attr} is not a property of the record schema")
            elif name == "parent" and parent_fields is not None and attr not in parent_fields:
                self.report(
                    file,
                    doc,
                    path,
                    f"parent.{attr} is not passed to the child: a parent passes "
                    f"{', '.join(sorted(parent_fields))} (set parent_fields)",
                )
        return used

    def check_url(self, file: Path, doc: Any, path: list[Any], source: str) -> None:
        if source.startswith("//"):
            self.report(file, doc, path, "must be a path on the connection's host, not //host/...")
        elif source.startswith("{{") or source.startswith("{%"):
            used = usage(source)
            if used is not None and "{{" in source and not _starts_with_path_filter(source):
                self.report(
                    file,
                    doc,
                    path,
                    "a value at the start of the url is escaped as one segment and "
                    "cannot make a path: start with '/' or filter it with |path",
                )
        if "://" in source.split("?", 1)[0]:
            self.report(
                file,
                doc,
                path,
                "must be a path joined to the base URL, not a full URL: requests "
                "never leave the connection's host",
            )
        if "?" in source:
            self.report(
                file, doc, path, "put query parameters in `params` (they are encoded there)", warning=True
            )

    # -- record schemas

    def check_record_schema(
        self, file: Path, doc: Any, schema: dict | None, schema_file: Path | None
    ) -> None:
        if not schema or schema_file is None or schema_file in self._checked_schemas:
            return
        self._checked_schemas.add(schema_file)
        try:
            jsonschema.Draft202012Validator.check_schema(schema)
        except jsonschema.SchemaError as exc:
            where = "/".join(map(str, exc.absolute_path)) or "(root)"
            self.report(
                file,
                doc,
                ["schema"],
                f"{schema_file.name} is not a valid JSON Schema at {where}: {exc.message}",
            )

    # -- streams

    def check_stream(self, stream: StreamTemplate) -> None:
        file, doc = stream.file, load_yaml(stream.file)
        properties = stream.schema.get("properties", {})
        self.check_record_schema(file, doc, stream.schema, stream.schema_file)
        parent_fields = None
        if stream.parent and stream.parent in self.connection.streams:
            parent = self.connection.streams[stream.parent]
            parent_fields = set(stream.parent_fields or parent.primary_key)
            parent_props = parent.schema.get("properties", {})
            for index, name in enumerate(stream.parent_fields):
                if parent_props and name not in parent_props:
                    self.report(
                        file,
                        doc,
                        ["parent_fields", index],
                        f"{name!r} is not a property of the parent stream {parent.name}",
                    )
        allowed = STREAM_VARIABLES if stream.parent else STREAM_VARIABLES - {"parent"}
        for field_key in REQUEST_FIELDS:
            if field_key in doc:
                for path, source in strings(doc[field_key], [field_key]):
                    self.check_template(
                        file, doc, path, source, allowed, self.tap_settings, parent_fields=parent_fields
                    )
        self.check_rules(file, doc)
        for index, step in enumerate(doc.get("transform") or []):
            if not isinstance(step, Mapping):
                continue
            record_scope = allowed | {"record"}
            if step.get("type") == "add_fields" and isinstance(step.get("fields"), Mapping):
                for name in step["fields"]:
                    if properties and str(name).split(".")[0] not in properties:
                        self.report(
                            file,
                            doc,
                            ["transform", index, "fields", name],
                            f"{str(name).split('.')[0]!r} is not a property of {stream.schema_file.name}: "
                            "records are written with the properties their schema declares, so it would be dropped",
                            warning=True,
                        )
                for path, source in strings(step["fields"], ["transform", index, "fields"]):
                    self.check_template(
                        file, doc, path, source, record_scope, self.tap_settings, parent_fields=parent_fields
                    )
            if step.get("type") == "keep" and isinstance(step.get("when"), str):
                self.check_condition(
                    file, doc, ["transform", index, "when"], step["when"], record_scope, parent_fields
                )
        if "url" in doc:
            self.check_url(file, doc, ["url"], str(doc["url"]))
        if stream.incremental and not stream.replication_key:
            self.report(file, doc, ["incremental"], "has no effect without a replication_key")
        key = stream.replication_key
        if key and key in properties:
            declared = properties[key].get("type")
            types = {declared} if isinstance(declared, str) else set(declared or [])
            if types and not types & {"string", "integer", "number"}:
                self.report(
                    file,
                    doc,
                    ["replication_key"],
                    f"{key!r} should be a timestamp or a number (its schema type is {sorted(types)})",
                    warning=True,
                )
        self.check_pagination(file, doc, stream)

    def check_condition(
        self,
        file: Path,
        doc: Any,
        path: list[Any],
        source: str,
        allowed: frozenset[str],
        parent_fields: set[str] | None = None,
    ) -> None:
        """A condition (bare Jinja expression, or one inside ``{{ }}``) over the variables it is given."""
        text = source.strip()
        if text.startswith("{{") and text.endswith("}}"):
            text = text[2:-2]
        self.check_template(
            file,
            doc,
            path,
            text,
            allowed,
            self.tap_settings | self.target_settings,
            parent_fields=parent_fields,
            expression=True,
        )

    def check_rules(self, file: Path, doc: Any) -> None:
        """Response rules see the answer (response, status, headers) and config."""
        scope = frozenset({"response", "status", "headers", "config"})
        for index, rule in enumerate(doc.get("on_response") or []):
            if not isinstance(rule, Mapping):
                continue
            if isinstance(rule.get("when"), str):
                self.check_condition(file, doc, ["on_response", index, "when"], rule["when"], scope)
            if isinstance(rule.get("message"), str):
                self.check_template(
                    file,
                    doc,
                    ["on_response", index, "message"],
                    rule["message"],
                    scope,
                    self.tap_settings | self.target_settings,
                )

    def check_pagination(self, file: Path, doc: Any, stream: StreamTemplate) -> None:
        """What the pagination model cannot know alone: the stream it pages (its kind's fields are checked by the loader)."""
        own = doc.get("pagination")
        if not isinstance(own, Mapping):
            return
        spec = stream.pagination
        if spec.restart_after and not (stream.replication_key and stream.incremental):
            self.report(
                file,
                doc,
                ["pagination", "restart_after"],
                "needs a replication_key and an incremental block to restart from",
                warning=True,
            )
        if spec.restart_after and stream.incremental and not stream.incremental.checkpoints_mid_stream:
            self.report(
                file,
                doc,
                ["pagination", "restart_after"],
                "restarting from the last value read needs incremental.order: ascending (and no window)",
            )
        from_record = getattr(spec, "from_record", None)
        if (
            from_record
            and stream.schema.get("properties")
            and from_record.split(".")[0] not in stream.schema["properties"]
        ):
            self.report(
                file,
                doc,
                ["pagination", "from_record"],
                f"{from_record!r} is not a property of {stream.schema_file.name}",
            )
        for name in ("stop_when",):
            source = own.get(name)
            if isinstance(source, str):
                self.check_template(
                    file,
                    doc,
                    ["pagination", name],
                    source.strip().removeprefix("{{").removesuffix("}}"),
                    STREAM_VARIABLES | {"response", "headers", "records"},
                    self.tap_settings,
                    expression=True,
                )

    # -- sinks

    def check_sink(self, sink: SinkTemplate) -> None:
        file, doc = sink.file, load_yaml(sink.file)
        schema_file = self.connection.specs_dir / doc["schema"] if doc.get("schema") else None
        self.check_record_schema(file, doc, sink.schema, schema_file)
        schema = sink.schema
        if schema and sink.write_properties:  # what a record may carry: the schema's and the API's own
            schema = {**schema, "properties": {**schema.get("properties", {}), **sink.write_properties}}
        properties = (schema or {}).get("properties", {})
        self.check_rules(file, doc)
        item = (doc.get("batch") or {}).get("item")
        if item is not None:
            for path, source in strings(item, ["batch", "item"]):
                self.check_template(
                    file,
                    doc,
                    path,
                    source,
                    frozenset({"config", "record", "stream"}),
                    self.target_settings,
                    schema,
                )
        if schema:
            for index, name in enumerate(doc.get("exclude", [])):
                if name not in properties:
                    self.report(
                        file, doc, ["exclude", index], f"{name!r} is not a property of {doc['schema']}"
                    )
            for index, name in enumerate((doc.get("batch") or {}).get("group_by", [])):
                if name not in properties:
                    self.report(
                        file,
                        doc,
                        ["batch", "group_by", index],
                        f"{name!r} is not a property of {doc['schema']}",
                    )
        if sink.kind == "request":
            self.check_request_sink(sink, file, doc, schema)
        else:
            self.check_job(file, doc)

    def check_request_sink(self, sink: SinkTemplate, file: Path, doc: Any, schema: dict | None) -> None:
        used_by: dict[str, Usage] = {}
        for key in REQUEST_FIELDS:
            if key in doc:
                for path, source in strings(doc[key], [key]):
                    found = self.check_template(
                        file, doc, path, source, SINK_VARIABLES, self.target_settings, schema
                    )
                    if found is not None:
                        used_by[field_name(path)] = found
        if "url" in doc:
            url = str(doc["url"])
            self.check_url(file, doc, ["url"], url)
            in_url = sorted(
                attr
                for name, attr in used_by.get("url", Usage(frozenset(), frozenset())).attributes
                if name == "record"
            )
            missing = [attr for attr in in_url if attr != sink.id_field]
            if missing and not sink.id_field:
                self.report(
                    file,
                    doc,
                    ["url"],
                    f"uses record.{missing[0]} but the sink has no id_field: set "
                    f"`id_field: {missing[0]}` so a record without it is rejected, "
                    "not sent to a collection URL",
                    warning=True,
                )
        body_uses: set[str] = set()
        for name, found in used_by.items():
            if name.startswith("body"):
                body_uses |= found.variables
        if (
            sink.batch_size > 1
            and doc.get("body") not in (None, "record", "none")
            and "records" not in body_uses
        ):
            self.report(
                file,
                doc,
                ["body"],
                f"batch.size is {sink.batch_size} but the body does not use `records`: "
                "each request would carry the first record only",
            )

    def check_job(self, file: Path, doc: Any) -> None:
        for step_name, step in (doc.get("job") or {}).items():
            if not isinstance(step, Mapping):
                continue
            for key in REQUEST_FIELDS:
                if key in step:
                    for path, source in strings(step[key], ["job", step_name, key]):
                        self.check_template(file, doc, path, source, JOB_VARIABLES, self.target_settings)
            if "url" in step:
                self.check_url(file, doc, ["job", step_name, "url"], str(step["url"]))
            if "done" in step:
                self.check_template(
                    file,
                    doc,
                    ["job", step_name, "done"],
                    str(step["done"]),
                    DONE_VARIABLES,
                    self.target_settings,
                    expression=True,
                )

    def run(self) -> list[Finding]:
        self.check_connection()
        for stream in self.connection.streams.values():
            self.check_stream(stream)
        for sink in self.connection.sinks.values():
            self.check_sink(sink)
        return self.findings


def _starts_with_path_filter(source: str) -> bool:
    """``{{ x | path }}`` at the start of a url: the one way a rendered value may span segments."""
    try:
        tree = ENV.parse(source)
    except jinja2.TemplateSyntaxError:
        return True  # the loader reports syntax errors
    first = tree.body[0] if tree.body else None
    if not isinstance(first, nodes.Output) or not first.nodes:
        return False
    head = first.nodes[0]
    return isinstance(head, nodes.Filter) and head.name == "path"


def _sort_key(finding: Finding) -> tuple:
    return (finding.file, finding.line or 0, finding.field, finding.message)


def validate_folder(folder: Path) -> Report:
    """Load and check one connection folder."""
    name = folder.name
    try:
        connection = load_connection(folder)
    except TemplateErrors as exc:
        report = Report(name, loaded=False)
        report.findings = [Finding(e.file, e.line, e.field, e.message) for e in exc.errors]
        return report
    except TemplateError as exc:
        return Report(name, loaded=False, findings=[Finding(exc.file, exc.line, exc.field, exc.message)])
    report = Report(connection.name, len(connection.streams), len(connection.sinks))
    report.findings = sorted(set(Checker(connection).run()), key=_sort_key)
    return report


def targets(paths: list[str]) -> list[tuple[Path, Path | None]]:
    """(connection folder, only this file or None) for each PATH; every bundled connection by default."""
    if not paths:
        return [(connection_dir(name), None) for name in available_connections()]
    found: list[tuple[Path, Path | None]] = []
    for spec in paths:
        path = Path(spec)
        if path.is_file() and path.suffix in (".yaml", ".yml") and path.name != "connection.yaml":
            folder = path.resolve().parent.parent
            if not (folder / "connection.yaml").is_file():
                raise CommandError(
                    f"{spec} is not inside a connection folder (streams/ or sinks/ next to a connection.yaml)"
                )
            found.append((folder, path.resolve()))
        elif not path.exists() and "/" in spec:
            raise CommandError(f"{spec} does not exist")
        else:
            found.append((connection_folder(spec), None))
    return found


def main(paths: list[str], strict: bool = False) -> int:
    failed = False
    for folder, only in targets(paths):
        report = validate_folder(folder)
        if only is not None:
            report.findings = [f for f in report.findings if Path(f.file).resolve() == only]
        for finding in report.findings:
            print(finding)
        print(report.summary(strict))
        failed |= bool(report.errors) or (strict and bool(report.warnings))
    return 1 if failed else 0
