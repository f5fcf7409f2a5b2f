"""Rendering: templates compiled once, rendered per record inside a Jinja2 sandbox.

The security boundary lives here and nowhere else:

- an ImmutableSandboxedEnvironment with StrictUndefined and no globals: templates see only the variables the
  engine passes (config, record, records, parent, job, response, now);
- record values are data: they are passed as variables, never compiled as template source;
- a value rendered into a URL path is percent-encoded as exactly one segment, unless the template
  asks for a multi-segment path with ``|path`` (which is normalised and may not climb above root);
- a rendered path is joined to the connection's base URL and must stay on its origin.
"""

from __future__ import annotations

import datetime as dt
import posixpath
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

import jinja2
from jinja2 import meta
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedEnvironment

from connector.errors import RenderError, UnsafeRequestError
from connector.instants import format_instant

# Variables whose values change per run only; templates using nothing else are rendered once.
RUN_VARIABLES = frozenset({"config"})

_SINGLE_EXPRESSION = re.compile(r"^\{\{(?P<expr>(?:(?!\{\{|\}\}).)*)\}\}$", re.S)


class PathValue(str):
    """A value a template explicitly allows to span several path segments (``|path``)."""


def _to_text(value: Any) -> str:
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _finalize_text(value: Any) -> Any:
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    return value


def _path_filter(value: Any) -> PathValue:
    return PathValue(_to_text(value))


def encode_segment(value: Any) -> str:
    """Percent-encode a value as one URL path segment; ``.`` and ``..`` cannot act as dot segments."""
    if isinstance(value, PathValue):
        return _normalise_path_value(value)
    text = _to_text(value)
    encoded = quote(text, safe="")
    if encoded in (".", ".."):
        encoded = encoded.replace(".", "%2E")
    return encoded


def _normalise_path_value(value: str) -> str:
    stripped = value.split("?", 1)[0].split("#", 1)[0]
    parts = [p for p in stripped.split("/") if p not in ("", ".")]
    depth = 0
    for part in parts:
        depth += -1 if part == ".." else 1
        if depth < 0:
            raise UnsafeRequestError(f"path value {value!r} climbs above the root")
    normal = posixpath.normpath("/" + "/".join(parts))
    return "/".join(quote(seg, safe="@:+,;=-._~") for seg in normal.split("/"))


def _instant(value: Any, form: str) -> Any:
    """Template filters converting instants (None stays None, so optional bounds can be left out)."""
    if value is None:
        return None
    try:
        return format_instant(value, form)
    except ValueError as exc:
        raise RenderError(str(exc)) from None


def _digest(value: Any) -> str:
    """A stable SHA-256 of a value (its canonical JSON): idempotency keys that repeat for the same record."""
    import hashlib

    import orjson

    data = (
        value.encode()
        if isinstance(value, str)
        else orjson.dumps(value, option=orjson.OPT_SORT_KEYS, default=str)
    )
    return hashlib.sha256(data).hexdigest()


MAX_SIZE = 1_000_000
"""Most characters or items one template operation may produce, and the largest width or count it may ask for."""

# Filters and string methods whose arguments say how large their result is.
_SIZING = frozenset(
    {"center", "indent", "wordwrap", "format", "slice", "ljust", "rjust", "zfill", "expandtabs"}
)
_MAX_POWER_BITS = 64_000  # an integer of about 19,000 digits
_BIG_NUMBER = re.compile(r"\d{7,}")  # a width of a million or more in a format string


def _refuse_big(*values: Any) -> None:
    """Refuse a width or count beyond MAX_SIZE, as a number or inside a format string."""
    for value in values:
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_SIZE:
            raise SecurityError(f"{value} is larger than a template may ask for ({MAX_SIZE:,})")
        if isinstance(value, str) and ("%" in value or "{" in value) and _BIG_NUMBER.search(value):
            raise SecurityError(f"a format with a width beyond {MAX_SIZE:,} is not allowed")


def _refuse_large(result: Any) -> Any:
    if isinstance(result, (str, bytes, list, tuple)) and len(result) > MAX_SIZE:
        raise SecurityError(
            f"a value of {len(result):,} characters or items is more than a template may make"
        )
    return result


