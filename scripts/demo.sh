#!/usr/bin/env bash
# Sets up tern (a virtualenv in .venv with the package built by `pip install .`) and serves the
# demo: the WSGI app in examples/demo with its static files under /static/, and the static example
# site under /site/, on http://127.0.0.1:9000 (Ctrl-C stops). Extra arguments go to `tern serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
# -v shows cargo building the Rust core (a few minutes the first time) instead of a silent wait.
.venv/bin/python -m pip install -v . 2>&1 | grep --line-buffered -E "Compiling|Finished|Successfully|rror"
exec scripts/demo_server.sh "$@"
