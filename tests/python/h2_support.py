"""Helpers for the HTTP/2 tests: certificates made with openssl, two HTTP/2 clients, and the
workers' resident memory.

- ``H2Client`` speaks through the ``h2`` package, which enforces flow control on what the server
  sends (a DATA frame past the window the client gave raises ``FlowControlError``) and keeps within
  the server's windows when sending bodies. It stops being usable once a GOAWAY came.
- ``FrameClient`` writes frames by hand (hyperframe and hpack), so a test can send what a polite
  client never would (streams past the limit, resets right after HEADERS, CONTINUATION floods,
  HPACK bombs) and read exactly what came back, GOAWAY and what follows it included.
"""

import os
import select
import socket
import ssl
import subprocess
import threading
import time

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
import hpack
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    Frame,
    GoAwayFrame,
    HeadersFrame,
    PingFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)

from test_restarts import worker_pids

TIMEOUT = 20
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

# Error codes (RFC 9113 §7).
NO_ERROR = 0x0
PROTOCOL_ERROR = 0x1
CANCEL = 0x8
REFUSED_STREAM = 0x7
ENHANCE_YOUR_CALM = 0xB

# Setting identifiers (RFC 9113 §6.5.2).
SETTINGS_HEADER_TABLE_SIZE = 0x1
SETTINGS_MAX_CONCURRENT_STREAMS = 0x3
SETTINGS_INITIAL_WINDOW_SIZE = 0x4
SETTINGS_MAX_FRAME_SIZE = 0x5
SETTINGS_MAX_HEADER_LIST_SIZE = 0x6

# Headers RFC 9113 §8.2.2 forbids in HTTP/2 messages.
CONNECTION_SPECIFIC = ("connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade")


# --- certificates ---------------------------------------------------------------------------------


