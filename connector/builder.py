"""Turning a compiled request template plus a context into a concrete request.

What depends only on the run's config (base URL, static params and headers, constant URLs) is
rendered once when the builder is made; per-record work is only what the template varies by record.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from connector.bodies import encode
from connector.errors import RenderError
from connector.render import CompiledValue, Origin, render_mapping
from connector.templates import HTTP_METHODS, RequestTemplate


@dataclass
class BuiltRequest:
    method: str
    url: str
    params: dict[str, Any]
    headers: dict[str, str]
    body: Any
    body_format: str = "json"

    def encoded(self) -> tuple[bytes | None, dict[str, str]]:
        """The body's bytes and the headers, exactly as every transport sends them (and previews show)."""
        return encode(self.body, self.body_format, self.headers)

    def target_key(self) -> tuple:
        """Requests with equal keys go to the same place and can share one batched body."""
        return (
            self.method,
            self.url,
            tuple(sorted((k, str(v)) for k, v in self.params.items())),
            tuple(sorted(self.headers.items())),
        )


def _split(values: Mapping[str, CompiledValue]) -> tuple[dict[str, CompiledValue], dict[str, CompiledValue]]:
    static = {k: v for k, v in values.items() if v.variables <= {"config"}}
    dynamic = {k: v for k, v in values.items() if k not in static}
    return static, dynamic


class RequestBuilder:
    def __init__(
        self,
        template: RequestTemplate,
        origin: Origin,
        config: Mapping[str, Any],
        extra_params: Mapping[str, Any] | None = None,
    ) -> None:
        """``extra_params``: constant query parameters of this run beside the template's (a user's filters)."""
        self.template = template
        self.origin = origin
        run = {"config": config}
        self._run = run
        self._method = str(template.method.render(run)).upper() if template.method.per_run else None
        self._url = origin.join(str(template.url.render(run))) if template.url.per_run else None
        static_params, self._params = _split(template.params)
        static_headers, self._headers = _split(template.headers)
        self._static_params = {**render_mapping(static_params, run), **(extra_params or {})}
        self._static_headers = {k: str(v) for k, v in render_mapping(static_headers, run).items()}
        self._body_static = isinstance(template.body, CompiledValue) and template.body.variables <= {"config"}
        self._body_value = (
            template.body.render(run)
            if isinstance(template.body, CompiledValue) and self._body_static
            else None
        )

    def build(
        self,
        context: Mapping[str, Any],
        body_context: Mapping[str, Any] | None = None,
        default_body: Any = None,
    ) -> BuiltRequest:
        """Render for one context; ``body_context`` is what the body sees (records minus excluded)."""
        ctx = {**self._run, **context}
        method = self._method or str(self.template.method.render(ctx)).strip().upper()
        if method not in HTTP_METHODS:
            raise RenderError(f"method renders to {method!r}, not one of {', '.join(sorted(HTTP_METHODS))}")
        url = self._url or self.origin.join(str(self.template.url.render(ctx)))
        params = (
            {**self._static_params, **render_mapping(self._params, ctx)}
            if self._params
            else dict(self._static_params)
        )
        headers = self._static_headers
        if self._headers:
            headers = {**headers, **{k: str(v) for k, v in render_mapping(self._headers, ctx).items()}}
        body_template = self.template.body
        if body_template is None:
            body = None
        elif body_template == "record":
            body = default_body
        elif self._body_static:
            body = self._body_value
        elif isinstance(body_template, CompiledValue):
            body = body_template.render({**self._run, **(body_context or context)})
        else:
            raise RenderError(f"unknown body {body_template!r}")
        return BuiltRequest(method, url, params, headers, body, self.template.body_format)
