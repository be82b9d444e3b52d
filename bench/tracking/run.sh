#!/usr/bin/env bash
# Orchard vs `mlflow server` on this machine. Builds Orchard (release), uses the project's pinned Python
# environment (scripts/venv.sh) for mlflow, needs `wrk` (apt-get install wrk). Extra arguments go to bench.py,
# e.g. `bench/tracking/run.sh --runs 2000 --seconds 5` for a quicker pass. Results: stdout and
# bench/results/tracking.md.
source "$(dirname "$0")/../prepare.sh" wrk
exec "$venv/bin/python" bench/tracking/bench.py "$@"
