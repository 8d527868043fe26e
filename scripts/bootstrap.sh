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

# --- web UI: build frontend/ into frontend/dist (served by `gridfleet serve`) when Node.js and npm exist.
# `npm ci` runs when package-lock.json changed (or node_modules is missing), `npm run build` when the stamp (a hash
# of package-lock.json and every source file of the UI) changed. GRIDFLEET_SKIP_FRONTEND=1 skips this step.
gridfleet_frontend_hash() {
    (cd "$1" && find src public index.html vite.config.ts tsconfig.json tsconfig.app.json tsconfig.node.json \
        package.json package-lock.json -type f -print0 2>/dev/null | LC_ALL=C sort -z | xargs -0 sha256sum) \
        | sha256sum | cut -c1-16
}

gridfleet_build_frontend() {
    local fe="$ROOT/frontend"
    [ -f "$fe/package.json" ] || return 0
    [ "${GRIDFLEET_SKIP_FRONTEND:-}" = "1" ] && return 0
    if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
        echo "gridfleet: Node.js/npm not found: the web UI is not built (the API, CLI and bots work;" \
             "install Node.js >= 20.19 with npm and run this again to get the UI)" >&2
        return 0
    fi
    if ! node -e 'const [a,b]=process.versions.node.split(".").map(Number);process.exit(a>20||(a===20&&b>=19)?0:1)'; then
        echo "gridfleet: Node.js $(node --version) is too old for the web UI (needs >= 20.19); UI not built" >&2
        return 0
    fi
    local lock_stamp="$fe/node_modules/.gridfleet-lock"
    local lock_hash
    lock_hash="$(sha256sum "$fe/package-lock.json" | cut -c1-16)"
    if [ ! -f "$lock_stamp" ] || [ "$(cat "$lock_stamp")" != "$lock_hash" ]; then
        echo "gridfleet: installing the web UI's npm packages (npm ci)" >&2
        (cd "$fe" && npm ci --no-audit --no-fund --loglevel=error >&2)
        echo "$lock_hash" > "$lock_stamp"
    fi
    local stamp="$fe/dist/.gridfleet-build"
    if [ -f "$stamp" ] && [ -f "$fe/dist/index.html" ] && [ "$(cat "$stamp")" = "$(gridfleet_frontend_hash "$fe")" ]; then
        return 0
    fi
    echo "gridfleet: building the web UI (frontend/dist)" >&2
    (cd "$fe" && npm run --silent build >&2)
    gridfleet_frontend_hash "$fe" > "$stamp"
}
gridfleet_build_frontend
