# Sourced by each bench/<name>/run.sh: moves to the project root, checks for wrk when the benchmark drives
# HTTP load (`source bench/prepare.sh wrk`), builds Orchard (release) and sets $venv to the project's pinned
# Python environment (scripts/venv.sh), where the peers (mlflow, dvc, hydra-core, fastapi…) are installed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [ "${1:-}" = wrk ]; then
    command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }
fi
cargo build --release --locked --bin orchard
venv=$(scripts/venv.sh)
