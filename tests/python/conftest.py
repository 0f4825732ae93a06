"""Starting the pip-installed ``tern`` as a real process on 127.0.0.1 and stopping it by its PID."""

import os
import re
import signal
import subprocess
import sys
import threading

import pytest

from wsgi_support import APPS_DIR

STARTUP_TIMEOUT = 20


class Server:
    """A running tern process; ``address`` is (host, port) from its start-up line."""

    def __init__(self, argv, env=None, cwd=None):
        self.process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env, cwd=cwd)
        self.log_lines = []
        found = threading.Event()
        self.address = None

        def read_log():
            for line in self.process.stderr:
                self.log_lines.append(line)
                match = re.search(r"listening on (?:https|http|tcp)://([\d.]+):(\d+)", line)
                if match and not found.is_set():
                    self.address = (match.group(1), int(match.group(2)))
                    found.set()

        self.log_reader = threading.Thread(target=read_log, daemon=True)
        self.log_reader.start()
        if not found.wait(STARTUP_TIMEOUT):
            self.stop()
            raise RuntimeError("tern did not start:\n" + "".join(self.log_lines))

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                return self.process.wait()
        return self.process.returncode


@pytest.fixture
def start_server():
    """Starts servers for one test and stops every one of them afterwards."""
    started = []

    def start(*args, use_module=False):
        launcher = [sys.executable, "-m", "tern_server"] if use_module else [os.path.join(os.path.dirname(sys.executable), "tern")]
        server = Server([*launcher, *args, "--port", "0"])
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


# Lines a wsgiref.validate validator leaves in the log when the server breaks PEP 3333 in a way the
# validator only sees after the response (an iterable never closed) or reports as an error.
VALIDATOR_COMPLAINTS = ("AssertionError", "WSGIWarning", "garbage collected without being closed")


@pytest.fixture
def serve_app(start_server):
    """Starts ``tern serve APP --pythonpath tests/python/apps ARGS...``.

    For apps wrapped in ``wsgiref.validate.validator`` (modules named ``validated_*``), the whole log
    is checked after the server stopped: any validator complaint fails the test.
    """
    started = []

    def start(app, *args, use_module=False):
        server = start_server("serve", app, "--pythonpath", APPS_DIR, *args, use_module=use_module)
        server.app = app
        started.append(server)
        return server

    yield start
    for server in started:
        if not server.app.startswith("validated_"):
            continue
        server.stop()
        server.log_reader.join(10)
        complaints = [line for line in server.log_lines if any(text in line for text in VALIDATOR_COMPLAINTS)]
        assert not complaints, "wsgiref.validate complained:\n" + "".join(server.log_lines)
