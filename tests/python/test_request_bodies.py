"""Request bodies on their way to the app: received whole by the event loop before the app is
called (in memory, in the worker's ``--body-memory`` when larger, or spooled to an unlinked
temporary file), streamed to the app with ``--stream-request-body``, and clients that send too
slowly cut by ``--min-data-rate``.

The app is tests/python/apps/pep_app.py; the tests talk to ``tern serve`` over real sockets.
"""

import concurrent.futures
import hashlib
import os
import resource
import socket
import time
import uuid

import pytest

from wsgi_support import RawConnection, chunked, counter, fetch, log_text, wait_for, wait_for_counter, wait_for_log

APP = "pep_app:application"
MIB = 1024 * 1024


def new_token():
    return uuid.uuid4().hex[:12]


def worker_pid(server):
    """The one worker process (a child of the supervisor the test started)."""
    pid = server.process.pid
    children = wait_for(lambda: open(f"/proc/{pid}/task/{pid}/children").read().split(), message="a worker")
    return int(children[0])


def open_files(pid):
    """What each open descriptor of ``pid`` points at."""
    targets = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            targets.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except FileNotFoundError:
            pass  # closed while we looked
    return targets


def spool_files(pid, directory):
    return [target for target in open_files(pid) if target.startswith(str(directory))]


def raise_fd_limit(needed):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, needed), hard))
    assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] >= needed, "not enough descriptors for this test"


def body_head(connection, target, transfer, length):
    framing = ("Content-Length", str(length)) if transfer == "content-length" else ("Transfer-Encoding", "chunked")
    connection.request("POST", target, [framing])


def body_piece(transfer, piece):
    return piece if transfer == "content-length" else b"%x\r\n%s\r\n" % (len(piece), piece)


def body_end(transfer):
    return b"" if transfer == "content-length" else b"0\r\n\r\n"


# --- buffering (the default) ----------------------------------------------------------------------


@pytest.mark.parametrize("transfer", ["content-length", "chunked"])
def test_a_big_body_reaches_the_app_whole_through_a_spool_file_that_is_closed_after(serve_app, tmp_path, transfer):
    server = serve_app(APP, "--body-temp-dir", str(tmp_path), "--body-buffer-size", "256K", "--body-memory", "0")
    worker = worker_pid(server)
    assert fetch(server.address, "GET", "/hello").status == 200
    descriptors_before = len(open_files(worker))
    token = new_token()
    body = os.urandom(5 * MIB)
    half = len(body) // 2
    with RawConnection(server.address) as connection:
        body_head(connection, f"/digest?token={token}", transfer, len(body))
        connection.send(body_piece(transfer, body[:half]))
        # Past the memory threshold the body goes to an unlinked file in --body-temp-dir...
        spooled = wait_for(lambda: spool_files(worker, tmp_path), message="a spool file in the worker")
        assert all(target.endswith("(deleted)") for target in spooled), spooled
        # ...and the app is not called before the whole body is there.
        assert fetch(server.address, "GET", "/hello").status == 200
        assert counter(server, token, "called") == 0
        connection.send(body_piece(transfer, body[half:]) + body_end(transfer))
        answer = connection.read_response()
        assert answer.status == 200, answer
        assert answer.body.decode() == f"{len(body)} {hashlib.sha256(body).hexdigest()}"
        # The connection stays usable.
        assert connection.roundtrip("GET", "/hello").body == b"hello world"
    assert counter(server, token, "called") == 1
    wait_for(lambda: not spool_files(worker, tmp_path), message="the spool file to be closed")
    wait_for(lambda: len(open_files(worker)) <= descriptors_before, message="no descriptor left behind")


