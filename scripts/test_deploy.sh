#!/usr/bin/env bash
# Tests the deployment recipe in deploy/: nginx with deploy/nginx/tern.conf in front of two tern
# instances (one on a socket passed as systemd's socket activation passes it), each redeployed in
# turn under keep-alive load through nginx (tests/python/test_deploy.py; about 25 s).
#
# nginx comes from Debian's packages when it is missing (apt-get: run as root, as CI does); only
# the binary is used: the test starts its own nginx with a generated configuration in a temporary
# directory and stops it by its process id, whatever a system nginx service does. The tern under
# test is the one `pip install .` put in .venv (scripts/test.sh makes it; it is made here if
# missing). Everything the test starts is stopped when this script ends, even if pytest itself is
# killed or times out.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian puts nginx in /usr/sbin, which is not on every user's PATH.
export PATH="$PATH:/usr/sbin:/sbin"
if ! command -v nginx >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx
fi

if [[ ! -x .venv/bin/tern ]]; then
    python3 -m venv .venv
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -r tests/python/requirements.txt
    .venv/bin/python -m pip install --quiet .
fi

# The test appends "<pid> <its directory>" for every process it starts; see cleanup.
pids_file="$(mktemp)"
pytest_pid=""
cleanup() {
    local status=$?
    if [[ -n "$pytest_pid" ]] && kill -0 "$pytest_pid" 2>/dev/null; then
        kill -TERM "$pytest_pid"
        wait "$pytest_pid" 2>/dev/null || true
    fi
    # Normally the test stopped all of them already. A process still running is stopped only if
    # its command line still names the test's directory, so a recycled process id is left alone.
    local pid directory stopping=()
    while read -r pid directory; do
        if [[ -r "/proc/$pid/cmdline" ]] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$directory"; then
            echo "test_deploy: stopping process $pid left by the test" >&2
            kill -TERM "$pid" 2>/dev/null || true
            stopping+=("$pid")
        fi
    done <"$pids_file"
    for pid in "${stopping[@]}"; do
        for _ in $(seq 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
    done
    rm -f "$pids_file"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Required here: a missing nginx or loopback address fails the test instead of skipping it.
# pytest runs in the background so that a signal to this script reaches the trap at once.
TERN_DEPLOY_TEST_REQUIRED=1 TERN_DEPLOY_PIDS="$pids_file" \
    timeout 240 .venv/bin/python -m pytest tests/python/test_deploy.py -q -s -rxX &
pytest_pid=$!
status=0
wait "$pytest_pid" || status=$?
pytest_pid=""
exit "$status"
