"""The tap's ``stream_params`` setting: filters a user passes to streams, checked against what each stream
template declares (``filters:``) before any request, so a typo fails the run instead of reading everything."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connector.errors import ConnectorError
from connector.render import put_param
from connector.templates import Connection

SETTING = "stream_params"
_SCALARS = (str, int, float, bool)


class StreamParamsError(ConnectorError):
    """The stream_params setting names a stream or a filter the templates do not declare, or a bad value."""


def _known(names: list[str]) -> str:
    return ", ".join(sorted(names)) or "none"


def check(connection: Connection, config: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Per stream, the query parameters its filters add (API names, values as they are sent); raise on the
    first unknown stream, unknown filter or value that is not a scalar or a list of scalars."""
    given = config.get(SETTING)
    if given in (None, {}):
        return {}
    filtered = [name for name, stream in connection.streams.items() if stream.filters]
    if not isinstance(given, Mapping):
        raise StreamParamsError(
            f"{SETTING}: must be an object of stream names to {{filter: value}} (got {type(given).__name__})"
        )
    out: dict[str, dict[str, Any]] = {}
    for stream_name, values in given.items():
        stream = connection.streams.get(stream_name)
        if stream is None or not stream.filters:
            what = "unknown stream" if stream is None else "stream without filters"
            raise StreamParamsError(
                f"{SETTING}: {what} {stream_name!r} (streams with filters: {_known(filtered)})"
            )
        if not isinstance(values, Mapping):
            raise StreamParamsError(
                f"{SETTING}.{stream_name}: must be an object of filters to values (got {type(values).__name__})"
            )
        params: dict[str, Any] = {}
        for name, value in values.items():
            declared = stream.filters.get(name)
            if declared is None:
                raise StreamParamsError(
                    f"{SETTING}.{stream_name}: unknown filter {name!r} "
                    f"(filters of {stream_name}: {_known(list(stream.filters))})"
                )
            if isinstance(value, list) and not declared.param.endswith("[]"):
                # The API reads one value there (a repeated parameter: most keep the last): a list would
                # silently filter by one of its values.
                raise StreamParamsError(
                    f"{SETTING}.{stream_name}.{name}: takes one value, not a list "
                    f"(list filters of {stream_name}: {_known([n for n, f in stream.filters.items() if f.param.endswith('[]')])})"
                )
            items = value if isinstance(value, list) else [value]
            if not items or not all(isinstance(item, _SCALARS) for item in items):
                raise StreamParamsError(
                    f"{SETTING}.{stream_name}.{name}: must be a string, number, boolean or a non-empty "
                    f"list of them (got {type(value).__name__})"
                )
            put_param(params, declared.param, value)
        out[stream_name] = params
    return out
