#!/usr/bin/env bash
# Install everything (first run) and run gridfleet's main job.
# With no arguments: a grid backtest on real Binance candles (embedded default, no external services).
# With arguments: they go to the `gridfleet` CLI, e.g. ./run.sh backtest --config examples/btc_grid.yaml --data FILE
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$ROOT/scripts/bootstrap.sh"
if [ "$#" -eq 0 ]; then
    set -- serve
fi
exec "$ROOT/.venv/bin/gridfleet" "$@"