@pytest.mark.parametrize("transfer", ["content-length", "chunked"])
def test_a_body_is_read_the_same_from_memory_and_from_the_spool_file(serve_app, tmp_path, transfer):
    """read(n), readline(), readlines() and iteration give the same from both places."""
    lines = b"".join(b"line %d %s\n" % (index, b"x" * (index % 200)) for index in range(3000)) + b"no newline"
    ops = "read:7,readline,readline:5,read:100000,readlines:1000,iter"
    places = {
        "in memory": ["--body-buffer-size", "1M"],
        # Over --body-buffer-size: in --body-memory (a Content-Length body), else in a file.
        "in body memory": ["--body-buffer-size", "4K"],
        "in a file": ["--body-buffer-size", "4K", "--body-memory", "0"],
    }
    answers = []
    for options in places.values():
        server = serve_app(APP, "--body-temp-dir", str(tmp_path), *options)
        with RawConnection(server.address) as connection:
            body_head(connection, f"/input?ops={ops}", transfer, len(lines))
            connection.send(body_piece(transfer, lines) + body_end(transfer))
            answer = connection.read_response()
        assert answer.status == 200, answer
        answers.append(answer.json())
    in_memory, in_body_memory, spooled = answers
    assert in_memory == in_body_memory == spooled
    read7, line, line5, big, some_lines, rest = in_memory
    assert (read7 + line + line5 + big + "".join(some_lines) + "".join(rest)).encode("latin-1") == lines


def send_all_but_the_last_byte(server, body, target="/digest"):
    """A connection that has sent a POST of ``body`` but its last byte (call ``finish``)."""
    connection = RawConnection(server.address)
    connection.request("POST", target, [("Content-Length", str(len(body)))], body[:-1])
    # The event loop has had its turn at those bytes once it has answered other requests.
    for _ in range(2):
        assert fetch(server.address, "GET", "/hello").status == 200
    return connection


def finish(connection, body):
    connection.send(body[-1:])
    answer = connection.read_response()
    connection.close()
    assert answer.status == 200, answer
    return answer.body.decode()


def digest_of(body):
    return f"{len(body)} {hashlib.sha256(body).hexdigest()}"


def test_a_body_larger_than_the_buffer_size_is_received_in_body_memory_without_a_file(serve_app, tmp_path):
    server = serve_app(APP, "--body-temp-dir", str(tmp_path), "--body-memory", "8M")
    worker = worker_pid(server)
    body = os.urandom(2 * MIB)  # over --body-buffer-size (64K), within a quarter of --body-memory
    connection = send_all_but_the_last_byte(server, body)
    assert spool_files(worker, tmp_path) == []
    assert finish(connection, body) == digest_of(body)

    # Over a quarter of --body-memory: a file, as before.
    body = os.urandom(2 * MIB + 1)
    connection = send_all_but_the_last_byte(server, body)
    wait_for(lambda: spool_files(worker, tmp_path), message="a spool file in the worker")
    assert finish(connection, body) == digest_of(body)


def test_a_body_that_finds_body_memory_taken_goes_to_a_file(serve_app, tmp_path):
    """Four uploads in progress take all of --body-memory: the fifth goes to a file (after waiting
    for room that is not freed), and all five reach the app whole."""
    server = serve_app(APP, "--body-temp-dir", str(tmp_path), "--body-memory", "4M")
    worker = worker_pid(server)
    bodies = [os.urandom(MIB) for _ in range(5)]
    holders = [send_all_but_the_last_byte(server, body) for body in bodies[:4]]
    assert spool_files(worker, tmp_path) == []
    fifth = send_all_but_the_last_byte(server, bodies[4])
    wait_for(lambda: spool_files(worker, tmp_path), message="the fifth body to go to a file")
    for connection, body in zip([*holders, fifth], bodies):
        assert finish(connection, body) == digest_of(body)
    wait_for(lambda: not spool_files(worker, tmp_path), message="the spool file to be closed")


def test_body_memory_comes_back_when_the_call_ends_though_the_app_keeps_wsgi_input(serve_app, tmp_path):
    server = serve_app(APP, "--body-temp-dir", str(tmp_path), "--body-memory", "4M")
    worker = worker_pid(server)
    # Eight uploads of a quarter of --body-memory each, one after the other: had their streams kept
    # their bodies, the fifth would have found no room.
    for _ in range(8):
        body = os.urandom(MIB)
        answer = fetch(server.address, "POST", "/keep-input", body=body)
        assert answer.status == 200 and answer.body.decode() == digest_of(body)
    body = os.urandom(MIB)
    connection = send_all_but_the_last_byte(server, body)
    assert spool_files(worker, tmp_path) == []
    assert finish(connection, body) == digest_of(body)
    # The stream an app keeps is over with its call.
    body = os.urandom(MIB)
    answer = fetch(server.address, "POST", "/keep-input?leave=1", body=body)
    assert answer.body.decode() == digest_of(body[:-1])
    answer = fetch(server.address, "GET", "/keep-input?then=read")
    assert answer.body.decode() == "OSError: the request is over"


