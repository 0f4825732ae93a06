"""An unmodified Quart application (apps/quart_app.py) served by ``tern serve quart_app:app`` as
ASGI, found as such without ``--interface``: its lifespan hooks, JSON routes, a path parameter,
request bodies, a response streamed from an async generator (and closed when the client leaves),
404 and 405, and a WebSocket route."""

import hashlib
import json
import os
import re
import uuid

import pytest

from wsgi_support import RawConnection, chunked, fetch, wait_for, wait_for_log

pytest.importorskip("quart")
from websockets.exceptions import ConnectionClosedOK, InvalidStatus  # noqa: E402
from websockets.sync.client import connect  # noqa: E402

APP = "quart_app:app"
TIMEOUT = 20


def ws_connect(server, path):
    """A ``websockets`` sync client with bounded waits, no proxy and no client pings."""
    url = f"ws://{server.address[0]}:{server.address[1]}{path}"
    return connect(url, proxy=None, ping_interval=None, open_timeout=TIMEOUT, close_timeout=TIMEOUT)


def worker_pids(server):
    return set(re.findall(r"worker (\d+) started", "".join(server.log_lines)))


def test_lifespan_hooks_run_in_the_worker(serve_app):
    """``before_serving`` ran before the first request, in the worker; ``after_serving`` at SIGTERM."""
    server = serve_app(APP)
    home = fetch(server.address, "GET", "/")
    assert home.status == 200, home
    assert home.header("Content-Type") == "application/json"
    started_by = home.json()
    assert started_by["framework"] == "quart"
    match = re.fullmatch(r"before_serving in (\d+)", started_by["started_by"] or "")
    assert match, started_by
    assert match.group(1) in worker_pids(server), "".join(server.log_lines)
    assert server.stop() == 0, "".join(server.log_lines)
    wait_for_log(server, f"quart_app: after_serving ran in {match.group(1)}")


