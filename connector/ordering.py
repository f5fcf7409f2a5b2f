"""Which records of a sink are about the same object, so they are sent one after another, in input order.

A one-record-per-request sink sends records concurrently, except those with equal ``id_field`` values:
they go out in order, so the last one wins. APIs match some keys loosely (a domain or an email
address regardless of case and surrounding spaces); ``id_normalize`` in the template says so, and
records whose keys are equal after it are ordered too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from connector.templates import SinkTemplate

NORMALIZERS: dict[str, Callable[[str], str]] = {"casefold": str.casefold, "trim": str.strip}


def object_key(template: SinkTemplate) -> Callable[[Mapping[str, Any]], str]:
    """The function giving a record's object key: its id_field value, normalised as the template says."""
    field = template.id_field
    steps = [NORMALIZERS[name] for name in template.id_normalize]

    def key(record: Mapping[str, Any]) -> str:
        value = str(record.get(field)) if field else ""
        for step in steps:
            value = step(value)
        return value

    return key
