"""Loading templates: YAML -> validated against specs/template.schema.json -> typed, compiled objects.

Errors name the file, the line and the field: ``sinks/update_account.yaml:7: batch.size: 0 is less
than the minimum of 1``. Every problem in a connection is collected before anything is raised.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
import jsonschema
import yaml

from connector import bundle, kinds
from connector.auth import Auth, AuthBase
from connector.choices import Choices
from connector.errors import TemplateError, TemplateErrors
from connector.incremental import Incremental
from connector.pagination import NoPagination, Pagination, PaginationBase
from connector.render import (
    Compiled,
    CompiledValue,
    compile_expression,
    compile_mapping,
    compile_text,
    compile_url,
)
from connector.responses import ResponseRule
from connector.results import ItemResults
from connector.transform import Transformation

TEMPLATES_ROOT = bundle.root("templates")
SPECS_ROOT = bundle.root("specs")
TEMPLATE_SCHEMA = bundle.template_schema()

HTTP_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})


@dataclass
class RequestTemplate:
    """The request part shared by streams, sinks and job steps, compiled once."""

    method: Compiled
    url: Compiled
    params: dict[str, CompiledValue]
    headers: dict[str, CompiledValue]
    body: CompiledValue | str | None  # "record" = the record minus excluded attributes
    body_format: str = "json"

    @property
    def variables(self) -> frozenset[str]:
        names = set(self.method.variables) | set(self.url.variables)
        for value in (*self.params.values(), *self.headers.values()):
            names |= value.variables
        if isinstance(self.body, CompiledValue):
            names |= self.body.variables
        elif self.body == "record":
            names.add("record")
        return frozenset(names)


@dataclass
class Partitions:
    """Read a stream once per value of a config list (or once per ``batch`` of values, as one list)."""

    values: CompiledValue
    batch: int | None = None  # values per read, passed as one list (an API filter taking many ids)
    key: str | None = None  # the record field carrying the value: values no record answered for are named


@dataclass(frozen=True)
class StreamFilter:
    """A query parameter a user may pass to a stream through the tap's ``stream_params`` setting."""

    name: str  # what the user writes
    param: str  # what is sent: ``ids[]`` for a filter declared as a list (``name[]``)
    description: str = ""


@dataclass
class StreamTemplate:
    name: str
    file: Path
    description: str
    request: RequestTemplate
    primary_key: list[str]
    schema: dict[str, Any]
    schema_file: Path
    replication_key: str | None = None
    incremental: Incremental | None = None
    records: str = ""
    pagination: PaginationBase = field(default_factory=NoPagination)
    parent: str | None = None
    parent_fields: list[str] = field(default_factory=list)
    partitions: Partitions | None = None
    filters: dict[str, StreamFilter] = field(default_factory=dict)  # by the name users write
    values: Choices | None = None  # the fields `connector values` lists, when not the defaults
    transform: list[Any] = field(default_factory=list)
    on_response: list[ResponseRule] = field(default_factory=list)
    requests_per_second: float | None = None
    rate_shared: str | None = None  # the name of a limit several templates count against together
    response_format: str = "json"
    raw: Mapping[str, Any] = field(default_factory=dict)

    @property
    def incremental_param(self) -> str | None:
        return self.incremental.param if self.incremental else None

    @property
    def is_incremental(self) -> bool:
        return bool(self.replication_key and self.incremental)


@dataclass
class JobStep:
    request: RequestTemplate
    id: str | None = None
    max_records: int | None = None
    done: Compiled | None = None
    interval_seconds: float = 1.0
    timeout_seconds: float = 3600.0
    records: str = "data"
    pagination: PaginationBase = field(default_factory=NoPagination)
    record: str = "record"
    error: str = "error"
    failed_count: str | None = None


@dataclass
class JobTemplate:
    create: JobStep
    upload: JobStep
    poll: JobStep
    start: JobStep | None = None
    failures: JobStep | None = None


