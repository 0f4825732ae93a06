"""HTTP/2 end to end against the installed tern: negotiation (ALPN over TLS, prior knowledge on
plain listeners, ``--no-http2``), the SETTINGS it announces and the stream limit, static files and
WSGI and ASGI apps over HTTP/2, the protections against abusive clients (rapid reset, CONTINUATION
flood, HPACK bomb, SETTINGS and PING floods, a reader that never opens its window), idle and
shutdown behaviour, the access log, and real clients (curl, nghttp, h2load).

Clients: the ``h2`` package where flow control must be checked, frames written by hand where the
test sends what a polite client never would (h2_support.py). Servers listen on 127.0.0.1 only.
"""

import gzip
import hashlib
import json
import os
import re
import signal
import subprocess
import uuid

import pytest

from h2_support import (
    CONNECTION_SPECIFIC,
    ENHANCE_YOUR_CALM,
    PREFACE,
    REFUSED_STREAM,
    SETTINGS_INITIAL_WINDOW_SIZE,
    SETTINGS_MAX_CONCURRENT_STREAMS,
    SETTINGS_MAX_HEADER_LIST_SIZE,
    Closed,
    ContinuationFrame,
    FrameClient,
    FrameReader,
    GoAwayFrame,
    H2Client,
    PingFrame,
    RawDrain,
    Reply,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
    client_context,
    connect,
    describe,
    make_pki,
    negotiated,
    require_tool,
    send_while_possible,
    tls_args,
    workers_rss_kib,
)
from wsgi_support import fetch, log_text, wait_for, wait_for_log

BIG_SIZE = 5 * 1024 * 1024
MEMORY_GROWTH_LIMIT_KIB = 200 * 1024  # generous: catches unbounded buffering, not ordinary caches


# --- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    require_tool("openssl")
    return make_pki(tmp_path_factory.mktemp("h2pki"))


class Site:
    """A document root with the files the static tests fetch, and a secret beside it (outside)."""

    def __init__(self, base):
        self.root = base / "root"
        self.root.mkdir()
        self.hello = b"hello over HTTP/2\n"
        (self.root / "hello.txt").write_bytes(self.hello)
        self.big = os.urandom(BIG_SIZE)
        (self.root / "big.bin").write_bytes(self.big)
        self.script = b"console.log('precompressed');\n" * 50
        (self.root / "app.js").write_bytes(self.script)
        self.script_gz = gzip.compress(self.script)
        (self.root / "app.js.gz").write_bytes(self.script_gz)
        (self.root / "dir").mkdir()
        self.index = b"<p>the index of dir</p>\n"
        (self.root / "dir" / "index.html").write_bytes(self.index)
        (base / "secret.txt").write_bytes(b"SECRET outside the root\n")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    return Site(tmp_path_factory.mktemp("h2site"))


def static_server(start_server, site, *args):
    return start_server("serve", "-r", str(site.root), "--no-access-log", *args)


def settings_of(client):
    """The server's first SETTINGS frame, as {identifier: value}."""
    client.read_until(lambda frame: isinstance(frame, SettingsFrame) and "ACK" not in frame.flags)
    return client.server_settings


def assert_no_connection_headers(reply):
    present = [name for name, _ in reply.headers if name in CONNECTION_SPECIFIC]
    assert not present, f"connection-specific headers in an HTTP/2 response: {reply!r}"


def assert_served(address, context=None, path="/hello.txt", status=200):
    """A fresh client gets an answer: the server is still fine."""
    with H2Client(address, context) as client:
        reply = client.get(path)
        assert reply.status == status, reply
        return reply


# --- negotiation ----------------------------------------------------------------------------------


def test_alpn_chooses_h2_over_tls(start_server, site, pki):
    server = static_server(start_server, site, *tls_args(pki))
    with H2Client(server.address, client_context(pki)) as client:  # asserts ALPN chose h2
        reply = client.get("/hello.txt")
    assert reply.status == 200, reply
    assert reply.body == site.hello


