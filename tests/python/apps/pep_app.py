"""A bare WSGI application with one endpoint per PEP 3333 behaviour that test_wsgi_pep3333.py checks.

Run by ``tern serve pep_app:application --pythonpath tests/python/apps``. It stays within what
``wsgiref.validate.validator`` accepts (see validated_pep.py), except the endpoints marked "plain
only", which break the rules on purpose or call ``wsgi.input.read()`` without a size.

Every PATH_INFO the app sees is kept in order (``/records?token=all-paths``), so tests can tell
which requests reached the app and which the server answered itself (static files, 413).

State shared between requests (close() calls, releases of blocked streams, concurrency peaks) is kept
in this process under a ``token`` that each test picks, so tests never see each other's records.
"""

import hashlib
import io
import json
import os
import sys
import threading
import time
import urllib.parse

_lock = threading.Lock()
_counters = {}  # (token, name) -> int
_records = {}  # token -> list of str
_events = {}  # token -> threading.Event
_active = {}  # token -> number of /sleep calls running now


def _count(token, name, delta=1):
    with _lock:
        _counters[token, name] = _counters.get((token, name), 0) + delta
        return _counters[token, name]


def _counter(token, name):
    with _lock:
        return _counters.get((token, name), 0)


def _record(token, text):
    with _lock:
        _records.setdefault(token, []).append(text)


def _event(token):
    with _lock:
        return _events.setdefault(token, threading.Event())


def _query(environ):
    return dict(urllib.parse.parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True))


def _read_all(stream):
    """The whole request body, read with sizes only (the validator forbids read() without one)."""
    parts = []
    while True:
        part = stream.read(65536)
        if not part:
            return b"".join(parts)
        parts.append(part)


class Body:
    """A response iterable that counts its close() calls under (token, 'close')."""

    def __init__(self, iterable, token):
        self.iterable = iterable
        self.token = token

    def __iter__(self):
        return iter(self.iterable)

    def close(self):
        _count(self.token, "close")
        close = getattr(self.iterable, "close", None)
        if close is not None:
            close()


class RecordingFile(io.FileIO):
    """A real file (fileno() works, so a server may sendfile it) that counts its close() calls."""

    token = None

    def close(self):
        if not self.closed and self.token is not None:
            _count(self.token, "file-close")
        super().close()


def _text(start_response, body, status="200 OK", content_type="text/plain; charset=utf-8", extra=()):
    if isinstance(body, str):
        body = body.encode("utf-8")
    start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body))), *extra])
    return [body]


def _json(start_response, value, status="200 OK"):
    return _text(start_response, json.dumps(value), status, "application/json")


def hello(environ, start_response):
    return _text(start_response, "hello world", extra=[("X-App", "pep")])


def describe_environ(environ, start_response):
    """Every CGI variable as it is, and what the wsgi.* entries are."""
    result = {key: value for key, value in environ.items() if "." not in key}
    result["types"] = {key: type(value).__name__ for key, value in environ.items() if "." not in key}
    result["wsgi.version"] = list(environ["wsgi.version"])
    result["wsgi.version.type"] = type(environ["wsgi.version"]).__name__
    for key in ("wsgi.url_scheme", "wsgi.multithread", "wsgi.multiprocess", "wsgi.run_once", "wsgi.input_terminated"):
        result[key] = environ.get(key, "<missing>")
    result["wsgi.file_wrapper"] = callable(environ.get("wsgi.file_wrapper"))
    stream = environ["wsgi.input"]
    result["wsgi.input"] = [name for name in ("read", "readline", "readlines", "__iter__") if hasattr(stream, name)]
    errors = environ["wsgi.errors"]
    result["wsgi.errors"] = [name for name in ("write", "writelines", "flush") if hasattr(errors, name)]
    return _json(start_response, result)


def query(environ, start_response):
    return _text(start_response, environ["QUERY_STRING"])


