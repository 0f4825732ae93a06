"""The applications every server runs in the benchmark: the same code for tern and its peers (WSGI;
`asgi_hello` for the ASGI hand-off measurement in NOTES.md)."""

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


def mixed(environ, start_response):
    """One app with a fast and a slow route: `/slow` waits 100 ms (a slow query, say), the rest
    answers like hello at once. The mixed case loads both at the same time."""
    if environ.get("PATH_INFO") == "/slow":
        time.sleep(0.1)
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(HELLO)))])
    return [HELLO]


def upload(environ, start_response):
    """Reads the whole request body in 64 KiB pieces, as an upload handler does, and answers with
    the number of bytes it read (the upload case sends 10 MB)."""
    stream = environ["wsgi.input"]
    remaining = int(environ.get("CONTENT_LENGTH") or 0)
    received = 0
    while remaining > 0:
        chunk = stream.read(min(remaining, 65536))
        if not chunk:
            break
        received += len(chunk)
        remaining -= len(chunk)
    body = str(received).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


async def asgi_hello(scope, receive, send):
    """The ASGI twin of hello: 13-byte body with Content-Length (lifespan refused at once)."""
    if scope["type"] != "http":
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain"), (b"content-length", b"13")],
        }
    )
    await send({"type": "http.response.body", "body": HELLO})
