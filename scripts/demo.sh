#!/usr/bin/env bash
# Sets up tern (a virtualenv in .venv with the package built by `pip install .`) and serves the
# demo: the WSGI app in examples/demo with its static files under /static/, and the static example
# site under /site/, on http://127.0.0.1:9000 (Ctrl-C stops). Extra arguments go to `tern serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet .
# --chdir comes first: the static directories are found from examples/demo.
exec .venv/bin/tern serve app:application --chdir examples/demo \
    -r static --static-url /static/ --static /site/=../site "$@"
