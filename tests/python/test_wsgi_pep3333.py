"""PEP 3333 end to end: ``tern serve`` runs tests/python/apps/pep_app.py, bare and wrapped in
wsgiref.validate.validator (validated_pep.py), and these tests talk to it over real sockets.

Tests parametrized with the ``server`` fixture run against both apps; the validator variant also fails
when the validator logs a complaint (see ``serve_app`` in conftest.py). Tests that use what the
validator forbids on purpose (bad statuses, ``read()`` without a size) use ``plain_server`` only.
"""

import concurrent.futures
import hashlib
import http.client
import json
import os
import socket
import time
import uuid

import pytest

from wsgi_support import (
    RawConnection,
    chunked,
    counter,
    fetch,
    log_text,
    quote,
    wait_for,
    wait_for_counter,
    wait_for_log,
)

APPS = {"plain": "pep_app:application", "validated": "validated_pep:application"}


@pytest.fixture(params=list(APPS), ids=list(APPS))
def server(request, serve_app):
    return serve_app(APPS[request.param])


@pytest.fixture
def plain_server(serve_app):
    return serve_app(APPS["plain"])


@pytest.fixture
def plain_server_factory(serve_app):
    return lambda *args: serve_app(APPS["plain"], *args)


def new_token():
    return uuid.uuid4().hex[:12]


def environ_of(server, target="/environ", method="GET", headers=(), body=b"", version="HTTP/1.1"):
    with RawConnection(server.address) as connection:
        answer = connection.roundtrip(method, target, headers, body, version)
        assert answer.status == 200, answer
        return answer.json(), connection.local_port


# --- environ -------------------------------------------------------------------------------------


def test_environ_of_a_get_request(server):
    headers = [("X-Custom-Thing", "custom value"), ("X-Multi", "a"), ("X-Multi", "b"), ("X_Under", "dropped")]
    env, client_port = environ_of(server, "/environ?a=1&b=%20x&c", headers=headers)
    host, port = server.address

    assert env["REQUEST_METHOD"] == "GET"
    assert env["SCRIPT_NAME"] == ""
    assert env["PATH_INFO"] == "/environ"
    assert env["QUERY_STRING"] == "a=1&b=%20x&c"
    assert "CONTENT_TYPE" not in env
    assert "CONTENT_LENGTH" not in env
    assert isinstance(env["SERVER_NAME"], str) and env["SERVER_NAME"]
    assert env["SERVER_PORT"] == str(port)
    assert env["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert env["REMOTE_ADDR"] == "127.0.0.1"
    assert env["REMOTE_PORT"] == str(client_port)
    assert env["HTTP_HOST"] == f"{host}:{port}"
    assert env["HTTP_X_CUSTOM_THING"] == "custom value"
    assert env["HTTP_X_MULTI"] == "a, b"
    assert not [key for key in env if "UNDER" in key.upper()], "a header with '_' in its name must be dropped"
    assert set(env["types"].values()) == {"str"}, env["types"]

    assert env["wsgi.version"] == [1, 0]
    assert env["wsgi.version.type"] == "tuple"
    assert env["wsgi.url_scheme"] == "http"
    assert env["wsgi.multithread"] is True
    assert env["wsgi.multiprocess"] is False
    assert env["wsgi.run_once"] is False
    assert env["wsgi.input_terminated"] is True
    assert env["wsgi.file_wrapper"] is True
    assert env["wsgi.input"] == ["read", "readline", "readlines", "__iter__"]
    assert env["wsgi.errors"] == ["write", "writelines", "flush"]


def test_environ_over_a_unix_socket_has_an_empty_remote_addr_and_no_remote_port(plain_server_factory, tmp_path):
    path = tmp_path / "tern.sock"
    server = plain_server_factory("--bind", f"127.0.0.1:0,unix:{path}")
    wait_for(path.exists, message="the socket file")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.settimeout(10)
        client.connect(str(path))
        client.sendall(b"GET /environ HTTP/1.1\r\nHost: local\r\nConnection: close\r\n\r\n")
        answer = b""
        while chunk := client.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    env = json.loads(body)
    assert env["REMOTE_ADDR"] == ""
    assert "REMOTE_PORT" not in env
    assert env["SERVER_NAME"] == "local"
    assert env["HTTP_HOST"] == "local"
    assert env["PATH_INFO"] == "/environ"
    assert server.address is not None


def test_environ_of_a_post_has_content_type_and_length_without_http_prefix(server):
    env, _ = environ_of(
        server, "/environ", "POST", [("Content-Type", "application/x-www-form-urlencoded"), ("Content-Length", "7")], b"x=1&y=2"
    )
    assert env["REQUEST_METHOD"] == "POST"
    assert env["CONTENT_TYPE"] == "application/x-www-form-urlencoded"
    assert env["CONTENT_LENGTH"] == "7"
    assert "HTTP_CONTENT_TYPE" not in env
    assert "HTTP_CONTENT_LENGTH" not in env
    assert env["QUERY_STRING"] == ""


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "OPTIONS"])
def test_every_method_reaches_the_app(server, method):
    env, _ = environ_of(server, "/environ/m", method, [("Content-Length", "0")])
    assert env["REQUEST_METHOD"] == method
    assert env["PATH_INFO"] == "/environ/m"


