#!/usr/bin/env bash
# The peer benchmark: installs what it needs (wrk, h2load, nginx and the build tools from Debian; bjoern,
# Granian, gunicorn, uWSGI, waitress, Django, uvicorn, Hypercorn and FastAPI in bench/.venv from PyPI;
# oha from crates.io), builds
# tern in release mode, runs every case with the server pinned to CPU 0 and the load generator
# pinned to CPU 1, and writes bench/results/latest.md and bench/chart.svg.
#   bench/run.sh                          every case (about 25 minutes)
#   bench/run.sh --quick                  one short round of every case, to check the harness
#   bench/run.sh --only-case django       one case (repeatable); `bench/run.sh --help` lists them
# Meant for a fresh Debian machine, as root, with the Rust toolchain.
set -euo pipefail
cd "$(dirname "$0")/.."

# oha, the fixed-rate load generator (tail latency, app memory), pinned like the Python peers.
OHA_VERSION=1.16.0

need=()
command -v wrk >/dev/null || need+=(wrk)
command -v nginx >/dev/null || need+=(nginx-light)
command -v openssl >/dev/null || need+=(openssl)                    # the HTTPS case's certificate
command -v h2load >/dev/null || need+=(nghttp2-client)             # the HTTP/2 case's load generator
command -v gcc >/dev/null || need+=(build-essential)               # uWSGI and bjoern build from source
dpkg -s libev-dev >/dev/null 2>&1 || need+=(libev-dev)              # bjoern builds against libev
python3 -c 'import ensurepip' 2>/dev/null || need+=(python3-venv)
python3 -c 'import os, sysconfig; assert os.path.exists(sysconfig.get_paths()["include"] + "/Python.h")' \
    2>/dev/null || need+=(python3-dev)
if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi
if [ ! -x bench/.venv/bin/python ]; then
    python3 -m venv bench/.venv
fi
bench/.venv/bin/python -m pip install --quiet -r bench/requirements.txt
oha="$(command -v oha || echo "${CARGO_HOME:-$HOME/.cargo}/bin/oha")"
if ! "$oha" --version 2>/dev/null | grep -qF "$OHA_VERSION"; then
    cargo install oha --locked --version "$OHA_VERSION"
fi
# tern twice: the Rust binary for the static and line cases, the Python package for WSGI.
cargo build --release --bin tern
bench/.venv/bin/python -m pip install --quiet .
exec python3 bench/bench.py "$@"
