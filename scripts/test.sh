#!/usr/bin/env bash
# Set up (if needed) and run the whole test suite: lint, types (mypy), unit, sandbox end-to-end, Singer standard suites.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
exec .venv/bin/pytest "$@"