@dataclass
class SinkTemplate:
    name: str
    file: Path
    description: str
    kind: str
    request: RequestTemplate | None
    id_field: str | None
    exclude: frozenset[str]
    batch_size: int
    group_by: list[str]
    accept: frozenset[int]
    concurrency: int
    schema: dict[str, Any] | None
    max_records: int | None = None
    job: JobTemplate | None = None
    results: ItemResults | None = None
    on_response: list[ResponseRule] = field(default_factory=list)
    requests_per_second: float | None = None
    rate_shared: str | None = None  # the name of a limit several templates count against together
    batch_item: CompiledValue | None = None  # what each record becomes inside a batched body's records
    raw: Mapping[str, Any] = field(default_factory=dict)
    unknown_properties: str = "drop"  # "pass": send properties the record schema does not declare
    # Write-only parameters the API takes beyond the record schema: name -> JSON Schema.
    write_properties: dict[str, Any] = field(default_factory=dict)
    id_normalize: tuple[str, ...] = ()  # how the API compares id_field values (casefold, trim)


@dataclass(frozen=True)
class Setting:
    name: str
    type: str = "string"
    description: str = ""
    default: Any = None
    secret: bool = False
    required: bool = False
    only: str | None = None  # "tap" or "target": offered by that plugin alone (start_date reads)


@dataclass(frozen=True)
class RateLimit:
    budget: int | None = None
    window_seconds: float = 60.0
    cost_header: str | None = None
    remaining_header: str | None = None
    reserve: int = 0


@dataclass(frozen=True)
class Retry:
    max_attempts: int = 8
    backoff_seconds: float = 0.5
    max_backoff_seconds: float = 60.0
    statuses: frozenset[int] = frozenset({429, 500, 502, 503, 504})
    timeout_seconds: float = 60.0


@dataclass
class Connection:
    name: str
    dir: Path
    description: str
    base_url: Compiled
    settings: list[Setting]
    auth: list[AuthBase]
    headers: dict[str, CompiledValue]
    rate_limit: RateLimit
    retry: Retry
    error_paths: list[str]
    streams: dict[str, StreamTemplate]
    sinks: dict[str, SinkTemplate]
    specs_dir: Path

    @property
    def secret_settings(self) -> list[str]:
        return [s.name for s in self.settings if s.secret]


# ---------------------------------------------------------------- YAML with line numbers


class _LineLoader(yaml.SafeLoader):
    """A safe loader that remembers the line of every mapping key and value."""


# libyaml's parser (when PyYAML was built with it) reads a connection's templates ten times faster: a tenth of
# every run's start-up. Its nodes carry the same lines; a document it refuses is read again by the Python
# parser, whose messages are the ones users see.
_FastLineLoader: Any = (
    type("_FastLineLoader", (yaml.CSafeLoader,), {})
    if getattr(yaml, "__with_libyaml__", False)
    else _LineLoader
)


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> dict:
    mapping = LineDict()
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        mapping[key] = loader.construct_object(value_node, deep=True)
        mapping.lines[key] = key_node.start_mark.line + 1
    mapping.line = node.start_mark.line + 1
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_FastLineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


