"""The log as a WSGI app sees it: ``wsgi.errors`` lines from concurrent requests stay whole, and
with ``--log-format json`` every line (tracebacks included) is one JSON object."""

import json
import re
import threading

from test_restarts import write_app
from wsgi_support import fetch, log_text, wait_for

# Each request writes its lines to wsgi.errors in pieces, yielding the GIL between them, so the
# requests running at the same time on other threads write theirs in between.
ERRORS_APP = '''
import time


def application(environ, start_response):
    errors = environ["wsgi.errors"]
    request = environ["QUERY_STRING"]
    if request == "fail":
        raise ValueError("a \\"quoted\\" failure")
    for line in range(5):
        errors.write(f"request {request} ")
        time.sleep(0.001)
        errors.write(f"line {line} ")
        time.sleep(0.001)
        errors.write("end\\n")
    print(f"request {request} printed", file=errors)
    errors.write(f"request {request} unfinished")
    body = b"ok"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
'''

REQUESTS = 40
WHOLE_LINE = re.compile(r"wsgi\.errors: (request \d+ line \d end|request \d+ printed|request \d+ unfinished)$")


def run_concurrently(address, count):
    statuses = []

    def one(n):
        statuses.append(fetch(address, "GET", f"/?{n}").status)

    threads = [threading.Thread(target=one, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert statuses == [200] * count


def errors_lines(server):
    return [line.rstrip("\n") for line in server.log_lines if "wsgi.errors" in line]


def test_wsgi_errors_lines_from_concurrent_requests_never_interleave(start_server, tmp_path):
    """Regression: ``wsgi.errors`` kept one partial line for the whole worker, so a request's
    ``write("text")`` was completed by another request's ``write("...\\n")`` on another thread."""
    directory = write_app(tmp_path, "errors_app", ERRORS_APP)
    server = start_server("serve", "errors_app", "--pythonpath", directory, "--no-access-log")
    run_concurrently(server.address, REQUESTS)
    expected = REQUESTS * 7
    wait_for(lambda: len(errors_lines(server)) >= expected, message=f"{expected} wsgi.errors lines:\n{log_text(server)}")
    lines = errors_lines(server)
    broken = [line for line in lines if not WHOLE_LINE.search(line)]
    assert not broken, "lines mixed from several requests:\n" + "\n".join(broken)
    for n in range(REQUESTS):
        for line in range(5):
            assert sum(text.endswith(f"request {n} line {line} end") for text in lines) == 1
        # Text without a newline goes out when the request's job ends, on a line of its own.
        assert sum(text.endswith(f"request {n} unfinished") for text in lines) == 1


def test_json_log_has_one_object_per_line_with_tracebacks_in_one_string(start_server, tmp_path):
    directory = write_app(tmp_path, "errors_app", ERRORS_APP)
    server = start_server("serve", "errors_app", "--pythonpath", directory, "--log-format", "json")
    assert fetch(server.address, "GET", "/?fail").status == 500
    run_concurrently(server.address, 4)
    wait_for(
        lambda: sum('"status":200' in line for line in server.log_lines) == 4,
        message=f"four access lines:\n{log_text(server)}",
    )
    objects = []
    for line in server.log_lines:
        objects.append(json.loads(line))  # fails on any line that is not one whole object
    for entry in objects:
        assert set(entry) >= {"time", "level", "pid"}, entry
    failures = [entry for entry in objects if entry.get("level") == "ERROR"]
    assert len(failures) == 1, objects
    message = failures[0]["message"]
    assert message.startswith("application error while calling the application:\nTraceback (most recent call last):\n"), message
    assert message.endswith('ValueError: a "quoted" failure'), message
    access = [entry for entry in objects if "status" in entry]
    assert {entry["status"] for entry in access} == {500, 200}
    for entry in access:
        assert entry["remote"] == "127.0.0.1"
        assert entry["request"].startswith("GET /?")
        assert isinstance(entry["duration_us"], int) and isinstance(entry["bytes"], int)
    errors = [entry["message"] for entry in objects if entry.get("message", "").startswith("wsgi.errors: ")]
    assert len(errors) == 4 * 7, errors
