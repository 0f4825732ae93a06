"""ASGI WebSockets served by the real ``tern`` over real sockets: the handshake and the scope,
messages both ways, accepting with a subprotocol, refusing before the accept (close, the denial
response, an exception), closing from either side, pings, protocol errors, the size limit, and
many connections at once.

Two clients: the ``websockets`` library for what a real client does, and a small raw one here
(frames written and read by hand) for what a library would not send or hides: an unmasked frame,
invalid UTF-8, a fragmented message, pings and pongs, the server's own pings.
"""

import base64
import hashlib
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import uuid

import pytest
from websockets.exceptions import ConnectionClosed, ConnectionClosedOK, InvalidStatus
from websockets.sync.client import connect

from wsgi_support import TIMEOUT, RawConnection, fetch, wait_for, wait_for_log

APP = "asgi_ws_app:app"
TERN = os.path.join(os.path.dirname(sys.executable), "tern")

# RFC 6455 opcodes.
CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
ACCEPT_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def ws_url(server, target):
    return f"ws://{server.address[0]}:{server.address[1]}{target}"


def ws_connect(server, target, **options):
    """A ``websockets`` sync client: no proxy from the environment, no client pings, no limit on
    what it receives, bounded waits."""
    options = {"proxy": None, "ping_interval": None, "max_size": None, "open_timeout": TIMEOUT, "close_timeout": TIMEOUT, **options}
    return connect(ws_url(server, target), **options)


def refused(server, target):
    """The HTTP response a handshake to ``target`` gets instead of a 101 (an InvalidStatus)."""
    with pytest.raises(InvalidStatus) as info:
        with ws_connect(server, target):
            pass
    return info.value.response


def last(server, key):
    """What the app recorded under ``key`` (None until it did)."""
    answer = fetch(server.address, "GET", f"/last?{key}")
    assert answer.status == 200, answer
    return answer.json()


def wait_for_record(server, key):
    return wait_for(lambda: last(server, key), message=f"the app's record {key!r}")


def new_key():
    return uuid.uuid4().hex[:12]


# --- a raw WebSocket client -----------------------------------------------------------------------