def echo(environ, start_response):
    """The request body, with what the server said about it in headers."""
    token = _query(environ).get("token")
    if token:
        _count(token, "called")
    body = _read_all(environ["wsgi.input"])
    extra = [
        ("X-Content-Length", environ.get("CONTENT_LENGTH", "<absent>")),
        ("X-Content-Type", environ.get("CONTENT_TYPE", "<absent>")),
        ("X-Read-Past-End", repr(environ["wsgi.input"].read(10))),
    ]
    return _text(start_response, body, content_type="application/octet-stream", extra=extra)


def input_ops(environ, start_response):
    """Runs the ``ops`` query (comma-separated) on wsgi.input and answers with the results as JSON.

    read, read:N, readline, readline:N, readlines, readlines:N, iter. Results are latin-1 strings (or
    lists of them). ``read`` without a size is plain only: the validator requires a size.
    """
    stream = environ["wsgi.input"]
    results = []
    for op in _query(environ)["ops"].split(","):
        name, _, arg = op.partition(":")
        args = (int(arg),) if arg else ()
        if name == "read":
            results.append(stream.read(*args).decode("latin-1"))
        elif name == "readline":
            results.append(stream.readline(*args).decode("latin-1"))
        elif name == "readlines":
            results.append([line.decode("latin-1") for line in stream.readlines(*args)])
        elif name == "iter":
            results.append([line.decode("latin-1") for line in stream])
        else:
            raise ValueError(f"unknown op {op!r}")
    return _json(start_response, results)


def digest(environ, start_response):
    """Plain only: reads the whole body with one read() and answers its length and sha256.

    With a ``token``, the call is counted under (token, 'called') before the body is read.
    """
    token = _query(environ).get("token")
    if token:
        _count(token, "called")
    body = environ["wsgi.input"].read()
    return _text(start_response, f"{len(body)} {hashlib.sha256(body).hexdigest()}")


_kept_inputs = []  # wsgi.input streams /keep-input holds on to after their calls


def keep_input(environ, start_response):
    """Plain only: reads the body with read() (all but the last ``leave`` bytes), answers the
    length and sha256 of what it read, and keeps the stream after the call (as an app that leaks
    its environ does). ``?then=read`` instead reads a byte from the stream the previous call kept
    and answers what that gave or raised."""
    q = _query(environ)
    if q.get("then") == "read":
        try:
            return _text(start_response, repr(_kept_inputs[-1].read(1)))
        except Exception as error:
            return _text(start_response, f"{type(error).__name__}: {error}")
    stream = environ["wsgi.input"]
    leave = int(q.get("leave", "0"))
    body = stream.read(int(environ["CONTENT_LENGTH"]) - leave) if leave else stream.read()
    _kept_inputs.append(stream)
    return _text(start_response, f"{len(body)} {hashlib.sha256(body).hexdigest()}")


def read_then_fail(environ, start_response):
    """Reads the whole body and lets whatever the read raises propagate (after counting it under
    (token, 'raised')), as most applications do when a body cannot be read."""
    token = _query(environ).get("token", "-")
    _count(token, "called")
    try:
        body = _read_all(environ["wsgi.input"])
    except Exception:
        _count(token, "raised")
        raise
    return _text(start_response, body)


def no_read(environ, start_response):
    """Answers without touching the request body (for Expect: 100-continue)."""
    token = _query(environ).get("token")
    if token:
        _count(token, "called")
    return _text(start_response, "did not read the body")


def counter(environ, start_response):
    q = _query(environ)
    return _text(start_response, str(_counter(q["token"], q["name"])))


def records(environ, start_response):
    with _lock:
        value = list(_records.get(_query(environ)["token"], []))
    return _json(start_response, value)


def stream(environ, start_response):
    """``n`` chunks ``chunk-I;`` from a generator, no Content-Length; close() counted under token."""
    q = _query(environ)
    count = int(q.get("n", "3"))
    start_response("200 OK", [("Content-Type", "text/plain")])

    def generate():
        for index in range(count):
            yield f"chunk-{index};".encode()

    return Body(generate(), q.get("token", "-"))


