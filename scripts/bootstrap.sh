#!/usr/bin/env bash
# Create .venv and install gridfleet with its pinned dependencies (idempotent: re-installs only when
# pyproject.toml changed). Sourced by run.sh and test.sh; EXTRAS selects optional dependency groups.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
EXTRAS="${EXTRAS:-}"
PY="${PYTHON:-python3}"

if [ ! -x "$VENV/bin/python" ]; then
    "$PY" -m venv "$VENV"
fi
stamp="$VENV/.gridfleet-installed"
want="$(cat "$ROOT/pyproject.toml" | sha256sum | cut -c1-16)-${EXTRAS}"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "gridfleet: installing Python dependencies into .venv ${EXTRAS:+(extras: $EXTRAS)}" >&2
    "$VENV/bin/python" -m pip install -q --upgrade pip >&2
    spec="$ROOT"
    [ -n "$EXTRAS" ] && spec="$ROOT[$EXTRAS]"
    "$VENV/bin/python" -m pip install -q -e "$spec" >&2
    echo "$want" > "$stamp"
fi
