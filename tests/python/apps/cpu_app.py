"""A WSGI app whose every call computes for a few milliseconds of CPU, holding the interpreter
lock, as a template-heavy view does: under load it saturates the interpreter."""

import hashlib


def application(environ, start_response):
    digest = b"seed"
    for _ in range(6000):
        digest = hashlib.sha256(digest + b"x" * 64).digest()
    token = "".join(str(i % 7) for i in range(2000))
    body = ("%s %s %d\n" % (environ["PATH_INFO"], digest.hex()[:16], len(token))).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
