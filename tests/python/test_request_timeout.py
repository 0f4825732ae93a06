"""--request-timeout: a call that hangs gets the client a 504 (or a closed connection once its
response has started), the log shows the Python stack of the stuck thread with the file and line
where it hangs, the worker is replaced gracefully, and other requests are served meanwhile. Time a
client spends not reading is not the application's."""

import socket
import threading
import time

import requests

from test_restarts import worker_pids, write_app
from wsgi_support import log_text, wait_for, wait_for_log

HUNG_APP = '''
import os
import time

STARTED = {started!r}


def application(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/sleep":
        open(STARTED, "w").close()
        time.sleep(60)  # sleeps here
    elif path == "/spin":
        open(STARTED, "w").close()
        while True: pass  # spins here
    elif path == "/stream":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return stalled_stream()
    elif path == "/big":
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return big_stream()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "4")])
    return [b"fast"]


def stalled_stream():
    yield b"first"
    time.sleep(60)  # stalls here
    yield b"second"


def big_stream():
    chunk = b"x" * 65536
    for _ in range(BIG_CHUNKS):
        yield chunk


BIG_CHUNKS = 512
'''
BIG_BODY = 512 * 65536
# Longer than the replacement may take: the drain must not wait for the stuck thread.
GRACE = "30"


def line_of(source, marker):
    """The 1-based number of the line of ``source`` that contains ``marker``."""
    return next(number for number, line in enumerate(source.splitlines(), 1) if marker in line)


def start_hung_app(start_server, tmp_path, timeout="1"):
    started = tmp_path / "started"
    source = HUNG_APP.format(started=str(started))
    pythonpath = write_app(tmp_path, "hung_app", source)
    server = start_server(
        "serve", "hung_app:application", "--pythonpath", pythonpath,
        "-w", "1", "--request-timeout", timeout, "--grace-timeout", GRACE,
    )
    wait_for(lambda: len(worker_pids(server)) == 1, message="the worker")
    return server, source, started


def url(server, path):
    host, port = server.address
    return f"http://{host}:{port}{path}"


def get_in_background(target):
    """GETs ``target`` on a thread; the returned dict gets ``status`` or ``error``."""
    result = {}

    def run():
        try:
            result["status"] = requests.get(target, timeout=30).status_code
        except requests.RequestException as error:
            result["error"] = repr(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, result


def assert_stack_logged(server, source, marker):
    """The log names the stuck request and shows the stack: the app's file, the line, its code."""
    line = line_of(source, marker)
    log = wait_for_log(server, f'hung_app.py", line {line}')
    assert "request timed out" in log
    assert "(most recent call last)" in log
    assert source.splitlines()[line - 1].strip() in log


def assert_worker_replaced(server, before):
    wait_for(
        lambda: len(worker_pids(server)) == 1 and not set(worker_pids(server)) & set(before),
        message=f"the worker {before} replaced:\n{log_text(server)}",
    )
    wait_for_log(server, "asking for a replacement: a request timed out")
    wait_for_log(server, "leaving 1 call(s) that timed out still running")
    assert "grace timeout reached" not in log_text(server)
    for _ in range(3):
        answer = requests.get(url(server, "/"), timeout=20)
        assert answer.status_code == 200 and answer.content == b"fast"


def test_a_sleeping_call_gets_504_its_stack_logged_and_the_worker_replaced(start_server, tmp_path):
    server, source, started = start_hung_app(start_server, tmp_path, timeout="3")
    before = worker_pids(server)
    slow, result = get_in_background(url(server, "/sleep"))
    wait_for(started.exists, message="the slow call to start")
    # The same worker answers others while a call hangs.
    fast = requests.get(url(server, "/"), timeout=20)
    assert fast.status_code == 200 and fast.content == b"fast"
    assert slow.is_alive(), "the slow request was still pending"
    slow.join(30)
    assert result == {"status": 504}
    assert_stack_logged(server, source, "sleeps here")
    assert_worker_replaced(server, before)


def test_a_busy_loop_gets_504_and_its_stack_logged(start_server, tmp_path):
    server, source, _ = start_hung_app(start_server, tmp_path)
    before = worker_pids(server)
    answer = requests.get(url(server, "/spin"), timeout=30)
    assert answer.status_code == 504
    assert_stack_logged(server, source, "spins here")
    assert_worker_replaced(server, before)


def test_a_stalled_stream_is_closed_after_its_first_chunk(start_server, tmp_path):
    server, source, _ = start_hung_app(start_server, tmp_path)
    before = worker_pids(server)
    with socket.create_connection(server.address, timeout=30) as client:
        client.sendall(b"GET /stream HTTP/1.1\r\nHost: t\r\n\r\n")
        received = b""
        while chunk := client.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert b"transfer-encoding: chunked" in head.lower()
    assert body == b"5\r\nfirst\r\n", "the first chunk, then the connection closed without the last chunk"
    assert_stack_logged(server, source, "stalls here")
    assert_worker_replaced(server, before)


def test_a_client_that_pauses_reading_is_not_timed_out(start_server, tmp_path):
    """Only waits on the application count: a stream whose client stops reading for longer than
    the timeout still arrives whole: 32 MiB do not fit in the socket buffers, so the server
    waits on the client meanwhile."""
    server, _, _ = start_hung_app(start_server, tmp_path)
    with socket.create_connection(server.address, timeout=30) as client:
        client.sendall(b"GET /big HTTP/1.0\r\nHost: t\r\n\r\n")
        first = client.recv(4096)
        head, _, body_start = first.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        time.sleep(2.5)  # longer than --request-timeout, without reading
        body_length = len(body_start)
        while chunk := client.recv(1 << 20):
            body_length += len(chunk)
    assert body_length == BIG_BODY
    assert "request timed out" not in log_text(server)
