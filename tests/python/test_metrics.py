"""``--metrics-bind`` with a WSGI app: application requests by status class, Python threads busy
and idle, how long calls waited for a thread, and request bodies the event loop is still
receiving. The app is tests/python/apps/pep_app.py; everything goes over real sockets.
"""

import socket
import threading
import uuid

from wsgi_support import fetch, metrics_address, scrape, wait_for

APP = "pep_app:application"


def test_app_requests_are_counted_by_status_class(serve_app):
    server = serve_app(APP, "--metrics-bind", "127.0.0.1:0", "--no-access-log")
    metrics = metrics_address(server)
    for _ in range(3):
        assert fetch(server.address, "GET", "/hello").status == 200
    assert fetch(server.address, "GET", "/error-before").status == 500
    samples = scrape(metrics)
    assert samples['tern_http_requests_total{mount="app",status="2xx"}'] == 3
    assert samples['tern_http_requests_total{mount="app",status="5xx"}'] == 1
    assert samples['tern_http_request_duration_seconds_count{mount="app"}'] == 4
    assert samples['tern_http_response_body_bytes_total{mount="app"}'] > 0
    # Each call waited for a thread (if only for a moment), and was counted doing so.
    assert samples["tern_python_queue_wait_seconds_count"] >= 4


def test_python_threads_busy_while_calls_run(serve_app):
    server = serve_app(APP, "--metrics-bind", "127.0.0.1:0", "--no-access-log")
    metrics = metrics_address(server)
    token = uuid.uuid4().hex[:12]
    sleepers = [
        threading.Thread(target=fetch, args=(server.address, "GET", f"/sleep?s=2&token={token}"))
        for _ in range(3)
    ]
    for sleeper in sleepers:
        sleeper.start()
    wait_for(lambda: scrape(metrics)['tern_python_threads{state="busy"}'] == 3, message="3 busy threads")
    # Sampled a few times a second.
    wait_for(lambda: scrape(metrics)["tern_http_requests_in_flight"] == 3, message="3 requests in flight")
    for sleeper in sleepers:
        sleeper.join(30)
    samples = wait_for(
        lambda: (s := scrape(metrics))['tern_python_threads{state="busy"}'] == 0 and s,
        message="no busy thread",
    )
    assert samples['tern_python_threads{state="idle"}'] >= 1


def test_a_body_still_arriving_is_counted_until_it_is_whole(serve_app):
    server = serve_app(APP, "--metrics-bind", "127.0.0.1:0", "--no-access-log")
    metrics = metrics_address(server)
    with socket.create_connection(server.address, timeout=10) as upload:
        upload.sendall(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nhalf!")
        wait_for(
            lambda: scrape(metrics)["tern_http_request_bodies_receiving"] == 1,
            message="one body being received",
        )
        upload.sendall(b"done!")
        answer = b""
        while b"half!done!" not in answer:
            chunk = upload.recv(4096)
            assert chunk, answer
            answer += chunk
    wait_for(
        lambda: scrape(metrics)["tern_http_request_bodies_receiving"] == 0,
        message="no body being received",
    )
