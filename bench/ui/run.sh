#!/usr/bin/env bash
# Orchard's web UI vs MLflow 3.17's on the same data, in the same headless Chromium. Builds Orchard (release),
# uses the project's pinned Python environment (scripts/venv.sh) for mlflow and selenium, needs chromium and
# chromedriver (apt-get install chromium chromium-driver). Extra arguments go to bench.py, e.g.
# `bench/ui/run.sh --runs 10000` for a quicker pass. Results: stdout and bench/results/ui.md.
source "$(dirname "$0")/../prepare.sh"
exec "$venv/bin/python" bench/ui/bench.py "$@"