class LineDict(dict):
    """A dict that knows the YAML line of each of its keys."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lines: dict[Any, int] = {}
        self.line = 1


def load_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TemplateError(str(path), "", f"cannot read: {exc.strerror}") from exc
    try:
        return yaml.load(text, Loader=_FastLineLoader)  # noqa: S506 - a safe loader subclass
    except yaml.YAMLError:
        pass
    try:
        return yaml.load(text, Loader=_LineLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        raise TemplateError(str(path), "", f"invalid YAML: {exc.problem}", line) from exc
    except yaml.YAMLError as exc:
        raise TemplateError(str(path), "", f"invalid YAML: {exc}") from exc


def line_of(document: Any, path: Iterable[Any]) -> int | None:
    """The YAML line of a field (documents loaded here remember the line of every key)."""
    line = getattr(document, "line", None)
    node = document
    for key in path:
        if isinstance(node, Mapping) and key in node:
            line = getattr(node, "lines", {}).get(key, line)
            node = node[key]
        elif isinstance(node, list) and isinstance(key, int) and key < len(node):
            node = node[key]
            line = getattr(node, "line", line)
        else:
            break
    return line


# ---------------------------------------------------------------- schema validation


@cache
def _validator(kind: str) -> jsonschema.Draft202012Validator:
    schema = json.loads(TEMPLATE_SCHEMA.read_text())
    root = {**schema, "$ref": f"#/$defs/{kind}"}
    return jsonschema.Draft202012Validator(root)


@cache
def _schema_document() -> dict[str, Any]:
    return json.loads(TEMPLATE_SCHEMA.read_text())


def _concept_of(schema: Any) -> Any:
    from connector.template_schema import CONCEPTS

    defs = _schema_document()["$defs"]
    for name, model in CONCEPTS.items():
        if defs.get(name) == schema:
            return model
    return None


def field_name(path: Iterable[Any]) -> str:
    name = ""
    for part in path:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return name


def schema_errors(document: Any, kind: str, file: str) -> list[TemplateError]:
    """Validate one document against the template format; one error per problem."""
    if not isinstance(document, dict):
        return [TemplateError(file, "", f"must be a mapping of fields, got {type(document).__name__}")]
    errors = []
    for err in sorted(_validator(kind).iter_errors(document), key=lambda e: list(map(str, e.absolute_path))):
        path = list(err.absolute_path)
        message = err.message
        concept = _concept_of(err.schema) if err.validator in ("anyOf", "oneOf") else None
        if concept is not None:
            # A block of one of the concepts' kinds: its model says precisely what is wrong.
            try:
                kinds.convert(err.instance, concept, file, path, document, line_of, field_name)
            except TemplateError as exc:
                errors.append(exc)
                continue
        if err.validator == "additionalProperties":
            unknown = sorted(set(err.instance) - set(err.schema.get("properties", {})))
            known = ", ".join(sorted(err.schema.get("properties", {})))
            message = f"unknown field{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} (known: {known})"
            if unknown and len(unknown) == 1:
                path = [*path, unknown[0]]
        errors.append(TemplateError(file, field_name(path), message, line_of(document, path)))
    return errors


# ---------------------------------------------------------------- compiling


class _Compiler:
    """Compiles one document's fields, collecting errors with their field names and lines."""

    def __init__(self, document: Any, file: str) -> None:
        self.document = document
        self.file = file
        self.errors: list[TemplateError] = []

    def error(self, path: list[Any], message: str) -> None:
        self.errors.append(TemplateError(self.file, field_name(path), message, line_of(self.document, path)))

    def text(self, path: list[Any], source: Any, url: bool = False) -> Compiled:
        try:
            return (compile_url if url else compile_text)(str(source))
        except jinja2.TemplateSyntaxError as exc:
            self.error(path, f"Jinja syntax error: {exc.message}")
        return compile_text("")

    def value(self, path: list[Any], source: Any) -> CompiledValue:
        try:
            return CompiledValue(source)
        except jinja2.TemplateSyntaxError as exc:
            self._syntax_error(path, source, exc)
        return CompiledValue(None)

    def mapping(self, path: list[Any], source: Mapping | None) -> dict[str, CompiledValue]:
        try:
            return compile_mapping(source)
        except jinja2.TemplateSyntaxError as exc:
            self._syntax_error(path, source, exc)
        return {}

    def _syntax_error(self, path: list[Any], source: Any, exc: jinja2.TemplateSyntaxError) -> None:
        """Name the leaf that does not compile (``body.name``, at its line), not the whole block."""
        for leaf_path, leaf in strings(source, path):
            try:
                compile_text(leaf)
            except jinja2.TemplateSyntaxError as leaf_exc:
                self.error(leaf_path, f"Jinja syntax error: {leaf_exc.message}")
                return
        self.error(path, f"Jinja syntax error: {exc.message}")

    def expression(self, path: list[Any], source: str) -> Compiled | None:
        try:
            return compile_expression(source)
        except jinja2.TemplateSyntaxError as exc:
            self.error(path, f"Jinja syntax error: {exc.message}")
        return None

    def request(
        self, doc: Mapping, path: list[Any], default_method: str, default_body: Any
    ) -> RequestTemplate:
        method = str(doc.get("method", default_method))
        if "{{" not in method and method.upper() not in HTTP_METHODS:
            self.error(
                [*path, "method"], f"must be one of {', '.join(sorted(HTTP_METHODS))} (got {method!r})"
            )
        url = str(doc.get("url", ""))
        compact = url.replace(" ", "")
        if url.startswith("//") or not (url.startswith("/") or (url.startswith("{{") and "|path" in compact)):
            self.error(
                [*path, "url"],
                "must be a path starting with '/' (or a {{ value | path }}), joined to the "
                f"base URL (got {url!r})",
            )
        body_source = doc.get("body", default_body)
        body: CompiledValue | str | None
        if body_source in ("record", None, "none"):
            body = None if body_source in (None, "none") else "record"
        else:
            body = self.value([*path, "body"], body_source)
        return RequestTemplate(
            method=self.text([*path, "method"], method.upper() if "{{" not in method else method),
            url=self.text([*path, "url"], url, url=True),
            params=self.mapping([*path, "params"], doc.get("params")),
            headers=self.mapping([*path, "headers"], doc.get("headers")),
            body=body,
            body_format=doc.get("body_format", "json"),
        )


