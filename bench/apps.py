"""The WSGI applications every server runs in the benchmark: the same code for tern and its peers."""

import time

HELLO = b"Hello, World!"  # 13 bytes


def hello(environ, start_response):
    """13-byte body with Content-Length."""
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(HELLO)))])
    return [HELLO]


def slow(environ, start_response):
    """Waits 10 ms (a database, say), then answers like hello."""
    time.sleep(0.01)
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(HELLO)))])
    return [HELLO]


def echo(environ, start_response):
    """Reads the whole request body with wsgi.input.read() and sends it back."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length)
    start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(len(body)))])
    return [body]
