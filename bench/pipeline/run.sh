#!/usr/bin/env bash
# Orchard's per-stage overhead vs dvc repro and Prefect 3 on the same DAG (see bench.py). Builds Orchard
# (release); dvc from the project's pinned venv (scripts/venv.sh); Prefect from its own venv (requirements.txt
# here, ~/.cache/orchard/bench-prefect-<hash>), created on first use.
# Options: --stages N (default 1000), --repeat N (runs of the baseline and of orchard, default 3; medians used).
# BENCH_DIR=/dev/shm runs it on tmpfs.
source "$(dirname "$0")/../prepare.sh"
pins=$(sha256sum bench/pipeline/requirements.txt | cut -c1-12)
prefect=${ORCHARD_PREFECT_VENV:-$HOME/.cache/orchard/bench-prefect-$pins}
if [ ! -f "$prefect/.complete" ]; then
    rm -rf "$prefect"
    python3 -m venv "$prefect"
    "$prefect/bin/pip" install --quiet --disable-pip-version-check -r bench/pipeline/requirements.txt >&2
    touch "$prefect/.complete"
fi
exec "$venv/bin/python" bench/pipeline/bench.py --prefect-python "$prefect/bin/python" "$@"
