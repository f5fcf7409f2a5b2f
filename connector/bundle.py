"""Where the bundled connections (``templates/``) and record schemas (``specs/``) are.

An installed distribution ships them as package data under ``connector/bundled/`` (pyproject.toml maps
the repository's top-level ``templates/`` and ``specs/`` there), read with ``importlib.resources``. A
source checkout (or an editable install) has no such folder and reads the top-level ones directly.
``CONNECTOR_TEMPLATES`` and ``CONNECTOR_SPECS`` point the commands at folders of the user's own.
"""

from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path
from typing import Literal

Kind = Literal["templates", "specs"]
KINDS: tuple[Kind, ...] = ("templates", "specs")
ENV: dict[Kind, str] = {"templates": "CONNECTOR_TEMPLATES", "specs": "CONNECTOR_SPECS"}
CHECKOUT = Path(__file__).resolve().parent.parent


def shipped(kind: Kind) -> Path | None:
    """The package-data copy of an installed distribution, or None when running from a checkout."""
    folder = files("connector") / "bundled" / kind
    return Path(str(folder)) if folder.is_dir() else None


def bundled(kind: Kind) -> Path:
    """The connections or specs that come with the package, whatever the environment says."""
    return shipped(kind) or CHECKOUT / kind


def root(kind: Kind) -> Path:
    """The folder the commands use: the environment's override, else the bundled one."""
    override = os.environ.get(ENV[kind])
    return Path(override) if override else bundled(kind)


def is_shipped(path: Path) -> bool:
    """Whether a path lies inside the installed package data (which a user should not edit in place)."""
    resolved = path.resolve()
    for kind in KINDS:
        folder = shipped(kind)
        if folder is not None and resolved.is_relative_to(folder.resolve()):
            return True
    return False


def template_schema() -> Path:
    """The JSON Schema of the template format: the override folder's copy if it has one, else the bundled."""
    own = root("specs") / "template.schema.json"
    return own if own.is_file() else bundled("specs") / "template.schema.json"