def test_a_client_offering_only_http11_gets_http11_over_tls(start_server, site, pki):
    server = static_server(start_server, site, *tls_args(pki))
    sock = connect(server.address, client_context(pki, alpn=("http/1.1",)))
    with sock:
        assert negotiated(sock) == "http/1.1"
        sock.sendall(b"GET /hello.txt HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        answer = read_all(sock)
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
    assert answer.endswith(site.hello)


def test_no_http2_offers_only_http11_over_tls(start_server, site, pki):
    server = static_server(start_server, site, *tls_args(pki), "--no-http2")
    sock = connect(server.address, client_context(pki, alpn=("h2", "http/1.1")))
    with sock:
        assert negotiated(sock) == "http/1.1"
        sock.sendall(b"GET /hello.txt HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        assert read_all(sock).startswith(b"HTTP/1.1 200 ")


def test_no_http2_refuses_prior_knowledge_on_a_plain_listener(start_server, site):
    server = static_server(start_server, site, "--no-http2")
    sock = connect(server.address)
    with sock:
        sock.sendall(PREFACE + SettingsFrame(0, {}).serialize())
        answer = read_all(sock)
    # HTTP/1.1's answer to a version it does not serve (README), never a SETTINGS frame.
    assert answer.startswith(b"HTTP/1.1 505 "), answer[:200]
    assert fetch(server.address, "GET", "/hello.txt").body == site.hello


def test_prior_knowledge_and_http11_share_a_plain_port(start_server, site):
    server = static_server(start_server, site)
    with H2Client(server.address) as client:
        reply = client.get("/hello.txt")
        assert reply.status == 200 and reply.body == site.hello, reply
        # HTTP/1.1 on the same port meanwhile, and the HTTP/2 connection goes on after it.
        answer = fetch(server.address, "GET", "/hello.txt")
        assert answer.version == "HTTP/1.1" and answer.status == 200 and answer.body == site.hello
        assert client.get("/dir/").body == site.index


def read_all(sock):
    parts = []
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                break
            parts.append(data)
    except ConnectionResetError:
        pass
    return b"".join(parts)


# --- SETTINGS and the stream limit ----------------------------------------------------------------


def test_settings_announce_the_stream_limit_and_the_header_list_size(start_server, site):
    server = static_server(start_server, site)
    with FrameClient(server.address) as client:
        settings = settings_of(client)
    assert settings.get(SETTINGS_MAX_CONCURRENT_STREAMS) == 128, settings
    assert settings.get(SETTINGS_MAX_HEADER_LIST_SIZE) == 32 * 1024, settings

    server = static_server(start_server, site, "--h2-max-streams", "7", "--max-header-size", "16K")
    with FrameClient(server.address) as client:
        settings = settings_of(client)
    assert settings.get(SETTINGS_MAX_CONCURRENT_STREAMS) == 7, settings
    assert settings.get(SETTINGS_MAX_HEADER_LIST_SIZE) == 16 * 1024, settings


def test_streams_beyond_the_limit_are_refused(start_server, site):
    """With a stream window of 0 the two file responses cannot finish, so their streams stay open;
    the third stream is one too many. Once the windows open, the first two complete."""
    server = static_server(start_server, site, "--h2-max-streams", "2")
    with FrameClient(server.address, settings={SETTINGS_INITIAL_WINDOW_SIZE: 0}) as client:
        settings_of(client)
        client.request(1, "/big.bin")
        client.request(3, "/big.bin")
        client.request(5, "/big.bin")
        refused = client.read_until(lambda frame: isinstance(frame, RstStreamFrame))
        assert refused.stream_id == 5 and refused.error_code == REFUSED_STREAM, describe(client.frames)
        assert client.replies[1].reset is None and client.replies[3].reset is None, describe(client.frames)
        client.send(WindowUpdateFrame(1, BIG_SIZE), WindowUpdateFrame(3, BIG_SIZE))
        for stream_id in (1, 3):
            reply = client.response(stream_id, timeout=60)
            assert reply.status == 200 and reply.ended, reply
            assert reply.body == site.big
        # A stream opened once the others are done is served.
        client.request(7, "/hello.txt")
        client.send(WindowUpdateFrame(7, 65536))
        assert client.response(7).body == site.hello


def test_the_129th_stream_is_refused_by_default(start_server, site):
    server = static_server(start_server, site)
    with FrameClient(server.address, settings={SETTINGS_INITIAL_WINDOW_SIZE: 0}) as client:
        settings_of(client)
        for n in range(129):
            client.request(2 * n + 1, "/big.bin")
        refused = client.read_until(lambda frame: isinstance(frame, RstStreamFrame))
        assert refused.stream_id == 2 * 128 + 1 and refused.error_code == REFUSED_STREAM, describe(client.frames[-5:])


# --- static files ---------------------------------------------------------------------------------


@pytest.fixture
def tls_static(start_server, site, pki):
    server = static_server(start_server, site, *tls_args(pki))
    client = H2Client(server.address, client_context(pki))
    yield client
    client.close()


def test_static_get_and_head(tls_static, site):
    reply = tls_static.get("/hello.txt")
    assert reply.status == 200, reply
    assert reply.header("content-type") == "text/plain; charset=utf-8"
    assert reply.header("content-length") == str(len(site.hello))
    assert reply.header("etag") and reply.header("last-modified")
    assert reply.body == site.hello
    assert_no_connection_headers(reply)
    head = tls_static.get("/hello.txt", method="HEAD")
    assert head.status == 200 and head.body == b"", head
    assert head.header("content-length") == str(len(site.hello))
    assert head.header("etag") == reply.header("etag")
    assert_no_connection_headers(head)


def test_static_missing_file_is_404(tls_static):
    reply = tls_static.get("/no-such-file.txt")
    assert reply.status == 404, reply
    assert_no_connection_headers(reply)


def test_static_range(tls_static, site):
    reply = tls_static.get("/big.bin", headers=[("range", "bytes=1000-1999")])
    assert reply.status == 206, reply
    assert reply.header("content-range") == f"bytes 1000-1999/{BIG_SIZE}"
    assert reply.header("content-length") == "1000"
    assert reply.body == site.big[1000:2000]
    suffix = tls_static.get("/hello.txt", headers=[("range", "bytes=-6")])
    assert suffix.status == 206 and suffix.body == site.hello[-6:], suffix
    unsatisfiable = tls_static.get("/hello.txt", headers=[("range", "bytes=5000-6000")])
    assert unsatisfiable.status == 416, unsatisfiable


def test_static_conditional_requests(tls_static):
    first = tls_static.get("/hello.txt")
    etag, modified = first.header("etag"), first.header("last-modified")
    by_etag = tls_static.get("/hello.txt", headers=[("if-none-match", etag)])
    assert by_etag.status == 304 and by_etag.body == b"", by_etag
    assert by_etag.header("etag") == etag
    by_date = tls_static.get("/hello.txt", headers=[("if-modified-since", modified)])
    assert by_date.status == 304 and by_date.body == b"", by_date
    assert tls_static.get("/hello.txt", headers=[("if-none-match", '"other"')]).status == 200


def test_static_precompressed_sibling(tls_static, site):
    compressed = tls_static.get("/app.js", headers=[("accept-encoding", "gzip")])
    assert compressed.status == 200, compressed
    assert compressed.header("content-encoding") == "gzip"
    assert compressed.header("content-type").startswith("text/javascript")
    assert "accept-encoding" in compressed.header("vary", "").lower()
    assert compressed.body == site.script_gz
    assert compressed.header("content-length") == str(len(site.script_gz))
    plain = tls_static.get("/app.js")
    assert plain.status == 200 and plain.header("content-encoding") is None, plain
    assert plain.body == site.script


def test_static_index_file_and_directory_redirect(tls_static, site):
    index = tls_static.get("/dir/")
    assert index.status == 200 and index.body == site.index, index
    assert index.header("content-type").startswith("text/html")
    redirect = tls_static.get("/dir?x=1")
    assert redirect.status == 301, redirect
    assert redirect.header("location").endswith("/dir/?x=1")


@pytest.mark.parametrize(
    "path",
    ["/%2e%2e/secret.txt", "/..%2fsecret.txt", "/dir/%2e%2e/%2e%2e/secret.txt", "/%2e%2e%2f%2e%2e%2fetc%2fpasswd", "/dir/..%5c..%5csecret.txt"],
)
def test_static_path_cannot_leave_the_root(tls_static, path):
    reply = tls_static.get(path)
    assert reply.status in (400, 403, 404), reply
    assert b"SECRET" not in reply.body and b"root:" not in reply.body


@pytest.mark.parametrize("transport", ["tls", "h2c"])
def test_large_file_through_a_16k_window(start_server, site, pki, transport):
    """The client grants 16 KiB per stream and opens it again as it reads; the h2 package fails the
    test (FlowControlError) if the server sends past the window."""
    context = client_context(pki) if transport == "tls" else None
    server = static_server(start_server, site, *(tls_args(pki) if transport == "tls" else ()))
    with H2Client(server.address, context, initial_window=16384) as client:
        reply = client.get("/big.bin")
        assert reply.status == 200, reply
        assert reply.header("content-length") == str(BIG_SIZE)
        assert len(reply.body) == BIG_SIZE and reply.body == site.big
        assert max(reply.data_frames) <= 16384
        assert client.conn.local_settings.initial_window_size == 16384
        assert_no_connection_headers(reply)


# --- WSGI -----------------------------------------------------------------------------------------


def wsgi_client(serve_app, pki, transport, *args):
    if transport == "tls":
        server = serve_app("h2_app", *tls_args(pki), *args)
        return server, H2Client(server.address, client_context(pki))
    server = serve_app("h2_app", *args)
    return server, H2Client(server.address)


@pytest.mark.parametrize("transport", ["tls", "h2c"])
def test_wsgi_environ_over_http2(serve_app, pki, transport):
    _, client = wsgi_client(serve_app, pki, transport)
    with client:
        reply = client.get(
            "/environ?a=1&b=two",
            headers=[("x-custom", "custom value"), ("cookie", "a=1"), ("accept", "text/plain"), ("cookie", "b=2")],
            authority="example.test:8443",
        )
    assert reply.status == 200, reply
    environ = json.loads(reply.body)
    assert environ["SERVER_PROTOCOL"] == "HTTP/2"
    assert environ["wsgi.url_scheme"] == ("https" if transport == "tls" else "http")
    assert environ["HTTP_HOST"] == "example.test:8443"
    assert environ["REQUEST_METHOD"] == "GET"
    assert environ["PATH_INFO"] == "/environ"
    assert environ["QUERY_STRING"] == "a=1&b=two"
    assert environ["HTTP_X_CUSTOM"] == "custom value"
    assert environ["HTTP_ACCEPT"] == "text/plain"
    assert environ["HTTP_COOKIE"] == "a=1; b=2"
    assert not any(key.startswith("HTTP_:") or key.startswith("HTTP__") for key in environ), environ


def digest_of(data):
    return hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("transport", ["tls", "h2c"])
def test_wsgi_request_bodies_arrive_whole(serve_app, pki, transport):
    _, client = wsgi_client(serve_app, pki, transport)
    small = b"name=tern&protocol=h2"
    big = os.urandom(3 * 1024 * 1024)
    unsized = os.urandom(1024 * 1024 + 17)
    with client:
        echoed = client.response(client.request("POST", "/echo", [("content-length", str(len(small)))], small))
        assert echoed.status == 200 and echoed.body == small, echoed
        sized = client.response(
            client.request("POST", "/digest", [("content-length", str(len(big))), ("content-type", "application/octet-stream")], big),
            timeout=60,
        )
        assert sized.status == 200, sized
        result = json.loads(sized.body)
        assert result == {"length": len(big), "sha256": digest_of(big), "content_length": str(len(big))}
        # No content-length: the body ends with the END_STREAM flag.
        without = client.response(client.request("POST", "/digest", [], unsized), timeout=60)
        assert without.status == 200, without
        result = json.loads(without.body)
        assert result["length"] == len(unsized) and result["sha256"] == digest_of(unsized), result
        # A body in many small DATA frames, the last one empty with END_STREAM.
        stream_id = client.request("POST", "/digest", [], b"", end_stream=False)
        pieces = [b"piece %d;" % n for n in range(200)]
        for piece in pieces:
            client.send_body(stream_id, piece, end_stream=False)
        client.send_body(stream_id, b"", end_stream=True)
        result = json.loads(client.response(stream_id).body)
        assert result["length"] == len(b"".join(pieces)) and result["sha256"] == digest_of(b"".join(pieces))


def test_wsgi_request_body_over_the_limit_gets_413(serve_app, pki):
    _, client = wsgi_client(serve_app, pki, "h2c", "--max-body-size", "1K")
    body = os.urandom(10_000)
    with client:
        announced = client.response(client.request("POST", "/digest", [("content-length", str(len(body)))], body))
        assert announced.status == 413, announced
        unannounced = client.response(client.request("POST", "/digest", [], body))
        assert unannounced.status == 413, unannounced
        assert client.get("/after").status == 200


def test_wsgi_streamed_response_arrives_in_order_while_the_app_runs(serve_app, pki):
    """The generator yields ``first`` and then waits for /release on another stream of the same
    connection: ``first`` must reach the client before the rest exists."""
    _, client = wsgi_client(serve_app, pki, "tls")
    token = uuid.uuid4().hex
    with client:
        streamed = client.request("GET", f"/stream?token={token}&count=50")
        reply = client.replies[streamed]
        client.pump_until(lambda: b"first\n" in reply.body, "the first piece before the release")
        assert reply.status == 200 and not reply.ended, reply
        assert_no_connection_headers(reply)
        assert reply.header("content-length") is None
        released = client.get(f"/release?token={token}")
        assert released.status == 200, released
        client.response(streamed)
    assert reply.ended and reply.reset is None, reply
    assert reply.body == b"first\n" + b"".join(b"piece %d\n" % n for n in range(50))
    assert len(reply.data_frames) >= 2


def test_wsgi_app_headers_come_through_lowercased(serve_app, pki):
    _, client = wsgi_client(serve_app, pki, "tls")
    with client:
        reply = client.get("/headers")
    assert reply.status == 200, reply
    names = [name for name, _ in reply.headers]
    assert all(name == name.lower() for name in names), names
    assert reply.header("x-custom-header") == "Some Value"
    assert reply.header("x-upper") == "yes"
    assert reply.header_all("set-cookie") == ["a=1", "b=2"]
    assert reply.header("content-type") == "text/plain; charset=utf-8"
    assert_no_connection_headers(reply)


def test_wsgi_app_raising_gives_500_and_the_connection_goes_on(serve_app, pki):
    _, client = wsgi_client(serve_app, pki, "tls")
    with client:
        failed = client.get("/fail")
        assert failed.status == 500, failed
        assert_no_connection_headers(failed)
        after = client.get("/after")
        assert after.status == 200 and after.body == b"hello from h2_app /after", after


@pytest.mark.parametrize("transport", ["tls", "h2c"])
def test_wsgi_100_concurrent_streams_on_one_connection(serve_app, pki, transport):
    _, client = wsgi_client(serve_app, pki, transport)
    with client:
        streams = {client.request("GET", f"/environ?n={n}"): n for n in range(100)}
        for stream_id, n in streams.items():
            reply = client.response(stream_id, timeout=60)
            assert reply.status == 200, reply
            assert json.loads(reply.body)["QUERY_STRING"] == f"n={n}"


# --- ASGI -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["tls", "h2c"])
def test_asgi_scope_says_http_version_2(serve_app, pki, transport):
    tls = transport == "tls"
    server = serve_app("asgi_app:app", *(tls_args(pki) if tls else ()))
    with H2Client(server.address, client_context(pki) if tls else None) as client:
        reply = client.get("/scope?x=1", headers=[("x-custom", "value")])
        assert reply.status == 200, reply
        scope = json.loads(reply.body)
        assert scope["http_version"] == "2"
        assert scope["scheme"] == ("https" if tls else "http")
        assert scope["query_string"] == {"bytes": "x=1"}
        headers = [(name["bytes"], value["bytes"]) for name, value in scope["headers"]]
        assert ("x-custom", "value") in headers
        assert not any(name.startswith(":") for name, _ in headers), headers
        body = os.urandom(300_000)
        echoed = client.response(client.request("POST", "/echo", [("content-length", str(len(body)))], body))
        assert echoed.status == 200, echoed
        assert json.loads(echoed.body)["length"] == len(body)
        streamed = client.get("/stream?4")
        assert streamed.body == b"part 0\npart 1\npart 2\npart 3\n"
        assert_no_connection_headers(streamed)


# --- protections ----------------------------------------------------------------------------------


def warm_rss(server):
    """The workers' resident memory once they have served a request over HTTP/2 (the baseline)."""
    assert_served(server.address, path="/warm" if getattr(server, "app", None) else "/hello.txt")
    return workers_rss_kib(server)


def app_calls(server, token):
    answer = fetch(server.address, "GET", f"/calls?token={token}")
    assert answer.status == 200, answer
    return int(answer.body)


def test_rapid_reset_gets_goaway_and_spares_the_app(serve_app):
    """CVE-2023-44487: thousands of streams, each reset by the client right after its HEADERS."""
    pairs = 10_000
    server = serve_app("h2_app", "--no-access-log")
    token = uuid.uuid4().hex
    rss_before = warm_rss(server)
    client = FrameClient(server.address)
    with client:
        settings_of(client)
        batches = []
        for start in range(0, pairs, 250):
            frames = []
            for n in range(start, start + 250):
                stream_id = 2 * n + 1
                frames.append(client.headers_frame(stream_id, f"/count?token={token}"))
                frames.append(RstStreamFrame(stream_id, 0x8))  # CANCEL
            batches.append(b"".join(frame.serialize() for frame in frames))
        reader = FrameReader(client, timeout=30)
        reader.start()
        sent = 0
        for batch in batches:
            if client.goaways or reader.outcome:
                break
            try:
                client.send_bytes(batch)
            except OSError:
                break
            sent += 250
        reader.join(40)
    assert reader.error is None, reader.error
    assert reader.outcome == "closed", f"connection not closed after {sent} HEADERS+RST_STREAM pairs: {describe(client.frames[-10:])}"
    assert client.goaways, f"closed without GOAWAY: {describe(client.frames[-10:])}"
    assert client.goaways[-1].error_code == ENHANCE_YOUR_CALM, describe(client.goaways)
    calls = app_calls(server, token)
    assert calls < 1000, f"the app was called {calls} times for {sent} reset streams"
    assert_served(server.address, path="/after")
    rss_after = workers_rss_kib(server)
    print(f"rapid reset: {sent} pairs sent, app called {calls} times, workers' RSS {rss_before} -> {rss_after} KiB")
    assert rss_after - rss_before < MEMORY_GROWTH_LIMIT_KIB


def literal_field(name, value):
    """An HPACK literal field without indexing, new name, no Huffman (RFC 7541 §6.2.2); short strings."""
    assert len(name) < 127 and len(value) < 127
    return bytes([0x00, len(name)]) + name + bytes([len(value)]) + value


def test_continuation_flood_gets_goaway(start_server, site):
    server = static_server(start_server, site)
    rss_before = warm_rss(server)
    client = FrameClient(server.address)
    with client:
        settings_of(client)
        client.send(client.headers_frame(1, "/hello.txt", end_headers=False))
        continuation = ContinuationFrame(1, literal_field(b"x-flood", b"a" * 100)).serialize()
        reader = FrameReader(client, timeout=30)
        reader.start()
        sent = 0
        while sent < 20_000 and not client.goaways and not reader.outcome:
            try:
                client.send_bytes(continuation * 500)
            except OSError:
                break
            sent += 500
        reader.join(40)
    assert reader.error is None, reader.error
    assert client.goaways, f"no GOAWAY after {sent} CONTINUATION frames: {describe(client.frames[-10:])}"
    assert reader.outcome == "closed", f"connection still open after GOAWAY: {describe(client.frames[-10:])}"
    assert_served(server.address)
    rss_after = workers_rss_kib(server)
    print(f"CONTINUATION flood: {sent} frames sent, GOAWAY {describe(client.goaways)}, workers' RSS {rss_before} -> {rss_after} KiB")
    assert rss_after - rss_before < MEMORY_GROWTH_LIMIT_KIB


@pytest.mark.parametrize("references", [12, 12_000], ids=["just-over-the-limit", "far-over-the-limit"])
def test_hpack_bomb_is_refused(serve_app, references):
    """A 3000-byte value enters the HPACK dynamic table once, on a request under the limit; the next
    request names it ``references`` times (one byte each), a decoded list over the 32 KiB limit."""
    server = serve_app("h2_app", "--no-access-log")
    rss_before = warm_rss(server)
    value = "v" * 3000
    with FrameClient(server.address) as client:
        settings_of(client)  # and ACKs them: the server's limits are in force from here on
        first = client.get(1, "/environ", extra=[("x-bomb", value)])
        assert first.status == 200, first
        client.replies[3] = Reply(3)
        bomb = client.headers_frame(3, "/environ", extra=[("x-bomb", value)] * references)
        assert len(bomb.data) <= 16384, len(bomb.data)
        client.send(bomb)
        outcome = client.read_until(
            lambda frame: client.replies[3].status is not None or client.replies[3].reset is not None or isinstance(frame, GoAwayFrame),
            timeout=30,
        )
        reply = client.replies[3]
        refused = reply.status == 431 or reply.reset is not None or isinstance(outcome, GoAwayFrame)
        assert refused, f"the bomb was not refused: {reply!r}; frames {describe(client.frames[-10:])}"
        assert reply.status != 200, reply
        if not client.goaways:
            # Refused as one stream: the connection goes on.
            assert client.get(5, "/after").status == 200, describe(client.frames[-5:])
    assert_served(server.address, path="/after")
    rss_after = workers_rss_kib(server)
    print(f"HPACK bomb x{references}: {describe(client.frames[-4:])}, workers' RSS {rss_before} -> {rss_after} KiB")
    assert rss_after - rss_before < MEMORY_GROWTH_LIMIT_KIB


@pytest.mark.parametrize("kind", ["settings", "ping"])
def test_control_frame_flood_keeps_memory_bounded(start_server, site, kind):
    """A million and a half SETTINGS (each needing an ACK) or PINGs (each needing a PONG), more than
    the kernel's buffers hold, sent while never reading: the server must stop reading rather than
    queue answers without bound, serve others meanwhile, and answer (or close) once read again."""
    server = static_server(start_server, site)
    if kind == "settings":
        frame = SettingsFrame(0, {0x2: 0}).serialize()  # ENABLE_PUSH = 0, no change
    else:
        frame = PingFrame(0, b"floodpng").serialize()
    flood = frame * 1_500_000
    rss_before = warm_rss(server)
    # A small fixed receive buffer: the answers back up into the server soon after it starts.
    client = FrameClient(server.address, receive_buffer=65536)
    with client:
        settings_of(client)
        sent = send_while_possible(client.sock, flood, stall=2.0, timeout=60.0)
        rss_during = workers_rss_kib(server)
        assert_served(server.address)
        # Now read: the rest of the flood goes, then a last PING, whose answer (or a close) ends it.
        last_ping = PingFrame(0, b"lastping")
        drain = RawDrain(client.sock, PingFrame(0, b"lastping", flags=["ACK"]).serialize(), timeout=90)
        drain.start()
        try:
            client.send_bytes(flood[sent:] + last_ping.serialize())
        except OSError:
            pass  # closed by the server: allowed
        drain.join(100)
    assert drain.error is None, drain.error
    assert drain.outcome in ("matched", "closed"), f"neither answered nor closed: {drain.outcome} after {drain.received} bytes"
    rss_after = workers_rss_kib(server)
    print(
        f"{kind} flood: {sent} of {len(flood)} bytes taken before the server stopped reading; "
        f"workers' RSS {rss_before} -> {rss_during} (flooding) -> {rss_after} KiB; connection {drain.outcome}"
    )
    assert rss_during - rss_before < MEMORY_GROWTH_LIMIT_KIB
    assert_served(server.address)


@pytest.mark.parametrize("window", [0, 16384])
def test_a_reader_that_never_opens_its_window_gets_its_stream_reset(start_server, site, window):
    server = static_server(start_server, site, "--io-timeout", "1")
    with FrameClient(server.address, settings={SETTINGS_INITIAL_WINDOW_SIZE: window}, auto_window=False) as client:
        settings_of(client)
        client.request(1, "/big.bin")
        try:
            reset = client.read_until(lambda frame: isinstance(frame, RstStreamFrame) and frame.stream_id == 1, timeout=30)
        except Closed:
            pytest.fail(f"the connection was closed instead of stream 1 being reset: {describe(client.frames)}")
        assert len(client.replies[1].body) <= window
        print(f"slow reader, window {window}: {describe([reset])}")
    with H2Client(server.address) as other:
        reply = other.get("/big.bin")
        assert reply.status == 200 and reply.body == site.big, reply


# --- idle connections and shutdown ----------------------------------------------------------------


@pytest.mark.parametrize("requests", [0, 1])
def test_idle_connection_gets_goaway_after_the_keepalive_timeout(start_server, site, requests):
    server = static_server(start_server, site, "--keepalive-timeout", "1")
    with FrameClient(server.address) as client:
        settings_of(client)
        if requests:
            assert client.get(1, "/hello.txt").body == site.hello
        frames = client.read_to_close(timeout=20)
    assert client.goaways, f"closed without GOAWAY: {describe(frames)}"
    assert client.goaways[-1].error_code == 0, describe(client.goaways)


def test_sigterm_sends_goaway_and_finishes_the_request_in_flight(serve_app, tmp_path):
    server = serve_app("h2_app")
    marker, release = tmp_path / "entered", tmp_path / "release"
    with FrameClient(server.address) as client:
        settings_of(client)
        client.request(1, f"/wait-file?marker={marker}&release={release}")
        wait_for(marker.exists, message="the app to be called")
        server.process.send_signal(signal.SIGTERM)
        client.read_until(lambda frame: isinstance(frame, GoAwayFrame))
        assert not client.replies[1].done, client.replies[1]
        release.write_text("go")
        reply = client.response(1)
        assert reply.status == 200 and reply.ended, reply
        assert reply.body == b"finished after release"
        client.read_to_close(timeout=30)
    assert all(goaway.last_stream_id >= 1 for goaway in client.goaways), describe(client.goaways)
    assert server.process.wait(timeout=30) == 0, log_text(server)


# --- the access log -------------------------------------------------------------------------------


def test_access_log_shows_http_2(start_server, serve_app, site, pki):
    server = start_server("serve", "-r", str(site.root), *tls_args(pki))
    with H2Client(server.address, client_context(pki)) as client:
        assert client.get("/hello.txt?from=h2").status == 200
    wait_for_log(server, '"GET /hello.txt?from=h2 HTTP/2.0" 200')
    app = serve_app("h2_app")
    with H2Client(app.address) as client:
        assert client.get("/logged?n=1").status == 200
    wait_for_log(app, '"GET /logged?n=1 HTTP/2.0" 200')


# --- real clients ---------------------------------------------------------------------------------


def run(argv, timeout=120):
    result = subprocess.run(argv, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)
    return result


def test_curl_http2_over_tls_and_with_prior_knowledge(start_server, serve_app, site, pki, tmp_path):
    curl = require_tool("curl")
    server = static_server(start_server, site, *tls_args(pki))
    host, port = server.address
    out = tmp_path / "big.out"
    result = run([
        curl, "--silent", "--show-error", "--http2", "--cacert", str(pki / "ca.pem"),
        "-o", str(out), "-w", "%{http_version} %{http_code}", f"https://{host}:{port}/big.bin",
    ])
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"2 200"
    assert out.read_bytes() == site.big
    plain = static_server(start_server, site)
    host, port = plain.address
    result = run([
        curl, "--silent", "--show-error", "--http2-prior-knowledge",
        "-w", "\n%{http_version} %{http_code}", f"http://{host}:{port}/hello.txt",
    ])
    assert result.returncode == 0, result.stderr
    assert result.stdout == site.hello + b"\n2 200"
    # An upload to a WSGI app through curl over HTTP/2.
    app = serve_app("h2_app", *tls_args(pki))
    host, port = app.address
    body = tmp_path / "upload.bin"
    body.write_bytes(os.urandom(2 * 1024 * 1024))
    result = run([
        curl, "--silent", "--show-error", "--http2", "-k", "--data-binary", f"@{body}",
        "-w", "\n%{http_version}", f"https://{host}:{port}/digest",
    ])
    assert result.returncode == 0, result.stderr
    answer, version = result.stdout.rsplit(b"\n", 1)
    assert version == b"2"
    assert json.loads(answer)["sha256"] == digest_of(body.read_bytes())


def test_nghttp_over_tls_and_h2c(start_server, site, pki):
    nghttp = require_tool("nghttp")
    server = static_server(start_server, site, *tls_args(pki))
    host, port = server.address
    result = run([nghttp, "-nv", f"https://{host}:{port}/hello.txt"], timeout=30)
    out = result.stdout.decode(errors="replace")
    assert result.returncode == 0, out + result.stderr.decode(errors="replace")
    assert "recv SETTINGS frame" in out and ":status: 200" in out, out
    assert "(niv=" in out
    result = run([nghttp, f"https://{host}:{port}/dir/"], timeout=30)
    assert result.returncode == 0 and result.stdout == site.index, result
    plain = static_server(start_server, site)
    host, port = plain.address
    result = run([nghttp, "-ans", f"http://{host}:{port}/big.bin"], timeout=60)
    out = result.stdout.decode(errors="replace")
    assert result.returncode == 0, out + result.stderr.decode(errors="replace")
    assert "/big.bin" in out and "200" in out, out


H2LOAD_SUMMARY = re.compile(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout")


def h2load(address, scheme, path, requests=1000):
    tool = require_tool("h2load")
    host, port = address
    result = run([tool, "-n", str(requests), "-c", "10", "-m", "10", f"{scheme}://{host}:{port}{path}"], timeout=180)
    out = result.stdout.decode(errors="replace")
    assert result.returncode == 0, out + result.stderr.decode(errors="replace")
    match = H2LOAD_SUMMARY.search(out)
    assert match, out
    total, started, done, succeeded, failed, errored, timed_out = map(int, match.groups())
    assert (done, succeeded, failed, errored, timed_out) == (requests, requests, 0, 0, 0), out
    assert f"status codes: {requests} 2xx" in out, out
    return out


def test_h2load_static_over_tls(start_server, site, pki):
    server = static_server(start_server, site, *tls_args(pki))
    out = h2load(server.address, "https", "/hello.txt")
    assert "Application protocol: h2" in out, out


def test_h2load_wsgi_over_h2c_and_tls(serve_app, pki):
    server = serve_app("h2_app", "--no-access-log")
    h2load(server.address, "http", "/hello")
    server = serve_app("h2_app", "--no-access-log", *tls_args(pki))
    h2load(server.address, "https", "/hello")
