#!/usr/bin/env bash
# Serves the demo with a tern that is already installed: the WSGI app in examples/demo with its
# static files under /static/, and the static example site under /site/, on http://127.0.0.1:9000
# unless the extra arguments (passed to `tern serve`) say otherwise. scripts/demo.sh installs tern
# and runs this; the browser test (tests/python/test_demo_browser.py) runs it on a free port.
# TERN names the tern command (on PATH, or a path from the repository root) [default:
# .venv/bin/tern].
set -euo pipefail
tern="${TERN:-.venv/bin/tern}"
cd "$(dirname "$0")/.."
# --chdir comes first: the static directories are found from examples/demo.
exec "$tern" serve app:application --chdir examples/demo \
    -r static --static-url /static/ --static /site/=../site "$@"
