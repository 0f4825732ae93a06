"""Starlette and FastAPI applications, unmodified, served by ``tern serve`` as ASGI."""

import json
import os
import subprocess
import sys

import pytest

from wsgi_support import APPS_DIR, RawConnection, wait_for

pytest.importorskip("starlette")

TERN = os.path.join(os.path.dirname(sys.executable), "tern")


def test_starlette_routes_bodies_streams_files_and_lifespan_state(serve_app):
    server = serve_app("starlette_app:app")
    with RawConnection(server.address) as conn:
        home = conn.roundtrip("GET", "/")
        assert home.status == 200 and home.body == b"hello from lifespan"
        body = b'{"a": [1, 2]}'
        echo = conn.roundtrip(
            "POST", "/echo", headers=[("Content-Type", "application/json"), ("Content-Length", str(len(body)))], body=body
        )
        assert echo.json() == {"got": {"a": [1, 2]}, "path": "/echo", "root_path": ""}
        stream = conn.roundtrip("GET", "/stream")
        assert stream.chunked and stream.body == b"part 0\npart 1\npart 2\n"
        source = conn.roundtrip("GET", "/source")
        with open(os.path.join(APPS_DIR, "starlette_app.py"), "rb") as file:
            assert source.body == file.read()
        assert conn.roundtrip("GET", "/later").body == b"later"
        assert conn.roundtrip("GET", "/nowhere").status == 404
    wait_for(lambda: RawConnection(server.address).roundtrip("GET", "/done").json() == ["background ran"])


def test_starlette_under_a_root_path(serve_app):
    server = serve_app("starlette_app:app", "--root-path", "/api")
    with RawConnection(server.address) as conn:
        body = b"[]"
        echo = conn.roundtrip("POST", "/api/echo", headers=[("Content-Length", "2")], body=body)
        assert echo.status == 200, echo
        assert echo.json()["root_path"] == "/api"


def test_fastapi_parameters_and_validation(serve_app):
    pytest.importorskip("fastapi")
    server = serve_app("fastapi_app:app")
    with RawConnection(server.address) as conn:
        assert conn.roundtrip("GET", "/items/7?q=x").json() == {"item_id": 7, "q": "x"}
        assert conn.roundtrip("GET", "/items/seven").status == 422
        body = b'{"name": "pen", "price": 2.5}'
        created = conn.roundtrip("POST", "/items/", headers=[("Content-Type", "application/json"), ("Content-Length", str(len(body)))], body=body)
        assert created.json() == {"name": "pen", "price_with_tax": 3.0}


def test_fastapi_streaming_response_and_background_task(serve_app):
    pytest.importorskip("fastapi")
    server = serve_app("fastapi_app:app")
    with RawConnection(server.address) as conn:
        countdown = conn.roundtrip("GET", "/countdown/3")
        assert countdown.status == 200 and countdown.chunked
        assert countdown.body == b"3\n2\n1\n"
        queued = conn.roundtrip("POST", "/notify/ada", headers=[("Content-Length", "0")])
        assert queued.json() == {"queued": "ada"}
    # The task runs after the response went out.
    wait_for(lambda: RawConnection(server.address).roundtrip("GET", "/notified").json() == ["notified ada"])


def test_starlette_static_files_and_server_sent_events(serve_app):
    server = serve_app("starlette_app:app")
    with RawConnection(server.address) as conn:
        page = conn.roundtrip("GET", "/files/starlette_app.py")
        assert page.status == 200, page
        with open(os.path.join(APPS_DIR, "starlette_app.py"), "rb") as file:
            assert page.body == file.read()
        etag = page.header("ETag")
        assert etag
        again = conn.roundtrip("GET", "/files/starlette_app.py", headers=[("If-None-Match", etag)])
        assert again.status == 304 and again.body == b""
        assert conn.roundtrip("GET", "/files/nothing-here.txt").status == 404
        events = conn.roundtrip("GET", "/events")
        assert events.status == 200
        assert events.header("Content-Type").startswith("text/event-stream")
        assert events.chunked
        assert events.body == b"".join(b"id: %d\nevent: tick\ndata: tick %d\n\n" % (i, i) for i in range(3))


def ws_connect(server, path):
    """A ``websockets`` sync client with bounded waits, no proxy and no client pings."""
    client = pytest.importorskip("websockets.sync.client")
    url = f"ws://{server.address[0]}:{server.address[1]}{path}"
    return client.connect(url, proxy=None, ping_interval=None, open_timeout=20, close_timeout=20)


def test_starlette_websocket_endpoint_with_lifespan_state(serve_app):
    from websockets.exceptions import InvalidStatus

    server = serve_app("starlette_app:app")
    with ws_connect(server, "/shout") as ws:
        assert ws.recv(timeout=20) == "hello from lifespan"
        ws.send("quiet please")
        assert ws.recv(timeout=20) == "QUIET PLEASE"
    # No WebSocket route there: Starlette closes before accepting, which the client sees as a 403.
    with pytest.raises(InvalidStatus) as info:
        with ws_connect(server, "/nowhere"):
            pass
    assert info.value.response.status_code == 403


def test_fastapi_websocket_json_and_normal_close(serve_app):
    pytest.importorskip("fastapi")
    from websockets.exceptions import ConnectionClosedOK

    server = serve_app("fastapi_app:app")
    with ws_connect(server, "/ws") as ws:
        ws.send(json.dumps({"name": "pen", "price": 2.5}))
        assert json.loads(ws.recv(timeout=20)) == {"name": "pen", "price_with_tax": 3.0}
        with pytest.raises(ConnectionClosedOK) as info:
            ws.recv(timeout=20)
    assert info.value.rcvd.code == 1000


def test_fastapi_failing_startup_stops_tern():
    pytest.importorskip("fastapi")
    result = subprocess.run(
        [TERN, "serve", "fastapi_app:app", "--pythonpath", APPS_DIR, "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "FASTAPI_APP_FAIL_STARTUP": "1"},
    )
    assert result.returncode == 2, result.stderr
    assert "fastapi_app: startup refused" in result.stderr
