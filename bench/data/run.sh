#!/usr/bin/env bash
# `orchard data` vs `dvc` on the same data, side by side: add, clean status, push, pull (cache and workspace
# removed first) for 10,000 files of 1–4 KB and for one 1 GiB file, with md5sum/cp as the physical reference.
# Builds Orchard (release) and uses the project's pinned Python environment for dvc.
# Options: --files N (default 10000), --big-mib N (default 1024), --skip-big, --out FILE (JSON results).
source "$(dirname "$0")/../prepare.sh"
exec "$venv/bin/python" bench/data/bench.py "$@"
