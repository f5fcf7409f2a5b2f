"""``connector state CONNECTION``: what changes_only remembers of a connection's sinks, and forgetting it.

Forgetting is always safe: a forgotten record is sent again by the next run, whatever it holds.
"""

from __future__ import annotations

import json
from pathlib import Path

from connector.ordering import object_key
from connector.statestore import DEFAULT_STATE_DB, is_postgres_url, open_store
from connector.workspace import CommandError, load


def main(
    connection_spec: str,
    state_db: str | None,
    *,
    forget_sink: str | None = None,
    forget: tuple[str, str] | None = None,
    as_json: bool = False,
) -> int:
    connection = load(connection_spec)
    for sink in [s for s in (forget_sink, forget[0] if forget else None) if s]:
        if sink not in connection.sinks:
            known = ", ".join(sorted(connection.sinks))
            raise CommandError(f"{connection.name} has no sink {sink!r} (sinks: {known})")
    location = state_db or DEFAULT_STATE_DB
    if not is_postgres_url(location) and not Path(location).is_file():
        raise CommandError(f"no state_db at {location} (give the target's state_db with --state-db)", 1)
    store = open_store(location)
    try:
        if forget_sink:
            count = store.clear(connection.name, forget_sink)
            print(f"{forget_sink}: forgot {count} records; the next run sends all of them")
        if forget:
            sink, value = forget
            template = connection.sinks[sink]
            key = object_key(template)({template.id_field: value}) if template.id_field else value
            if not store.forget(connection.name, sink, key):
                print(f"{sink}: nothing stored for {value!r}")
                return 1
            print(f"{sink}: forgot {value!r}; the next run sends it")
        if forget_sink or forget:
            return 0
        counts = store.counts(connection.name)
        if as_json:
            print(json.dumps({"state_db": store.location, "connection": connection.name, "sinks": counts}))
            return 0
        print(f"{store.location}: {connection.name}")
        if not counts:
            print("  no records stored (no changes_only run has had a record accepted)")
        for sink, count in counts.items():
            print(f"  {sink:<40} {count:>10,} records")
        return 0
    finally:
        store.close()
