#!/usr/bin/env bash
# Runs the whole test suite: Rust unit and integration tests (on SQLite and PostgreSQL) and the interop suite,
# which drives `orchard` with the real, pinned Python clients (mlflow, lightgbm, ...).
#
# It installs what it needs: the Python test dependencies go into a virtualenv kept outside the clone
# (ORCHARD_VENV, default ~/.cache/orchard/venv-<hash of requirements>), reused while the pins stay the same.
# PostgreSQL must be installed; it is started if it is not running.
#
#   scripts/test.sh              everything
#   scripts/test.sh -k search    passes the rest of the arguments to pytest
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

export ORCHARD_REQUIRE_POSTGRES=1
export ORCHARD_TEST_POSTGRES=${ORCHARD_TEST_POSTGRES:-postgresql://postgres@127.0.0.1:5432/postgres}
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
# The build cache lives outside the clone, so a fresh clone on a machine that built before starts warm.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/orchard/target}

step() { printf '\n==> %s\n' "$*"; }

step "PostgreSQL"
if ! pg_isready -q -h 127.0.0.1 -p 5432; then
    for version in /etc/postgresql/*; do
        pg_ctlcluster --skip-systemctl-redirect "$(basename "$version")" main start || true
    done
    for _ in $(seq 1 60); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.5; done
fi
pg_isready -h 127.0.0.1 -p 5432

step "Browser for the web UI tests (Debian's chromium and chromedriver)"
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    as_root=""; [ "$(id -u)" = 0 ] || as_root="sudo"
    $as_root apt-get install -y -q chromium chromium-driver \
        || { $as_root apt-get update -q && $as_root apt-get install -y -q chromium chromium-driver; }
fi
chromium --version

step "Module structure (no two files of a crate import each other)"
python3 scripts/import_cycles.py crates

step "Rust tests (SQLite and PostgreSQL)"
cargo build --locked --bin orchard
cargo test --locked --workspace

step "Python test dependencies"
venv=$(scripts/venv.sh)
echo "using $venv"

step "Interop tests (real mlflow, hydra-core and dvc against orchard; SQLite and PostgreSQL; local and S3 storage)"
export ORCHARD_BIN="$CARGO_TARGET_DIR/debug/orchard"
"$venv/bin/python" -m pytest tests/interop -q -p no:cacheprovider "$@"
