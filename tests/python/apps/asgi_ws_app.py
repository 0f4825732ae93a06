"""A plain ASGI 3.0 application (no framework) with WebSocket routes for the end-to-end tests:
echo, the scope, a chosen subprotocol, refusing before the accept (close, the denial response, an
exception), closing from the server, and the client going away. What the handlers saw is kept in
``RECORDS`` and read back over HTTP at ``/last?KEY``."""

import json
import os
import sys

# What the WebSocket handlers saw, by the key in their query string.
RECORDS = {}


def plain(value):
    """A scope value as JSON can hold it (bytes as latin-1 text)."""
    if isinstance(value, bytes):
        return value.decode("latin-1")
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    return value


def route(scope):
    """The path below the root path, and the query string as text (the key of a record)."""
    path, root = scope["path"], scope["root_path"]
    if root and path.startswith(root):
        path = path[len(root):]
    return path, scope["query_string"].decode("latin-1")


async def lifespan(scope, receive, send):
    message = await receive()
    assert message["type"] == "lifespan.startup"
    scope["state"]["started_by"] = "lifespan"
    await send({"type": "lifespan.startup.complete"})
    message = await receive()
    assert message["type"] == "lifespan.shutdown"
    print("asgi_ws_app: lifespan shutdown in", os.getpid(), file=sys.stderr, flush=True)
    await send({"type": "lifespan.shutdown.complete"})


async def http(scope, receive, send):
    path, key = route(scope)
    if path == "/last":
        status, value = 200, RECORDS.get(key)
    else:
        status, value = 404, {"error": "not found"}
    body = json.dumps(value).encode()
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


async def connect(receive):
    message = await receive()
    assert message == {"type": "websocket.connect"}, message
    return message


async def echo(scope, receive, send, key):
    """Accepts, then sends every message back as it came (text as text, bytes as bytes) until the
    client leaves; records the keys of each message received and the disconnect."""
    await connect(receive)
    await send({"type": "websocket.accept"})
    shapes = RECORDS.setdefault(key, {"received": [], "disconnect": None})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            shapes["disconnect"] = message
            return
        assert message["type"] == "websocket.receive", message
        shapes["received"].append(sorted(message))
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"]})


async def show_scope(scope, receive, send):
    """Accepts, then sends the scope as JSON text (bytes as latin-1 text) with the first message
    receive() returned."""
    first = await connect(receive)
    await send({"type": "websocket.accept"})
    shown = {key: plain(value) for key, value in scope.items() if key != "state"}
    shown["state"] = dict(scope.get("state", {}))
    shown["header_types"] = sorted({type(pair).__name__ for pair in scope["headers"]})
    shown["first_message"] = first
    await send({"type": "websocket.send", "text": json.dumps(shown)})
    message = await receive()
    assert message["type"] == "websocket.disconnect", message


async def subprotocol(scope, receive, send):
    """Accepts with the client's first offered subprotocol and a header of its own; then sends the
    offered list as JSON."""
    await connect(receive)
    offered = scope["subprotocols"]
    await send(
        {
            "type": "websocket.accept",
            "subprotocol": offered[0] if offered else None,
            "headers": [(b"x-tern-test", b"yes")],
        }
    )
    await send({"type": "websocket.send", "text": json.dumps(offered)})
    message = await receive()
    assert message["type"] == "websocket.disconnect", message


async def deny(scope, receive, send):
    """Refuses with the denial response extension: 401, a header, and a body in two pieces."""
    await connect(receive)
    assert "websocket.http.response" in scope["extensions"]
    await send(
        {
            "type": "websocket.http.response.start",
            "status": 401,
            "headers": [(b"content-type", b"text/plain"), (b"x-denied-by", b"asgi_ws_app")],
        }
    )
    await send({"type": "websocket.http.response.body", "body": b"no", "more_body": True})
    await send({"type": "websocket.http.response.body", "body": b"pe"})


async def server_close(scope, receive, send, key):
    """Accepts, sends "bye", closes with 4001 "done", then records what receive() returns."""
    await connect(receive)
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.send", "text": "bye"})
    await send({"type": "websocket.close", "code": 4001, "reason": "done"})
    RECORDS[key] = {"after_close": await receive()}


async def close_default(scope, receive, send):
    """Accepts, then closes without a code (the default is 1000)."""
    await connect(receive)
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.close"})


async def flood(scope, receive, send, key):
    """Accepts, then sends 1,000 binary messages of 64 KiB as fast as `send` lets it, counting
    them in the record: a client that does not read holds the app back (backpressure)."""
    await connect(receive)
    await send({"type": "websocket.accept"})
    record = RECORDS.setdefault(key, {"sent": 0})
    piece = b"x" * 65536
    for _ in range(1000):
        await send({"type": "websocket.send", "bytes": piece})
        record["sent"] += 1
    await send({"type": "websocket.close"})


async def disconnect_record(scope, receive, send, key):
    """Accepts, reads until the client leaves, records the disconnect message, then tries to send
    and records what send() raised."""
    await connect(receive)
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            break
    record = {"disconnect": message, "send_error": None, "send_error_is_oserror": None}
    try:
        await send({"type": "websocket.send", "text": "too late"})
    except Exception as error:  # noqa: BLE001 - the test reads which exception it was
        record["send_error"] = type(error).__name__
        record["send_error_is_oserror"] = isinstance(error, OSError)
    RECORDS[key] = record


async def websocket(scope, receive, send):
    path, key = route(scope)
    if path == "/echo":
        return await echo(scope, receive, send, key)
    if path.startswith("/scope"):
        return await show_scope(scope, receive, send)
    if path == "/subprotocol":
        return await subprotocol(scope, receive, send)
    if path == "/close-before-accept":
        await connect(receive)
        return await send({"type": "websocket.close"})
    if path == "/deny":
        return await deny(scope, receive, send)
    if path == "/raise-before-accept":
        await connect(receive)
        raise RuntimeError("asgi_ws_app fails before the accept")
    if path == "/raise-after-accept":
        await connect(receive)
        await send({"type": "websocket.accept"})
        await receive()
        raise RuntimeError("asgi_ws_app fails after the accept")
    if path == "/server-close":
        return await server_close(scope, receive, send, key)
    if path == "/close-default":
        return await close_default(scope, receive, send)
    if path == "/flood":
        return await flood(scope, receive, send, key)
    if path == "/disconnect-record":
        return await disconnect_record(scope, receive, send, key)
    await connect(receive)
    await send({"type": "websocket.close", "code": 4004, "reason": "no such route"})


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        return await lifespan(scope, receive, send)
    if scope["type"] == "http":
        return await http(scope, receive, send)
    assert scope["type"] == "websocket", scope["type"]
    return await websocket(scope, receive, send)