def make_pki(directory):
    """A CA (ca.pem) and a server certificate for 127.0.0.1 and localhost (server.pem, server-key.pem)."""

    def openssl(*args):
        subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True, timeout=TIMEOUT)

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", "ca-key.pem", "-out", "ca.pem", "-days", "2", "-subj", "/CN=tern h2 test CA")
    openssl("req", *ec, "-keyout", "server-key.pem", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
    (directory / "server.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl(
        "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem", "-CAcreateserial",
        "-out", "server.pem", "-days", "2", "-extfile", "server.ext",
    )
    return directory


def tls_args(pki):
    return ("--certfile", str(pki / "server.pem"), "--keyfile", str(pki / "server-key.pem"))


def client_context(pki, alpn=("h2", "http/1.1")):
    context = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    context.set_alpn_protocols(list(alpn))
    return context


def connect(address, context=None, timeout=TIMEOUT, receive_buffer=None):
    """A TCP connection to ``address``, wrapped in TLS when ``context`` is given; a fixed
    ``receive_buffer`` (SO_RCVBUF, which also stops the kernel growing it) makes a client that does
    not read push back on the server sooner."""
    if receive_buffer is None:
        sock = socket.create_connection(address, timeout=timeout)
    else:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        sock.settimeout(timeout)
        sock.connect(address)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if context is not None:
        sock = context.wrap_socket(sock, server_hostname="127.0.0.1")
    return sock


def negotiated(sock):
    """The ALPN protocol of a TLS socket (None when the server chose none)."""
    return sock.selected_alpn_protocol()


# --- answers --------------------------------------------------------------------------------------


class Reply:
    """What came back on one stream: ``status``, ``headers`` (pairs, as sent), ``body``, the size of
    each DATA frame, whether it ``ended`` (END_STREAM) and the RST_STREAM code if it was ``reset``."""

    def __init__(self, stream_id):
        self.stream_id = stream_id
        self.status = None
        self.headers = []
        self.trailers = []
        self.body = b""
        self.data_frames = []
        self.ended = False
        self.reset = None

    def header(self, name, default=None):
        for key, value in self.headers:
            if key == name:
                return value
        return default

    def header_all(self, name):
        return [value for key, value in self.headers if key == name]

    @property
    def done(self):
        return self.ended or self.reset is not None

    def __repr__(self):
        return (
            f"<Reply stream {self.stream_id} status {self.status} headers {self.headers!r} "
            f"body {self.body[:120]!r} ({len(self.body)} bytes) ended {self.ended} reset {self.reset}>"
        )


class Closed(Exception):
    """The server closed the connection."""


def _receive(sock, size=65536):
    try:
        return sock.recv(size)
    except (ConnectionResetError, BrokenPipeError, ssl.SSLEOFError, ssl.SSLZeroReturnError):
        return b""


# --- the h2 package's client ----------------------------------------------------------------------


class SocketClient:
    """A client over one socket, closed by close() or at the end of a with block."""

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class H2Client(SocketClient):
    """A client connection through the ``h2`` package (over TLS with ALPN h2, or h2c by prior
    knowledge); ``initial_window`` is the stream window it grants (SETTINGS_INITIAL_WINDOW_SIZE)."""

    def __init__(self, address, context=None, initial_window=None, timeout=TIMEOUT):
        self.address = address
        self.sock = connect(address, context, timeout)
        if context is not None:
            assert negotiated(self.sock) == "h2", f"ALPN chose {negotiated(self.sock)!r}"
        self.scheme = "https" if context is not None else "http"
        config = h2.config.H2Configuration(client_side=True, header_encoding="utf-8", validate_inbound_headers=False)
        self.conn = h2.connection.H2Connection(config=config)
        if initial_window is not None:
            initial = {
                h2.settings.SettingCodes.ENABLE_PUSH: 0,
                h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: initial_window,
                h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 100,
            }
            self.conn.local_settings = h2.settings.Settings(client=True, initial_values=initial)
        self.conn.initiate_connection()
        self.replies = {}
        self.server_settings = {}
        self.goaway = None
        self.flush()

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def request(self, method, path, headers=(), body=None, authority=None, end_stream=True):
        """Sends a request (HEADERS, then the body within the server's windows); its stream id."""
        stream_id = self.conn.get_next_available_stream_id()
        authority = authority or f"{self.address[0]}:{self.address[1]}"
        fields = [(":method", method), (":scheme", self.scheme), (":authority", authority), (":path", path), *headers]
        self.replies[stream_id] = Reply(stream_id)
        self.conn.send_headers(stream_id, fields, end_stream=body is None and end_stream)
        self.flush()
        if body is not None:
            self.send_body(stream_id, body, end_stream)
        return stream_id

    def send_body(self, stream_id, body, end_stream=True):
        view = memoryview(body)
        offset = 0
        reply = self.replies[stream_id]
        while offset < len(body) and not reply.done:
            size = min(self.conn.local_flow_control_window(stream_id), self.conn.max_outbound_frame_size, len(body) - offset)
            if size <= 0:
                self.pump()  # wait for a WINDOW_UPDATE
                continue
            try:
                self.conn.send_data(stream_id, bytes(view[offset : offset + size]))
            except h2.exceptions.StreamClosedError:
                return  # the server answered and closed the stream before taking the whole body
            offset += size
            self.flush()
        if end_stream and not reply.done:
            try:
                self.conn.end_stream(stream_id)
            except h2.exceptions.StreamClosedError:
                return
            self.flush()

    def pump(self):
        """Reads once from the socket and handles what came."""
        data = _receive(self.sock)
        if not data:
            raise Closed("connection closed by the server; replies so far: %r" % list(self.replies.values()))
        for event in self.conn.receive_data(data):
            self._handle(event)
        self.flush()

    def _handle(self, event):
        if isinstance(event, h2.events.ResponseReceived):
            reply = self.replies[event.stream_id]
            reply.headers = list(event.headers)
            reply.status = int(reply.header(":status"))
        elif isinstance(event, h2.events.TrailersReceived):
            self.replies[event.stream_id].trailers = list(event.headers)
        elif isinstance(event, h2.events.DataReceived):
            reply = self.replies[event.stream_id]
            reply.body += event.data
            reply.data_frames.append(len(event.data))
            if event.flow_controlled_length:
                self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        elif isinstance(event, h2.events.StreamEnded):
            self.replies[event.stream_id].ended = True
        elif isinstance(event, h2.events.StreamReset):
            self.replies[event.stream_id].reset = event.error_code
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.goaway = event
        elif isinstance(event, h2.events.RemoteSettingsChanged):
            for code, change in event.changed_settings.items():
                self.server_settings[int(code)] = change.new_value

    def pump_until(self, condition, what, timeout=TIMEOUT):
        """Reads and handles events until ``condition()`` holds; fails after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while not condition():
            if self.goaway is not None:
                raise Closed(f"GOAWAY {self.goaway} while waiting for {what}; replies: {list(self.replies.values())!r}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"timed out after {timeout} s waiting for {what}; replies: {list(self.replies.values())!r}")
            self.sock.settimeout(remaining)
            try:
                self.pump()
            except socket.timeout:
                raise AssertionError(f"timed out after {timeout} s waiting for {what}; replies: {list(self.replies.values())!r}") from None

    def response(self, stream_id, timeout=TIMEOUT):
        """Waits until the stream ends or is reset; its Reply."""
        reply = self.replies[stream_id]
        self.pump_until(lambda: reply.done, f"the end of stream {stream_id}", timeout)
        return reply

    def get(self, path, headers=(), method="GET", authority=None):
        return self.response(self.request(method, path, headers, authority=authority))


# --- frames by hand -------------------------------------------------------------------------------


class FrameClient(SocketClient):
    """A client that writes frames itself: the preface and a SETTINGS frame with ``settings`` first.

    Reading answers the server's SETTINGS with an ACK and, unless told otherwise, its PINGs, and
    grants back the window of every DATA frame read (``auto_window``). Every frame read is kept in
    ``frames``; HEADERS frames get ``fields``, their decoded header list.
    """

    def __init__(self, address, context=None, settings=None, timeout=TIMEOUT, auto_window=True, auto_pong=True, receive_buffer=None):
        self.sock = connect(address, context, timeout, receive_buffer)
        if context is not None:
            assert negotiated(self.sock) == "h2", f"ALPN chose {negotiated(self.sock)!r}"
        self.scheme = "https" if context is not None else "http"
        self.authority = f"{address[0]}:{address[1]}"
        self.encoder = hpack.Encoder()
        self.decoder = hpack.Decoder()
        self.decoder.max_header_list_size = 1 << 24
        self.buffer = bytearray()
        self.frames = []
        self.replies = {}
        self.server_settings = None
        self.goaways = []
        self.closed = False
        self.auto_window = auto_window
        self.auto_pong = auto_pong
        self.send_lock = threading.Lock()
        self.send_bytes(PREFACE + SettingsFrame(0, settings or {}).serialize())

    def send_bytes(self, data):
        with self.send_lock:
            self.sock.sendall(data)

    def send(self, *frames):
        self.send_bytes(b"".join(frame.serialize() for frame in frames))

    def headers_frame(self, stream_id, path, method="GET", extra=(), end_stream=True, end_headers=True, authority=None):
        fields = [(":method", method), (":scheme", self.scheme), (":authority", authority or self.authority), (":path", path), *extra]
        flags = (["END_HEADERS"] if end_headers else []) + (["END_STREAM"] if end_stream else [])
        return HeadersFrame(stream_id, self.encoder.encode(fields), flags=flags)

    def request(self, stream_id, path, method="GET", extra=(), end_stream=True):
        self.replies[stream_id] = Reply(stream_id)
        self.send(self.headers_frame(stream_id, path, method, extra, end_stream))
        return stream_id

    def _fill(self):
        data = _receive(self.sock)
        if not data:
            self.closed = True
            raise Closed("connection closed by the server after frames %s" % describe(self.frames[-20:]))
        self.buffer += data

    def _read_one(self):
        while len(self.buffer) < 9:
            self._fill()
        frame, length = Frame.parse_frame_header(memoryview(bytes(self.buffer[:9])))
        while len(self.buffer) < 9 + length:
            self._fill()
        frame.parse_body(memoryview(bytes(self.buffer[9 : 9 + length])))
        del self.buffer[: 9 + length]
        return frame

    def read_frame(self):
        """The next frame (a HEADERS frame with its CONTINUATIONs folded in, as ``fields``)."""
        frame = self._read_one()
        if isinstance(frame, HeadersFrame):
            block = frame.data
            end = "END_HEADERS" in frame.flags
            while not end:
                more = self._read_one()
                assert isinstance(more, ContinuationFrame), f"{more} inside a header block"
                block += more.data
                end = "END_HEADERS" in more.flags
            frame.fields = self.decoder.decode(block)
        self.frames.append(frame)
        self._note(frame)
        return frame

    def _note(self, frame):
        if isinstance(frame, SettingsFrame) and "ACK" not in frame.flags:
            if self.server_settings is None:
                self.server_settings = dict(frame.settings)
            if SETTINGS_HEADER_TABLE_SIZE in frame.settings:
                self.encoder.header_table_size = frame.settings[SETTINGS_HEADER_TABLE_SIZE]
            self.send(SettingsFrame(0, flags=["ACK"]))
        elif isinstance(frame, PingFrame) and "ACK" not in frame.flags and self.auto_pong:
            self.send(PingFrame(0, frame.opaque_data, flags=["ACK"]))
        elif isinstance(frame, GoAwayFrame):
            self.goaways.append(frame)
        reply = self.replies.get(frame.stream_id) if frame.stream_id else None
        if isinstance(frame, HeadersFrame) and reply is not None:
            if reply.status is None:
                reply.headers = list(frame.fields)
                reply.status = int(reply.header(":status"))
                if reply.status < 200:
                    reply.status, reply.headers = None, []
            else:
                reply.trailers = list(frame.fields)
        elif isinstance(frame, DataFrame):
            if reply is not None:
                reply.body += frame.data
                reply.data_frames.append(len(frame.data))
            if self.auto_window and frame.flow_controlled_length:
                updates = [WindowUpdateFrame(0, frame.flow_controlled_length)]
                if "END_STREAM" not in frame.flags:
                    updates.append(WindowUpdateFrame(frame.stream_id, frame.flow_controlled_length))
                self.send(*updates)
        elif isinstance(frame, RstStreamFrame) and reply is not None:
            reply.reset = frame.error_code
        if isinstance(frame, (HeadersFrame, DataFrame)) and "END_STREAM" in frame.flags and reply is not None:
            reply.ended = True

    def read_until(self, condition, timeout=TIMEOUT):
        """Reads frames until ``condition(frame)`` is true for one; that frame. Fails after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"timed out after {timeout} s; last frames: {describe(self.frames[-20:])}")
            self.sock.settimeout(remaining)
            try:
                frame = self.read_frame()
            except socket.timeout:
                raise AssertionError(f"timed out after {timeout} s; last frames: {describe(self.frames[-20:])}") from None
            if condition(frame):
                return frame

    def response(self, stream_id, timeout=TIMEOUT):
        reply = self.replies[stream_id]
        if not reply.done:
            self.read_until(lambda frame: reply.done, timeout)
        return reply

    def get(self, stream_id, path, extra=(), method="GET"):
        return self.response(self.request(stream_id, path, method, extra))

    def read_to_close(self, timeout=TIMEOUT):
        """Reads frames until the server closes the connection; fails if it is still open after ``timeout``."""
        deadline = time.monotonic() + timeout
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"still open after {timeout} s; last frames: {describe(self.frames[-20:])}")
                self.sock.settimeout(remaining)
                self.read_frame()
        except Closed:
            return self.frames
        except socket.timeout:
            raise AssertionError(f"still open after {timeout} s; last frames: {describe(self.frames[-20:])}") from None


