"""Behind a proxy, end to end: what a WSGI app sees in REMOTE_ADDR, REMOTE_PORT and wsgi.url_scheme
when a trusted peer sends X-Forwarded-For / X-Forwarded-Proto or Forwarded (RFC 7239), when the peer
is not trusted, and when the connection starts with a PROXY protocol v2 header; plus RAW_URI.

127.0.0.1 is trusted by default (``--forwarded-allow-ips 127.0.0.1,::1``); ``--forwarded-allow-ips
10.0.0.1`` makes the test client an untrusted peer, for which nothing may change.
"""

import ipaddress
import json
import os
import socket
import struct
import tempfile

import pytest

from wsgi_support import RawConnection, log_text, metrics_address, wait_for_log, wait_parked

APP = "pep_app:application"
UNTRUSTED = ("--forwarded-allow-ips", "10.0.0.1")


@pytest.fixture
def server(serve_app):
    return serve_app(APP)


def environ_of(server, target="/environ", headers=()):
    """The environ the app saw for one GET, and the client's own port."""
    with RawConnection(server.address) as connection:
        answer = connection.roundtrip("GET", target, headers)
        assert answer.status == 200, answer
        return answer.json(), connection.local_port


# --- X-Forwarded-For / X-Forwarded-Proto -----------------------------------------------------------


def test_x_forwarded_for_and_proto_from_a_trusted_peer(server):
    headers = [("X-Forwarded-For", "198.51.100.1, 203.0.113.9"), ("X-Forwarded-Proto", "https")]
    env, client_port = environ_of(server, "/environ?xff", headers)
    # The right-most address that is not a trusted proxy is the client.
    assert env["REMOTE_ADDR"] == "203.0.113.9"
    # No port was forwarded: the peer's stays.
    assert env["REMOTE_PORT"] == str(client_port)
    assert env["wsgi.url_scheme"] == "https"
    # The headers are still there for the app, and the host is as sent.
    assert env["HTTP_X_FORWARDED_FOR"] == "198.51.100.1, 203.0.113.9"
    assert env["HTTP_X_FORWARDED_PROTO"] == "https"
    host, port = server.address
    assert env["HTTP_HOST"] == f"{host}:{port}"
    assert env["SERVER_PORT"] == str(port)
    # The access log names the client too.
    wait_for_log(server, '203.0.113.9 "GET /environ?xff HTTP/1.1" 200')


def test_x_forwarded_for_listing_only_trusted_addresses_gives_the_left_most(server):
    env, _ = environ_of(server, headers=[("X-Forwarded-For", "::1, 127.0.0.1")])
    assert env["REMOTE_ADDR"] == "::1"


def test_x_forwarded_from_an_untrusted_peer_changes_nothing(serve_app):
    server = serve_app(APP, *UNTRUSTED)
    headers = [("X-Forwarded-For", "203.0.113.9"), ("X-Forwarded-Proto", "https")]
    env, client_port = environ_of(server, "/environ?untrusted", headers)
    assert env["REMOTE_ADDR"] == "127.0.0.1"
    assert env["REMOTE_PORT"] == str(client_port)
    assert env["wsgi.url_scheme"] == "http"
    assert env["HTTP_X_FORWARDED_FOR"] == "203.0.113.9"
    assert env["HTTP_X_FORWARDED_PROTO"] == "https"
    wait_for_log(server, '127.0.0.1 "GET /environ?untrusted HTTP/1.1" 200')


@pytest.mark.parametrize(
    "headers",
    [
        [("X-Forwarded-For", "not-an-address")],
        [("X-Forwarded-Proto", "gopher")],
        [("X-Forwarded-Proto", "https, http")],
        [("Forwarded", "for=2001:db8::1")],
        [("Forwarded", 'for="192.0.2.1')],
        [("Forwarded", "for=192.0.2.1;for=192.0.2.2")],
        [("Forwarded", "for=unknown;proto=ftp")],
    ],
    ids=["xff-garbage", "xfp-other", "xfp-list", "fwd-unquoted-v6", "fwd-unterminated", "fwd-repeated", "fwd-unknown"],
)
def test_malformed_values_are_ignored(server, headers):
    env, client_port = environ_of(server, headers=headers)
    assert env["REMOTE_ADDR"] == "127.0.0.1"
    assert env["REMOTE_PORT"] == str(client_port)
    assert env["wsgi.url_scheme"] == "http"


# --- Forwarded (RFC 7239) --------------------------------------------------------------------------


def test_forwarded_from_a_trusted_peer(server):
    env, _ = environ_of(server, headers=[("Forwarded", 'for="[2001:db8::1]:4711";proto=https;by=_proxy')])
    assert env["REMOTE_ADDR"] == "2001:db8::1"
    # Forwarded gave the client's port.
    assert env["REMOTE_PORT"] == "4711"
    assert env["wsgi.url_scheme"] == "https"
    assert env["HTTP_FORWARDED"] == 'for="[2001:db8::1]:4711";proto=https;by=_proxy'


def test_forwarded_chain_right_most_untrusted(server):
    value = "for=198.51.100.1;proto=http, for=203.0.113.9;proto=https, for=127.0.0.1"
    env, _ = environ_of(server, headers=[("Forwarded", value)])
    assert env["REMOTE_ADDR"] == "203.0.113.9"
    assert env["wsgi.url_scheme"] == "https"


def test_forwarded_obfuscated_client_keeps_the_peer(server):
    env, client_port = environ_of(server, headers=[("Forwarded", 'for="_hidden";proto=https')])
    assert env["REMOTE_ADDR"] == "127.0.0.1"
    assert env["REMOTE_PORT"] == str(client_port)
    # The proto of the client's hop still counts.
    assert env["wsgi.url_scheme"] == "https"