def strings(value: Any, path: list[Any]) -> Iterable[tuple[list[Any], str]]:
    """Every string inside a YAML value, with its path (for line numbers)."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from strings(item, [*path, key])
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from strings(item, [*path, index])


def _merge(defaults: Mapping | None, doc: Mapping) -> dict:
    """Template fields override connection defaults; params and headers merge key by key."""
    merged = dict(defaults or {})
    for key, value in doc.items():
        if (
            key in ("params", "headers")
            and isinstance(value, Mapping)
            and isinstance(merged.get(key), Mapping)
        ):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def _model(c: _Compiler, value: Any, model: Any, path: list[Any]) -> Any:
    """Parse one block into its typed model; a problem is an error at its file:line, and None."""
    try:
        return kinds.convert(value, model, c.file, path, c.document, line_of, field_name)
    except TemplateError as exc:
        c.errors.append(exc)
        return None


def _pagination(c: _Compiler, doc: Mapping | None, path: list[Any]) -> PaginationBase:
    if not doc:
        return NoPagination()
    return _model(c, dict(doc), Pagination, path) or NoPagination()


# Forms the format had before, and what replaced them: the loader names the new one.
_RENAMED = {
    "incremental_param": "incremental: {param: ...} (the incremental block holds the bookmark's parameter, "
    "format, order, lookback and windows)",
}


def _stream_parts(c: _Compiler, merged: Mapping) -> dict[str, Any]:
    """The concept blocks of a stream: incremental, transformations, response rules, partitions, rate."""
    incremental = merged.get("incremental")
    parts: dict[str, Any] = {
        "incremental": _model(c, incremental, Incremental, ["incremental"])
        if incremental is not None
        else None,
        "transform": [
            parsed
            for index, item in enumerate(merged.get("transform") or [])
            if (parsed := _model(c, item, Transformation, ["transform", index])) is not None
        ],
        "on_response": _rules(c, merged),
        "values": _model(c, merged["values"], Choices, ["values"])
        if merged.get("values") is not None
        else None,
        "requests_per_second": (merged.get("rate_limit") or {}).get("requests_per_second"),
        "rate_shared": (merged.get("rate_limit") or {}).get("shared"),
        "response_format": merged.get("response_format", "json"),
    }
    partitions = merged.get("partitions")
    if partitions is not None:
        source = partitions.get("values") if isinstance(partitions, Mapping) else None
        if not isinstance(source, (str, list)):
            c.error(
                ["partitions"], "needs 'values': Jinja rendering to a list, e.g. '{{ config.account_ids }}'"
            )
        else:
            parts["partitions"] = Partitions(
                values=c.value(["partitions", "values"], source),
                batch=partitions.get("batch"),
                key=partitions.get("key"),
            )
    if parts["incremental"] is not None:
        spec: Incremental = parts["incremental"]
        from connector.instants import valid_format

        if not valid_format(spec.format):
            c.error(
                ["incremental", "format"],
                f"unknown format {spec.format!r} (iso, epoch_seconds, epoch_ms, date or a strftime pattern with %)",
            )
    return parts


# The parameters a pagination kind sends itself.
_PAGING_FIELDS = ("page_param", "size_param", "offset_param", "param")


def _filters(
    c: _Compiler, merged: Mapping, pagination: PaginationBase, incremental: Incremental | None
) -> dict[str, StreamFilter]:
    """The stream's user filters. One the engine sends itself (paging, the bookmark, a fixed param) is
    refused: a user's value there would page wrong or move the bookmark past records never read."""
    params = merged.get("params")
    engine: dict[str, str] = {str(name): "params" for name in params} if isinstance(params, Mapping) else {}
    for attribute in _PAGING_FIELDS:
        if isinstance(value := getattr(pagination, attribute, None), str):
            engine[value] = f"pagination.{attribute}"
    if merged.get("replication_key") and incremental is not None:
        for attribute in ("param", "end_param"):
            if value := getattr(incremental, attribute, None):
                engine[value] = f"incremental.{attribute}"
    filters: dict[str, StreamFilter] = {}
    for index, item in enumerate(merged.get("filters") or []):
        entry = {"name": item} if isinstance(item, str) else dict(item)
        declared = str(entry["name"])
        name = declared.removesuffix("[]")
        if declared in engine or name in engine:
            c.error(
                ["filters", index],
                f"{declared!r} is a parameter the engine sends itself ({engine.get(declared) or engine[name]}): "
                "it cannot be a user filter",
            )
        elif name in filters:
            c.error(["filters", index], f"filter {name!r} is declared twice")
        filters[name] = StreamFilter(name, declared, str(entry.get("description") or ""))
    if filters and merged.get("parent") and merged.get("replication_key"):
        c.error(
            ["filters"],
            "an incremental child stream cannot take user filters (its bookmarks are kept per parent record)",
        )
    return filters


