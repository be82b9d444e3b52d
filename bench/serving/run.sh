#!/usr/bin/env bash
# Orchard's /predict vs a FastAPI + uvicorn + LightGBM app of the tutorial kind, same iris model, same load
# (wrk, 32 connections), same machine. Builds Orchard (release), uses the project's pinned Python environment
# (scripts/venv.sh) for lightgbm/fastapi/uvicorn, needs `wrk` (apt-get install wrk).
# Options: --seconds N (default 15), --connections N (default 32).
source "$(dirname "$0")/../prepare.sh" wrk
exec "$venv/bin/python" bench/serving/bench.py "$@"
