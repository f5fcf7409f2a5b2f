#!/usr/bin/env bash
# Install a PostgreSQL server for the tests of the PostgreSQL state store (Debian's package), when none is
# there yet. Needs root and apt-get (CI has both); anywhere else it says what to do and leaves the tests to
# skip those few tests, saying so.
set -euo pipefail
if command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "install-postgres: no PostgreSQL server and no root apt-get to install one:" \
    "the PostgreSQL state-store tests will be skipped (sudo apt-get install postgresql)" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends postgresql >/dev/null; }; then
  echo "install-postgres: WARNING: apt-get could not install postgresql:" \
    "the PostgreSQL state-store tests will be skipped" >&2
fi
