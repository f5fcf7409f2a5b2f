#!/usr/bin/env bash
# Set up (if needed) and run the demo: the bundled Salesloft sandbox, a tap -> files sync, and upserts back.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
exec .venv/bin/connector demo "$@"