def stream_wait(environ, start_response):
    """Yields ``first chunk``, blocks until /release?token=T (at most 60 s), then ``second chunk``."""
    token = _query(environ)["token"]
    event = _event(token)
    start_response("200 OK", [("Content-Type", "text/plain")])

    def generate():
        yield b"first chunk"
        _record(token, "first chunk was handed to the server")
        released = event.wait(60)
        yield b"second chunk" if released else b"never released"

    return Body(generate(), token)


def release(environ, start_response):
    _event(_query(environ)["token"]).set()
    return _text(start_response, "released")


def drip(environ, start_response):
    """A stream that goes on for up to 60 s (a small chunk every 20 ms) unless the client leaves."""
    token = _query(environ)["token"]
    start_response("200 OK", [("Content-Type", "application/octet-stream")])

    def generate():
        yield b"x" * 1024
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            time.sleep(0.02)
            yield b"." * 1024
        _record(token, "drip ran to its end")

    return Body(generate(), token)


def iter_error(environ, start_response):
    """Starts a streamed body, then the iterable raises."""
    token = _query(environ)["token"]
    start_response("200 OK", [("Content-Type", "text/plain")])

    def generate():
        yield b"ok-part"
        raise RuntimeError(f"iteration failed {token}")

    return Body(generate(), token)


def error_before(environ, start_response):
    token = _query(environ).get("token", "-")
    raise ValueError(f"boom before the body {token}")


def exc_info_before(environ, start_response):
    """Starts a 200, fails before any body, and replaces it with its own 500 page."""
    start_response("200 OK", [("Content-Type", "text/plain"), ("X-Half", "made")])
    try:
        raise KeyError("half-made page")
    except KeyError:
        start_response(
            "500 Internal Server Error", [("Content-Type", "text/plain"), ("X-Error-Page", "custom")], sys.exc_info()
        )
    return [b"custom error page"]


def exc_info_after(environ, start_response):
    """Sends a body chunk, then calls start_response with exc_info: PEP 3333 says that re-raises."""
    token = _query(environ)["token"]
    start_response("200 OK", [("Content-Type", "text/plain")])

    def generate():
        yield b"partial-body"
        try:
            raise RuntimeError(f"late failure {token}")
        except RuntimeError:
            try:
                start_response("500 Internal Server Error", [("Content-Type", "text/plain")], sys.exc_info())
            except RuntimeError:
                _record(token, "start_response re-raised")
                raise
            _record(token, "start_response returned")
            yield b"NOT-RE-RAISED"

    return Body(generate(), token)


def write_callable(environ, start_response):
    """Uses the write() callable returned by start_response, then returns an iterable."""
    q = _query(environ)
    headers = [("Content-Type", "text/plain")]
    if q.get("length"):
        headers.append(("Content-Length", q["length"]))
    write = start_response("200 OK", headers)
    write(b"first-")
    write(b"second-")
    return [b"iterable-", b"part"]


BAD_RESPONSES = {
    "short-status": ("20 OK", [("Content-Type", "text/plain")]),
    "alpha-status": ("abc", [("Content-Type", "text/plain")]),
    "int-status": (200, [("Content-Type", "text/plain")]),
    "bytes-header-name": ("200 OK", [("Content-Type", "text/plain"), (b"X-Bytes", "v")]),
    "int-header-value": ("200 OK", [("Content-Type", "text/plain"), ("X-Int", 5)]),
    "hop-connection": ("200 OK", [("Content-Type", "text/plain"), ("Connection", "close")]),
    "hop-connection-lower": ("200 OK", [("Content-Type", "text/plain"), ("connection", "keep-alive")]),
    "hop-keep-alive": ("200 OK", [("Content-Type", "text/plain"), ("Keep-Alive", "timeout=5")]),
    "hop-transfer-encoding": ("200 OK", [("Content-Type", "text/plain"), ("Transfer-Encoding", "chunked")]),
    "hop-upgrade": ("200 OK", [("Content-Type", "text/plain"), ("Upgrade", "websocket")]),
    "crlf-value": ("200 OK", [("Content-Type", "text/plain"), ("X-Split", "a\r\nX-Injected: yes")]),
    "interim-status": ("103 Early Hints", [("Content-Type", "text/plain")]),
    "switching-status": ("101 Switching Protocols", [("Content-Type", "text/plain")]),
    "lf-value": ("200 OK", [("Content-Type", "text/plain"), ("X-Split", "a\nX-Injected: yes")]),
}


