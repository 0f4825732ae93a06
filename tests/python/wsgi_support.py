"""Helpers for the WSGI tests: a raw HTTP/1.x client on a socket, bounded waits on the server log,
and reading the server's metrics (``--metrics-bind``) to wait on a state it reports.

The raw client exists because http.client hides what these tests check: ``100 Continue`` interim
answers, chunked framing, pipelining, a connection closed after a short body, and chunks read one at
a time while the server is still producing the next.
"""

import http.client
import json
import os
import re
import socket
import time
import urllib.parse
import urllib.request

APPS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "apps")
TIMEOUT = 20


class Response:
    """One parsed response: ``status`` (int), ``reason``, ``version``, ``headers`` (list of pairs), ``body``."""

    def __init__(self, version, status, reason, headers, body=b"", chunked=False, chunks=None):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body
        self.chunked = chunked
        self.chunks = chunks or []

    def header(self, name, default=None):
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return default

    def header_all(self, name):
        return [value for key, value in self.headers if key.lower() == name.lower()]

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self):
        return f"<Response {self.version} {self.status} {self.reason!r} {self.headers!r} {self.body[:200]!r}>"


class RawConnection:
    """A client socket with a receive buffer; every read is bounded by the socket timeout."""

    def __init__(self, address, timeout=TIMEOUT):
        self.address = address
        self.sock = socket.create_connection(address, timeout=timeout)
        self.buffer = b""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self.sock.close()

    @property
    def local_port(self):
        return self.sock.getsockname()[1]

    def send(self, data):
        self.sock.sendall(data)

    def request(self, method, target, headers=(), body=b"", version="HTTP/1.1", host=True):
        """Sends one request; ``headers`` is a list of pairs, sent in order (repeats allowed)."""
        lines = [f"{method} {target} {version}"]
        if host:
            lines.append(f"Host: {self.address[0]}:{self.address[1]}")
        lines.extend(f"{name}: {value}" for name, value in headers)
        self.send(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("connection closed by the server; buffered: %r" % self.buffer[:200])
        self.buffer += data

    def read_until(self, marker):
        while marker not in self.buffer:
            self._fill()
        index = self.buffer.index(marker) + len(marker)
        data, self.buffer = self.buffer[:index], self.buffer[index:]
        return data

    def read_exact(self, size):
        while len(self.buffer) < size:
            self._fill()
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def read_to_eof(self):
        """Everything until the server closes (a reset after data counts as the end too)."""
        while True:
            try:
                data = self.sock.recv(65536)
            except ConnectionResetError:
                break
            if not data:
                break
            self.buffer += data
        data, self.buffer = self.buffer, b""
        return data

    def read_head(self):
        """The status line and headers of the next response (an interim 1xx counts as a response)."""
        head = self.read_until(b"\r\n\r\n").decode("latin-1")
        lines = head.split("\r\n")[:-2]
        version, _, rest = lines[0].partition(" ")
        status, _, reason = rest.partition(" ")
        headers = []
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers.append((name.strip(), value.strip()))
        return Response(version, int(status), reason, headers)

    def read_chunk(self):
        """One chunk of a chunked body: b'' for the last (zero) chunk, whose trailers are consumed."""
        size_line = self.read_until(b"\r\n")
        size = int(size_line.split(b";")[0].strip(), 16)
        if size == 0:
            while self.read_until(b"\r\n") != b"\r\n":
                pass
            return b""
        data = self.read_exact(size)
        assert self.read_exact(2) == b"\r\n", "chunk not followed by CRLF"
        return data

    def read_body(self, response, method="GET"):
        if method == "HEAD" or response.status in (204, 304) or 100 <= response.status < 200:
            return response
        if "chunked" in (response.header("Transfer-Encoding") or "").lower():
            response.chunked = True
            while True:
                chunk = self.read_chunk()
                if not chunk:
                    break
                response.chunks.append(chunk)
            response.body = b"".join(response.chunks)
        elif response.header("Content-Length") is not None:
            response.body = self.read_exact(int(response.header("Content-Length")))
        else:
            response.body = self.read_to_eof()
        return response

    def read_response(self, method="GET", skip_interim=True):
        while True:
            response = self.read_head()
            if skip_interim and 100 <= response.status < 200:
                continue
            return self.read_body(response, method)

    def roundtrip(self, method, target, headers=(), body=b"", version="HTTP/1.1"):
        self.request(method, target, headers, body, version)
        return self.read_response(method)


def chunked(*parts):
    """A chunked request body made of ``parts``, with the terminating zero chunk."""
    return b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in parts if part) + b"0\r\n\r\n"


def quote(text):
    return urllib.parse.quote(text, safe="")


def wait_for(condition, timeout=TIMEOUT, interval=0.05, message="condition"):
    """Polls ``condition()`` until it returns something truthy; fails after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {message}")
        time.sleep(interval)


def log_text(server):
    return "".join(server.log_lines)


def wait_for_log(server, text, timeout=TIMEOUT):
    """Waits until the server log contains ``text``; returns the whole log."""
    return wait_for(
        lambda: log_text(server) if text in log_text(server) else None,
        timeout,
        message=f"{text!r} in the server log:\n{log_text(server)}",
    )


def fetch(address, method, target, body=None, headers=None, timeout=TIMEOUT):
    """One request on a new http.client connection; returns a Response with the whole body."""
    connection = http.client.HTTPConnection(address[0], address[1], timeout=timeout)
    try:
        connection.request(method, target, body=body, headers=headers or {})
        answer = connection.getresponse()
        body = answer.read()
        return Response(f"HTTP/{answer.version / 10:.1f}", answer.status, answer.reason, answer.getheaders(), body)
    finally:
        connection.close()


def counter(server, token, name):
    """A counter the test apps keep under (token, name), read through their /counter endpoint."""
    answer = fetch(server.address, "GET", f"/counter?token={quote(token)}&name={quote(name)}")
    assert answer.status == 200, answer
    return int(answer.body)


def wait_for_counter(server, token, name, expected, timeout=TIMEOUT):
    wait_for(lambda: counter(server, token, name) >= expected, timeout, message=f"counter {name} of {token} to reach {expected}")
    return counter(server, token, name)


def metrics_address(server):
    """The (host, port) of the metrics listener, from the start-up log (``--metrics-bind``)."""
    log = wait_for_log(server, "/metrics")
    match = re.search(r"metrics on http://([\d.]+):(\d+)/metrics", log)
    assert match, log
    return match.group(1), int(match.group(2))


def scrape(address):
    """The samples of one scrape, as {series: value}."""
    with urllib.request.urlopen(f"http://{address[0]}:{address[1]}/metrics", timeout=10) as answer:
        assert answer.status == 200
        assert answer.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
        text = answer.read().decode()
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            series, value = line.rsplit(" ", 1)
            samples[series] = float(value)
    return samples


def wait_parked(address, connections, timeout=TIMEOUT):
    """Waits until exactly ``connections`` connections wait in the idle park (of all workers)."""
    wait_for(
        lambda: scrape(address)["tern_connections_idle_parked"] == connections,
        timeout,
        interval=0.02,
        message=f"{connections} parked connections",
    )
