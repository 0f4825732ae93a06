#!/usr/bin/env bash
# Builds tern in release mode and serves the example site on http://127.0.0.1:9000 (Ctrl-C stops).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bin tern
exec ./target/release/tern serve -r examples/site "$@"
