#!/usr/bin/env bash
# The peer benchmark: installs what it needs, builds tern in release mode, runs every case with the
# server pinned to CPU 0 and wrk pinned to CPU 1, and writes bench/results/latest.md.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v wrk >/dev/null || need+=(wrk)
command -v nginx >/dev/null || need+=(nginx-light)
if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi
cargo build --release --bin tern
exec python3 bench/bench.py "$@"