def _bounded_filter(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    """A filter that refuses huge widths and results, and that Jinja cannot run while compiling (it takes the
    context), so a template's constants are never computed when it loads."""
    passes = getattr(getattr(function, "jinja_pass_arg", None), "name", None)

    sizes = name in _SIZING

    @jinja2.pass_context
    def bounded(context: Any, value: Any, *args: Any, **kwargs: Any) -> Any:
        if sizes:
            _refuse_big(value if name == "format" else None, *args, *kwargs.values())
        if passes == "context":
            args = (context, value, *args)
        elif passes == "eval_context":
            args = (context.eval_ctx, value, *args)
        elif passes == "environment":
            args = (context.environment, value, *args)
        else:
            args = (value, *args)
        return _refuse_large(function(*args, **kwargs))

    return bounded


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """The sandbox, bounded: repeating, powering and formatting are checked before they run, and neither they
    nor filters are folded into constants when a template compiles (``{{ 'a' * 1000000000 }}`` would
    otherwise be computed as the connection loads)."""

    intercepted_binops = frozenset({"*", "**", "%"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            for sized, count in ((left, right), (right, left)):
                repeats = isinstance(sized, (str, bytes, list, tuple)) and isinstance(count, int)
                if repeats and len(sized) * count > MAX_SIZE:
                    raise SecurityError(f"repeating a value to more than {MAX_SIZE:,} is not allowed")
        elif operator == "**":
            integers = isinstance(left, int) and isinstance(right, int) and right > 0
            if integers and abs(left).bit_length() * right > _MAX_POWER_BITS:
                raise SecurityError(f"{left} ** {right} is too large for a template")
        elif operator == "%" and isinstance(left, str):
            _refuse_big(left)
        return _refuse_large(super().call_binop(context, operator, left, right))

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805 - as Jinja's
        if getattr(__obj, "__name__", None) in _SIZING and isinstance(getattr(__obj, "__self__", None), str):
            _refuse_big(*args, *kwargs.values())  # 'a'.center(10**9)
        return _refuse_large(super().call(__context, __obj, *args, **kwargs))

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """``'{:>1000000000}'.format(x)``: the format string is checked before it is used."""
        if isinstance(getattr(value, "__self__", None), str) and getattr(value, "__name__", "").startswith(
            "format"
        ):
            _refuse_big(value.__self__)
        return super().wrap_str_format(value)


def make_environment() -> SandboxedEnvironment:
    # Immutable: a template reads what it is given; it cannot change the config or a record for later ones.
    env = BoundedSandbox(
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        finalize=_finalize_text,
        keep_trailing_newline=False,
    )
    env.globals.clear()
    env.filters["path"] = _path_filter
    env.filters["epoch_seconds"] = lambda v: _instant(v, "epoch_seconds")
    env.filters["epoch_ms"] = lambda v: _instant(v, "epoch_ms")
    env.filters["iso_date"] = lambda v: _instant(v, "date")
    env.filters["isoformat"] = lambda v: _instant(v, "iso")
    env.filters["digest"] = _digest
    env.filters["strftime"] = lambda v, pattern: _instant(v, str(pattern) if "%" in str(pattern) else "iso")
    env.filters = {name: _bounded_filter(name, function) for name, function in env.filters.items()}
    return env


def make_url_environment() -> SandboxedEnvironment:
    env = make_environment()
    env.finalize = encode_segment
    return env


ENV = make_environment()
URL_ENV = make_url_environment()
CONDITION_ENV = make_environment()
CONDITION_ENV.undefined = jinja2.ChainableUndefined


class Compiled:
    """A compiled template value: a constant, a text template or a native expression."""

    __slots__ = ("source", "variables", "_render")

    def __init__(self, source: str, variables: frozenset[str], render: Callable[[Mapping[str, Any]], Any]):
        self.source = source
        self.variables = variables
        self._render = render

    @property
    def is_constant(self) -> bool:
        return not self.variables

    @property
    def per_run(self) -> bool:
        return self.variables <= RUN_VARIABLES

    def render(self, context: Mapping[str, Any]) -> Any:
        try:
            return self._render(context)
        except jinja2.UndefinedError as exc:
            raise RenderError(f"{self.source!r}: {exc.message}") from exc
        except jinja2.exceptions.SecurityError as exc:
            raise RenderError(f"{self.source!r}: not allowed: {exc}") from exc
        except UnsafeRequestError:
            raise
        except Exception as exc:
            raise RenderError(f"{self.source!r}: {type(exc).__name__}: {exc}") from exc


def _defined(value: Any) -> Any:
    if isinstance(value, jinja2.Undefined):
        value._fail_with_undefined_error()
    return value


def _variables(env: SandboxedEnvironment, source: str) -> frozenset[str]:
    return frozenset(meta.find_undeclared_variables(env.parse(source)))


def compile_text(source: str, env: SandboxedEnvironment = ENV) -> Compiled:
    """Compile a string; a lone ``{{ expr }}`` (outside URLs) keeps its native type."""
    if "{{" not in source and "{%" not in source:
        return Compiled(source, frozenset(), lambda _ctx: source)
    match = _SINGLE_EXPRESSION.match(source.strip())
    if match and env is ENV:
        expression = env.compile_expression(match["expr"], undefined_to_none=False)
        return Compiled(source, _variables(env, source), lambda ctx: _defined(expression(**ctx)))
    template = env.from_string(source)
    return Compiled(source, _variables(env, source), lambda ctx: template.render(ctx))


def compile_expression(source: str) -> Compiled:
    """Compile a bare Jinja expression (``response.data.state == 'done'``)."""
    expression = ENV.compile_expression(source, undefined_to_none=False)
    return Compiled(source, _variables(ENV, "{{ " + source + " }}"), lambda ctx: _defined(expression(**ctx)))


def compile_condition(source: str) -> Compiled:
    """Compile a condition: a bare Jinja expression, or one written inside ``{{ }}``.

    Conditions look at API answers and records whose fields may be absent: a missing field is undefined
    and false there (``response.error.code == 'x'`` is false when there is no error), not an error.
    """
    text = source.strip()
    match = _SINGLE_EXPRESSION.match(text)
    expression_source = match["expr"] if match else text
    expression = CONDITION_ENV.compile_expression(expression_source, undefined_to_none=True)
    return Compiled(
        source,
        _variables(CONDITION_ENV, "{{ " + expression_source + " }}"),
        lambda ctx: bool(expression(**ctx)),
    )


def compile_url(source: str) -> Compiled:
    return compile_text(source, URL_ENV)


def _constant(value: Any) -> Callable[[Mapping[str, Any]], Any]:
    return lambda _ctx: value


class CompiledValue:
    """A YAML structure (dict/list/scalars) whose strings are templates."""

    __slots__ = ("_render", "variables")

    def __init__(self, value: Any):
        self.variables: frozenset[str] = frozenset()
        self._render = self._build(value)

    def _build(self, value: Any) -> Callable[[Mapping[str, Any]], Any]:
        if isinstance(value, str):
            compiled = compile_text(value)
            self.variables |= compiled.variables
            return compiled.render
        if isinstance(value, Mapping):
            items = [(k, self._build(v)) for k, v in value.items()]
            return lambda ctx: {k: f(ctx) for k, f in items}
        if isinstance(value, list):
            parts = [self._build(v) for v in value]
            return lambda ctx: [f(ctx) for f in parts]
        return _constant(value)

    def render(self, context: Mapping[str, Any]) -> Any:
        return self._render(context)


def compile_mapping(values: Mapping[str, Any] | str | None) -> dict[str, CompiledValue]:
    """Compile params/headers; a single template string (rendering to a mapping) is kept under ``""``."""
    if isinstance(values, str):
        return {"": CompiledValue(values)}
    return {str(k): CompiledValue(v) for k, v in (values or {}).items()}


def render_mapping(compiled: Mapping[str, CompiledValue], context: Mapping[str, Any]) -> dict[str, Any]:
    """Render params/headers: None drops a key, datetimes become ISO-8601, lists stay lists."""
    out: dict[str, Any] = {}
    for key, value in compiled.items():
        rendered = value.render(context)
        if key == "":
            if not isinstance(rendered, Mapping):
                raise RenderError(f"expected a mapping of names to values, got {type(rendered).__name__}")
            for name, item in rendered.items():  # values from data: converted, never compiled
                put_param(out, str(name), item)
            continue
        put_param(out, key, rendered)
    return out


def put_param(out: dict[str, Any], key: str, value: Any) -> None:
    """Set one query parameter as sent: None drops it, a list repeats it, datetimes and booleans as text."""
    if value is None:
        return
    if isinstance(value, list):
        out[key] = [_to_text(v) for v in value]
    elif isinstance(value, (dt.datetime, dt.date, bool)):
        out[key] = _to_text(value)
    else:
        out[key] = value


@dataclass(frozen=True)
class Origin:
    """The connection's base URL: every request must stay on its scheme, host and port."""

    scheme: str
    netloc: str
    prefix: str

    @classmethod
    def parse(cls, base_url: str) -> Origin:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise UnsafeRequestError(f"base_url must be an http(s) URL with a host (got {base_url!r})")
        return cls(parts.scheme, parts.netloc.lower(), parts.path.rstrip("/"))

    @property
    def base(self) -> str:
        return f"{self.scheme}://{self.netloc}{self.prefix}"

    def join(self, path: str) -> str:
        """Join a rendered path; refuse anything that is not a path on this origin."""
        if not path.startswith("/") or path.startswith("//"):
            raise UnsafeRequestError(f"a template must render a path starting with '/', got {path!r}")
        return self.base + path

    def same_origin(self, url: str) -> bool:
        parts = urlsplit(url)
        return parts.scheme == self.scheme and parts.netloc.lower() == self.netloc

    def absolute(self, url: str, base: str | None = None) -> str:
        """Resolve a URL found in a response (a next link) against the request's URL; it must stay on the origin."""
        resolved = urljoin(base or self.base + "/", url)
        if not self.same_origin(resolved):
            raise UnsafeRequestError(f"refusing to follow {url!r}: not on {self.scheme}://{self.netloc}")
        return resolved


def dot_path(path: str | None) -> Callable[[Any], Any]:
    """Compile ``a.b.0.c`` into a getter; a missing step yields None. ``''`` is the value itself."""
    if not path:
        return lambda value: value
    keys: list[str | int] = [int(k) if k.isdigit() else k for k in path.split(".")]

    def get(value: Any) -> Any:
        for key in keys:
            if isinstance(key, int) and isinstance(value, list):
                value = value[key] if key < len(value) else None
            elif isinstance(value, Mapping):
                value = value.get(key)
            else:
                return None
            if value is None:
                return None
        return value

    return get
