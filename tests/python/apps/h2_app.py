"""The WSGI app of the HTTP/2 tests (test_http2.py): one endpoint per thing a test checks.

Run by ``tern serve h2_app --pythonpath tests/python/apps``. State shared between requests (call
counters, the events a streamed response waits on) is kept in this process under a ``token`` each
test picks; the tests start tern with one worker, so every request sees the same state.
"""

import hashlib
import json
import os
import threading
import time
import urllib.parse

_lock = threading.Lock()
_calls = {}  # token -> number of calls of /count
_events = {}  # token -> threading.Event

WAIT_LIMIT = 30  # seconds an endpoint that waits for the test gives up after


def _query(environ):
    return dict(urllib.parse.parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True))


def _event(token):
    with _lock:
        return _events.setdefault(token, threading.Event())


def _answer(start_response, body, content_type="text/plain; charset=utf-8", status="200 OK", extra=()):
    if isinstance(body, str):
        body = body.encode("utf-8")
    start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body))), *extra])
    return [body]


def _json(start_response, value):
    return _answer(start_response, json.dumps(value), "application/json")


def environ_view(environ, start_response):
    """The CGI variables and the wsgi.* entries a test looks at, as JSON."""
    shown = {key: value for key, value in environ.items() if "." not in key and isinstance(value, str)}
    shown["wsgi.url_scheme"] = environ["wsgi.url_scheme"]
    shown["wsgi.input_terminated"] = environ.get("wsgi.input_terminated", False)
    return _json(start_response, shown)


def body_digest(environ, start_response):
    """Reads wsgi.input to its end and says how much came, its SHA-256 and what CONTENT_LENGTH said."""
    stream = environ["wsgi.input"]
    digest = hashlib.sha256()
    length = 0
    while True:
        part = stream.read(65536)
        if not part:
            break
        digest.update(part)
        length += len(part)
    return _json(
        start_response,
        {"length": length, "sha256": digest.hexdigest(), "content_length": environ.get("CONTENT_LENGTH", "<absent>")},
    )


def echo(environ, start_response):
    """The request body back."""
    stream = environ["wsgi.input"]
    parts = []
    while True:
        part = stream.read(65536)
        if not part:
            break
        parts.append(part)
    return _answer(start_response, b"".join(parts), "application/octet-stream")


def stream(environ, start_response):
    """A body from a generator: ``first`` alone, then (once /release?token= came, or at once
    without a token) ``count`` numbered pieces. No Content-Length."""
    query = _query(environ)
    token = query.get("token")
    count = int(query.get("count", "5"))
    start_response("200 OK", [("Content-Type", "text/plain")])

    def pieces():
        yield b"first\n"
        if token:
            _event(token).wait(WAIT_LIMIT)
        for index in range(count):
            yield b"piece %d\n" % index

    return pieces()


def release(environ, start_response):
    _event(_query(environ)["token"]).set()
    return _answer(start_response, "released")


def headers(environ, start_response):
    """Headers of mixed case, one repeated."""
    return _answer(
        start_response,
        "headers",
        extra=[("X-Custom-Header", "Some Value"), ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2"), ("X-UPPER", "yes")],
    )


def fail(environ, start_response):
    raise RuntimeError("h2_app fails on purpose")


def count(environ, start_response):
    token = _query(environ)["token"]
    with _lock:
        _calls[token] = _calls.get(token, 0) + 1
    return _answer(start_response, "counted")


def calls(environ, start_response):
    with _lock:
        value = _calls.get(_query(environ)["token"], 0)
    return _answer(start_response, str(value))


def wait_file(environ, start_response):
    """Writes ``entered`` to the file named by ``marker``, then waits until the file named by
    ``release`` exists (at most WAIT_LIMIT seconds), then answers."""
    query = _query(environ)
    with open(query["marker"], "w") as marker:
        marker.write("entered")
    deadline = time.monotonic() + WAIT_LIMIT
    while not os.path.exists(query["release"]) and time.monotonic() < deadline:
        time.sleep(0.02)
    return _answer(start_response, "finished after release")


ROUTES = {
    "/environ": environ_view,
    "/digest": body_digest,
    "/echo": echo,
    "/stream": stream,
    "/release": release,
    "/headers": headers,
    "/fail": fail,
    "/count": count,
    "/calls": calls,
    "/wait-file": wait_file,
}


def application(environ, start_response):
    route = ROUTES.get(environ["PATH_INFO"])
    if route is None:
        return _answer(start_response, "hello from h2_app " + environ["PATH_INFO"])
    return route(environ, start_response)
