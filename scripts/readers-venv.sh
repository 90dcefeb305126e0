#!/usr/bin/env bash
# Creates .venv-readers: the independent Iceberg readers the interop tier (tests/interop) compares
# lakeplane's tables with, in a virtualenv of their own (their DuckDB is 1.5, lakeplane's is 2.0).
# Runs once: a stamp holding the requirements' checksum makes a second run do nothing.
# Usage: scripts/readers-venv.sh [PYTHON]   (default python3; VENV=... overrides the folder)
set -euo pipefail
cd "$(dirname "$0")/.."
python=${1:-${PYTHON:-python3}}
venv=${VENV:-.venv-readers}
requirements=tests/interop/readers-requirements.txt
stamp=$venv/.installed
sum=$(sha256sum "$requirements" | cut -d' ' -f1)
exec 9<scripts/readers-venv.sh
flock 9  # one install at a time (two test runs starting on a fresh clone)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$sum" ] && [ -x "$venv/bin/python" ]; then
  touch "$stamp"  # newer than this script, for make
  exit 0
fi
echo "installing the interop readers in $venv" >&2
rm -rf "$venv"
"$python" -m venv "$venv"
"$venv/bin/pip" install --quiet --upgrade pip
"$venv/bin/pip" install --quiet -r "$requirements"
"$venv/bin/python" - <<'PY'
import datafusion, daft, duckdb, polars, pyiceberg, pyiceberg_core.datafusion  # noqa: F401
import duckdb_extension_avro, duckdb_extension_iceberg  # noqa: F401
PY
echo "$sum" > "$stamp"
