#!/usr/bin/env bash
# Checks the wheel users install without Rust: builds it for this machine's architecture
# (scripts/wheel.sh), installs it into a fresh virtualenv with no package index and no Rust on PATH,
# and serves a static file and a tiny WSGI app with the installed `tern` on 127.0.0.1 (port 0),
# checking both bodies, then stops it with SIGTERM and expects exit status 0.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/wheel.sh "$(uname -m)-unknown-linux-gnu"
wheels=(dist/*"$(uname -m)".whl)
wheel="$PWD/${wheels[0]}"

work="$(mktemp -d)"
server_pid=""
cleanup() {
    if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill "$server_pid"
        wait "$server_pid" || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

python3 -m venv "$work/venv"
# --no-index: the wheel has no dependencies, and nothing may be fetched or built.
"$work/venv/bin/python" -m pip install --quiet --no-index --disable-pip-version-check "$wheel"

mkdir -p "$work/app" "$work/static"
echo "static body from the wheel" >"$work/static/hello.txt"
cat >"$work/app/wheel_app.py" <<'PYTHON'
def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"wsgi body from the wheel: " + environ["PATH_INFO"].encode()]
PYTHON

# The server runs with only the virtualenv and the system's directories on PATH: no cargo, no rustc.
clean_path="$work/venv/bin:/usr/bin:/bin"
for tool in cargo rustc; do
    if env PATH="$clean_path" sh -c "command -v $tool" >/dev/null; then
        echo "test_wheel: $tool is on the clean PATH ($clean_path); the check would prove nothing" >&2
        exit 1
    fi
done

cd "$work"
env PATH="$clean_path" tern --version
env PATH="$clean_path" tern serve wheel_app:application --pythonpath app -r static --port 0 \
    2>"$work/server.log" &
server_pid=$!

# Bounded wait for the start-up line that names the port (20 s).
port=""
for _ in $(seq 200); do
    port="$(sed -n 's|.*listening on http://127\.0\.0\.1:\([0-9]*\).*|\1|p' "$work/server.log" | head -n 1)"
    [[ -n "$port" ]] && break
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
done
if [[ -z "$port" ]]; then
    echo "test_wheel: tern did not start:" >&2
    cat "$work/server.log" >&2
    exit 1
fi

env PATH="$clean_path" python - "$port" <<'PYTHON'
import sys
import urllib.request

base = f"http://127.0.0.1:{sys.argv[1]}"
expected = {
    "/static/hello.txt": b"static body from the wheel\n",
    "/greeting": b"wsgi body from the wheel: /greeting",
}
for path, body in expected.items():
    with urllib.request.urlopen(base + path, timeout=10) as response:
        got = response.read()
    assert response.status == 200 and got == body, (path, response.status, got)
    print(f"test_wheel: GET {path} -> 200 {got!r}")
PYTHON

kill -TERM "$server_pid"
status=0
wait "$server_pid" || status=$?
server_pid=""
if [[ "$status" -ne 0 ]]; then
    echo "test_wheel: tern exited with status $status after SIGTERM:" >&2
    cat "$work/server.log" >&2
    exit 1
fi
echo "test_wheel: 2 passed, 0 failed"
