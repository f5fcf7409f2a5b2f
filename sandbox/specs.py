"""Record schemas, read at start-up from the bundled ``specs/salesloft/`` so generated data
always carries every declared field with the declared type.

Resources without a schema there (opportunities, external IDs, and the sandbox's own write-only
stores) fall back to ``sandbox/extra_specs/``.
"""

from __future__ import annotations

import json
from pathlib import Path

from connector import bundle
from sandbox.resources import CATALOG

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_SPECS = bundle.bundled("specs") / "salesloft"  # the package's, whatever CONNECTOR_SPECS says
EXTRA_SPECS = PACKAGE_DIR / "extra_specs"


def load_schemas(specs_dir: Path | None = None) -> dict[str, dict]:
    primary = Path(specs_dir) if specs_dir else REPO_SPECS
    schemas: dict[str, dict] = {}
    for name in CATALOG:
        for folder in (primary, EXTRA_SPECS):
            path = folder / f"{name}.json"
            if path.is_file():
                schemas[name] = json.loads(path.read_text())
                break
    return schemas
