#!/usr/bin/env bash
# Coverage-guided fuzzing of tern-core's and tern-lines' parsers with libFuzzer, through cargo fuzz,
# on stable Rust.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#
# Installs cargo-fuzz from crates.io if it is missing (it builds libFuzzer from the libfuzzer-sys
# crate with the machine's C++ compiler), builds every target in fuzz/ without a sanitizer (the
# only mode stable Rust has; the targets check their own invariants), then runs each one for the
# given time (default 15 s). Each run starts from the committed seeds (fuzz/corpus/<target>) and
# known crash inputs (fuzz/regressions/<target>) plus what earlier runs here found
# (fuzz/target/corpus/<target>). Exits non-zero if any target crashed, and says where the input is.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-15}"
shift || true
# The version the fuzz/ crate was last checked with; pinned so every machine runs the same tool.
cargo_fuzz_version="0.13.2"
# A single input taking longer than this (unit: seconds) counts as a hang and fails the run.
unit_timeout=10

if [[ "$(cargo fuzz --version 2>/dev/null || true)" != "cargo-fuzz $cargo_fuzz_version" ]]; then
    echo "fuzz: installing cargo-fuzz $cargo_fuzz_version"
    cargo install cargo-fuzz --version "$cargo_fuzz_version" --locked
fi

# Its own target directory: the instrumented build shares nothing with the workspace's.
export CARGO_TARGET_DIR="$PWD/fuzz/target"
build_flags=(--fuzz-dir fuzz --sanitizer none --debug-assertions)

if [[ $# -gt 0 ]]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list --fuzz-dir fuzz)
fi

echo "fuzz: building ${targets[*]}"
cargo fuzz build "${build_flags[@]}"

mkdir -p fuzz/target/logs
passed=0
failed=()
for target in "${targets[@]}"; do
    found="fuzz/target/corpus/$target"
    mkdir -p "$found"
    inputs=("$found" "fuzz/corpus/$target")
    if [[ -d "fuzz/regressions/$target" ]]; then
        inputs+=("fuzz/regressions/$target")
    fi
    log="fuzz/target/logs/$target.log"
    echo "fuzz: $target for ${seconds}s"
    if cargo fuzz run "${build_flags[@]}" "$target" "${inputs[@]}" -- \
        -max_total_time="$seconds" -timeout="$unit_timeout" >"$log" 2>&1; then
        grep -E '^Done [0-9]+ runs' "$log" | sed "s/^/fuzz: $target: /" || true
        passed=$((passed + 1))
    else
        failed+=("$target")
        echo "fuzz: $target FAILED; from $log:"
        grep -m 1 -A 6 'panicked at' "$log" || true
        tail -n 25 "$log"
        crash="$(grep -oE 'Test unit written to \S+' "$log" | tail -n 1 | cut -d' ' -f5 || true)"
        if [[ -n "$crash" ]]; then
            echo "fuzz: $target: crash input: $crash"
            echo "fuzz: replay with: cargo fuzz run ${build_flags[*]} $target $crash"
        fi
    fi
done

echo "fuzz: ${passed} passed, ${#failed[@]} failed"
if [[ ${#failed[@]} -gt 0 ]]; then
    echo "fuzz: failed targets: ${failed[*]}"
    exit 1
fi
