#!/usr/bin/env bash
# The peer benchmark: installs what it needs (wrk and nginx from Debian; bjoern, granian, gunicorn
# and uwsgi in bench/.venv from PyPI), builds tern in release mode, runs every case with the server
# pinned to CPU 0 and wrk pinned to CPU 1, and writes bench/results/latest.md and bench/chart.svg.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v wrk >/dev/null || need+=(wrk)
command -v nginx >/dev/null || need+=(nginx-light)
dpkg -s libev-dev >/dev/null 2>&1 || need+=(libev-dev)   # bjoern builds against libev
if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi
if [ ! -x bench/.venv/bin/python ]; then
    python3 -m venv bench/.venv
fi
bench/.venv/bin/python -m pip install --quiet -r bench/requirements.txt
# tern twice: the Rust binary for the static and line cases, the Python package for WSGI.
cargo build --release --bin tern
bench/.venv/bin/python -m pip install --quiet .
exec python3 bench/bench.py "$@"