def _rules(c: _Compiler, merged: Mapping) -> list[ResponseRule]:
    return [
        rule
        for index, item in enumerate(merged.get("on_response") or [])
        if (rule := _model(c, item, ResponseRule, ["on_response", index])) is not None
    ]


def _load_record_schema(
    c: _Compiler, specs_dir: Path, name: str | None, path: list[Any]
) -> tuple[dict, Path]:
    file = specs_dir / (name or "")
    if not name:
        return {}, file
    try:
        schema = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        c.error(path, f"record schema {str(file)!r} does not exist")
        return {}, file
    except (OSError, json.JSONDecodeError) as exc:
        c.error(path, f"record schema {str(file)!r} is not valid JSON: {exc}")
        return {}, file
    if not isinstance(schema, dict) or "properties" not in schema:
        c.error(path, f"record schema {str(file)!r} must be an object schema with 'properties'")
        return {}, file
    return schema, file


def compile_stream(doc: Mapping, file: str, specs_dir: Path, defaults: Mapping | None) -> StreamTemplate:
    errors = [
        TemplateError(file, old, f"{old!r} is no longer a field: use {new}", line_of(doc, [old]))
        for old, new in _RENAMED.items()
        if isinstance(doc, Mapping) and old in doc
    ]
    errors += [e for e in schema_errors(doc, "stream", file) if e.field not in _RENAMED]
    if errors:
        raise TemplateErrors(errors)
    c = _Compiler(doc, file)
    merged = _merge(defaults, doc)
    schema, schema_file = _load_record_schema(
        c, specs_dir, merged.get("schema", f"{doc['name']}.json"), ["schema"]
    )
    properties = schema.get("properties", {})
    for key in merged.get("primary_key") or []:
        if properties and key not in properties:
            c.error(["primary_key"], f"{key!r} is not a property of {schema_file.name}")
    replication_key = merged.get("replication_key")
    if replication_key and properties and replication_key not in properties:
        c.error(["replication_key"], f"{replication_key!r} is not a property of {schema_file.name}")
    pagination = _pagination(c, merged.get("pagination"), ["pagination"])
    parts = _stream_parts(c, merged)
    parts["filters"] = _filters(c, merged, pagination, parts["incremental"])
    choices: Choices | None = parts["values"]
    for which in ("value", "label"):
        path = getattr(choices, which) if choices is not None else None
        if path and properties and path.split(".")[0] not in properties:
            c.error(["values", which], f"{path.split('.')[0]!r} is not a property of {schema_file.name}")
    stream = StreamTemplate(
        name=doc["name"],
        file=Path(file),
        description=merged.get("description", ""),
        request=c.request(merged, [], "GET", None),
        primary_key=list(merged.get("primary_key") or []),
        schema=schema,
        schema_file=schema_file,
        replication_key=replication_key,
        records=merged.get("records", ""),
        pagination=pagination,
        parent=merged.get("parent"),
        parent_fields=list(merged.get("parent_fields", [])),
        raw=doc,
        **parts,
    )
    if c.errors:
        raise TemplateErrors(c.errors)
    return stream


