#!/usr/bin/env bash
# Prints the path of the project's Python virtualenv (the pinned peers: mlflow, lightgbm, ...), creating it
# first if needed. It lives outside the clone (ORCHARD_VENV, default ~/.cache/orchard/venv-<hash of the pins>)
# so that clones and CI runs on the same machine share it.
set -euo pipefail
cd "$(dirname "$0")/.."
requirements=tests/interop/requirements.txt
pins=$(sha256sum "$requirements" | cut -c1-12)
venv=${ORCHARD_VENV:-$HOME/.cache/orchard/venv-$pins}
mkdir -p "$(dirname "$venv")"
exec 9>"$venv.lock"
flock 9   # one installer at a time; the others wait and then reuse its venv
if [ ! -f "$venv/.complete" ]; then
    # Built in place (console scripts record the venv's path), marked complete only at the end, so an
    # interrupted install is redone rather than reused.
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements" >&2
    touch "$venv/.complete"
fi
echo "$venv"
