#!/usr/bin/env bash
# Set up (idempotent) and run the checks: ruff, ruff format, mypy (strict), the docs site (strict:
# broken links and anchors fail) and pytest.
#   scripts/test.sh            everything CI runs (.ci/run)
#   scripts/test.sh --fast     the same checks, then only the unit tests (pytest -m unit): no broker,
#                              clip, browser, database or other process (tests/boundary.py enforces it)
# Extra arguments go to pytest, e.g. `scripts/test.sh -m slow` or `scripts/test.sh -k windower`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
select=()
if [ "${1:-}" = "--fast" ]; then
  shift
  select=(-m unit)
fi
bash scripts/setup.sh
VENV="$ROOT/.venv/bin"
echo "[test] ruff" >&2
"$VENV/ruff" check .
"$VENV/ruff" format --check .
echo "[test] mypy" >&2
"$VENV/mypy"
echo "[test] docs" >&2
NO_MKDOCS_2_WARNING=1 "$VENV/mkdocs" build --strict --quiet
echo "[test] pytest" >&2
exec "$VENV/python" -m pytest "${select[@]}" "$@"