def _job_step(c: _Compiler, doc: Mapping, path: list[Any]) -> JobStep:
    step = JobStep(request=c.request(doc, path, "GET", None))
    for name in (
        "id",
        "max_records",
        "interval_seconds",
        "timeout_seconds",
        "records",
        "record",
        "error",
        "failed_count",
    ):
        if name in doc:
            setattr(step, name, doc[name])
    if "done" in doc:
        step.done = c.expression([*path, "done"], str(doc["done"]))
    step.pagination = _pagination(c, doc.get("pagination"), [*path, "pagination"])
    return step


def compile_sink(doc: Mapping, file: str, specs_dir: Path, defaults: Mapping | None) -> SinkTemplate:
    errors = schema_errors(doc, "sink", file)
    if errors:
        raise TemplateErrors(errors)
    c = _Compiler(doc, file)
    merged = _merge(defaults, doc)
    kind = merged.get("kind", "request")
    schema = None
    if merged.get("schema"):
        schema, _ = _load_record_schema(c, specs_dir, merged["schema"], ["schema"])
    batch = merged.get("batch") or {}
    request = None
    job = None
    if kind == "request":
        if "url" not in doc:
            c.error(["url"], "a request sink needs a 'url'")
        request = c.request(merged, [], "POST", "record")
        if request.body == "record" and batch.get("size", 1) > 1:
            c.error(["body"], "a batched sink (batch.size > 1) needs an explicit body using 'records'")
    else:
        steps = merged.get("job") or {}
        if not steps:
            c.error(["job"], "a bulk_job sink needs a 'job' with create, upload and poll steps")
        else:
            job = JobTemplate(
                create=_job_step(c, steps["create"], ["job", "create"]),
                upload=_job_step(c, steps["upload"], ["job", "upload"]),
                poll=_job_step(c, steps["poll"], ["job", "poll"]),
                start=_job_step(c, steps["start"], ["job", "start"]) if "start" in steps else None,
                failures=_job_step(c, steps["failures"], ["job", "failures"])
                if "failures" in steps
                else None,
            )
            if "done" not in steps["poll"]:  # (one that does not compile is reported as such)
                c.error(["job", "poll", "done"], "the poll step needs a 'done' expression")
    sink = SinkTemplate(
        name=doc["name"],
        file=Path(file),
        description=merged.get("description", ""),
        kind=kind,
        request=request,
        id_field=merged.get("id_field"),
        exclude=frozenset(merged.get("exclude", [])),
        batch_size=int(batch.get("size", 1)),
        group_by=list(batch.get("group_by", [])),
        batch_item=c.value(["batch", "item"], batch["item"]) if "item" in batch else None,
        accept=frozenset(merged.get("accept", [200, 201, 202, 204])),
        concurrency=int(merged.get("concurrency", 8)),
        schema=schema,
        max_records=batch.get("max_records"),
        job=job,
        results=_model(c, merged["results"], ItemResults, ["results"]) if merged.get("results") else None,
        on_response=_rules(c, merged),
        requests_per_second=(merged.get("rate_limit") or {}).get("requests_per_second"),
        rate_shared=(merged.get("rate_limit") or {}).get("shared"),
        raw=doc,
        unknown_properties=merged.get("unknown_properties", "drop"),
        write_properties=dict(merged.get("write_properties") or {}),
        id_normalize=tuple(merged.get("id_normalize") or ()),
    )
    if schema and sink.id_field and sink.id_field not in schema.get("properties", {}):
        c.error(["id_field"], f"{sink.id_field!r} is not a property of the record schema {merged['schema']}")
    if c.errors:
        raise TemplateErrors(c.errors)
    return sink