def bad_response(environ, start_response):
    """Plain only: start_response with something PEP 3333 forbids; the server must answer 500."""
    status, headers = BAD_RESPONSES[_query(environ)["kind"]]
    start_response(status, headers)
    return [b"this body must never reach the client"]


def content_length_mismatch(environ, start_response):
    """``declared`` in Content-Length, ``sent`` bytes in the body (in two pieces)."""
    q = _query(environ)
    declared, sent = int(q["declared"]), int(q["sent"])
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(declared))])
    half = sent // 2
    return Body(iter([b"a" * half, b"b" * (sent - half)]), q.get("token", "-"))


def file_wrapper(environ, start_response):
    """The file named by ``path`` through wsgi.file_wrapper; its close() counted under token."""
    q = _query(environ)
    handle = RecordingFile(q["path"], "rb")
    handle.token = q.get("token")
    offset = int(q.get("offset", "0"))
    handle.seek(offset)  # PEP 3333: transmission begins at the file's current position
    headers = [("Content-Type", "application/octet-stream")]
    if q.get("length") == "yes":
        headers.append(("Content-Length", str(os.fstat(handle.fileno()).st_size - offset)))
    elif q.get("cl"):
        headers.append(("Content-Length", q["cl"]))
    start_response("200 OK", headers)
    return environ["wsgi.file_wrapper"](handle, 32768)


class RecordingBytesIO(io.BytesIO):
    token = None

    def close(self):
        if not self.closed and self.token is not None:
            _count(self.token, "file-close")
        super().close()


def file_like(environ, start_response):
    """wsgi.file_wrapper around an object with read() but no fileno(): it must still work."""
    q = _query(environ)
    handle = RecordingBytesIO(b"".join(b"line %d of a file-like object\n" % index for index in range(int(q["n"]))))
    handle.token = q.get("token")
    start_response("200 OK", [("Content-Type", "text/plain")])
    return environ["wsgi.file_wrapper"](handle, 7)


def sleep(environ, start_response):
    """Sleeps ``s`` seconds; the highest number of sleeps at once is kept under (token, 'peak')."""
    q = _query(environ)
    token = q.get("token", "-")
    with _lock:
        _active[token] = _active.get(token, 0) + 1
        _counters[token, "peak"] = max(_counters.get((token, "peak"), 0), _active[token])
    try:
        time.sleep(float(q.get("s", "1")))
    finally:
        with _lock:
            _active[token] -= 1
    return _text(start_response, "slept")


def log_message(environ, start_response):
    errors = environ["wsgi.errors"]
    errors.write(_query(environ)["msg"] + "\n")
    errors.writelines(["second line via writelines\n"])
    errors.flush()
    return _text(start_response, "logged")


def cookies(environ, start_response):
    """Two Set-Cookie headers in one response (repeated response headers must all go out)."""
    start_response(
        "200 OK",
        [("Content-Type", "text/plain"), ("Set-Cookie", "a=1; Path=/"), ("Set-Cookie", "b=2; Path=/"), ("Content-Length", "2")],
    )
    return [b"ok"]


def big(environ, start_response):
    """``n`` bytes (a repeating pattern) from a generator of 64 KiB pieces, with Content-Length."""
    size = int(_query(environ)["n"])
    pattern = bytes(range(256)) * 256
    start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(size))])

    def generate():
        left = size
        while left:
            piece = pattern[: min(left, len(pattern))]
            left -= len(piece)
            yield piece

    return Body(generate(), _query(environ).get("token", "-"))


