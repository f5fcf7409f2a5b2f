"""``connector``: the command line for users and template authors. It parses and dispatches only;
each command's work lives in its own module, imported when the command runs (startup stays fast).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from connector.errors import ConnectorError
from connector.templates import default_connection

DEFAULT_CONNECTION = default_connection()

DESCRIPTION = """\
Declarative Singer connectors: YAML templates run by one engine.

Everyday use:
  connector validate                      check every bundled connection's templates
  connector preview upsert_account --input records.jsonl
                                          show the requests a sink would send (nothing is sent)
  connector demo                          a one-minute tour against the bundled sandbox API

Exit status: 0 success, 1 a check or record failed, 2 a usage or input error.
"""

EPILOG = "Run `connector COMMAND --help` for a command's options. Docs: docs/cli.md, docs/template-guide.md."


class _Formatter(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=32, width=100)
        self._action_max_length = 16  # room for the longest command name, so no help line wraps


def _connection_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-c",
        "--connection",
        default=DEFAULT_CONNECTION,
        metavar="NAME|DIR",
        help=f"a bundled connection name or a folder with a connection.yaml (default: {DEFAULT_CONNECTION})",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="connector", description=DESCRIPTION, epilog=EPILOG, formatter_class=_Formatter
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")

    def command(name: str, summary: str, description: str, **kwargs: Any) -> argparse.ArgumentParser:
        return commands.add_parser(
            name, help=summary, description=description, formatter_class=_Formatter, **kwargs
        )

    p = command(
        "validate",
        "check templates: format, Jinja, fields against record schemas, URLs, parents",
        "Load each connection and run the checks a run would trip over later: the template format\n"
        "(specs/template.schema.json), Jinja syntax and variables, id_field / exclude / primary_key /\n"
        "replication_key / group_by against the record schema, URLs that stay on the connection's host,\n"
        "parent streams and the parent fields a child uses. Errors print as FILE:LINE: FIELD: MESSAGE.",
    )
    p.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help="connection folders or bundled names (default: every bundled connection)",
    )
    p.add_argument("--strict", action="store_true", help="treat warnings as errors")
    p.set_defaults(run=_validate)

    p = command(
        "preview",
        "show the requests a sink would send for some records, or a stream's first request",
        "Render records through a sink exactly as the target would (excluded attributes, id_field,\n"
        "batching, group_by) and print each request: method, URL, headers with secrets masked, body.\n"
        "Records that would be rejected are listed with the reason. Nothing is sent.\n\n"
        "Given a stream instead of a sink, print the first request the stream would make.\n"
        "Exit status 1 when a record would be rejected.",
    )
    p.add_argument("name", metavar="SINK|STREAM", help="a sink or stream of the connection")
    p.add_argument(
        "-i",
        "--input",
        metavar="FILE.jsonl",
        help="records, one JSON object per line (plain records or Singer RECORD messages)",
    )
    _connection_option(p)
    p.add_argument(
        "--config", metavar="FILE.json", help="tap/target config (base_url, ...); secrets are masked"
    )
    p.add_argument("--json", action="store_true", help="print the preview as JSON")
    p.set_defaults(run=_preview)

    p = command(
        "send-test",
        "send ONE record through a sink for real and show the API's answer",
        "Send the first record of the input (or --record N) through the sink, for real, and print\n"
        "each request and the API's status and response body (credentials masked). Use it to try a\n"
        "new sink against a sandbox or a test account before a full run.\n"
        "Exit status 1 when the record was rejected.",
    )
    p.add_argument("sink", metavar="SINK", help="a sink of the connection")
    p.add_argument(
        "-i", "--input", required=True, metavar="FILE.jsonl", help="records (plain or Singer messages)"
    )
    p.add_argument(
        "--config", required=True, metavar="FILE.json", help="target config with base_url and credentials"
    )
    p.add_argument(
        "--record", type=int, default=1, metavar="N", help="which record of the input to send (default 1)"
    )
    _connection_option(p)
    p.set_defaults(run=_send_test)

    p = command(
        "new",
        "scaffold a stream or sink template (and a record schema) that validates",
        "Write a new template into the connection's folder, and for a stream a starting record schema\n"
        "in specs/<connection>/. Existing files are never overwritten. The result is validated.",
    )
    kinds = p.add_subparsers(dest="kind", metavar="KIND", required=True)
    s = kinds.add_parser(
        "stream",
        help="a source template: one Singer stream",
        formatter_class=_Formatter,
        description="Scaffold streams/NAME.yaml and specs/<connection>/NAME.json.",
    )
    s.add_argument("name", metavar="NAME", help="stream name: lower case, digits, underscores")
    s.add_argument("--url", required=True, help="path on the API, e.g. /v2/things")
    s.add_argument(
        "--primary-key", default="id", metavar="FIELD[,FIELD]", help="primary key fields (default id)"
    )
    s.add_argument("--replication-key", metavar="FIELD", help="field for incremental reads, e.g. updated_at")
    s.add_argument(
        "--incremental-param", metavar="PARAM", help="query parameter taking the last value synced"
    )
    s.add_argument(
        "--records", metavar="PATH", help="dot path of the records in the body (default: the connection's)"
    )
    s.add_argument(
        "--pagination",
        choices=["none", "page_number", "offset", "cursor", "next_url", "link_header"],
        help="pagination type (default: the connection's stream_defaults)",
    )
    s.add_argument("--parent", metavar="STREAM", help="parent stream: this one runs once per parent record")
    s.add_argument("--description", default="", help="one line shown in docs and --about")
    _connection_option(s)
    s.set_defaults(run=_new)
    k = kinds.add_parser(
        "sink",
        help="a destination template: records become requests",
        formatter_class=_Formatter,
        description="Scaffold sinks/NAME.yaml.",
    )
    k.add_argument("name", metavar="NAME", help="sink name: lower case, digits, underscores")
    k.add_argument("--method", default="POST", choices=["POST", "PUT", "PATCH", "DELETE"], help="HTTP method")
    k.add_argument("--url", required=True, help="path on the API, e.g. /v2/things/{{ record.id }}")
    k.add_argument(
        "--id-field", metavar="FIELD", help="field a record must have (default: the one the URL uses)"
    )
    k.add_argument("--exclude", default="", metavar="FIELD[,FIELD]", help="attributes kept out of the body")
    k.add_argument(
        "--schema", metavar="FILE.json", help="record schema in specs/<connection>/ to check fields against"
    )
    k.add_argument(
        "--batch-size", type=int, default=1, metavar="N", help="records per request (>1: body gets records)"
    )
    k.add_argument("--description", default="", help="one line shown in docs")
    _connection_option(k)
    k.set_defaults(run=_new)

    p = command(
        "docs",
        "generate docs/connectors/<connection>.md and docs/cli.md",
        "Write the reference page of each connection (bundled names, or folders with a\n"
        "connection.yaml): settings, streams (URL, keys, pagination, parent) and sinks (method, URL,\n"
        "id_field, excluded attributes, batching); without NAMEs, also docs/cli.md (this command\n"
        "line's help) and docs/template-reference.md (the template format's concepts).\n"
        "With --check, write nothing and exit 1 when a committed page is out of date.",
    )
    p.add_argument("--check", action="store_true", help="only compare with the committed files")
    p.add_argument("--out", metavar="DIR", help="output folder (default: docs/connectors of the project)")
    p.add_argument(
        "connections",
        nargs="*",
        metavar="NAME|DIR",
        help="bundled connections or folders (default: all bundled)",
    )
    p.set_defaults(run=_docs)

    p = command(
        "demo",
        "a one-minute tour: sandbox -> tap -> files -> target, with a summary",
        "Start the bundled sandbox API on a free local port, sync a few streams with the tap to\n"
        "JSON Lines files, send records back (changed, plus a few bad ones) through the target,\n"
        "and print what happened: records, requests, accepted, rejected with the API's reasons.",
    )
    p.add_argument(
        "--people", type=int, default=1000, metavar="N", help="people in the sandbox (default 1000)"
    )
    p.add_argument(
        "--out", default="demo-output", metavar="DIR", help="where files go (default ./demo-output)"
    )
    p.add_argument("--seed", type=int, default=1, help="sandbox data seed (default 1)")
    p.set_defaults(run=_demo)

    for role in ("tap", "target"):
        p = command(
            role,
            f"run any connection's {role} (Singer; singer-sdk options follow)",
            f"Run the {role} of any connection, bundled or in a folder, like the {role}-<name> console\n"
            f"scripts do. Everything after the connection goes to the {role}:\n"
            f"  connector {role} helpdesk --config config.json"
            + (" --discover" if role == "tap" else " < records.jsonl")
            + f"\n  connector {role} ./my-api --about",
        )
        p.add_argument(
            "connection", metavar="NAME|DIR", help="a bundled connection name or a connection folder"
        )
        p.add_argument(
            "args",
            nargs=argparse.REMAINDER,
            help=f"arguments for the {role} (--config, --about, ...)"
            + (
                ", and --streams A,B to sync only those streams"
                if role == "tap"
                else ", and --full-refresh to send every record once despite changes_only"
            ),
        )
        p.set_defaults(run=_plugin, role=role)

    p = command(
        "state",
        "show or forget what changes_only remembers of a connection's sinks",
        "A target with changes_only sends a record only when its request differs from the one the\n"
        "API last accepted for it; the state store keeps a digest of that request per sink and id.\n"
        "Show the records stored per sink, or forget a sink or one record: the next run sends them.",
    )
    p.add_argument("connection", metavar="NAME|DIR", help="a bundled connection name or a connection folder")
    p.add_argument(
        "--state-db",
        metavar="FILE|URL",
        help="the target's state_db: an SQLite file or a postgresql:// URL "
        "(default .connector/target-state.db)",
    )
    p.add_argument("--forget-sink", metavar="SINK", help="forget every record of this sink")
    p.add_argument("--forget", nargs=2, metavar=("SINK", "ID"), help="forget one record (its id_field value)")
    p.add_argument("--json", action="store_true", help="print the counts as JSON")
    p.set_defaults(run=_state)

    p = command(
        "auth",
        "the first OAuth login: sign in once in a browser, get the first tokens into the config",
        "Obtain a connection's first OAuth tokens by the authorization-code grant. Prints one line,\n"
        "`Open this URL: ...`; open it in a browser on this machine and sign in. The authorization\n"
        "server redirects to http://127.0.0.1:PORT/callback (register that redirect URI with the\n"
        "OAuth app); the code is exchanged at the token URL and the refresh and access tokens are\n"
        "written into the config file (mode 0600, through a symlink, other settings kept) and into\n"
        "the token_file if the config sets one. Needs the client ID and secret in the config and an\n"
        "oauth2_refresh auth with an authorize_url in the connection.\n"
        "Exit status 1 when the login is refused, the state does not match or no redirect arrives.",
    )
    p.add_argument("connection", metavar="NAME|DIR", help="a bundled connection name or a connection folder")
    p.add_argument(
        "--config",
        required=True,
        metavar="FILE.json",
        help="tap/target config with the OAuth client's settings",
    )
    p.add_argument(
        "--port",
        type=int,
        metavar="P",
        help="local port of the redirect (default 8976; 0 = any free port)",
    )
    p.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        help="how long to wait for the redirect (default 300)",
    )
    p.set_defaults(run=_auth)

    p = command(
        "values",
        "list the value/label pairs a stream offers (owners, stages, cadences...)",
        "Read a stream as the tap does and print the distinct value/label pairs of its records: the\n"
        "valid values of a field and the text beside them, for writing templates and records.\n"
        "The value defaults to the stream's primary key and the label to a naming field (name,\n"
        "title, email...), or to what the stream template declares (values: {value: id, label: name}).\n"
        "Fields are dot paths (role.id, custom_fields.Industry): a nested field lists the distinct\n"
        "values the records carry. Credentials are read from the config as the tap reads them.",
    )
    p.add_argument("connection", metavar="NAME|DIR", help="a bundled connection name or a connection folder")
    p.add_argument("stream", metavar="STREAM", help="a stream of the connection")
    p.add_argument(
        "--config", required=True, metavar="FILE.json", help="tap config with base_url and credentials"
    )
    p.add_argument("--value", metavar="FIELD", help="dot path of the value (default: the primary key)")
    p.add_argument("--label", metavar="FIELD", help="dot path of the label (default: name, title, email...)")
    p.add_argument("--json", action="store_true", help='print [{"value": ..., "label": ...}, ...]')
    p.add_argument(
        "--limit",
        type=_positive,
        metavar="N",
        help="stop reading once N distinct pairs were found (default: read the whole stream)",
    )
    p.set_defaults(run=_values)

    p = command(
        "sandbox",
        "run the bundled sandbox API on 127.0.0.1 (its options follow; see connector sandbox --help)",
        "Start the bundled sandbox API on 127.0.0.1; all arguments go to `python -m sandbox`.",
        add_help=False,
    )
    p.add_argument("args", nargs=argparse.REMAINDER, help="arguments for the sandbox")
    p.set_defaults(run=_sandbox)
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("declarative-connector")
    except PackageNotFoundError:
        return "unknown"


def _validate(args: argparse.Namespace) -> int:
    from connector import validate

    return validate.main(args.paths, strict=args.strict)


def _preview(args: argparse.Namespace) -> int:
    from connector import preview

    return preview.main(args.name, args.connection, args.input, args.config, args.json)


def _send_test(args: argparse.Namespace) -> int:
    from connector import sendtest

    return sendtest.main(args.sink, args.connection, args.input, args.config, args.record)


def _new(args: argparse.Namespace) -> int:
    from connector import scaffold

    if args.kind == "stream":
        return scaffold.new_stream(
            args.connection,
            args.name,
            url=args.url,
            primary_key=_split(args.primary_key),
            replication_key=args.replication_key,
            incremental_param=args.incremental_param,
            records=args.records,
            pagination=args.pagination,
            parent=args.parent,
            description=args.description,
        )
    return scaffold.new_sink(
        args.connection,
        args.name,
        method=args.method,
        url=args.url,
        id_field=args.id_field,
        exclude=_split(args.exclude),
        schema=args.schema,
        batch_size=args.batch_size,
        description=args.description,
    )


def _split(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def _docs(args: argparse.Namespace) -> int:
    from connector import docsgen

    return docsgen.main(args.connections, out=args.out, check=args.check)


def _demo(args: argparse.Namespace) -> int:
    try:
        from sandbox import demo
    except ImportError as exc:
        raise ConnectorError(
            f"the bundled sandbox is not available ({exc}); is the project installed?"
        ) from exc

    return demo.main(people=args.people, out=args.out, seed=args.seed)


def _state(args: argparse.Namespace) -> int:
    from connector import statecmd

    return statecmd.main(
        args.connection,
        args.state_db,
        forget_sink=args.forget_sink,
        forget=tuple(args.forget) if args.forget else None,
        as_json=args.json,
    )


def _auth(args: argparse.Namespace) -> int:
    from connector import authcmd

    return authcmd.main(args.connection, args.config, port=args.port, timeout=args.timeout)


def _positive(text: str) -> int:
    """A whole number of 1 or more, for argparse."""
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more (got {number})")
    return number


def _values(args: argparse.Namespace) -> int:
    from connector import valuescmd

    return valuescmd.main(
        args.connection,
        args.stream,
        args.config,
        value=args.value,
        label=args.label,
        as_json=args.json,
        limit=args.limit,
    )


def _plugin(args: argparse.Namespace) -> int:
    from connector import plugins

    return plugins.main(args.role, args.connection, args.args)


def _sandbox(args: argparse.Namespace) -> int:
    try:
        from sandbox.__main__ import main as sandbox_main
    except ImportError as exc:
        raise ConnectorError(
            f"the bundled sandbox is not available ({exc}); is the project installed?"
        ) from exc
    return int(sandbox_main(args.args) or 0)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if argv[:1] == ["sandbox"]:  # everything, --help included, belongs to the sandbox's own parser
        args = argparse.Namespace(command="sandbox", run=_sandbox, args=argv[1:])
    else:
        args = parser.parse_args(argv)
    run: Callable[[argparse.Namespace], int] | None = getattr(args, "run", None)
    if run is None:
        parser.print_help()
        return 2
    from connector.workspace import CommandError, display

    try:
        return run(args)
    except CommandError as exc:
        print(f"connector {args.command}: {display(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except ConnectorError as exc:
        print(f"connector {args.command}: {display(str(exc))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"connector {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
