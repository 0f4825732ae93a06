"""tern's demo WSGI application: plain PEP 3333, the standard library only, no framework.

Run it with tern (the Rust core serves ``static/`` itself; everything else comes here), from the
repository's root as ``scripts/demo.sh`` does (``--chdir`` comes first, so ``-r`` is relative to it)::

    tern serve app:application --chdir examples/demo -r static --static-url /static/ --static /site/=../site

Pages:

* ``/``              an HTML page showing the request as the application received it
* ``/api/time``      the server's clock as JSON
* ``/echo``          a form (GET) that shows what was submitted (POST), read from ``wsgi.input``
* ``/stream``        five lines of text, one every half second, sent as they are produced
* ``/slow?seconds=N`` sleeps N seconds (at most 10) before answering; open several at once to
  watch tern's thread pool (``--threads``) answer them side by side

Unknown paths get a 404 page and a wrong method a 405 with an ``Allow`` header.
"""

import html
import json
import os
import threading
import time
from datetime import datetime, timezone
from urllib.parse import parse_qs, parse_qsl

MAX_ECHO_BODY = 64 * 1024  # bytes; larger submissions get 413
MAX_SLEEP = 10.0  # seconds, for /slow
STREAM_LINES = 5
STREAM_INTERVAL = 0.5  # seconds between lines of /stream

STATUS_TEXT = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Content Too Large",
}


# --- building answers ---------------------------------------------------------------------------


class Response:
    """A complete answer: status code, headers and the body as bytes (so its length is known)."""

    def __init__(self, body, status=200, content_type="text/html; charset=utf-8", headers=()):
        self.status = status
        self.body = body.encode("utf-8") if isinstance(body, str) else body
        self.headers = [("Content-Type", content_type), *headers]

    def send(self, environ, start_response):
        headers = [*self.headers, ("Content-Length", str(len(self.body)))]
        start_response(f"{self.status} {STATUS_TEXT[self.status]}", headers)
        # A HEAD request gets the same headers, Content-Length included, and no body.
        return [] if environ["REQUEST_METHOD"] == "HEAD" else [self.body]


def page(title, body, environ, status=200, headers=()):
    """An HTML page in the demo's layout: the stylesheet and logo come from tern's static server."""
    home = html.escape(root(environ) + "/", quote=True)
    document = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)} · tern demo</title>