def test_x_forwarded_wins_over_forwarded(server):
    headers = [("Forwarded", "for=198.51.100.1;proto=https"), ("X-Forwarded-For", "203.0.113.9")]
    env, _ = environ_of(server, headers=headers)
    assert env["REMOTE_ADDR"] == "203.0.113.9"
    # Forwarded is ignored as a whole, its proto too.
    assert env["wsgi.url_scheme"] == "http"


def test_forwarded_from_an_untrusted_peer_changes_nothing(serve_app):
    server = serve_app(APP, *UNTRUSTED)
    env, _ = environ_of(server, headers=[("Forwarded", "for=203.0.113.9;proto=https")])
    assert env["REMOTE_ADDR"] == "127.0.0.1"
    assert env["wsgi.url_scheme"] == "http"


def test_a_unix_socket_peer_is_trusted(serve_app):
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "tern.sock")
        # Even with a list that names no address of ours.
        server = serve_app(APP, "--bind", "127.0.0.1:0", "--bind", f"unix:{path}", *UNTRUSTED)
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.settimeout(20)
            client.connect(path)
            client.sendall(
                b"GET /environ HTTP/1.1\r\nHost: proxied.example\r\nX-Forwarded-For: 203.0.113.9\r\n"
                b"X-Forwarded-Proto: https\r\nConnection: close\r\n\r\n"
            )
            raw = b""
            while chunk := client.recv(65536):
                raw += chunk
        head, _, body = raw.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), raw[:300]
        env = json.loads(body)
        assert env["REMOTE_ADDR"] == "203.0.113.9"
        # A Unix socket has no port, and none was forwarded.
        assert "REMOTE_PORT" not in env
        assert env["wsgi.url_scheme"] == "https"
        server.stop()


# --- REMOTE_PORT and RAW_URI -----------------------------------------------------------------------


def test_remote_port_is_the_client_port(server):
    env, client_port = environ_of(server)
    assert env["REMOTE_PORT"] == str(client_port)
    assert env["types"]["REMOTE_PORT"] == "str"


def test_raw_uri_is_the_target_as_sent(server):
    env, _ = environ_of(server, "/environ/a%20b/%2F?x=%2F&y=%C3%A9#frag")
    assert env["RAW_URI"] == "/environ/a%20b/%2F?x=%2F&y=%C3%A9#frag"
    assert env["PATH_INFO"] == "/environ/a b//"
    assert env["types"]["RAW_URI"] == "str"


def test_raw_uri_of_an_absolute_form_target(server):
    host, port = server.address
    env, _ = environ_of(server, f"http://{host}:{port}/environ?q=1")
    assert env["RAW_URI"] == f"http://{host}:{port}/environ?q=1"
    assert env["PATH_INFO"] == "/environ"


# --- PROXY protocol --------------------------------------------------------------------------------

V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


def proxy_v2_tcp4(source, source_port, destination="127.0.0.1", destination_port=80):
    """A PROXY protocol v2 header: PROXY command, TCP over IPv4 (spec section 2.2)."""
    addresses = (
        ipaddress.IPv4Address(source).packed
        + ipaddress.IPv4Address(destination).packed
        + struct.pack("!HH", source_port, destination_port)
    )
    return V2_SIGNATURE + bytes([0x21, 0x11]) + struct.pack("!H", len(addresses)) + addresses


def test_proxy_v2_names_the_client_for_the_app(serve_app):
    server = serve_app(APP, "--proxy-protocol", "--metrics-bind", "127.0.0.1:0")
    metrics = metrics_address(server)
    with RawConnection(server.address) as connection:
        connection.send(proxy_v2_tcp4("198.51.100.20", 5555))
        answer = connection.roundtrip("GET", "/environ?first")
        assert answer.status == 200, answer
        env = answer.json()
        assert env["REMOTE_ADDR"] == "198.51.100.20"
        assert env["REMOTE_PORT"] == "5555"
        assert env["wsgi.url_scheme"] == "http"
        # Silent after its answer, it waits in the idle park; resumed, it is still the same client.
        wait_parked(metrics, 1)
        answer = connection.roundtrip("GET", "/environ?second")
        assert answer.json()["REMOTE_ADDR"] == "198.51.100.20"
        assert answer.json()["REMOTE_PORT"] == "5555"
    wait_for_log(server, '198.51.100.20 "GET /environ?second HTTP/1.1" 200')


def test_x_forwarded_for_counts_only_if_the_proxy_protocol_client_is_trusted(serve_app):
    server = serve_app(APP, "--proxy-protocol")
    with RawConnection(server.address) as connection:
        # The PROXY header names an outside client: its own X-Forwarded-For is not believed.
        connection.send(proxy_v2_tcp4("198.51.100.20", 5555))
        env = connection.roundtrip("GET", "/environ", [("X-Forwarded-For", "203.0.113.9")]).json()
        assert env["REMOTE_ADDR"] == "198.51.100.20"
    with RawConnection(server.address) as connection:
        # A trusted hop (the proxy on this machine) may forward for someone else.
        connection.send(proxy_v2_tcp4("127.0.0.1", 6000))
        env = connection.roundtrip("GET", "/environ", [("X-Forwarded-For", "203.0.113.9")]).json()
        assert env["REMOTE_ADDR"] == "203.0.113.9"


def test_proxy_protocol_without_a_header_is_closed(serve_app):
    server = serve_app(APP, "--proxy-protocol")
    with RawConnection(server.address) as connection:
        connection.request("GET", "/environ")
        assert connection.read_to_eof() == b""
    wait_for_log(server, "no valid PROXY protocol header")
    assert "Traceback" not in log_text(server)
