"""ASGI 3.0 applications (HTTP spec 2.4 and lifespan) served by the real ``tern`` over real sockets:
interface detection, the scope, request bodies read as they arrive, streamed responses, the client
going away, errors, ``http.response.pathsend``, and the lifespan protocol with its state."""

import json
import os
import socket
import subprocess
import sys
import threading
import time

import pytest

from wsgi_support import APPS_DIR, RawConnection, chunked, log_text, wait_for, wait_for_log

TERN = os.path.join(os.path.dirname(sys.executable), "tern")


def get_json(server, target, **request):
    with RawConnection(server.address) as conn:
        response = conn.roundtrip("GET", target, **request)
        assert response.status == 200, response
        return response.json()


def fetch_status(server, target):
    """The status of a GET, or None while nothing answers."""
    try:
        with RawConnection(server.address) as conn:
            return conn.roundtrip("GET", target).status
    except (OSError, ValueError, AssertionError):
        return None


def event_of(server, key):
    return get_json(server, f"/events?{key}")["event"]


def run_failing(*args):
    """Runs ``tern serve ...`` that is expected to exit at start-up; bounded by a timeout."""
    result = subprocess.run(
        [TERN, "serve", *args, "--pythonpath", APPS_DIR, "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    return result.returncode, result.stderr


# --- interface detection --------------------------------------------------------------------------


def test_a_coroutine_function_is_served_as_asgi(serve_app):
    server = serve_app("asgi_app:app")
    scope = get_json(server, "/scope")
    assert scope["type"] == "http"
    assert scope["asgi"] == {"version": "3.0", "spec_version": "2.4"}


def test_an_object_with_a_coroutine_call_is_served_as_asgi(serve_app):
    server = serve_app("asgi_app:callable_app")
    assert get_json(server, "/")["kind"] == "callable object"


def test_interface_wsgi_forces_wsgi(serve_app):
    # Called as WSGI, the coroutine function returns a coroutine, which is no WSGI response: 500.
    server = serve_app("asgi_app:app", "--interface", "wsgi", "--lifespan", "off")
    with RawConnection(server.address) as conn:
        assert conn.roundtrip("GET", "/scope").status == 500


# --- the scope ------------------------------------------------------------------------------------


def test_the_scope_has_every_key_of_the_spec(serve_app):
    server = serve_app("asgi_app:app", "--root-path", "/mount")
    with RawConnection(server.address) as conn:
        response = conn.roundtrip(
            "GET",
            "/mount/scope/caf%C3%A9%20x?a=1&b=%20",
            headers=[("X-First", "1"), ("x-second", "two"), ("X-First", "3")],
        )
        assert response.status == 200, response
        scope = response.json()
        client_port = conn.local_port
    assert scope["type"] == "http"
    assert scope["http_version"] == "1.1"
    assert scope["method"] == "GET"
    assert scope["scheme"] == "http"
    assert scope["path"] == "/mount/scope/café x"
    assert scope["raw_path"] == {"bytes": "/mount/scope/caf%C3%A9%20x"}
    assert scope["query_string"] == {"bytes": "a=1&b=%20"}
    assert scope["root_path"] == "/mount"
    names = [pair[0]["bytes"] for pair in scope["headers"]]
    assert names == ["host", "x-first", "x-second", "x-first"]
    assert [pair[1]["bytes"] for pair in scope["headers"]][1:] == ["1", "two", "3"]
    assert scope["header_types"] == ["tuple"]
    assert scope["client"] == ["127.0.0.1", client_port]
    assert scope["server"] == ["127.0.0.1", server.address[1]]
    assert scope["extensions"] == {"http.response.pathsend": {}}
    assert scope["state"]["started_by"] == "lifespan"


def test_http_1_0_and_a_trusted_proxy_show_in_the_scope(serve_app):
    server = serve_app("asgi_app:app")
    with RawConnection(server.address) as conn:
        response = conn.roundtrip(
            "GET",
            "/scope",
            headers=[("X-Forwarded-For", "203.0.113.9"), ("X-Forwarded-Proto", "https")],
            version="HTTP/1.0",
        )
    scope = response.json()
    assert scope["http_version"] == "1.0"
    assert scope["scheme"] == "https"
    assert scope["client"][0] == "203.0.113.9"


# --- request bodies -------------------------------------------------------------------------------


def test_small_and_chunked_bodies_reach_receive(serve_app):
    server = serve_app("asgi_app:app")
    with RawConnection(server.address) as conn:
        answer = conn.roundtrip("POST", "/echo", headers=[("Content-Length", "5")], body=b"hello").json()
        assert answer == {"length": 5, "messages": 1, "text": "hello"}
        body = chunked(b"abc", b"defg", b"h" * 70000)
        answer = conn.roundtrip("POST", "/echo", headers=[("Transfer-Encoding", "chunked")], body=body).json()
        assert answer["length"] == 3 + 4 + 70000
        assert answer["text"].startswith("abcdefg")
        assert answer["messages"] >= 2


def test_a_large_body_read_slowly_while_the_client_sends_fast_stays_out_of_memory(serve_app):
    server = serve_app("asgi_app:app")
    size = 48 * 1024 * 1024
    with RawConnection(server.address, timeout=120) as conn:
        conn.request("POST", "/slow-read", headers=[("Content-Length", str(size))])
        piece = b"z" * (1024 * 1024)
        for _ in range(size // len(piece)):
            conn.send(piece)
        answer = conn.read_response().json()
    assert answer["length"] == size
    # Read in receive()-sized pieces as it arrived, never gathered: the worker's peak memory grew by
    # far less than the body.
    assert answer["messages"] >= size // (64 * 1024)
    assert answer["peak_growth_kib"] < 16 * 1024, answer


# --- responses ------------------------------------------------------------------------------------


def test_a_single_body_gets_a_content_length(serve_app):
    server = serve_app("asgi_app:app")
    with RawConnection(server.address) as conn:
        response = conn.roundtrip("GET", "/scope")
        assert response.header("Content-Length") == str(len(response.body))
        assert response.header("Content-Type") == "application/json"
        head = conn.roundtrip("HEAD", "/scope")
        assert head.status == 200 and head.body == b""


def test_a_streamed_response_is_chunked(serve_app):
    server = serve_app("asgi_app:app")
    with RawConnection(server.address) as conn:
        response = conn.roundtrip("GET", "/stream?4")
        assert response.chunked
        assert response.body == b"part 0\npart 1\npart 2\npart 3\n"
        # The connection is kept for the next request.
        assert conn.roundtrip("GET", "/stream?1").body == b"part 0\n"


def test_a_streamed_response_over_http_1_0_ends_with_the_connection(serve_app):
    server = serve_app("asgi_app:app")
    with RawConnection(server.address) as conn:
        response = conn.roundtrip("GET", "/stream?2", version="HTTP/1.0")
        assert response.body == b"part 0\npart 1\n"


def test_pathsend_sends_the_file(serve_app):
    server = serve_app("asgi_app:app")
    with RawConnection(server.address) as conn:
        response = conn.roundtrip("GET", "/pathsend")
    with open(os.path.join(APPS_DIR, "asgi_app.py"), "rb") as source:
        expected = source.read()
    assert response.status == 200
    assert response.header("Content-Length") == str(len(expected))
    assert response.body == expected


# --- the client going away ------------------------------------------------------------------------


def test_send_raises_oserror_once_the_client_left_a_streamed_response(serve_app):
    server = serve_app("asgi_app:app")
    conn = RawConnection(server.address)
    conn.request("GET", "/stream-until-gone?streamed")
    assert conn.read_head().status == 200
    conn.read_chunk()
    conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    conn.close()
    assert wait_for(lambda: event_of(server, "streamed")) == "send raised ClientDisconnected True"
    assert "Traceback" not in log_text(server)


def test_receive_says_http_disconnect_when_the_client_goes_away(serve_app):
    server = serve_app("asgi_app:app")
    conn = RawConnection(server.address)
    conn.request("GET", "/wait-disconnect?waiting")
    time.sleep(0.2)  # not a timing assertion: the app is waiting in receive() either way
    conn.close()
    assert wait_for(lambda: event_of(server, "waiting")) == "http.disconnect"


def test_a_request_whose_client_left_before_the_answer_is_logged_as_499(serve_app):
    server = serve_app("asgi_app:app")
    conn = RawConnection(server.address)
    conn.request("GET", "/wait-disconnect?left-early")
    time.sleep(0.2)  # not a timing assertion: the app is waiting in receive() either way
    conn.close()
    assert wait_for(lambda: event_of(server, "left-early")) == "http.disconnect"
    # nginx's "client closed request": logged and counted, though no status went out.
    wait_for_log(server, '"GET /wait-disconnect?left-early HTTP/1.1" 499')


# --- errors ---------------------------------------------------------------------------------------


def test_a_worker_whose_event_loop_is_stopped_is_replaced(serve_app):
    # Before, the worker lived on with no loop: every later request waited forever.
    server = serve_app("asgi_app:app")
    with RawConnection(server.address) as conn:
        try:
            conn.roundtrip("GET", "/stop-loop")
        except (OSError, AssertionError, ValueError):
            pass  # the worker may go before it answers
    wait_for_log(server, "worker exits: its ASGI event loop is gone")
    assert wait_for(lambda: fetch_status(server, "/scope")) == 200


def test_no_response_is_a_500_and_logged(serve_app):
    server = serve_app("asgi_app:app")
    with RawConnection(server.address) as conn:
        assert conn.roundtrip("GET", "/no-response").status == 500
        # The connection stays usable.
        assert conn.roundtrip("GET", "/stream?1").status == 200
    wait_for_log(server, "ASGI application returned without sending a response")


@pytest.mark.parametrize(
    "kind, error",
    [
        ("no-type", "the ASGI message has no 'type'"),
        ("unknown-type", "unexpected ASGI message type \"http.response.begin\" for an HTTP request"),
        ("not-a-dict", "an ASGI message must be a dict"),
    ],
)
def test_a_malformed_message_to_send_is_refused_with_a_500_and_logged(serve_app, kind, error):
    server = serve_app("asgi_app:app")
    with RawConnection(server.address) as conn:
        assert conn.roundtrip("GET", f"/bad-message?{kind}").status == 500
        # The connection stays usable.
        assert conn.roundtrip("GET", "/stream?1").status == 200
    wait_for_log(server, error)


def test_an_exception_before_the_response_is_a_500_with_its_traceback_logged(serve_app):
    server = serve_app("asgi_app:app")
    with RawConnection(server.address) as conn:
        assert conn.roundtrip("GET", "/raise").status == 500
    log = wait_for_log(server, "asgi_app fails before the response")
    assert "Traceback (most recent call last)" in log


def test_an_exception_during_the_response_closes_the_connection(serve_app):
    server = serve_app("asgi_app:app")
    with RawConnection(server.address) as conn:
        conn.request("GET", "/raise-after-start")
        head = conn.read_head()
        assert head.status == 200
        assert conn.read_chunk() == b"partial"
        with pytest.raises(EOFError):
            conn.read_chunk()
    wait_for_log(server, "asgi_app fails during the response")


# --- lifespan -------------------------------------------------------------------------------------


def test_lifespan_state_is_copied_into_each_scope(serve_app):
    server = serve_app("asgi_app:app", "-w", "2")
    first = get_json(server, "/scope")
    assert first["state"]["started_by"] == "lifespan"
    # A request changing its copy changes nobody else's.
    again = get_json(server, "/scope")
    assert "changed_by_request" not in again["state"]


def test_lifespan_shutdown_runs_when_the_worker_stops(serve_app):
    server = serve_app("asgi_app:app")
    get_json(server, "/scope")
    assert server.stop() == 0
    server.log_reader.join(10)
    assert "asgi_app: lifespan shutdown in" in log_text(server)


def test_a_failed_startup_stops_tern_at_start_up():
    status, stderr = run_failing("asgi_app:failing_startup")
    assert status == 2, stderr
    assert "lifespan startup failed: asgi_app: the database is not there" in stderr


def test_a_startup_that_raises_stops_tern_with_the_traceback():
    status, stderr = run_failing("asgi_app:raising_startup")
    assert status == 2, stderr
    assert "ConnectionError: asgi_app: startup could not connect" in stderr
    assert "Traceback (most recent call last)" in stderr


def test_an_app_refusing_the_lifespan_scope_is_served_without_it(serve_app):
    server = serve_app("asgi_app:http_only")
    assert get_json(server, "/")["kind"] == "http only"
    wait_for_log(server, "does not support the lifespan protocol")


def test_lifespan_on_requires_support():
    status, stderr = run_failing("asgi_app:http_only", "--lifespan", "on")
    assert status == 2, stderr
    assert "does not support the lifespan protocol" in stderr


def test_lifespan_off_skips_it(serve_app):
    server = serve_app("asgi_app:app", "--lifespan", "off")
    assert get_json(server, "/scope")["state"] == {}


# --- the event loop -------------------------------------------------------------------------------


def test_loop_asyncio_uses_asyncio(serve_app):
    server = serve_app("asgi_app:app", "--loop", "asyncio")
    assert get_json(server, "/loop")["loop"].startswith("asyncio")


def test_loop_uvloop_uses_uvloop(serve_app):
    pytest.importorskip("uvloop")
    server = serve_app("asgi_app:app", "--loop", "uvloop")
    assert get_json(server, "/loop")["loop"] == "uvloop"


@pytest.mark.parametrize("loop", ["auto", "uvloop", "asyncio"])
def test_an_app_that_imports_nothing_runs_on_every_loop(serve_app, loop):
    # uvloop once took the loop's thread for the main one when `threading` was first imported
    # there, and the loop failed at its first run.
    if loop != "asyncio":
        pytest.importorskip("uvloop")
    server = serve_app("asgi_bare_app:app", "--loop", loop)
    with RawConnection(server.address) as conn:
        response = conn.roundtrip("GET", "/")
        assert response.status == 200, response
        assert response.body == b"bare"
