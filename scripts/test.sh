#!/usr/bin/env bash
# Sets up and runs every test of tern:
# 0. the module graph of each crate has no cycles (scripts/module_cycles.py);
# 1. the Rust unit tests and the integration tests, which start the real `tern` binary on 127.0.0.1
#    and talk to it over real sockets;
# 2. the Python package: `pip install .` into a fresh virtualenv (.venv), then pytest against the
#    installed `tern` command and `python -m tern_server`.
# Needs the Rust toolchain and python3 with venv; everything else comes from crates.io and PyPI,
# except Chromium and its driver for the demo's browser test, wrk for the benchmark harness test and
# nghttp2's clients (nghttp, h2load) for the HTTP/2 tests, from Debian's packages (apt-get).
set -euo pipefail
cd "$(dirname "$0")/.."

# No dependency cycles between the modules of a crate (plain Python, before anything is built).
python3 scripts/test_module_cycles.py
python3 scripts/module_cycles.py

# Lints are declared in [workspace.lints]; warnings are denied here, not in the source.
export RUSTFLAGS="${RUSTFLAGS:-} -D warnings"
cargo build --workspace --all-targets
# Formatting and clippy, with the toolchain's own components (they come with the machine's rustup
# toolchain; a toolchain without them cannot be completed from a registry, so say so and go on).
if cargo fmt --version >/dev/null 2>&1 && cargo clippy --version >/dev/null 2>&1; then
    cargo fmt --all --check
    cargo clippy --workspace --all-targets -- -D warnings
else
    echo "test.sh: rustfmt or clippy is not installed with this toolchain; not checked" >&2
fi
cargo test --workspace

# The demo's browser test drives Debian's headless Chromium through its driver, and the benchmark
# harness test runs wrk, the HTTPS tests make certificates with openssl and fetch with curl, the
# HTTP/2 tests drive nghttp and h2load (Debian's nghttp2-client): install them where missing (CI
# runs as root on Debian), and make their absence a failure instead of a skip.
apt_need=()
command -v chromium >/dev/null || apt_need+=(chromium)
command -v chromedriver >/dev/null || apt_need+=(chromium-driver)
command -v wrk >/dev/null || apt_need+=(wrk)
command -v openssl >/dev/null || apt_need+=(openssl)
command -v curl >/dev/null || apt_need+=(curl)
{ command -v nghttp && command -v h2load; } >/dev/null || apt_need+=(nghttp2-client)
if [ ${#apt_need[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -q
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${apt_need[@]}"
fi
export TERN_REQUIRE_BROWSER=1 TERN_REQUIRE_BENCH_TOOLS=1 TERN_REQUIRE_HTTP2_TOOLS=1

python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -r tests/python/requirements.txt
.venv/bin/python -m pip install --quiet .
.venv/bin/python -m pytest tests/python