def _auth_methods(c: _Compiler, doc: Mapping) -> list[AuthBase]:
    """Auth methods in order; credentials are Jinja over config, ``when`` a condition over config."""
    settings = {str(s.get("name")) for s in doc.get("settings", []) if isinstance(s, Mapping)}
    methods = []
    for index, item in enumerate(doc.get("auth") or []):
        method = _model(c, item, Auth, ["auth", index])
        if method is None:
            continue
        if method.when is not None:
            compiled = c.expression(
                ["auth", index, "when"], method.when.strip().removeprefix("{{").removesuffix("}}")
            )
            if compiled is not None and not compiled.variables <= {"config"}:
                c.error(
                    ["auth", index, "when"],
                    f"a condition over config, e.g. 'config.{method.when.strip()}' (got {method.when!r})",
                )
        for name in method.credential_fields():
            value = getattr(method, name)
            if isinstance(value, str) and "{{" not in value and value in settings:
                c.error(
                    ["auth", index, name],
                    f"settings are referred to as Jinja: use '{{{{ config.{value} }}}}' (got {value!r})",
                )
            elif isinstance(value, str):
                c.text(["auth", index, name], value)
        methods.append(method)
    return methods


def _settings(doc: Mapping) -> list[Setting]:
    return [Setting(**dict(s)) for s in doc.get("settings", [])]


def load_connection(directory: str | Path) -> Connection:
    """Load, validate and compile a connection folder; raise every error found, all at once."""
    directory = Path(directory)
    conn_file = directory / "connection.yaml"
    errors: list[TemplateError] = []
    doc = load_yaml(conn_file)
    errors += schema_errors(doc, "connection", str(conn_file))
    if errors:
        raise TemplateErrors(errors)
    c = _Compiler(doc, str(conn_file))
    specs_dir = SPECS_ROOT / doc["name"] if (SPECS_ROOT / doc["name"]).is_dir() else directory / "specs"
    rate = doc.get("rate_limit", {})
    retry = dict(doc.get("retry", {}))
    if "statuses" in retry:
        retry["statuses"] = frozenset(retry["statuses"])
    connection = Connection(
        name=doc["name"],
        dir=directory,
        description=doc.get("description", ""),
        base_url=c.text(["base_url"], doc["base_url"]),
        settings=_settings(doc),
        auth=_auth_methods(c, doc),
        headers=c.mapping(["headers"], doc.get("headers")),
        rate_limit=RateLimit(**dict(rate)),
        retry=Retry(**retry),
        error_paths=[
            source
            for index, source in enumerate(
                doc.get("errors", {}).get("message", ["errors", "error", "message"])
            )
            if "{{" not in str(source) or c.text(["errors", "message", index], source) is not None
        ],
        streams={},
        sinks={},
        specs_dir=specs_dir,
    )
    errors += c.errors
    for kind, folder, compile_one, defaults in (
        ("stream", "streams", compile_stream, doc.get("stream_defaults")),
        ("sink", "sinks", compile_sink, doc.get("sink_defaults")),
    ):
        target: dict[str, Any] = connection.streams if kind == "stream" else connection.sinks
        for file in sorted((directory / folder).glob("*.yaml")):
            try:
                template_doc = load_yaml(file)
                template = compile_one(template_doc, str(file), specs_dir, defaults)
            except TemplateError as exc:
                errors.append(exc)
                continue
            except TemplateErrors as exc:
                errors += exc.errors
                continue
            if template.name in target:
                errors.append(TemplateError(str(file), "name", f"{kind} {template.name!r} is defined twice"))
            target[template.name] = template
    for stream in connection.streams.values():
        if stream.parent and stream.parent not in connection.streams:
            errors.append(
                TemplateError(
                    str(stream.file),
                    "parent",
                    f"unknown parent stream {stream.parent!r}",
                    line_of(stream.raw, ["parent"]),
                )
            )
    if errors:
        raise TemplateErrors(errors)
    return connection


def connection_dir(name: str) -> Path:
    """The folder of a bundled connection, e.g. ``templates/<name>``."""
    return TEMPLATES_ROOT / name


@cache
def load_bundled(name: str) -> Connection:
    return load_connection(connection_dir(name))


def available_connections() -> list[str]:
    return sorted(p.parent.name for p in TEMPLATES_ROOT.glob("*/connection.yaml"))


def default_connection() -> str:
    """The connection commands use when none is named: $CONNECTOR_CONNECTION, templates/DEFAULT, or the only one."""
    named = os.environ.get("CONNECTOR_CONNECTION")
    if named:
        return named
    marker = TEMPLATES_ROOT / "DEFAULT"
    if marker.is_file():
        return marker.read_text().strip()
    names = available_connections()
    return names[0] if len(names) == 1 else ""