def describe(frames):
    """A short text for frames in a failure message."""
    parts = []
    for frame in frames:
        text = f"{type(frame).__name__}(stream {frame.stream_id}"
        if isinstance(frame, (RstStreamFrame, GoAwayFrame)):
            text += f", error {frame.error_code}"
        if isinstance(frame, GoAwayFrame):
            text += f", last stream {frame.last_stream_id}, {frame.additional_data[:60]!r}"
        if isinstance(frame, HeadersFrame) and hasattr(frame, "fields"):
            text += f", {frame.fields[:4]}"
        if isinstance(frame, DataFrame):
            text += f", {len(frame.data)} bytes"
        if frame.flags:
            text += f", {sorted(frame.flags)}"
        parts.append(text + ")")
    return ", ".join(parts) or "none"


class FrameReader(threading.Thread):
    """Reads a FrameClient's frames on a thread of its own until the connection closes, a frame
    satisfies ``until`` or ``timeout`` passes, so a test can keep sending while the server answers.
    Over plain TCP only: one TLS connection must not be read and written by two threads at once."""

    def __init__(self, client, timeout=TIMEOUT, until=None):
        super().__init__(daemon=True)
        self.client = client
        self.timeout = timeout
        self.until = until
        self.outcome = None  # "closed", "matched", "timeout" or "error" once done
        self.error = None

    def run(self):
        deadline = time.monotonic() + self.timeout
        try:
            while time.monotonic() < deadline:
                self.client.sock.settimeout(max(0.05, deadline - time.monotonic()))
                try:
                    frame = self.client.read_frame()
                except socket.timeout:
                    break
                if self.until is not None and self.until(frame):
                    self.outcome = "matched"
                    return
            self.outcome = "timeout"
        except Closed:
            self.outcome = "closed"
        except Exception as error:  # surfaced by the test through .error
            self.error = error
            self.outcome = "error"


