"""``python -m sandbox``: run the Salesloft sandbox on 127.0.0.1.

``build_parser()`` and ``main(argv)`` are public so ``connector sandbox ...`` can delegate here.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sandbox.config import Options, parse_size
from sandbox.faults import parse_spec
from sandbox.resources import CATALOG


def build_parser(prog: str = "python -m sandbox") -> argparse.ArgumentParser:
    d = Options()
    parser = argparse.ArgumentParser(
        prog=prog,
        description="A local fake of Salesloft's v2 REST API (loopback only). See docs/sandbox.md.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--host", default=d.host, help="loopback address to bind")
    parser.add_argument("--port", type=int, default=d.port, help="port (0 = pick a free one)")
    parser.add_argument("--seed", type=int, default=d.seed, help="seed of the generated data")
    parser.add_argument(
        "--size",
        action="append",
        default=[],
        metavar="RESOURCE=COUNT",
        help="records of a resource (repeatable), e.g. people=100000. Defaults: "
        + ", ".join(f"{r.name}={r.default_size}" for r in CATALOG.values() if r.paging != "internal"),
    )
    parser.add_argument("--api-key", default=d.api_key, help="the API key accepted as a bearer token")
    parser.add_argument("--budget", type=int, default=d.budget, help="cost points per minute")
    parser.add_argument(
        "--time-scale",
        type=float,
        default=d.time_scale,
        help="sandbox seconds per real second (a minute lasts 60/N s)",
    )
    parser.add_argument(
        "--retry-after",
        action=argparse.BooleanOptionalAction,
        default=d.retry_after,
        help="send Retry-After with 429 responses",
    )
    parser.add_argument(
        "--faults",
        default=None,
        metavar="SPEC",
        help="fault injection, e.g. 'rate=0.05,seed=3,kinds=500,502,503,429,reset,slow,truncate,delay=2,burst=3'",
    )
    parser.add_argument(
        "--token-ttl", type=float, default=d.token_ttl, help="OAuth access token lifetime, seconds"
    )
    parser.add_argument("--client-id", default=d.client_id, help="OAuth client id")
    parser.add_argument("--client-secret", default=d.client_secret, help="OAuth client secret")
    parser.add_argument("--refresh-token", default=d.refresh_token, help="the initial OAuth refresh token")
    parser.add_argument(
        "--reject-refresh", action="store_true", help="answer every refresh with invalid_grant"
    )
    parser.add_argument(
        "--bulk-rate", type=float, default=d.bulk_rate, help="bulk records applied per sandbox second"
    )
    parser.add_argument(
        "--bulk-latency",
        type=float,
        default=d.bulk_latency,
        help="sandbox seconds before a ready bulk job starts",
    )
    parser.add_argument(
        "--latency",
        type=float,
        default=d.latency,
        help="real seconds every API answer takes (half before the request is handled, half after); "
        "other connections are not held up",
    )
    parser.add_argument(
        "--latency-jitter",
        type=float,
        default=d.latency_jitter,
        help="up to this many real seconds more per answer, drawn uniformly",
    )
    parser.add_argument("--journal-limit", type=int, default=d.journal_limit, help="journal entries kept")
    parser.add_argument(
        "--specs-dir", type=Path, default=None, help="record schemas (default: the repo's specs/salesloft)"
    )
    return parser


def options_from(args: argparse.Namespace) -> Options:
    sizes = dict(parse_size(item) for text in args.size for item in text.split(",") if item)
    options = Options(
        host=args.host,
        port=args.port,
        seed=args.seed,
        sizes=sizes,
        api_key=args.api_key,
        budget=args.budget,
        time_scale=args.time_scale,
        retry_after=args.retry_after,
        faults=parse_spec(args.faults),
        token_ttl=args.token_ttl,
        client_id=args.client_id,
        client_secret=args.client_secret,
        refresh_token=args.refresh_token,
        reject_refresh=args.reject_refresh,
        bulk_rate=args.bulk_rate,
        bulk_latency=args.bulk_latency,
        journal_limit=args.journal_limit,
        latency=args.latency,
        latency_jitter=args.latency_jitter,
        specs_dir=args.specs_dir,
    )
    options.validate()
    return options


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        options = options_from(args)
    except ValueError as error:
        parser.error(str(error))
    from sandbox.server import run

    try:
        run(options)
    except OSError as error:
        print(f"sandbox: cannot listen on {options.host}:{options.port}: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
