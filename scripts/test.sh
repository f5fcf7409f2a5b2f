#!/usr/bin/env bash
# Set up (if needed) and run the whole test suite: lint, types (mypy), unit, sandbox end-to-end, Singer standard suites.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
# Two workers by default (the suite's processes wait on sockets much of the time); PYTEST_WORKERS=0 runs serially.
exec .venv/bin/pytest -n "${PYTEST_WORKERS:-2}" "$@"
