#!/usr/bin/env bash
# `orchard config show` vs a minimal Hydra app on the same conf/ (bench/config/conf) with three overrides.
# Builds Orchard (release) and uses the project's pinned Python environment for hydra-core.
source "$(dirname "$0")/../prepare.sh"
exec "$venv/bin/python" bench/config/bench.py "$@"
