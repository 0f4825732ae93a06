#!/usr/bin/env bash
# Sets up and runs every test of tern:
# 1. the Rust unit tests and the integration tests, which start the real `tern` binary on 127.0.0.1
#    and talk to it over real sockets;
# 2. the Python package: `pip install .` into a fresh virtualenv (.venv), then pytest against the
#    installed `tern` command and `python -m tern_server`.
# Needs the Rust toolchain and python3 with venv; everything else comes from crates.io and PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."

# Lints are declared in [workspace.lints]; warnings are denied here, not in the source.
export RUSTFLAGS="${RUSTFLAGS:-} -D warnings"
cargo build --workspace --all-targets
cargo test --workspace

python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -r tests/python/requirements.txt
.venv/bin/python -m pip install --quiet .
.venv/bin/python -m pytest tests/python
