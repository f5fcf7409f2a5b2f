"""What of a record a sink sends, and whether it is fit to send.

Upstream taps bring warehouse columns and Singer metadata (``_sdc_filename`` holds a local path) that an
API should never see. A sink with a record schema sends only the properties the schema declares, minus
``exclude``; ``unknown_properties: pass`` in the template sends undeclared ones too. ``_sdc_*`` columns
are never sent. A declared property whose value has the wrong type (``"yes"`` for a boolean) makes the
record invalid: rejected with the field named, rather than sent for the API to misread.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import fastjsonschema
import jsonschema

from connector.templates import SinkTemplate

SINGER_METADATA_PREFIX = "_sdc_"
logger = logging.getLogger("connector.target")


class SinkFields:
    """The body filter and the type check of one sink template, built once per sink."""

    def __init__(self, template: SinkTemplate) -> None:
        properties: Mapping[str, Any] = {
            **((template.schema or {}).get("properties") or {}),
            **template.write_properties,
        }
        self.sink_name = template.name
        self.schema_name = str(template.raw.get("schema", "")) or None
        self._reported: set[str] = set()
        self.exclude = template.exclude
        self.declared: frozenset[str] | None = None
        if template.schema is not None and properties and template.unknown_properties == "drop":
            self.declared = frozenset(
                name
                for name in properties
                if name not in template.exclude and not name.startswith(SINGER_METADATA_PREFIX)
            )
        self.declared_or_excluded = frozenset(properties) | template.exclude
        # Only the declared properties' types: a read schema's `required` does not bind a write.
        self._types = {"type": "object", "properties": dict(properties)} if properties else None
        self._fast = fastjsonschema.compile(self._types, use_formats=False) if self._types else None

    def body(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """The record as the request body sees it."""
        if self.declared is not None:
            declared = self.declared
            body = {k: v for k, v in record.items() if k in declared}
            if len(body) != len(record):
                self._report_dropped(record)
            return body
        exclude = self.exclude
        return {
            k: v for k, v in record.items() if k not in exclude and not k.startswith(SINGER_METADATA_PREFIX)
        }

    def _report_dropped(self, record: Mapping[str, Any]) -> None:
        """Say once per property which columns are not sent: dropping is on purpose, but never silent."""
        new = [
            k
            for k in record
            if k not in self.declared_or_excluded
            and not k.startswith(SINGER_METADATA_PREFIX)
            and k not in self._reported
        ]
        if new:
            self._reported.update(new)
            logger.warning(
                "sink %s: not sending %s: not declared by %s (write_properties or unknown_properties: pass "
                "in the sink template would send them)",
                self.sink_name,
                ", ".join(sorted(new)),
                self.schema_name,
            )

    def type_error(self, record: Mapping[str, Any]) -> str | None:
        """Why the record does not fit the sink's schema, or None when it does."""
        if self._fast is None:
            return None
        try:
            self._fast(record)
            return None
        except fastjsonschema.JsonSchemaValueException:
            pass
        error = jsonschema.exceptions.best_match(
            jsonschema.Draft202012Validator(self._types).iter_errors(record)
        )
        if error is None:  # the two validators disagree: trust the one that names the field
            return None
        field = ".".join(str(p) for p in error.absolute_path) or "(record)"
        return f"record does not match the sink's schema {self.schema_name}: {field}: {error.message}"
