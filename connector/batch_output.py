"""BATCH output (``batch_config``): what singer-sdk's batch path leaves out, made explicit.

singer-sdk writes a stream's records into batch files as the stream read them: it applies the
catalog's property selection, stream maps and flattening only on its RECORD path. The engine applies
the selection itself (a deselected column stays out of the files too) and refuses stream maps or
flattening together with ``batch_config`` rather than silently ignore them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from connector.errors import ConnectorError


def deselected_properties(
    config: Mapping[str, Any], mask: Mapping[Any, bool], names: Iterable[str]
) -> frozenset[str]:
    """Top-level properties to leave out of batch files: those the catalog deselects (none without batch_config)."""
    if not config.get("batch_config"):
        return frozenset()
    return frozenset(name for name in names if not mask.get(("properties", name), True))


def check(config: Mapping[str, Any]) -> None:
    """Refuse what singer-sdk would not apply to batch files."""
    if not config.get("batch_config"):
        return
    ignored = [name for name in ("stream_maps", "flattening_enabled") if config.get(name)]
    if ignored:
        raise ConnectorError(
            f"batch_config: singer-sdk writes batch files without {' or '.join(ignored)}; "
            "remove them (or batch_config, for RECORD messages, where they apply)"
        )
