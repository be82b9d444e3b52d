#!/usr/bin/env bash
# `orchard config show` vs a minimal Hydra app on the same conf/ (bench/config/conf) with three overrides.
# Builds Orchard (release) and uses the project's pinned Python environment for hydra-core.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release --locked --bin orchard
venv=$(scripts/venv.sh)
exec "$venv/bin/python" bench/config/bench.py "$@"