def test_json_body_query_and_path_parameters(serve_app):
    server = serve_app(APP)
    body = json.dumps({"name": "pen ✓", "tags": [1, 2]}).encode()
    with RawConnection(server.address) as conn:
        echo = conn.roundtrip(
            "POST",
            "/echo?x=1&y=two",
            headers=[("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
            body=body,
        )
        assert echo.status == 201, echo
        assert echo.json() == {"got": {"name": "pen ✓", "tags": [1, 2]}, "path": "/echo", "args": {"x": "1", "y": "two"}}

        item = conn.roundtrip("GET", "/items/21")
        assert item.status == 200, item
        assert item.json() == {"item_id": 21, "double": 42}
        # The converter refuses a word, and the view aborts for 0: both are Quart's 404.
        assert conn.roundtrip("GET", "/items/seven").status == 404
        assert conn.roundtrip("GET", "/items/0").status == 404


def test_unknown_path_and_wrong_method(serve_app):
    server = serve_app(APP)
    with RawConnection(server.address) as conn:
        missing = conn.roundtrip("GET", "/no/such/page")
        assert missing.status == 404, missing
        assert b"Not Found" in missing.body
        wrong = conn.roundtrip("DELETE", "/echo")
        assert wrong.status == 405, wrong
        assert "POST" in wrong.header("Allow", ""), wrong
        # The connection is still good after both.
        assert conn.roundtrip("GET", "/items/1").json() == {"item_id": 1, "double": 2}


def test_request_bodies_in_one_piece_and_in_many(serve_app):
    server = serve_app(APP)
    large = os.urandom(1 << 20)
    pieces = [os.urandom(size) for size in (3, 70_000, 1, 150_000)]
    with RawConnection(server.address) as conn:
        for body, headers, wire in [
            (b"", [("Content-Length", "0")], b""),
            (large, [("Content-Length", str(len(large)))], large),
            (b"".join(pieces), [("Transfer-Encoding", "chunked")], chunked(*pieces)),
        ]:
            answer = conn.roundtrip("POST", "/digest", headers=headers, body=wire)
            assert answer.status == 200, answer
            assert answer.json() == {"length": len(body), "sha256": hashlib.sha256(body).hexdigest()}


def open_stream(server, token):
    """A connection whose GET /stream/TOKEN has sent its first three parts; its head; the parts."""
    conn = RawConnection(server.address)
    conn.request("GET", f"/stream/{token}")
    head = conn.read_head()
    assert head.status == 200, head
    received = b""
    while not received.endswith(b"part 2\n"):
        chunk = conn.read_chunk()
        assert chunk, f"the body ended before the release: {received!r}"
        received += chunk
    return conn, head, received


def stream_is_waiting(server, token):
    answer = fetch(server.address, "GET", "/streams")
    assert answer.status == 200, answer
    return token in answer.json()["waiting"]


def test_streamed_response_arrives_part_by_part(serve_app):
    """The first parts come while the generator still waits for a second request, which the test
    sends only after reading them; then the rest and the end of the chunked body."""
    server = serve_app(APP)
    token = uuid.uuid4().hex
    conn, head, before = open_stream(server, token)
    with conn:
        assert head.header("Content-Type") == "text/plain; charset=utf-8"
        assert "chunked" in (head.header("Transfer-Encoding") or "").lower(), head
        assert before == b"part 0\npart 1\npart 2\n"
        assert stream_is_waiting(server, token)

        released = fetch(server.address, "GET", f"/stream/{token}/release")
        assert released.status == 200 and released.json() == {"released": token}, released

        after = b""
        while True:
            chunk = conn.read_chunk()
            if not chunk:
                break
            after += chunk
        assert after == b"end\n"
        assert conn.roundtrip("GET", "/items/3").json() == {"item_id": 3, "double": 6}


def test_client_leaving_a_stream_closes_the_generator(serve_app):
    """tern tells Quart the client closed (``http.disconnect``): Quart cancels the response, and
    the generator waiting for its release ends."""
    server = serve_app(APP)
    token = uuid.uuid4().hex
    conn, _, _ = open_stream(server, token)
    assert stream_is_waiting(server, token)
    conn.close()
    wait_for(lambda: not stream_is_waiting(server, token), message="the stream's generator to end")
    assert fetch(server.address, "GET", "/items/4").json() == {"item_id": 4, "double": 8}


def test_websocket_echo_with_lifespan_state_and_close(serve_app):
    server = serve_app(APP)
    with ws_connect(server, "/ws") as ws:
        assert re.fullmatch(r"before_serving in \d+", ws.recv(timeout=TIMEOUT))
        ws.send("hello ✓")
        assert ws.recv(timeout=TIMEOUT) == "echo: hello ✓"
        ws.send(b"\x00\x01\x02abc")
        assert ws.recv(timeout=TIMEOUT) == b"cba\x02\x01\x00"
        large = "x" * 200_000
        ws.send(large)
        assert ws.recv(timeout=TIMEOUT) == "echo: " + large
        ws.send("bye")
        with pytest.raises(ConnectionClosedOK) as info:
            ws.recv(timeout=TIMEOUT)
    assert info.value.rcvd.code == 1000
    assert info.value.rcvd.reason == "bye to you"


def test_websocket_closed_by_the_client_then_http_goes_on(serve_app):
    server = serve_app(APP)
    for round_ in range(3):
        with ws_connect(server, "/ws") as ws:
            ws.recv(timeout=TIMEOUT)
            ws.send(f"round {round_}")
            assert ws.recv(timeout=TIMEOUT) == f"echo: round {round_}"
        # Leaving the block closed it from the client's side with 1000.
    assert fetch(server.address, "GET", "/items/5").json() == {"item_id": 5, "double": 10}
    assert "Traceback" not in "".join(server.log_lines), "".join(server.log_lines)


def test_websocket_to_an_unknown_path_is_refused(serve_app):
    server = serve_app(APP)
    with pytest.raises(InvalidStatus) as info:
        with ws_connect(server, "/nowhere"):
            pass
    # Quart answers with its 404 through the WebSocket denial response extension tern offers.
    assert info.value.response.status_code == 404
    assert fetch(server.address, "GET", "/items/2").status == 200
