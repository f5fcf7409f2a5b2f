"""Console scripts ``tap-<connection>`` and ``target-<connection>``: the name picks the templates."""

from __future__ import annotations

import gc
import os
import sys
from pathlib import Path

from connector.errors import TemplateError, TemplateErrors


def _connection_name(prefix: str) -> str:
    name = os.environ.get("CONNECTOR_CONNECTION") or Path(sys.argv[0]).name
    return name.removeprefix(prefix).removesuffix(".exe").replace("-", "_")


def _load(prefix: str):
    from connector.templates import load_bundled

    name = _connection_name(prefix)
    try:
        return load_bundled(name)
    except (TemplateError, TemplateErrors) as exc:
        sys.stderr.write(f"{prefix}{name}: the templates do not load:\n{exc}\n")
        raise SystemExit(2) from None


def tap_main() -> None:
    # The objects the imports and the loaded templates make live as long as the process: the cycle collector
    # scanned them over and over while they were made (6 % of a tap's start-up) and in each full collection
    # of the run. It waits until they are made, then leaves them out of its scans for good.
    gc.disable()
    try:
        from connector.tap import build_tap_class

        tap_class = build_tap_class(_load("tap-"))
    finally:
        gc.freeze()
        gc.enable()
    tap_class.cli()


def target_main() -> None:
    from connector.target import build_target_class

    build_target_class(_load("target-")).cli()
