#!/usr/bin/env bash
# Builds what users install without Rust: a manylinux_2_17 (manylinux2014) abi3 wheel of the
# tern-server package per target, plus the sdist, into dist/ (emptied first).
#
#   scripts/wheel.sh [TARGET...]      default: x86_64-unknown-linux-gnu aarch64-unknown-linux-gnu
#
# The build tools (maturin, ziglang, auditwheel; pinned) are installed into .venv-wheel. Zig links
# against glibc 2.17's symbols whatever glibc this machine has, and cross-links for aarch64; a target
# whose Rust standard library is missing is added with rustup, and skipped with a message if that
# fails (rustup downloads it). Each wheel is checked with `auditwheel show`: the script fails unless
# the wheel is manylinux_2_17 compliant for its architecture.
set -euo pipefail
cd "$(dirname "$0")/.."

targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
    targets=(x86_64-unknown-linux-gnu aarch64-unknown-linux-gnu)
fi
venv=.venv-wheel
# The versions the wheels were last checked with; pinned so every machine builds the same way.
tools=("maturin==1.16.0" "ziglang==0.17.0" "auditwheel==6.8.2")

if [[ ! -x "$venv/bin/python" ]]; then
    python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${tools[@]}"
export PATH="$PWD/$venv/bin:$PATH"

rm -rf dist
mkdir dist
built=()
skipped=()
for target in "${targets[@]}"; do
    if ! rustup target list --installed | grep -qx "$target"; then
        if ! rustup target add "$target"; then
            echo "wheel: skipping $target: rustup could not add its standard library" >&2
            skipped+=("$target")
            continue
        fi
    fi
    echo "wheel: building for $target"
    maturin build --release --zig --target "$target" --compatibility manylinux2014 --out dist
    built+=("$target")
done
maturin sdist --out dist

status=0
for wheel in dist/*.whl; do
    # The file name ends in the platform tags, the last one manylinux_2_17_<arch>.
    arch="$(basename "$wheel" .whl)"
    arch="${arch##*manylinux_2_17_}"
    report="$(auditwheel show "$wheel")"
    echo "$report"
    if ! grep -q "\"manylinux_2_17_$arch\"" <<<"$report"; then
        echo "wheel: $wheel is not manylinux_2_17_$arch compliant" >&2
        status=1
    fi
    # The tags pip matches against, as the wheel itself declares them.
    "$venv/bin/python" - "$wheel" <<'PYTHON'
import sys
import zipfile

with zipfile.ZipFile(sys.argv[1]) as wheel:
    (metadata,) = [name for name in wheel.namelist() if name.endswith(".dist-info/WHEEL")]
    lines = wheel.read(metadata).decode().splitlines()
tags = [line.removeprefix("Tag: ") for line in lines if line.startswith("Tag: ")]
print(f"wheel: {sys.argv[1]}: tags {', '.join(tags)}")
PYTHON
done
echo "wheel: built for ${built[*]:-nothing}${skipped:+; skipped ${skipped[*]}}"
ls -l dist
exit "$status"