def tuple_body(environ, start_response):
    """A tuple of byte strings, no Content-Length."""
    start_response("200 OK", [("Content-Type", "text/plain")])
    return (b"tu", b"", b"ple")


def custom_status(environ, start_response):
    """The status line given in ``s`` (for example ``299 Custom Reason``)."""
    return _text(start_response, "custom status", status=_query(environ)["s"])


def latin1_header(environ, start_response):
    """A header value with a latin-1 character: PEP 3333 says it goes out as that one byte."""
    return _text(start_response, "latin-1 header", extra=[("X-Latin", "caf\xe9")])


def lazy_start(environ, start_response):
    """start_response is called only when the first body item is produced (PEP 3333 allows it)."""

    def generate():
        start_response("200 OK", [("Content-Type", "text/plain"), ("X-Started", "lazily")])
        yield b"lazy "
        yield b"body"

    return Body(generate(), _query(environ).get("token", "-"))


def empty_generator(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])

    def generate():
        return
        yield b""  # a generator that yields nothing

    return Body(generate(), _query(environ).get("token", "-"))


def empty_items(environ, start_response):
    """A generator that yields empty byte strings between real ones."""
    start_response("200 OK", [("Content-Type", "text/plain")])

    def generate():
        yield b""
        yield b"a"
        yield b""
        yield b"b"
        yield b""

    return Body(generate(), _query(environ).get("token", "-"))


def read_some(environ, start_response):
    """Reads only ``n`` bytes of the body and answers; the server must skip the rest (or close)."""
    data = environ["wsgi.input"].read(int(_query(environ)["n"]))
    return _text(start_response, b"read " + data)


def no_start_response(environ, start_response):
    """Plain only: returns a body without ever calling start_response."""
    return [b"this body must never reach the client"]


def double_start_response(environ, start_response):
    """Plain only: start_response twice without exc_info, which PEP 3333 calls a fatal error."""
    start_response("200 OK", [("Content-Type", "text/plain")])
    start_response("201 Created", [("Content-Type", "text/plain")])
    return [b"this body must never reach the client"]


def no_content(environ, start_response):
    start_response("204 No Content", [])
    return []


ROUTES = {
    "/hello": hello,
    "/query": query,
    "/echo": echo,
    "/input": input_ops,
    "/no-read": no_read,
    "/read-then-fail": read_then_fail,
    "/keep-input": keep_input,
    "/digest": digest,
    "/counter": counter,
    "/records": records,
    "/stream": stream,
    "/stream-wait": stream_wait,
    "/release": release,
    "/drip": drip,
    "/iter-error": iter_error,
    "/error-before": error_before,
    "/exc-info-before": exc_info_before,
    "/exc-info-after": exc_info_after,
    "/write": write_callable,
    "/bad-response": bad_response,
    "/cl-mismatch": content_length_mismatch,
    "/file": file_wrapper,
    "/file-like": file_like,
    "/sleep": sleep,
    "/log": log_message,
    "/cookies": cookies,
    "/big": big,
    "/no-content": no_content,
    "/tuple": tuple_body,
    "/status": custom_status,
    "/latin1-header": latin1_header,
    "/lazy-start": lazy_start,
    "/empty-generator": empty_generator,
    "/empty-items": empty_items,
    "/read-some": read_some,
    "/no-start-response": no_start_response,
    "/double-start-response": double_start_response,
}


def application(environ, start_response):
    path = environ.get("PATH_INFO", "")
    _record("all-paths", path)
    if path.startswith("/environ"):
        return describe_environ(environ, start_response)
    handler = ROUTES.get(path)
    if handler is None:
        return _text(start_response, f"no route for {path!r}", status="404 Not Found")
    return handler(environ, start_response)


def create_app():
    """A factory, for ``pep_app:create_app()``."""
    return application
