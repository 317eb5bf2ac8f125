#!/usr/bin/env bash
# Set up (idempotent) and run the checks: ruff, ruff format, mypy (strict) and pytest.
# Extra arguments go to pytest, e.g. `scripts/test.sh -m slow` or `scripts/test.sh -k windower`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh
VENV="$ROOT/.venv/bin"
echo "[test] ruff" >&2
"$VENV/ruff" check .
"$VENV/ruff" format --check .
echo "[test] mypy" >&2
"$VENV/mypy"
echo "[test] pytest" >&2
exec "$VENV/python" -m pytest "$@"
