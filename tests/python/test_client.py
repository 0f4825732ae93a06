"""``tern client`` from the pip-installed package stops at Ctrl-C, as the Rust binary does."""

import os
import signal
import subprocess
import sys

from wsgi_support import wait_for

TERN = os.path.join(os.path.dirname(sys.executable), "tern")


def open_sockets(pid):
    try:
        return sum(os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:") for fd in os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def test_ctrl_c_stops_the_client_at_once(start_server):
    """Regression: under the Python package the interpreter's SIGINT handler swallowed Ctrl-C, the
    client ran on to the end of its --duration and then died with a Python traceback."""
    server = start_server("echo")
    host, port = server.address
    client = subprocess.Popen(
        [TERN, "client", f"{host}:{port}", "-c", "4", "--duration", "600"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # Its connections are open: the Rust client is running.
        wait_for(lambda: open_sockets(client.pid) >= 4, message="the client's connections")
        client.send_signal(signal.SIGINT)
        _, stderr = client.communicate(timeout=20)
    finally:
        if client.poll() is None:
            client.kill()
            client.wait()
    assert client.returncode == -signal.SIGINT, (client.returncode, stderr)
    assert "Traceback" not in stderr