def apply_mask(data, mask):
    repeated = (mask * (len(data) // 4 + 1))[: len(data)]
    return (int.from_bytes(data, "big") ^ int.from_bytes(repeated, "big")).to_bytes(len(data), "big")


def encode_frame(opcode, payload=b"", fin=True, mask=True):
    """One frame as a client writes it: masked unless told otherwise."""
    length = len(payload)
    mask_bit = 0x80 if mask else 0
    head = bytes([(0x80 if fin else 0) | opcode])
    if length < 126:
        head += bytes([mask_bit | length])
    elif length < 1 << 16:
        head += bytes([mask_bit | 126]) + struct.pack("!H", length)
    else:
        head += bytes([mask_bit | 127]) + struct.pack("!Q", length)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + apply_mask(payload, key)


def close_payload(code, reason=""):
    return struct.pack("!H", code) + reason.encode("utf-8")


def handshake_headers(key="dGhlIHNhbXBsZSBub25jZQ==", version="13", extra=()):
    headers = [("Upgrade", "websocket"), ("Connection", "Upgrade")]
    if key is not None:
        headers.append(("Sec-WebSocket-Key", key))
    if version is not None:
        headers.append(("Sec-WebSocket-Version", version))
    return headers + list(extra)


class Frame:
    def __init__(self, fin, opcode, payload):
        self.fin = fin
        self.opcode = opcode
        self.payload = payload

    @property
    def close_code(self):
        assert self.opcode == CLOSE, self
        return struct.unpack("!H", self.payload[:2])[0] if len(self.payload) >= 2 else None

    @property
    def close_reason(self):
        return self.payload[2:].decode("utf-8")

    def __repr__(self):
        return f"<Frame fin={self.fin} opcode={self.opcode:#x} {self.payload[:80]!r}>"


class RawWebSocket:
    """An upgraded connection on a RawConnection: frames out masked (unless told), frames in
    checked to be unmasked; every read bounded by the socket timeout."""

    def __init__(self, conn, response):
        self.conn = conn
        self.response = response

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.conn.close()

    def send_frame(self, opcode, payload=b"", fin=True, mask=True):
        self.conn.send(encode_frame(opcode, payload, fin, mask))

    def send_text(self, text):
        self.send_frame(TEXT, text.encode("utf-8"))

    def read_frame(self):
        first, second = self.conn.read_exact(2)
        assert not second & 0x80, "a server frame must not be masked"
        assert not first & 0x70, "no extension was agreed, so no RSV bit may be set"
        length = second & 0x7F
        if length == 126:
            length = struct.unpack("!H", self.conn.read_exact(2))[0]
        elif length == 127:
            length = struct.unpack("!Q", self.conn.read_exact(8))[0]
        return Frame(bool(first & 0x80), first & 0x0F, self.conn.read_exact(length))

    def read_frame_skipping_pings(self):
        """The next frame that is not a ping from the server."""
        while True:
            frame = self.read_frame()
            if frame.opcode != PING:
                return frame

    def read_until_eof(self):
        return self.conn.read_to_eof()

    def close(self, code=1000, reason=""):
        """The client's side of a clean close: sends a close frame, reads the server's (skipping
        any data frame still on its way), then waits for the server to end the TCP connection."""
        self.send_frame(CLOSE, close_payload(code, reason))
        while True:
            frame = self.read_frame()
            if frame.opcode == CLOSE:
                break
        assert self.read_until_eof() == b""
        return frame


def accept_value(key):
    return base64.b64encode(hashlib.sha1(key.encode("ascii") + ACCEPT_GUID).digest()).decode("ascii")


def open_raw(address, target, extra=(), timeout=TIMEOUT):
    """Opens a WebSocket by hand and checks the 101 answer (Upgrade, Connection, the accept key)."""
    key = base64.b64encode(os.urandom(16)).decode("ascii")
    conn = RawConnection(address, timeout=timeout)
    try:
        conn.request("GET", target, headers=handshake_headers(key=key, extra=extra))
        response = conn.read_head()
        assert response.status == 101, response
        assert response.header("Upgrade", "").lower() == "websocket", response
        assert "upgrade" in response.header("Connection", "").lower(), response
        assert response.header("Sec-WebSocket-Accept") == accept_value(key), response
    except BaseException:
        conn.close()
        raise
    return RawWebSocket(conn, response)


# --- messages -------------------------------------------------------------------------------------


def test_text_and_binary_messages_are_echoed_in_order(serve_app):
    server = serve_app(APP)
    key = new_key()
    with ws_connect(server, f"/echo?{key}") as ws:
        for index in range(5):
            ws.send(f"text {index} é")
            ws.send(b"\x00\xffbytes %d" % index)
        for index in range(5):
            assert ws.recv(timeout=TIMEOUT) == f"text {index} é"
            assert ws.recv(timeout=TIMEOUT) == b"\x00\xffbytes %d" % index
    record = wait_for(lambda: (last(server, key) or {}).get("disconnect"), message="the disconnect")
    assert record == {"type": "websocket.disconnect", "code": 1000, "reason": ""}
    # receive() gave only the key that applies to each message.
    assert last(server, key)["received"] == [["text", "type"], ["bytes", "type"]] * 5


def test_a_one_mebibyte_binary_message_is_echoed_whole(serve_app):
    server = serve_app(APP)
    payload = os.urandom(1024 * 1024)
    with ws_connect(server, "/echo") as ws:
        ws.send(payload)
        answer = ws.recv(timeout=TIMEOUT)
    assert isinstance(answer, bytes)
    assert answer == payload


def test_a_fragmented_message_reaches_the_app_as_one_message(serve_app):
    server = serve_app(APP)
    with open_raw(server.address, "/echo") as ws:
        ws.send_frame(TEXT, "fragmented ".encode(), fin=False)
        # A control frame may come between the fragments of a message.
        ws.send_frame(PING, b"in between")
        ws.send_frame(CONTINUATION, "café".encode()[:4], fin=False)
        ws.send_frame(CONTINUATION, "café".encode()[4:], fin=True)
        frames = [ws.read_frame_skipping_pings(), ws.read_frame_skipping_pings()]
        pong = [frame for frame in frames if frame.opcode == PONG]
        text = [frame for frame in frames if frame.opcode == TEXT]
        assert [frame.payload for frame in pong] == [b"in between"], frames
        assert len(text) == 1 and text[0].fin, frames
        assert text[0].payload.decode("utf-8") == "fragmented café"
        assert ws.close().close_code == 1000


# --- the scope ------------------------------------------------------------------------------------


def test_the_websocket_scope_has_every_key_of_the_spec(serve_app):
    server = serve_app(APP, "--root-path", "/mount")
    target = "/mount/scope/caf%C3%A9%20x?a=1&b=%20"
    extra = [("Sec-WebSocket-Protocol", "chat, superchat"), ("X-First", "1"), ("x-second", "two")]
    with open_raw(server.address, target, extra=extra) as ws:
        client_port = ws.conn.local_port
        frame = ws.read_frame_skipping_pings()
        assert frame.opcode == TEXT, frame
        scope = json.loads(frame.payload)
        ws.close()
    assert scope["type"] == "websocket"
    assert scope["asgi"] == {"version": "3.0", "spec_version": "2.4"}
    assert scope["http_version"] == "1.1"
    assert scope["scheme"] == "ws"
    assert scope["path"] == "/mount/scope/café x"
    assert scope["raw_path"] == "/mount/scope/caf%C3%A9%20x"
    assert scope["query_string"] == "a=1&b=%20"
    assert scope["root_path"] == "/mount"
    assert scope["headers"][0] == ["host", f"{server.address[0]}:{server.address[1]}"]
    names = [name for name, _ in scope["headers"]]
    assert names == [
        "host",
        "upgrade",
        "connection",
        "sec-websocket-key",
        "sec-websocket-version",
        "sec-websocket-protocol",
        "x-first",
        "x-second",
    ]
    assert scope["headers"][-3:] == [["sec-websocket-protocol", "chat, superchat"], ["x-first", "1"], ["x-second", "two"]]
    assert scope["header_types"] == ["tuple"]
    assert scope["client"] == ["127.0.0.1", client_port]
    assert scope["server"] == ["127.0.0.1", server.address[1]]
    assert scope["subprotocols"] == ["chat", "superchat"]
    assert "websocket.http.response" in scope["extensions"]
    assert "method" not in scope
    assert scope["state"]["started_by"] == "lifespan"
    assert scope["first_message"] == {"type": "websocket.connect"}


def test_subprotocols_from_several_header_lines_keep_their_order(serve_app):
    server = serve_app(APP, "--lifespan", "off")
    extra = [("Sec-WebSocket-Protocol", "b, a"), ("Sec-WebSocket-Protocol", "c")]
    with open_raw(server.address, "/scope", extra=extra) as ws:
        scope = json.loads(ws.read_frame_skipping_pings().payload)
        ws.close()
    assert scope["subprotocols"] == ["b", "a", "c"]


# --- the accept -----------------------------------------------------------------------------------


def test_accept_with_a_subprotocol_and_headers(serve_app):
    server = serve_app(APP)
    with ws_connect(server, "/subprotocol", subprotocols=["chat.v2", "chat.v1"]) as ws:
        assert ws.subprotocol == "chat.v2"
        assert ws.response.status_code == 101
        assert ws.response.headers["x-tern-test"] == "yes"
        assert ws.response.headers["Sec-WebSocket-Protocol"] == "chat.v2"
        assert json.loads(ws.recv(timeout=TIMEOUT)) == ["chat.v2", "chat.v1"]


def test_accept_without_a_subprotocol_when_none_was_offered(serve_app):
    server = serve_app(APP)
    with ws_connect(server, "/subprotocol") as ws:
        assert ws.subprotocol is None
        assert "Sec-WebSocket-Protocol" not in ws.response.headers
        assert json.loads(ws.recv(timeout=TIMEOUT)) == []


# --- refusing before the accept -------------------------------------------------------------------


def test_a_close_before_the_accept_is_a_403(serve_app):
    server = serve_app(APP)
    assert refused(server, "/close-before-accept").status_code == 403


def test_the_denial_response_reaches_the_client_as_sent(serve_app):
    server = serve_app(APP)
    response = refused(server, "/deny")
    assert response.status_code == 401
    assert response.headers["x-denied-by"] == "asgi_ws_app"
    assert response.headers["content-type"] == "text/plain"
    assert response.body == b"nope"
    # The same over a raw connection: a plain HTTP answer, not an upgrade.
    with RawConnection(server.address) as conn:
        conn.request("GET", "/deny", headers=handshake_headers())
        raw = conn.read_response()
    assert raw.status == 401, raw
    assert raw.body == b"nope"
    assert raw.header("Upgrade") is None
    assert raw.header("Sec-WebSocket-Accept") is None


def test_an_exception_before_the_accept_is_a_500_with_its_traceback_logged(serve_app):
    server = serve_app(APP)
    assert refused(server, "/raise-before-accept").status_code == 500
    log = wait_for_log(server, "asgi_ws_app fails before the accept")
    assert "Traceback (most recent call last)" in log


def test_an_exception_after_the_accept_closes_with_1011_and_logs_the_traceback(serve_app):
    server = serve_app(APP)
    with open_raw(server.address, "/raise-after-accept") as ws:
        ws.send_text("go")
        frame = ws.read_frame_skipping_pings()
        assert frame.opcode == CLOSE, frame
        assert frame.close_code == 1011
        ws.send_frame(CLOSE, close_payload(1011))
        assert ws.read_until_eof() == b""
    log = wait_for_log(server, "asgi_ws_app fails after the accept")
    assert "Traceback (most recent call last)" in log


# --- closing --------------------------------------------------------------------------------------


def test_a_stopping_server_closes_open_sessions_with_1001_and_exits(serve_app):
    server = serve_app(APP)
    key = new_key()
    with open_raw(server.address, f"/echo?{key}") as ws:
        ws.send_text("before")
        assert ws.read_frame_skipping_pings().payload == b"before"
        server.process.send_signal(signal.SIGTERM)
        frame = ws.read_frame_skipping_pings()
        assert frame.opcode == CLOSE, frame
        assert frame.close_code == 1001
        ws.send_frame(CLOSE, close_payload(1001))
        assert ws.read_until_eof() == b""
    assert server.process.wait(timeout=TIMEOUT) == 0


def test_the_server_closes_with_a_code_and_reason(serve_app):
    server = serve_app(APP)
    key = new_key()
    with ws_connect(server, f"/server-close?{key}") as ws:
        assert ws.recv(timeout=TIMEOUT) == "bye"
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=TIMEOUT)
    assert info.value.rcvd is not None
    assert (info.value.rcvd.code, info.value.rcvd.reason) == (4001, "done")
    after = wait_for_record(server, key)["after_close"]
    assert after["type"] == "websocket.disconnect"
    assert after["code"] == 4001


def test_the_default_close_code_is_1000(serve_app):
    server = serve_app(APP)
    with ws_connect(server, "/close-default") as ws:
        with pytest.raises(ConnectionClosedOK) as info:
            ws.recv(timeout=TIMEOUT)
    assert info.value.rcvd.code == 1000


def test_a_client_close_reaches_receive_and_a_later_send_raises_oserror(serve_app):
    server = serve_app(APP)
    key = new_key()
    with ws_connect(server, f"/disconnect-record?{key}") as ws:
        ws.send("hello")
        ws.close(4002, "client leaves")
    record = wait_for_record(server, key)
    assert record["disconnect"] == {"type": "websocket.disconnect", "code": 4002, "reason": "client leaves"}
    assert record["send_error"] is not None, record
    assert record["send_error_is_oserror"] is True, record


def test_a_connection_lost_without_a_close_frame_is_code_1006(serve_app):
    server = serve_app(APP)
    key = new_key()
    ws = open_raw(server.address, f"/disconnect-record?{key}")
    ws.send_text("hello")
    ws.conn.close()
    record = wait_for_record(server, key)
    assert record["disconnect"]["type"] == "websocket.disconnect"
    assert record["disconnect"]["code"] == 1006
    assert record["send_error_is_oserror"] is True, record


# --- pings ----------------------------------------------------------------------------------------


def test_a_ping_is_answered_with_a_pong_carrying_its_payload(serve_app):
    server = serve_app(APP)
    with open_raw(server.address, "/echo") as ws:
        ws.send_frame(PING, b"are you there?")
        frame = ws.read_frame_skipping_pings()
        assert frame.opcode == PONG, frame
        assert frame.payload == b"are you there?"
        # The connection goes on as before.
        ws.send_text("still here")
        frame = ws.read_frame_skipping_pings()
        assert (frame.opcode, frame.payload) == (TEXT, b"still here")
        assert ws.close().close_code == 1000


def test_the_server_pings_a_silent_client(serve_app):
    server = serve_app(APP, "--ws-ping-interval", "0.2")
    # Not a timing assertion: the ping only has to come within the socket's generous timeout.
    with open_raw(server.address, "/echo", timeout=10) as ws:
        frame = ws.read_frame()
        assert frame.opcode == PING, frame
        ws.send_frame(PONG, frame.payload)
        assert ws.close().close_code == 1000


# --- protocol errors ------------------------------------------------------------------------------


def test_an_unmasked_client_frame_is_a_protocol_error(serve_app):
    server = serve_app(APP)
    with open_raw(server.address, "/echo") as ws:
        ws.send_frame(TEXT, b"not masked", mask=False)
        frame = ws.read_frame_skipping_pings()
        assert frame.opcode == CLOSE, frame
        assert frame.close_code == 1002
        # Then the server ends the connection without waiting for the client.
        assert ws.read_until_eof() == b""


def test_invalid_utf8_in_a_text_message_is_close_code_1007(serve_app):
    server = serve_app(APP)
    with open_raw(server.address, "/echo") as ws:
        ws.send_frame(TEXT, b"caf\xc3 \xff\xfe")
        frame = ws.read_frame_skipping_pings()
        assert frame.opcode == CLOSE, frame
        assert frame.close_code == 1007


@pytest.mark.parametrize("fragments", [1, 2], ids=["one-frame", "two-fragments"])
def test_a_message_over_ws_max_size_is_close_code_1009(serve_app, fragments):
    server = serve_app(APP, "--ws-max-size", "1024")
    with open_raw(server.address, "/echo") as ws:
        ws.send_frame(BINARY, b"s" * 1000)
        frame = ws.read_frame_skipping_pings()
        assert (frame.opcode, frame.payload) == (BINARY, b"s" * 1000)
        # 2000 bytes: in one frame, or in two frames of 1000 that each fit but not together.
        if fragments == 1:
            ws.send_frame(BINARY, b"L" * 2000)
        else:
            ws.send_frame(BINARY, b"L" * 1000, fin=False)
            ws.send_frame(CONTINUATION, b"L" * 1000, fin=True)
        frame = ws.read_frame_skipping_pings()
        assert frame.opcode == CLOSE, frame
        assert frame.close_code == 1009


# --- the handshake --------------------------------------------------------------------------------


def test_an_unsupported_version_is_a_426_naming_13(serve_app):
    server = serve_app(APP)
    with RawConnection(server.address) as conn:
        conn.request("GET", "/echo", headers=handshake_headers(version="8"))
        response = conn.read_response()
    assert response.status == 426, response
    assert response.header("Sec-WebSocket-Version") == "13"


def test_a_missing_key_is_a_400(serve_app):
    server = serve_app(APP)
    with RawConnection(server.address) as conn:
        conn.request("GET", "/echo", headers=handshake_headers(key=None))
        response = conn.read_response()
    assert response.status == 400, response
    assert response.header("Sec-WebSocket-Accept") is None


def test_the_access_log_has_the_websocket_request_with_101(serve_app):
    server = serve_app(APP)
    token = new_key()
    with ws_connect(server, f"/echo?log-{token}") as ws:
        ws.send("logged")
        assert ws.recv(timeout=TIMEOUT) == "logged"
    wait_for_log(server, f'"GET /echo?log-{token} HTTP/1.1" 101')


# --- many at once ---------------------------------------------------------------------------------


def test_two_hundred_websockets_open_at_once_are_all_served(serve_app):
    server = serve_app(APP, "--no-access-log")
    count = 200
    sockets = []
    try:
        # All open before any message: the server holds every one of them at the same time.
        for _ in range(count):
            sockets.append(open_raw(server.address, "/echo"))
        for index, ws in enumerate(sockets):
            ws.send_text(f"message {index}")
        for index, ws in enumerate(sockets):
            frame = ws.read_frame_skipping_pings()
            assert (frame.opcode, frame.payload) == (TEXT, f"message {index}".encode()), frame
        for ws in sockets:
            assert ws.close().close_code == 1000
    finally:
        for ws in sockets:
            ws.conn.close()


def worker_pid(server):
    """The supervisor's child (one worker), once it is forked."""

    def child():
        pid = server.process.pid
        for task in os.listdir(f"/proc/{pid}/task"):
            children = open(f"/proc/{pid}/task/{task}/children").read().split()
            if children:
                return int(children[0])
        return None

    return wait_for(child, message="the worker process")


def worker_rss_kib(server):
    """The worker's resident memory."""
    for line in open(f"/proc/{worker_pid(server)}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_an_app_sending_to_a_client_that_does_not_read_is_held_back(serve_app):
    server = serve_app(APP, "--no-access-log")
    key = new_key()
    last(server, "warm-up")  # the worker is up and has served
    before = worker_rss_kib(server)
    with open_raw(server.address, f"/flood?{key}") as ws:
        # The client reads nothing: once the socket buffers and tern's 64 KiB are full, the app's
        # send() waits. Wait until its count stops moving.
        seen = []

        def settled():
            seen.append(wait_for_record(server, key)["sent"])
            return len(seen) >= 3 and seen[-1] == seen[-2] == seen[-3] and seen[-1] > 0

        wait_for(settled, message="the app's sends to stop")
        held_at = seen[-1]
        assert held_at < 1000, "every send completed though the client read nothing"
        # 1,000 x 64 KiB = 64 MiB were asked for; what the worker holds stays far below that.
        assert (worker_rss_kib(server) - before) * 1024 < 32 * 1024 * 1024
        # Reading lets the app go on to the end.
        received = 0
        while True:
            frame = ws.read_frame_skipping_pings()
            if frame.opcode == CLOSE:
                break
            received += len(frame.payload)
        assert received == 1000 * 65536
    assert wait_for_record(server, key)["sent"] == 1000


def test_ten_thousand_idle_websockets_on_one_worker(serve_app):
    import resource

    count = 10_000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < count + 200:
        pytest.skip(f"this process may open {hard} descriptors, fewer than {count}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    server = serve_app(APP, "--no-access-log", "--ws-ping-interval", "0")
    last(server, "warm-up")  # the worker is up and has served
    before = worker_rss_kib(server)
    key = base64.b64encode(os.urandom(16)).decode("ascii")
    head = "".join(f"{name}: {value}\r\n" for name, value in handshake_headers(key=key))
    request = f"GET /echo?idle HTTP/1.1\r\nHost: test\r\n{head}\r\n".encode()
    sockets = []
    try:
        for _ in range(count):
            s = socket.create_connection(server.address, timeout=TIMEOUT)
            s.sendall(request)
            sockets.append(s)
        for s in sockets:
            answer = b""
            while b"\r\n\r\n" not in answer:
                chunk = s.recv(4096)
                assert chunk, "an upgrade was closed unanswered"
                answer += chunk
            assert answer.startswith(b"HTTP/1.1 101 "), answer[:60]
        grown = (worker_rss_kib(server) - before) * 1024 / count
        print(f"{count} idle WebSocket sessions: the worker grew by {grown:.0f} bytes each")
        # Generous: a regression that kept a 64 KiB buffer per session would show here.
        assert grown < 48 * 1024, grown
        # Still served: the last one echoes.
        sockets[-1].sendall(encode_frame(TEXT, b"still here"))
        frame = read_server_frame(sockets[-1])
        assert (frame.opcode, frame.payload) == (TEXT, b"still here"), frame
    finally:
        for s in sockets:
            s.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def read_server_frame(sock):
    """One unmasked server frame from a plain socket."""

    def exact(n):
        data = b""
        while len(data) < n:
            chunk = sock.recv(n - len(data))
            assert chunk, "the connection closed"
            data += chunk
        return data

    first, second = exact(2)
    length = second & 0x7F
    if length == 126:
        length = struct.unpack("!H", exact(2))[0]
    elif length == 127:
        length = struct.unpack("!Q", exact(8))[0]
    return Frame(bool(first & 0x80), first & 0x0F, exact(length))


# --- WSGI -----------------------------------------------------------------------------------------


def test_a_wsgi_app_answers_an_upgrade_request_as_plain_http(serve_app):
    server = serve_app("pep_app:application")
    with RawConnection(server.address) as conn:
        conn.request("GET", "/hello", headers=handshake_headers())
        response = conn.read_response()
        assert response.status == 200, response
        assert response.body == b"hello world"
        assert response.header("Upgrade") is None
        assert response.header("Sec-WebSocket-Accept") is None
        # Nothing was switched: the connection still speaks HTTP.
        again = conn.roundtrip("GET", "/hello")
        assert again.status == 200 and again.body == b"hello world"



# --- tern client --websocket ----------------------------------------------------------------------


def run_client(server, *args):
    host, port = server.address
    return subprocess.run(
        [TERN, "client", f"{host}:{port}", *args],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def test_the_load_client_speaks_websocket(serve_app):
    server = serve_app(APP)
    result = run_client(server, "-c", "20", "-n", "50", "--websocket", "/echo", "--message", "ping", "--expect", "ping")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "connections: 20 opened, 0 failed" in result.stdout, result.stdout
    assert "messages: 1000 sent, 1000 answered, 0 failed" in result.stdout, result.stdout


def test_the_load_client_counts_a_refused_upgrade_as_a_failed_connection(serve_app):
    server = serve_app(APP)
    result = run_client(server, "-c", "3", "-n", "2", "--websocket", "/close-before-accept")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "3 WebSocket upgrade refused" in result.stdout, result.stdout
