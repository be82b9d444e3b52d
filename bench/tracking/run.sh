#!/usr/bin/env bash
# Orchard vs `mlflow server` on this machine. Builds Orchard (release), uses the project's pinned Python
# environment (scripts/venv.sh) for mlflow, needs `wrk` (apt-get install wrk). Extra arguments go to bench.py,
# e.g. `bench/tracking/run.sh --runs 2000 --seconds 5` for a quicker pass. Results: stdout and
# bench/results/tracking.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }
cargo build --release --locked --bin orchard
venv=$(scripts/venv.sh)
exec "$venv/bin/python" bench/tracking/bench.py "$@"
