#!/usr/bin/env bash
# Install everything the tests need (first run) and run the whole test suite: lint, type check, tests.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
EXTRAS=dev source "$ROOT/scripts/bootstrap.sh"
source "$ROOT/scripts/system_deps.sh"
cd "$ROOT"
echo "== ruff"; .venv/bin/ruff check gridfleet tests benchmarks
echo "== mypy"; .venv/bin/mypy
echo "== frontend"
if command -v npm >/dev/null 2>&1 && [ -d frontend/node_modules ]; then
    (cd frontend && npm run --silent typecheck && npm run --silent test)
else
    echo "skipped: Node.js/npm or frontend/node_modules missing (see scripts/bootstrap.sh)"
fi
echo "== pytest"; exec .venv/bin/pytest -q -n "${GRIDFLEET_TEST_WORKERS:-2}" "$@"
