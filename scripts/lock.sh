#!/usr/bin/env bash
# Write requirements.lock: the exact versions of every Python package in .venv (made by
# scripts/setup.sh), which scripts/setup.sh and scripts/build-packages.sh then install against
# (pip constraints), so a package built next month holds what the tests passed with today.
# Run after changing a dependency in pyproject.toml and running scripts/setup.sh; commit the file.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="$ROOT/.venv/bin/python"
tag="$("$PY" -c 'import platform, sys; print(f"{platform.machine()} python{sys.version_info[0]}.{sys.version_info[1]}")')"
{
  echo "# Exact versions for $tag (scripts/lock.sh); a local build label such as +cpu is left out."
  "$PY" -m pip --disable-pip-version-check freeze --local --exclude-editable \
    | sed -E 's/^([A-Za-z0-9_.-]+) @ file:.*\/[A-Za-z0-9_.]+-([0-9][^-]*)-.*$/\1==\2/; s/\+[A-Za-z0-9.]+$//' \
    | LC_ALL=C sort -f
} > "$ROOT/requirements.lock"
echo "requirements.lock: $(grep -vc '^#' "$ROOT/requirements.lock") packages for $tag"