def test_path_info_is_percent_decoded_as_latin1_and_query_string_stays_raw(server):
    env, _ = environ_of(server, "/environ/caf%C3%A9?q=caf%C3%A9")
    assert env["PATH_INFO"] == "/environ/caf\xc3\xa9"
    assert env["PATH_INFO"].encode("latin-1").decode("utf-8") == "/environ/café"
    assert env["QUERY_STRING"] == "q=caf%C3%A9"

    env, _ = environ_of(server, "/environ/a%20b/%7Euser")
    assert env["PATH_INFO"] == "/environ/a b/~user"
    assert env["QUERY_STRING"] == ""


def test_http_1_0_request(server):
    env, _ = environ_of(server, "/environ", version="HTTP/1.0")
    assert env["SERVER_PROTOCOL"] == "HTTP/1.0"


def test_an_absolute_form_target_gives_its_host_and_path_to_the_app(server):
    # RFC 9112 §3.2.2: the target's authority is the request's host; the Host field is ignored.
    env, _ = environ_of(server, "http://example.com:8081/environ/x?q=1")
    assert env["PATH_INFO"] == "/environ/x"
    assert env["QUERY_STRING"] == "q=1"
    assert env["HTTP_HOST"] == "example.com:8081"
    assert env["SERVER_NAME"] == "example.com"
    assert env["SERVER_PORT"] == "8081"


@pytest.mark.parametrize(
    "target",
    ["environ", "environ/x", "admin", "*", "127.0.0.1:80", "ftp://h/environ", "/environ%00", "/environ/a%00b", "http://h/environ%00"],
)
def test_a_target_that_is_not_a_path_never_reaches_the_app(plain_server, target):
    # RFC 9112 §3.2: PATH_INFO always starts with "/" and never decodes to a NUL.
    with RawConnection(plain_server.address) as connection:
        answer = connection.roundtrip("GET", target)
        assert answer.status == 400, answer
        assert answer.header("Connection") == "close"


@pytest.mark.parametrize("host", ["a b", "a, b", "evil.com/../x", "[::1", "user@x", ""])
def test_a_host_that_is_not_a_host_never_reaches_the_app(plain_server, host):
    with RawConnection(plain_server.address) as connection:
        connection.request("GET", "/environ", [("Host", host)], host=False)
        answer = connection.read_response()
        assert answer.status == 400, answer


def test_options_asterisk_is_answered_by_the_server_not_the_app(plain_server):
    # RFC 9112 §3.2.4: a question about the server; the app's methods are its own, so no Allow.
    with RawConnection(plain_server.address) as connection:
        answer = connection.roundtrip("OPTIONS", "*")
        assert answer.status == 200, answer
        assert answer.header("Allow") is None
        assert answer.body == b""
        assert connection.roundtrip("GET", "/hello").body == b"hello world"


def test_two_workers_make_wsgi_multiprocess_true(serve_app):
    server = serve_app(APPS["plain"], "-w", "2")
    env, _ = environ_of(server)
    assert env["wsgi.multiprocess"] is True
    assert env["wsgi.multithread"] is True


# --- wsgi.input ----------------------------------------------------------------------------------

BODY = b"line one\nline two\nthird line without newline"


