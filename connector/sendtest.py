"""``connector send-test``: one record through a sink, for real, and the API's answer in full.

The step between ``preview`` and a full run: the request goes out through the real target (its
rendering, auth, retries), and every exchange is printed with credentials masked.
"""

from __future__ import annotations

from http import HTTPStatus

import orjson

from connector import jsonio
from connector.harness import Exchange, run_sink
from connector.inputs import Input, read_records
from connector.preview import format_exchange, suggest
from connector.secrets import REDACTOR
from connector.workspace import CommandError, load, read_config, with_defaults


def _reason(status: int | None) -> str:
    try:
        return HTTPStatus(status).phrase if status else ""
    except ValueError:
        return ""


def format_response(exchange: Exchange) -> list[str]:
    lines = [f"<-- {exchange.status} {_reason(exchange.status)}".rstrip()]
    body = exchange.response_body
    if body is not None:
        lines += (
            jsonio.dumps(body, option=orjson.OPT_INDENT_2).decode() if not isinstance(body, str) else body
        ).splitlines()
    return lines


def main(sink_name: str, connection_spec: str, input_path: str, config_path: str, record_number: int) -> int:
    """Exit 0 when the API accepted the record, 1 when it was rejected (before or after sending)."""
    connection = load(connection_spec)
    if sink_name not in connection.sinks:
        raise CommandError(
            suggest(sink_name, connection)
            if sink_name not in connection.streams
            else f"{sink_name} is a stream; send-test takes a sink"
        )
    config = with_defaults(connection, read_config(config_path))
    data = read_records(input_path, sink_name)
    if record_number < 1 or record_number > len(data.records):
        raise CommandError(
            f"{input_path} has {len(data.records)} usable records; --record must be 1 to "
            f"{len(data.records)} (got {record_number})"
            if data.records
            else f"{input_path} has no usable records"
        )
    chosen = data.records[record_number - 1]
    one = Input(records=[chosen], schemas=data.schemas)
    run = run_sink(connection, sink_name, one.singer_messages(), config, offline=False)
    print(
        f"send-test: record {record_number} (line {chosen.line} of {input_path}) through {sink_name} "
        f"({connection.name})"
    )
    for n, exchange in enumerate(run.exchanges, start=1):
        shown = exchange.masked()
        print("", f"--> request {n}", *format_exchange(shown), "", *format_response(shown), sep="\n")
    print()
    if run.rejected:
        row = run.rejected[0]
        status = f" ({row['status']})" if row.get("status") else ""
        print(f"Result: REJECTED{status}: {row.get('reason')}: {REDACTOR.redact(str(row.get('error')))}")
        if not run.exchanges:
            print("Nothing was sent.")
        return 1
    print(f"Result: accepted ({len(run.exchanges)} request{'s' if len(run.exchanges) != 1 else ''})")
    return 0
