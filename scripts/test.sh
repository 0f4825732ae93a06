#!/usr/bin/env bash
# Sets up and runs every test of tern: unit tests and the integration tests, which start the real
# server on 127.0.0.1 and talk to it over real sockets. Needs only the Rust toolchain.
set -euo pipefail
cd "$(dirname "$0")/.."

# Lints are declared in [workspace.lints]; warnings are denied here, not in the source.
export RUSTFLAGS="${RUSTFLAGS:-} -D warnings"
cargo build --workspace --all-targets
cargo test --workspace
