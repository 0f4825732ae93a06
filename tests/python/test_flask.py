"""Flask under ``tern serve``: tests/python/apps/flask_app.py, bare and inside wsgiref.validate.validator.

The validator insists that ``wsgi.input.read()`` gets a size; Werkzeug calls ``read()`` without one for
url-encoded forms and JSON when the server sets ``wsgi.input_terminated`` (PEP 3333 says servers
should allow it), so those two requests run against the bare app only.
"""

import hashlib
import os
import uuid

import pytest
import requests

from wsgi_support import APPS_DIR, wait_for_log

APPS = {"plain": "flask_app:app", "validated": "validated_flask:application"}
TIMEOUT = 30


@pytest.fixture(params=list(APPS), ids=list(APPS))
def server(request, serve_app):
    return serve_app(APPS[request.param])


@pytest.fixture
def plain_server(serve_app):
    return serve_app(APPS["plain"])


def url(server, path):
    host, port = server.address
    return f"http://{host}:{port}{path}"


def test_routes(server):
    answer = requests.get(url(server, "/"), timeout=TIMEOUT)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "text/html; charset=utf-8"
    assert answer.text == "Hello from Flask"

    answer = requests.get(url(server, "/greet/World"), timeout=TIMEOUT)
    assert answer.text == "Hello, World!"

    # PATH_INFO carries the UTF-8 bytes as latin-1; Werkzeug turns them back into "café".
    answer = requests.get(url(server, "/greet/caf%C3%A9"), timeout=TIMEOUT)
    assert answer.text == "Hello, café!"


def test_query_string(server):
    answer = requests.get(url(server, "/search"), params=[("q", "hello world"), ("page", "3"), ("tag", "a"), ("tag", "b")], timeout=TIMEOUT)
    assert answer.status_code == 200
    assert answer.json() == {"q": "hello world", "page": 3, "tags": ["a", "b"], "query_string": "q=hello+world&page=3&tag=a&tag=b"}


def test_form_post(plain_server):
    answer = requests.post(url(plain_server, "/form"), data={"a": ["1", "2"], "b": "x y & z"}, timeout=TIMEOUT)
    assert answer.status_code == 200
    assert answer.json() == {"a": ["1", "2"], "b": ["x y & z"]}


def test_json_post(plain_server):
    answer = requests.post(url(plain_server, "/json"), json={"name": "tern", "tags": [1, 2, 3]}, timeout=TIMEOUT)
    assert answer.status_code == 201
    assert answer.json()["received"] == {"name": "tern", "tags": [1, 2, 3]}
    assert answer.json()["content_length"] == len(b'{"name": "tern", "tags": [1, 2, 3]}')


@pytest.mark.parametrize("streamed", [False, True], ids=["buffered", "streamed"])
def test_chunked_json_post(serve_app, streamed):
    """A chunked body: received whole, it reaches the app with its length as CONTENT_LENGTH (as
    behind nginx); streamed, it has none and Werkzeug reads it because the server sets
    wsgi.input_terminated."""
    server = serve_app(APPS["plain"], *(["--stream-request-body"] if streamed else []))

    def body():
        yield b'{"parts": '
        yield b'["one", '
        yield b'"two"]}'

    answer = requests.post(url(server, "/json"), data=body(), headers={"Content-Type": "application/json"}, timeout=TIMEOUT)
    assert answer.status_code == 201
    length = None if streamed else len(b'{"parts": ["one", "two"]}')
    assert answer.json() == {"received": {"parts": ["one", "two"]}, "content_length": length}


def test_multipart_upload_of_20_mb_arrives_intact(server):
    data = os.urandom(20 * 1024 * 1024)
    answer = requests.post(
        url(server, "/upload"),
        files={"file": ("big.bin", data, "application/octet-stream")},
        data={"note": "twenty megabytes"},
        timeout=120,
    )
    assert answer.status_code == 200, answer.text[:500]
    assert answer.json() == {
        "filename": "big.bin",
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "note": "twenty megabytes",
        "mimetype": "application/octet-stream",
    }


def test_cookies_set_then_read_back(server):
    with requests.Session() as session:
        answer = session.get(url(server, "/cookie/set"), params={"value": "chocolate"}, timeout=TIMEOUT)
        assert answer.text == "cookie set to chocolate"
        set_cookie = answer.raw.headers.getlist("Set-Cookie")
        assert len(set_cookie) == 2, set_cookie
        assert any(value.startswith("flavour=chocolate;") and "HttpOnly" in value for value in set_cookie)
        assert session.cookies.get("flavour") == "chocolate"

        answer = session.get(url(server, "/cookie/get"), timeout=TIMEOUT)
        assert answer.json() == {"flavour": "chocolate", "size": "large"}


def test_redirect(server):
    answer = requests.get(url(server, "/old-place"), allow_redirects=False, timeout=TIMEOUT)
    assert answer.status_code == 302
    assert answer.headers["Location"] == "/new-place?came_from=old"

    answer = requests.get(url(server, "/old-place"), timeout=TIMEOUT)
    assert [step.status_code for step in answer.history] == [302]
    assert answer.status_code == 200
    assert answer.text == "landed, came from old"


def test_streamed_response(server):
    with requests.get(url(server, "/stream"), params={"n": "50"}, stream=True, timeout=TIMEOUT) as answer:
        assert answer.status_code == 200
        assert answer.headers["Content-Type"] == "text/plain; charset=utf-8"
        assert answer.headers.get("Transfer-Encoding") == "chunked"
        assert "Content-Length" not in answer.headers
        lines = list(answer.iter_lines())
    assert lines == [f"line {index} of /stream".encode() for index in range(50)]


def test_send_file_and_conditional_get(server):
    with open(os.path.join(APPS_DIR, "flask_app.py"), "rb") as handle:
        source = handle.read()
    answer = requests.get(url(server, "/source"), timeout=TIMEOUT)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "text/x-python; charset=utf-8"
    assert answer.content == source
    etag = answer.headers["ETag"]

    again = requests.get(url(server, "/source"), headers={"If-None-Match": etag}, timeout=TIMEOUT)
    assert again.status_code == 304
    assert again.content == b""


def test_404(server):
    answer = requests.get(url(server, "/no/such/page"), timeout=TIMEOUT)
    assert answer.status_code == 404
    assert "Not Found" in answer.text


def test_exception_gives_500_and_the_traceback_in_the_log(server):
    token = uuid.uuid4().hex[:12]
    answer = requests.get(url(server, "/boom"), params={"token": token}, timeout=TIMEOUT)
    assert answer.status_code == 500
    assert "Internal Server Error" in answer.text
    assert token not in answer.text
    log = wait_for_log(server, f"RuntimeError: flask boom {token}")
    assert "Traceback" in log

    assert requests.get(url(server, "/"), timeout=TIMEOUT).text == "Hello from Flask"


def test_root_path_reaches_flask_as_script_root(serve_app):
    server = serve_app(APPS["plain"], "--root-path", "/app")
    host, port = server.address
    answer = requests.get(url(server, "/app/where"), timeout=TIMEOUT)
    assert answer.json() == {"script_root": "/app", "path": "/where", "url": f"http://{host}:{port}/app/where"}

    answer = requests.get(url(server, "/app/old-place"), allow_redirects=False, timeout=TIMEOUT)
    assert answer.headers["Location"] == "/app/new-place?came_from=old"