def send_body(connection, target, body, transfer, parts=None, extra_headers=()):
    """POSTs ``body`` with a Content-Length, or chunked in ``parts`` (default: 3 pieces)."""
    if transfer == "content-length":
        connection.request("POST", target, [("Content-Length", str(len(body))), *extra_headers], body)
    else:
        if parts is None:
            third = max(1, len(body) // 3)
            parts = [body[:third], body[third : 2 * third], body[2 * third :]]
        assert b"".join(parts) == body
        connection.request("POST", target, [("Transfer-Encoding", "chunked"), *extra_headers], chunked(*parts))
    return connection.read_response()


@pytest.mark.parametrize("transfer", ["content-length", "chunked"])
def test_echo_of_a_body(server, transfer):
    body = os.urandom(200_000)
    with RawConnection(server.address) as connection:
        answer = send_body(connection, "/echo", body, transfer)
    assert answer.status == 200
    assert answer.body == body
    # A chunked body is received whole before the app is called, so it has a length too.
    assert answer.header("X-Content-Length") == str(len(body))
    assert answer.header("X-Read-Past-End") == "b''"


@pytest.mark.parametrize("transfer", ["content-length", "chunked"])
def test_readline_read_n_readlines(server, transfer):
    with RawConnection(server.address) as connection:
        answer = send_body(connection, "/input?ops=readline,read:4,readline:3,readline,readlines", BODY, transfer)
    assert answer.status == 200, answer
    assert answer.json() == ["line one\n", "line", " tw", "o\n", ["third line without newline"]]


@pytest.mark.parametrize("transfer", ["content-length", "chunked"])
def test_iteration_and_readlines_hint(server, transfer):
    with RawConnection(server.address) as connection:
        answer = send_body(connection, "/input?ops=readline,iter", BODY, transfer)
        assert answer.json() == ["line one\n", ["line two\n", "third line without newline"]]
        answer = send_body(connection, "/input?ops=readlines:1,readlines", BODY, transfer)
    first, rest = answer.json()
    # The hint may be honoured or ignored (PEP 3333); either way no line is split or lost.
    assert first and first[0] == "line one\n"
    assert first + rest == ["line one\n", "line two\n", "third line without newline"]


def test_readline_across_chunk_boundaries(server):
    parts = [b"li", b"ne one\nline", b" two\n", b"e", b"nd"]
    with RawConnection(server.address) as connection:
        answer = send_body(connection, "/input?ops=readline,readline,readline,readline", b"".join(parts), "chunked", parts)
    assert answer.json() == ["line one\n", "line two\n", "end", ""]


def test_no_body_reads_empty(server):
    with RawConnection(server.address) as connection:
        answer = connection.roundtrip("GET", "/input?ops=read:10,readline,readlines")
    assert answer.json() == ["", "", []]


@pytest.mark.parametrize("transfer", ["content-length", "chunked"])
def test_read_without_size_returns_the_rest_and_then_empty(plain_server, transfer):
    with RawConnection(plain_server.address) as connection:
        answer = send_body(connection, "/input?ops=read:5,read,read,read:10,readline", BODY, transfer)
        assert answer.json() == ["line ", BODY[5:].decode(), "", "", ""]
        answer = send_body(connection, "/input?ops=read", BODY, transfer)
        assert answer.json() == [BODY.decode()]


def test_a_large_chunked_body_in_many_chunks(server):
    parts = [os.urandom(1 + (index * 7919) % 20000) for index in range(300)]
    body = b"".join(parts)
    with RawConnection(server.address) as connection:
        answer = send_body(connection, "/echo", body, "chunked", parts)
    assert hashlib.sha256(answer.body).hexdigest() == hashlib.sha256(body).hexdigest()
    assert answer.header("X-Content-Length") == str(len(body))


# --- Expect: 100-continue and the body size limit ---------------------------------------------


@pytest.mark.parametrize("transfer", ["content-length", "chunked"])
def test_100_continue_is_sent_when_the_app_reads(server, transfer):
    framing = ("Content-Length", "11") if transfer == "content-length" else ("Transfer-Encoding", "chunked")
    body = b"hello world" if transfer == "content-length" else chunked(b"hello", b" world")
    with RawConnection(server.address) as connection:
        connection.request("POST", "/echo", [framing, ("Expect", "100-continue")])
        interim = connection.read_head()
        assert (interim.version, interim.status) == ("HTTP/1.1", 100)
        connection.send(body)
        answer = connection.read_response()
        assert answer.status == 200
        assert answer.body == b"hello world"
        assert connection.roundtrip("GET", "/hello").body == b"hello world"


def test_no_100_continue_when_a_streaming_app_does_not_read(serve_app):
    """With --stream-request-body the body is the app's to ask for; by default it is read (and
    100 Continue sent) before the app is called, see test_request_bodies.py."""
    server = serve_app(APPS["plain"], "--stream-request-body")
    token = new_token()
    with RawConnection(server.address) as connection:
        connection.request("POST", f"/no-read?token={token}", [("Content-Length", "11"), ("Expect", "100-continue")])
        answer = connection.read_head()
        assert answer.status == 200, "the final answer must come without a 100 Continue first"
        connection.read_body(answer)
    assert answer.body == b"did not read the body"
    assert counter(server, token, "called") == 1


@pytest.mark.parametrize("limit, size", [("8192", 8192), ("64K", 65536), ("1M", 1048576)])
def test_body_over_max_body_size_gets_413_without_calling_the_app(serve_app, limit, size):
    server = serve_app(APPS["plain"], "--max-body-size", limit)
    token = new_token()
    with RawConnection(server.address) as connection:
        connection.request("POST", f"/echo?token={token}", [("Content-Length", str(size + 1))])
        answer = connection.read_head()
    assert answer.status == 413
    with RawConnection(server.address) as connection:
        connection.request("POST", f"/echo?token={token}", [("Content-Length", str(size + 1)), ("Expect", "100-continue")])
        answer = connection.read_head()
    assert answer.status == 413, "over the limit: 413 instead of 100 Continue"
    assert counter(server, token, "called") == 0

    body = os.urandom(size)
    with RawConnection(server.address) as connection:
        answer = send_body(connection, f"/echo?token={token}", body, "content-length")
    assert answer.status == 200
    assert answer.body == body
    assert counter(server, token, "called") == 1


# --- start_response ------------------------------------------------------------------------------

BAD_KINDS = [
    "interim-status",
    "switching-status",
    "short-status",
    "alpha-status",
    "int-status",
    "bytes-header-name",
    "int-header-value",
    "hop-connection",
    "hop-connection-lower",
    "hop-keep-alive",
    "hop-transfer-encoding",
    "hop-upgrade",
    "crlf-value",
    "lf-value",
]


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_invalid_start_response_gives_500_and_a_log_line(serve_app, kind):
    server = serve_app(APPS["plain"], "--no-access-log")
    lines_before = len(server.log_lines)
    with RawConnection(server.address) as connection:
        answer = connection.roundtrip("GET", f"/bad-response?kind={kind}")
    assert answer.status == 500, answer
    assert answer.header("X-Injected") is None
    assert answer.header("Upgrade") is None
    assert answer.header("Keep-Alive") is None
    assert b"must never reach" not in answer.body
    wait_for(lambda: len(server.log_lines) > lines_before, message="a log line about the bad response")

    again = fetch(server.address, "GET", "/hello")
    assert (again.status, again.body) == (200, b"hello world")


@pytest.mark.parametrize("target", ["/no-start-response", "/double-start-response"])
def test_start_response_never_called_or_called_twice_is_a_500(plain_server, target):
    with RawConnection(plain_server.address) as connection:
        answer = connection.roundtrip("GET", target)
    assert answer.status == 500, answer
    assert b"must never reach" not in answer.body
    assert fetch(plain_server.address, "GET", "/hello").body == b"hello world"


def test_status_line_reason_phrase_is_kept(server):
    with RawConnection(server.address) as connection:
        answer = connection.roundtrip("GET", "/status?s=299%20Custom%20Reason")
        assert (answer.status, answer.reason, answer.body) == (299, "Custom Reason", b"custom status")
        answer = connection.roundtrip("GET", "/status?s=404%20Not%20Here")
        assert (answer.status, answer.reason, answer.body) == (404, "Not Here", b"custom status")


def test_header_values_go_out_as_latin1(server):
    with RawConnection(server.address) as connection:
        answer = connection.roundtrip("GET", "/latin1-header")  # read_head decodes the head as latin-1
    assert answer.header("X-Latin") == "caf\xe9"
    assert answer.body == b"latin-1 header"


def test_start_response_may_wait_for_the_first_body_item(server):
    token = new_token()
    with RawConnection(server.address) as connection:
        answer = connection.roundtrip("GET", f"/lazy-start?token={token}")
        assert answer.status == 200
        assert answer.header("X-Started") == "lazily"
        assert answer.body == b"lazy body"
        assert connection.roundtrip("GET", "/hello").body == b"hello world"
    assert wait_for_counter(server, token, "close", 1) == 1


def test_empty_bodies_and_empty_items_do_not_end_the_stream_early(server):
    token = new_token()
    with RawConnection(server.address) as connection:
        answer = connection.roundtrip("GET", f"/empty-generator?token={token}")
        assert (answer.status, answer.body) == (200, b"")
        assert connection.roundtrip("GET", "/hello").body == b"hello world"
        answer = connection.roundtrip("GET", f"/empty-items?token={token}")
        assert (answer.status, answer.body) == (200, b"ab")
        assert connection.roundtrip("GET", "/hello").body == b"hello world"
    assert wait_for_counter(server, token, "close", 2) == 2


@pytest.mark.parametrize("transfer", ["content-length", "chunked"])
def test_a_body_the_app_did_not_read_is_never_taken_for_a_request(server, transfer):
    """The unread rest of a body looks like requests; the server must skip it or close, never run them."""
    smuggled = b"GET /query?smuggled HTTP/1.1\r\nHost: x\r\n\r\n" * 40
    body = b"12345" + smuggled
    with RawConnection(server.address) as connection:
        answer = send_body(connection, "/read-some?n=5", body, transfer)
        assert (answer.status, answer.body) == (200, b"read 12345")
        try:
            connection.request("GET", "/query?after")
            # Answers come in order: had the server run the smuggled requests, theirs would come first.
            received = connection.read_response().body
        except (EOFError, ConnectionError):
            received = b""  # closing the connection instead of skipping the body is fine
    assert b"smuggled" not in received
    assert received in (b"", b"after")


def test_exc_info_before_the_body_replaces_status_and_headers(server):
    answer = fetch(server.address, "GET", "/exc-info-before")
    assert answer.status == 500
    assert answer.header("X-Error-Page") == "custom"
    assert answer.header("X-Half") is None
    assert answer.body == b"custom error page"


def test_exc_info_after_the_body_started_re_raises_and_closes(server):
    token = new_token()
    with RawConnection(server.address) as connection:
        connection.request("GET", f"/exc-info-after?token={token}")
        head = connection.read_head()
        assert head.status == 200
        rest = connection.read_to_eof()
    assert b"partial-body" in rest
    assert b"NOT-RE-RAISED" not in rest
    assert not rest.endswith(b"0\r\n\r\n"), "a failed stream must not end like a complete chunked body"
    assert fetch(server.address, "GET", f"/records?token={token}").json() == ["start_response re-raised"]
    assert wait_for_counter(server, token, "close", 1) == 1
    wait_for_log(server, f"late failure {token}")


@pytest.mark.parametrize("length", [None, "26"])
def test_write_callable_goes_out_before_the_iterable(server, length):
    target = "/write" + (f"?length={length}" if length else "")
    with RawConnection(server.address) as connection:
        answer = connection.roundtrip("GET", target)
        assert answer.status == 200
        assert answer.body == b"first-second-iterable-part"
        if length:
            assert answer.header("Content-Length") == length
        again = connection.roundtrip("GET", "/hello")
    assert again.body == b"hello world"


# --- response bodies ----------------------------------------------------------------------------


def test_list_body_with_content_length(server):
    answer = fetch(server.address, "GET", "/hello")
    assert answer.status == 200
    assert answer.reason == "OK"
    assert answer.header("Content-Length") == "11"
    assert answer.header("Content-Type") == "text/plain; charset=utf-8"
    assert answer.header("X-App") == "pep"
    assert answer.header("Date") and answer.header("Server")
    assert answer.body == b"hello world"


def test_tuple_body_with_an_empty_item(server):
    with RawConnection(server.address) as connection:
        answer = connection.roundtrip("GET", "/tuple")
        assert (answer.status, answer.body) == (200, b"tuple")
        assert connection.roundtrip("GET", "/hello").body == b"hello world"


def test_repeated_response_headers_all_go_out(server):
    answer = fetch(server.address, "GET", "/cookies")
    assert answer.header_all("Set-Cookie") == ["a=1; Path=/", "b=2; Path=/"]
    assert answer.body == b"ok"


def test_204_has_no_body_and_keeps_the_connection(server):
    with RawConnection(server.address) as connection:
        answer = connection.roundtrip("GET", "/no-content")
        assert answer.status == 204
        again = connection.roundtrip("GET", "/hello")
    assert again.body == b"hello world"


def test_generator_is_chunked_for_http_1_1_and_closed_once(server):
    token = new_token()
    with RawConnection(server.address) as connection:
        answer = connection.roundtrip("GET", f"/stream?n=4&token={token}")
        assert answer.status == 200
        assert answer.header("Content-Length") is None
        assert answer.header("Transfer-Encoding") == "chunked"
        assert answer.body == b"chunk-0;chunk-1;chunk-2;chunk-3;"
        # The connection stays usable after a complete chunked body.
        again = connection.roundtrip("GET", "/hello")
        assert again.body == b"hello world"
    assert wait_for_counter(server, token, "close", 1) == 1
    fetch(server.address, "GET", "/hello")
    assert counter(server, token, "close") == 1


def test_generator_to_an_http_1_0_client_is_not_chunked_and_ends_with_close(server):
    token = new_token()
    with RawConnection(server.address) as connection:
        connection.request("GET", f"/stream?n=3&token={token}", version="HTTP/1.0")
        head = connection.read_head()
        assert head.status == 200
        assert head.header("Transfer-Encoding") is None
        assert connection.read_to_eof() == b"chunk-0;chunk-1;chunk-2;"
    assert wait_for_counter(server, token, "close", 1) == 1


def test_each_chunk_is_sent_before_the_next_is_produced(server):
    token = new_token()
    with RawConnection(server.address) as connection:
        connection.request("GET", f"/stream-wait?token={token}")
        head = connection.read_head()
        assert head.status == 200
        assert head.header("Transfer-Encoding") == "chunked"
        # The generator is now blocked until /release: the first chunk must already be here.
        assert connection.read_chunk() == b"first chunk"

        # A stream held open does not stop other requests.
        for _ in range(5):
            answer = fetch(server.address, "GET", "/hello")
            assert answer.body == b"hello world"

        assert fetch(server.address, "GET", f"/release?token={token}").body == b"released"
        assert connection.read_chunk() == b"second chunk"
        assert connection.read_chunk() == b""
    assert wait_for_counter(server, token, "close", 1) == 1


def test_close_is_called_when_the_iterable_raises(server):
    token = new_token()
    with RawConnection(server.address) as connection:
        connection.request("GET", f"/iter-error?token={token}")
        head = connection.read_head()
        assert head.status == 200
        rest = connection.read_to_eof()
    assert b"ok-part" in rest
    assert not rest.endswith(b"0\r\n\r\n"), "a failed stream must not end like a complete chunked body"
    assert wait_for_counter(server, token, "close", 1) == 1
    wait_for_log(server, f"iteration failed {token}")
    assert fetch(server.address, "GET", "/hello").body == b"hello world"
    assert counter(server, token, "close") == 1


def test_close_is_called_when_the_client_disconnects_mid_stream(server):
    token = new_token()
    with RawConnection(server.address) as connection:
        connection.request("GET", f"/drip?token={token}")
        assert connection.read_head().status == 200
        assert connection.read_chunk() == b"x" * 1024
    # The generator would go on for 60 s; the disconnect must end it (and call close()) long before.
    assert wait_for_counter(server, token, "close", 1, timeout=20) == 1
    assert fetch(server.address, "GET", f"/records?token={token}").json() == []


@pytest.mark.parametrize("length", ["yes", "no"])
def test_file_wrapper_sends_the_file_and_closes_it(server, tmp_path, length):
    data = os.urandom(300_000)
    path = tmp_path / "payload.bin"
    path.write_bytes(data)
    token = new_token()
    answer = fetch(server.address, "GET", f"/file?path={quote(str(path))}&token={token}&length={length}")
    assert answer.status == 200
    assert answer.header("Content-Type") == "application/octet-stream"
    if length == "yes":
        assert answer.header("Content-Length") == str(len(data))
    assert answer.body == data
    assert wait_for_counter(server, token, "file-close", 1) == 1


def test_file_wrapper_starts_at_the_current_position_and_stops_at_content_length(server, tmp_path):
    data = os.urandom(50_000)
    path = tmp_path / "payload.bin"
    path.write_bytes(data)
    token = new_token()
    answer = fetch(server.address, "GET", f"/file?path={quote(str(path))}&token={token}&offset=1000")
    assert answer.body == data[1000:]
    answer = fetch(server.address, "GET", f"/file?path={quote(str(path))}&token={token}&offset=1000&length=yes")
    assert answer.header("Content-Length") == str(len(data) - 1000)
    assert answer.body == data[1000:]
    answer = fetch(server.address, "GET", f"/file?path={quote(str(path))}&token={token}&offset=1000&cl=5000")
    assert answer.header("Content-Length") == "5000"
    assert answer.body == data[1000:6000]
    assert wait_for_counter(server, token, "file-close", 3) == 3


def test_file_wrapper_of_an_object_without_fileno(server):
    token = new_token()
    answer = fetch(server.address, "GET", f"/file-like?n=2000&token={token}")
    assert answer.status == 200
    assert answer.body == b"".join(b"line %d of a file-like object\n" % index for index in range(2000))
    assert wait_for_counter(server, token, "file-close", 1) == 1


def test_a_large_generated_body(server):
    size = 5 * 1024 * 1024 + 17
    answer = fetch(server.address, "GET", f"/big?n={size}")
    assert answer.header("Content-Length") == str(size)
    expected = (bytes(range(256)) * 256 * 81)[:size]
    assert len(answer.body) == size
    assert hashlib.sha256(answer.body).digest() == hashlib.sha256(expected).digest()


@pytest.mark.parametrize("declared, sent", [(100, 5), (5, 100)])
def test_content_length_mismatch_closes_the_connection(server, declared, sent):
    token = new_token()
    with RawConnection(server.address) as connection:
        connection.request("GET", f"/cl-mismatch?declared={declared}&sent={sent}&token={token}")
        head = connection.read_head()
        assert head.status == 200
        assert head.header("Content-Length") == str(declared)
        rest = connection.read_to_eof()  # ends only because the server closes the connection
    produced = b"a" * (sent // 2) + b"b" * (sent - sent // 2)
    assert len(rest) <= declared
    assert rest == produced[: len(rest)]
    assert wait_for_counter(server, token, "close", 1) == 1
    wait_for(lambda: "content-length" in log_text(server).lower(), message="a log line about the Content-Length mismatch")


def test_exception_before_the_body_gives_500_and_a_traceback_in_the_log(server):
    token = new_token()
    answer = fetch(server.address, "GET", f"/error-before?token={token}")
    assert answer.status == 500
    assert len(answer.body) < 1024
    assert b"Traceback" not in answer.body
    log = wait_for_log(server, f"boom before the body {token}")
    assert "Traceback" in log
    assert "ValueError" in log
    again = fetch(server.address, "GET", "/hello")
    assert (again.status, again.body) == (200, b"hello world")


def test_wsgi_errors_writes_go_to_the_server_log(server):
    token = new_token()
    assert fetch(server.address, "GET", f"/log?msg=app-says-{token}").body == b"logged"
    wait_for_log(server, f"app-says-{token}")
    wait_for_log(server, "second line via writelines")


# --- HEAD, keep-alive, pipelining ------------------------------------------------------------------


def test_head_has_the_headers_of_get_and_no_body(server):
    ignored = {"date"}
    with RawConnection(server.address) as connection:
        connection.request("HEAD", "/hello")
        head = connection.read_response("HEAD")
        get = connection.roundtrip("GET", "/hello")  # would misparse if HEAD had sent a body
    assert head.status == get.status == 200
    assert sorted((k.lower(), v) for k, v in head.headers if k.lower() not in ignored) == sorted(
        (k.lower(), v) for k, v in get.headers if k.lower() not in ignored
    )
    assert get.body == b"hello world"


def test_head_of_a_stream_sends_no_body(server):
    token = new_token()
    with RawConnection(server.address) as connection:
        connection.request("HEAD", f"/stream?n=3&token={token}")
        head = connection.read_response("HEAD")
        assert head.status == 200
        assert head.header("Content-Type") == "text/plain"
        again = connection.roundtrip("GET", "/hello")
    assert again.body == b"hello world"
    assert wait_for_counter(server, token, "close", 1) == 1


def test_keep_alive_serves_several_requests_on_one_connection(server):
    connection = http.client.HTTPConnection(*server.address, timeout=20)
    try:
        ports = set()
        for index in range(5):
            connection.request("GET", f"/environ?i={index}")
            answer = connection.getresponse()
            env = json.loads(answer.read())
            assert env["QUERY_STRING"] == f"i={index}"
            ports.add(env["REMOTE_PORT"])
            sock = connection.sock
            connection.request("POST", "/echo", body=b"payload %d" % index)
            answer = connection.getresponse()
            assert answer.read() == b"payload %d" % index
            assert connection.sock is sock, "the connection was not kept alive"
        assert len(ports) == 1
    finally:
        connection.close()


def test_pipelined_requests_are_answered_in_order(server):
    host = f"{server.address[0]}:{server.address[1]}"
    requests = (
        f"GET /query?first HTTP/1.1\r\nHost: {host}\r\n\r\n"
        f"POST /echo HTTP/1.1\r\nHost: {host}\r\nContent-Length: 6\r\n\r\nsecond"
        f"GET /query?third HTTP/1.1\r\nHost: {host}\r\n\r\n"
        f"POST /echo HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nfou\r\n3\r\nrth\r\n0\r\n\r\n"
    ).encode()
    with RawConnection(server.address) as connection:
        connection.send(requests)
        bodies = [connection.read_response().body for _ in range(4)]
    assert bodies == [b"first", b"second", b"third", b"fourth"]


# --- concurrency -----------------------------------------------------------------------------------


def test_a_hundred_slow_requests_run_concurrently(plain_server):
    token = new_token()

    def one(_):
        return fetch(plain_server.address, "GET", f"/sleep?s=1&token={token}", timeout=30)

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(100) as pool:
        answers = list(pool.map(one, range(100)))
    elapsed = time.monotonic() - started
    assert [answer.body for answer in answers] == [b"slept"] * 100
    assert elapsed < 10, f"100 requests sleeping 1 s each took {elapsed:.1f} s"
    assert counter(plain_server, token, "peak") > 10


def test_threads_caps_the_concurrent_app_calls(serve_app):
    server = serve_app(APPS["plain"], "--threads", "2")
    token = new_token()

    def one(_):
        return fetch(server.address, "GET", f"/sleep?s=0.3&token={token}", timeout=30)

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(one, range(6)))
    assert [answer.body for answer in answers] == [b"slept"] * 6
    assert 1 <= counter(server, token, "peak") <= 2


def test_one_read_of_a_large_body_gets_all_of_it(serve_app):
    """A 16 MiB body read with a single read() arrives whole (and the buffering stays linear)."""
    server = serve_app(APPS["plain"])
    body = bytes(range(256)) * (64 * 1024)
    answer = fetch(server.address, "POST", "/digest", body=body, headers={"Content-Type": "application/octet-stream"})
    assert answer.status == 200
    assert answer.body.decode() == f"{len(body)} {hashlib.sha256(body).hexdigest()}"


def test_content_length_in_environ_is_the_parsed_number(serve_app):
    """`Content-Length: 5, 5` is one valid length; the app must see "5", not the raw field."""
    server = serve_app(APPS["plain"])
    with RawConnection(server.address) as connection:
        connection.request("POST", "/echo", headers=[("Content-Length", "5, 5")], body=b"hello")
        answer = connection.read_response()
    assert answer.status == 200
    assert answer.body == b"hello"
    assert answer.header("X-Content-Length") == "5"


def test_an_http10_client_gets_no_100_continue(serve_app):
    server = serve_app(APPS["plain"])
    with RawConnection(server.address) as connection:
        connection.request("POST", "/echo", headers=[("Content-Length", "5"), ("Expect", "100-continue")],
                           body=b"hello", version="HTTP/1.0")
        data = connection.read_to_eof()
    assert data.startswith(b"HTTP/1.1 200"), data[:100]
    assert b"100 Continue" not in data
    assert data.endswith(b"hello")


@pytest.mark.parametrize("connection_header", ["close", "keep-alive"])
def test_a_large_unread_body_does_not_cost_the_client_its_response(serve_app, connection_header):
    """A streaming app answers without reading 2 MiB of body: the response must arrive whole (no
    reset from closing with unread bytes), and the connection must not be reused for the body's
    bytes."""
    server = serve_app(APPS["plain"], "--stream-request-body")
    body = b"x" * (2 * 1024 * 1024)
    with RawConnection(server.address) as connection:
        connection.request("POST", "/no-read", headers=[("Content-Length", str(len(body))),
                                                         ("Connection", connection_header)], body=body)
        answer = connection.read_response()
        assert answer.status == 200
        assert answer.body == b"did not read the body"
        assert answer.header("Connection") == "close"


def test_a_large_body_the_app_does_not_read_keeps_the_connection_when_buffered(serve_app):
    """Received whole before the app was called, an unread body costs the connection nothing."""
    server = serve_app(APPS["plain"])
    body = b"x" * (2 * 1024 * 1024)
    with RawConnection(server.address) as connection:
        connection.request("POST", "/no-read", headers=[("Content-Length", str(len(body)))], body=body)
        answer = connection.read_response()
        assert (answer.status, answer.body) == (200, b"did not read the body")
        assert answer.header("Connection") == "keep-alive"
        assert connection.roundtrip("GET", "/hello").body == b"hello world"
