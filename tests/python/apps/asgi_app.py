"""A plain ASGI 3.0 application (no framework) for the end-to-end tests: every HTTP event and the
lifespan protocol, with what happened kept in ``EVENTS`` for the tests to ask about."""

import asyncio
import json
import os
import sys

# What the app saw, by request: read back through /events.
EVENTS = {}


def resident_peak_kib():
    """The worker's peak resident memory (VmHWM), in KiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


async def send_json(send, value, status=200):
    body = json.dumps(value).encode()
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


async def read_body(receive, pause=0.0):
    """The whole request body, and the number of http.request messages it came in."""
    parts, messages = [], 0
    while True:
        message = await receive()
        assert message["type"] == "http.request", message
        messages += 1
        parts.append(message["body"])
        if not message.get("more_body", False):
            return b"".join(parts), messages
        if pause:
            await asyncio.sleep(pause)


async def count_body(receive, pause=0.0):
    """The request body's length and the number of http.request messages it came in; keeps none of it."""
    length, messages = 0, 0
    while True:
        message = await receive()
        assert message["type"] == "http.request", message
        messages += 1
        length += len(message["body"])
        if not message.get("more_body", False):
            return length, messages
        if pause:
            await asyncio.sleep(pause)


def plain(value):
    """A scope value as JSON can hold it (bytes as latin-1 text)."""
    if isinstance(value, bytes):
        return {"bytes": value.decode("latin-1")}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    return value


async def lifespan(scope, receive, send):
    message = await receive()
    assert message["type"] == "lifespan.startup"
    scope["state"]["started_by"] = "lifespan"
    scope["state"]["pid"] = os.getpid()
    await send({"type": "lifespan.startup.complete"})
    message = await receive()
    assert message["type"] == "lifespan.shutdown"
    print("asgi_app: lifespan shutdown in", os.getpid(), file=sys.stderr, flush=True)
    await send({"type": "lifespan.shutdown.complete"})


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        return await lifespan(scope, receive, send)
    assert scope["type"] == "http"
    path, root = scope["path"], scope["root_path"]
    if root and path.startswith(root):
        path = path[len(root):]
    if path.startswith("/scope"):
        await read_body(receive)
        shown = {key: plain(value) for key, value in scope.items() if key != "state"}
        shown["state"] = {key: value for key, value in scope["state"].items()}
        shown["header_types"] = sorted({type(pair).__name__ for pair in scope["headers"]})
        scope["state"]["changed_by_request"] = True
        return await send_json(send, shown)
    if path == "/echo":
        body, messages = await read_body(receive)
        return await send_json(send, {"length": len(body), "messages": messages, "text": body[:64].decode("latin-1")})
    if path == "/slow-read":
        before = resident_peak_kib()
        length, messages = await count_body(receive, pause=0.002)
        return await send_json(send, {"length": length, "messages": messages, "peak_growth_kib": resident_peak_kib() - before})
    if path == "/stream":
        count = int(scope["query_string"].decode() or "3")
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        for index in range(count):
            await send({"type": "http.response.body", "body": b"part %d\n" % index, "more_body": True})
            await asyncio.sleep(0)
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return
    if path == "/stream-until-gone":
        key = scope["query_string"].decode()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        sent = 0
        try:
            while sent < 100_000:
                await send({"type": "http.response.body", "body": b"x" * 16384, "more_body": True})
                sent += 1
                await asyncio.sleep(0.001)
            EVENTS[key] = "never noticed"
        except OSError as error:
            EVENTS[key] = "send raised " + type(error).__name__ + " " + str(isinstance(error, OSError))
        return
    if path == "/wait-disconnect":
        key = scope["query_string"].decode()
        await read_body(receive)
        message = await receive()
        EVENTS[key] = message["type"]
        return
    if path == "/stop-loop":
        # A misbehaving app: it stops the loop tern runs it on.
        asyncio.get_running_loop().stop()
        return await send_json(send, {"stopped": True})
    if path == "/events":
        key = scope["query_string"].decode()
        return await send_json(send, {"event": EVENTS.get(key)})
    if path == "/no-response":
        return
    if path == "/bad-message":
        # What the app sends instead of a response start; send() must refuse it with a clear error.
        bad = {
            b"no-type": {"status": 200},
            b"unknown-type": {"type": "http.response.begin", "status": 200},
            b"not-a-dict": [("type", "http.response.start")],
        }[scope["query_string"]]
        await send(bad)
        return
    if path == "/raise":
        raise RuntimeError("asgi_app fails before the response")
    if path == "/raise-after-start":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        raise RuntimeError("asgi_app fails during the response")
    if path == "/pathsend":
        assert "http.response.pathsend" in scope["extensions"]
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/x-python")]})
        await send({"type": "http.response.pathsend", "path": os.path.abspath(__file__)})
        return
    if path == "/loop":
        return await send_json(send, {"loop": type(asyncio.get_running_loop()).__module__})
    await send_json(send, {"error": "not found"}, status=404)


class CallableApp:
    """An object whose ``__call__`` is a coroutine function: detected as ASGI too."""

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return
        await send_json(send, {"kind": "callable object"})


callable_app = CallableApp()


async def failing_startup(scope, receive, send):
    """Reports a failed startup, as frameworks do when a startup handler raises."""
    message = await receive()
    if message["type"] == "lifespan.startup":
        await send({"type": "lifespan.startup.failed", "message": "asgi_app: the database is not there"})


async def raising_startup(scope, receive, send):
    """Raises after reading lifespan.startup: a startup that fails with a traceback."""
    await receive()
    raise ConnectionError("asgi_app: startup could not connect")


async def http_only(scope, receive, send):
    """Refuses the lifespan scope at once, as apps without lifespan support do."""
    assert scope["type"] == "http", "http only"
    await send_json(send, {"kind": "http only"})