def test_a_request_pipelined_behind_a_body_in_body_memory_is_answered(serve_app):
    server = serve_app(APP)
    body = os.urandom(MIB)
    with RawConnection(server.address) as connection:
        connection.send(
            b"POST /digest HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
            + b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        assert connection.read_response().body.decode() == digest_of(body)
        assert connection.read_response().body == b"hello world"


def test_expect_100_continue_is_answered_for_a_body_received_in_body_memory(serve_app):
    server = serve_app(APP)
    body = os.urandom(MIB)
    with RawConnection(server.address) as connection:
        connection.request("POST", "/digest", [("Content-Length", str(len(body))), ("Expect", "100-continue")])
        assert connection.read_head().status == 100
        connection.send(body)
        answer = connection.read_response()
    assert answer.body.decode() == digest_of(body)


def test_a_chunked_body_arrives_with_its_length_as_content_length(serve_app):
    server = serve_app(APP)
    body = os.urandom(300_000)
    with RawConnection(server.address) as connection:
        connection.request("POST", "/echo", [("Transfer-Encoding", "chunked")], chunked(body[:1000], body[1000:]))
        answer = connection.read_response()
    assert answer.body == body
    assert answer.header("X-Content-Length") == str(len(body))


def test_expect_100_continue_is_answered_when_the_body_is_read_before_the_app(serve_app):
    server = serve_app(APP)
    token = new_token()
    with RawConnection(server.address) as connection:
        connection.request("POST", f"/no-read?token={token}", [("Content-Length", "11"), ("Expect", "100-continue")])
        interim = connection.read_head()
        assert interim.status == 100
        connection.send(b"hello world")
        answer = connection.read_response()
        assert answer.status == 200
        # The whole body was read, so the connection stays open for the next request.
        assert answer.header("Connection") == "keep-alive"
        assert connection.roundtrip("GET", "/hello").body == b"hello world"
    assert counter(server, token, "called") == 1


def test_slow_uploaders_hold_no_python_thread(serve_app):
    """600 clients trickling 1 MB bodies, 16 Python threads: every other request is still served."""
    uploaders_count = 600
    raise_fd_limit(uploaders_count + 500)
    server = serve_app(APP, "--threads", "16", "--min-data-rate", "0", "--no-access-log")
    uploaders = []
    try:
        for _ in range(uploaders_count):
            uploader = socket.create_connection(server.address, timeout=10)
            uploader.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1048576\r\n\r\nabc")
            uploaders.append(uploader)

        small_body = os.urandom(10_000)

        def one(index):
            if index % 2:
                answer = fetch(server.address, "POST", "/echo", body=small_body, timeout=10)
                return answer.status == 200 and answer.body == small_body
            answer = fetch(server.address, "GET", "/hello", timeout=10)
            return answer.status == 200 and answer.body == b"hello world"

        with concurrent.futures.ThreadPoolExecutor(10) as pool:
            first = list(pool.map(one, range(100)))
            for uploader in uploaders:  # a few more bytes: they are still uploading
                uploader.sendall(b"de")
            second = list(pool.map(one, range(100)))
        results = first + second
        assert sum(results) == len(results), f"{results.count(False)} of {len(results)} requests failed"
        # The uploaders are still connected, still waiting for their answers.
        for uploader in uploaders[:50]:
            uploader.settimeout(0)
            with pytest.raises(BlockingIOError):
                uploader.recv(1)
    finally:
        for uploader in uploaders:
            uploader.close()


# --- --stream-request-body ------------------------------------------------------------------------


def test_stream_request_body_calls_the_app_while_the_body_is_still_arriving(serve_app):
    server = serve_app(APP, "--stream-request-body")
    token = new_token()
    body = os.urandom(2 * MIB)
    with RawConnection(server.address) as connection:
        connection.request("POST", f"/digest?token={token}", [("Content-Length", str(len(body)))], body[: MIB // 2])
        wait_for_counter(server, token, "called", 1)
        connection.send(body[MIB // 2 :])
        answer = connection.read_response()
    assert answer.body.decode() == f"{len(body)} {hashlib.sha256(body).hexdigest()}"


def test_a_malformed_chunked_body_read_by_a_streaming_app_is_one_info_line_without_traceback(serve_app):
    server = serve_app(APP, "--stream-request-body", "--log", "debug")
    token = new_token()
    with RawConnection(server.address) as connection:
        connection.request("POST", f"/read-then-fail?token={token}", [("Transfer-Encoding", "chunked")],
                           b"5\r\nhello\r\n")
        wait_for_counter(server, token, "called", 1)
        connection.send(b"not-a-size\r\n")
        answer = connection.read_response()
    assert answer.status == 400
    wait_for_counter(server, token, "raised", 1)

    def handled():
        text = log_text(server)
        return text if "Traceback" in text or "after the request body failed" in text else None

    log = wait_for(handled, message="the app's exception to be handled")
    assert "Traceback" not in log, log
    info_lines = [line for line in log.splitlines() if " INFO " in line and "invalid chunk size" in line]
    assert len(info_lines) == 1, log


# --- --min-data-rate ------------------------------------------------------------------------------


def trickle_until_answered(connection, data, interval=0.05, limit=400):
    """Sends ``data`` a byte at a time until the server answers; returns what it sent first."""
    connection.sock.settimeout(interval)
    for index in range(limit):
        try:
            connection.send(data[index % len(data) : index % len(data) + 1])
        except (BrokenPipeError, ConnectionResetError):
            break
        try:
            received = connection.sock.recv(65536)
        except socket.timeout:
            continue
        except ConnectionResetError:
            break
        connection.buffer += received
        break
    connection.sock.settimeout(20)
    return connection.read_to_eof()


@pytest.mark.parametrize("mode", ["buffered", "streamed"])
def test_a_body_sent_below_the_minimum_data_rate_is_cut_with_408(serve_app, mode):
    extra = ["--stream-request-body"] if mode == "streamed" else []
    server = serve_app(APP, "--min-data-rate", "2000", "--min-data-rate-grace", "0.5", *extra)
    with RawConnection(server.address) as connection:
        connection.request("POST", "/echo", [("Content-Length", "100000")], b"x" * 100)
        answer = trickle_until_answered(connection, b"x")
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    line = wait_for_log(server, "minimum data rate")
    assert "127.0.0.1" in line and "bytes/s" in line


def test_a_head_sent_below_the_minimum_data_rate_is_cut_with_408(serve_app):
    server = serve_app(APP, "--min-data-rate", "2000", "--min-data-rate-grace", "0.5")
    with RawConnection(server.address) as connection:
        answer = trickle_until_answered(connection, b"GET /hello HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"y" * 1000)
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    assert "minimum data rate" in log_text(server)


def test_a_fast_client_is_not_cut_by_the_minimum_data_rate(serve_app):
    server = serve_app(APP, "--min-data-rate", "2000", "--min-data-rate-grace", "0.5")
    body = os.urandom(3 * MIB)
    answer = fetch(server.address, "POST", "/digest", body=body)
    assert answer.body.decode() == f"{len(body)} {hashlib.sha256(body).hexdigest()}"


def test_the_minimum_data_rate_is_off_with_0(serve_app):
    server = serve_app(APP, "--min-data-rate", "0", "--min-data-rate-grace", "0.2")
    with RawConnection(server.address) as connection:
        connection.request("POST", "/echo", [("Content-Length", "10")], b"ab")
        time.sleep(1)  # well past the grace at far below any rate
        connection.send(b"cdefghij")
        answer = connection.read_response()
    assert answer.body == b"abcdefghij"