class RawDrain(threading.Thread):
    """Reads a connection's bytes on a thread of its own, without parsing them (a flood's millions
    of answers would take Python too long frame by frame), until ``pattern`` shows up (a frame the
    test sent last is answered), the server closes, or ``timeout`` passes."""

    def __init__(self, sock, pattern, timeout=60):
        super().__init__(daemon=True)
        self.sock = sock
        self.pattern = pattern
        self.timeout = timeout
        self.outcome = None  # "matched", "closed", "timeout" or "error" once done
        self.received = 0
        self.error = None

    def run(self):
        deadline = time.monotonic() + self.timeout
        tail = b""
        try:
            while time.monotonic() < deadline:
                self.sock.settimeout(max(0.05, deadline - time.monotonic()))
                try:
                    data = _receive(self.sock, 1 << 20)
                except socket.timeout:
                    break
                if not data:
                    self.outcome = "closed"
                    return
                self.received += len(data)
                if self.pattern in tail + data:
                    self.outcome = "matched"
                    return
                tail = (tail + data)[-len(self.pattern) :]
            self.outcome = "timeout"
        except Exception as error:  # surfaced by the test through .error
            self.error = error
            self.outcome = "error"


def send_while_possible(sock, data, stall=2.0, timeout=60.0):
    """Sends ``data`` without ever blocking for long: returns how many bytes went before the peer
    stopped taking them (no progress for ``stall`` seconds), closed, or all of it went."""
    sock.setblocking(False)
    sent = 0
    view = memoryview(data)
    deadline = time.monotonic() + timeout
    try:
        while sent < len(data) and time.monotonic() < deadline:
            _, writable, _ = select.select([], [sock], [], stall)
            if not writable:
                break
            try:
                sent += sock.send(view[sent : sent + 262144])
            except (BlockingIOError, ssl.SSLWantWriteError):
                continue
            except (BrokenPipeError, ConnectionResetError):
                break
    finally:
        sock.setblocking(True)
    return sent


# --- the server's processes -----------------------------------------------------------------------


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def workers_rss_kib(server):
    """The resident memory of all of the server's workers together, in KiB."""
    return sum(rss_kib(pid) for pid in worker_pids(server))


def require_tool(name):
    """The path of a command-line tool; a skip without it, a failure when TERN_REQUIRE_HTTP2_TOOLS=1
    (scripts/test.sh installs nghttp2-client and sets it)."""
    import shutil

    import pytest

    path = shutil.which(name)
    if path is None:
        if os.environ.get("TERN_REQUIRE_HTTP2_TOOLS") == "1":
            pytest.fail(f"{name} is not installed (apt-get install nghttp2-client curl)")
        pytest.skip(f"{name} is not installed")
    return path