<link rel="stylesheet" href="/static/style.css">
<link rel="icon" href="/static/tern.svg" type="image/svg+xml">
</head>
<body>
<header><a href="{home}"><img src="/static/tern.svg" alt="" width="40" height="40"> tern demo</a></header>
<main>
<h1>{html.escape(title)}</h1>
{body}
</main>
<footer>A plain WSGI application running inside tern · process {os.getpid()}</footer>
</body>
</html>
"""
    return Response(document, status, headers=headers)


def error_page(environ, status, message, headers=()):
    return page(f"{status} {STATUS_TEXT[status]}", f"<p>{html.escape(message)}</p>", environ, status, headers)


# --- reading the request ------------------------------------------------------------------------


def root(environ):
    """The path the application is mounted under (tern's ``--root-path``), or ''."""
    return text(environ.get("SCRIPT_NAME", ""))


def text(value):
    """PEP 3333 hands over paths and headers as latin-1 decoded bytes; this recovers the UTF-8 text."""
    return value.encode("latin-1").decode("utf-8", "replace")


def request_headers(environ):
    """(name, value) for every HTTP header of the request, as the server put them in the environ."""
    headers = [(key[5:].replace("_", "-").title(), text(value)) for key, value in environ.items() if key.startswith("HTTP_")]
    if environ.get("CONTENT_LENGTH", "0") not in ("", "0"):  # only a request with a body has these two
        for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            if environ.get(key):
                headers.append((key.replace("_", "-").title(), environ[key]))
    return sorted(headers)


def read_body(environ):
    """The request body, read from wsgi.input as far as CONTENT_LENGTH says; or an error Response."""
    length = environ.get("CONTENT_LENGTH", "")
    if not length:
        return b""
    try:
        length = int(length)
    except ValueError:
        return error_page(environ, 400, f"Content-Length {length!r} is not a number.")
    if length < 0:
        return error_page(environ, 400, "Content-Length is negative.")
    if length > MAX_ECHO_BODY:
        return error_page(environ, 413, f"The echo takes at most {MAX_ECHO_BODY} bytes; this was {length}.")
    return environ["wsgi.input"].read(length)


def definition_list(pairs):
    rows = "".join(f"<dt>{html.escape(str(name))}</dt><dd>{html.escape(str(value))}</dd>\n" for name, value in pairs)
    return f"<dl>\n{rows}</dl>"


# --- the pages ----------------------------------------------------------------------------------


def index(environ):
    base = root(environ)
    query = text(environ.get("QUERY_STRING", ""))
    request = [
        ("Method", environ["REQUEST_METHOD"]),
        ("Path", base + text(environ.get("PATH_INFO", ""))),
        ("Query string", query or "(none)"),
        ("Protocol", environ.get("SERVER_PROTOCOL", "")),
        ("Client", f"{environ.get('REMOTE_ADDR', '?')}"),
        ("Server", f"{environ.get('SERVER_NAME', '')}:{environ.get('SERVER_PORT', '')} ({environ.get('wsgi.url_scheme', '')})"),
        ("Root path (SCRIPT_NAME)", base or "(none)"),
        ("Thread", f"{threading.current_thread().name} (wsgi.multithread={environ.get('wsgi.multithread')})"),
    ]
    links = [
        ("/api/time", "the server's clock as JSON"),
        ("/echo", "a form that shows what you submit"),
        ("/stream", f"{STREAM_LINES} lines, one every {STREAM_INTERVAL} s, sent as they come"),
        ("/slow?seconds=3", "answers after 3 seconds; open it in a few tabs at once"),
        ("/no-such-page", "what a 404 looks like"),
        ("/static/style.css", "a static file, served by tern's Rust core without Python"),
        ("/site/", "the static example site, mounted beside the app"),
        ("/site", "the same without the slash (a 301 to /site/)"),
    ]
    items = "".join(
        f'<li><a href="{html.escape(path if path.startswith(("/static/", "/site")) else base + path, quote=True)}">'
        f"<code>{html.escape(path)}</code></a> — {html.escape(about)}</li>\n"
        for path, about in links
    )
    body = f"""<p>This page was built by a Python WSGI application for the request below.</p>
<h2>Your request</h2>
{definition_list(request)}
<h2>Request headers</h2>
{definition_list(request_headers(environ))}
<h2>Try</h2>
<ul>
{items}</ul>"""
    return page("Hello from tern", body, environ)


def api_time(environ):
    now = time.time()
    data = {
        "utc": datetime.fromtimestamp(now, timezone.utc).isoformat(timespec="milliseconds"),
        "unix": round(now, 3),
        "thread": threading.current_thread().name,
        "pid": os.getpid(),
    }
    return Response(json.dumps(data, indent=2) + "\n", content_type="application/json", headers=[("Cache-Control", "no-store")])


ECHO_FORM = """<form method="post" action="{action}">
<p><label>Your name <input name="name" type="text" value="tern"></label></p>
<p><label>A message <textarea name="message" rows="3" cols="40">Hello, WSGI!</textarea></label></p>
<p><button type="submit">Send</button></p>
</form>"""


def echo(environ):
    form = ECHO_FORM.format(action=html.escape(root(environ) + "/echo", quote=True))
    if environ["REQUEST_METHOD"] != "POST":
        return page("Echo", "<p>Submit the form; the answer shows what arrived.</p>\n" + form, environ)

    body = read_body(environ)
    if isinstance(body, Response):
        return body
    content_type = environ.get("CONTENT_TYPE", "")
    summary = [("Content-Type", content_type or "(none)"), ("Body length", f"{len(body)} bytes")]
    if content_type.split(";")[0].strip().lower() == "application/x-www-form-urlencoded":
        fields = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        shown = definition_list(fields) if fields else "<p>(no fields)</p>"
        received = f"<h2>Fields</h2>\n{shown}"
    else:
        received = f"<h2>Body</h2>\n<pre>{html.escape(body.decode('utf-8', 'replace'))}</pre>"
    return page("Echo", f"{definition_list(summary)}\n{received}\n<h2>Again?</h2>\n{form}", environ)


def slow(environ):
    values = parse_qs(environ.get("QUERY_STRING", "")).get("seconds", ["1"])
    try:
        seconds = float(values[0])
    except ValueError:
        return error_page(environ, 400, f"seconds={values[0]!r} is not a number.")
    if not 0 <= seconds < float("inf"):
        return error_page(environ, 400, "seconds must be zero or more.")
    seconds = min(seconds, MAX_SLEEP)
    started = time.monotonic()
    time.sleep(seconds)
    took = time.monotonic() - started
    answer = f"Slept {seconds:g} s (asked for {values[0]}, at most {MAX_SLEEP:g}) in {took:.3f} s on {threading.current_thread().name}.\n"
    return Response(answer, content_type="text/plain; charset=utf-8")


def stream(environ, start_response):
    """Not a Response: the body is a generator, so its length is unknown and each line goes out when
    it is yielded (the server chunks it). nosniff lets browsers show lines before the page is done."""
    start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8"), ("X-Content-Type-Options", "nosniff"), ("Cache-Control", "no-store")])
    if environ["REQUEST_METHOD"] == "HEAD":
        return []
    return stream_lines()


def stream_lines():
    for number in range(1, STREAM_LINES + 1):
        if number > 1:
            time.sleep(STREAM_INTERVAL)
        stamp = datetime.now(timezone.utc).strftime("%H:%M:%S.%f")[:-3]
        yield f"line {number} of {STREAM_LINES} at {stamp} UTC\n".encode("utf-8")


# --- routing ------------------------------------------------------------------------------------

# path -> (allowed methods, handler). Handlers return a Response, except stream which answers itself.
ROUTES = {
    "/": ({"GET", "HEAD"}, index),
    "/api/time": ({"GET", "HEAD"}, api_time),
    "/echo": ({"GET", "HEAD", "POST"}, echo),
    "/stream": ({"GET", "HEAD"}, stream),
    "/slow": ({"GET", "HEAD"}, slow),
}


def application(environ, start_response):
    path = environ.get("PATH_INFO", "") or "/"
    method = environ["REQUEST_METHOD"]
    route = ROUTES.get(path)
    if route is None:
        response = error_page(environ, 404, f"There is no page at {root(environ) + text(path)}.")
    elif method not in route[0]:
        allowed = ", ".join(sorted(route[0]))
        response = error_page(environ, 405, f"{path} answers {allowed}, not {method}.", headers=[("Allow", allowed)])
    elif route[1] is stream:
        return stream(environ, start_response)
    else:
        response = route[1](environ)
    return response.send(environ, start_response)
