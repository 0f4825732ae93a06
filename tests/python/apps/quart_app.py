"""An unmodified Quart application: JSON in and out, a path parameter, a request body's digest, a
response streamed from an async generator (which waits for a second request before it ends, or
for the client to leave), a
WebSocket echo, and ``before_serving`` / ``after_serving`` hooks (ASGI lifespan)."""

import asyncio
import hashlib
import os
import sys

from quart import Quart, abort, request, websocket

app = Quart(__name__)

# How long a streamed response waits for its release before it ends anyway.
RELEASE_TIMEOUT = 20
# The streams waiting for their release, by the token the client chose (one event loop per worker).
RELEASES = {}


@app.before_serving
async def started():
    app.config["STARTED_BY"] = f"before_serving in {os.getpid()}"


@app.after_serving
async def stopped():
    print("quart_app: after_serving ran in", os.getpid(), file=sys.stderr, flush=True)


@app.get("/")
async def home():
    return {"framework": "quart", "started_by": app.config.get("STARTED_BY")}


@app.post("/echo")
async def echo():
    data = await request.get_json()
    return {"got": data, "path": request.path, "args": request.args.to_dict()}, 201


@app.post("/digest")
async def digest():
    body = await request.get_data()
    return {"length": len(body), "sha256": hashlib.sha256(body).hexdigest()}


@app.get("/items/<int:item_id>")
async def item(item_id):
    if item_id == 0:
        abort(404)
    return {"item_id": item_id, "double": item_id * 2}


@app.get("/stream/<token>")
async def stream(token):
    release = RELEASES.setdefault(token, asyncio.Event())

    async def parts():
        try:
            for index in range(3):
                yield f"part {index}\n".encode()
            try:
                await asyncio.wait_for(release.wait(), RELEASE_TIMEOUT)
            except asyncio.TimeoutError:
                yield b"timed out\n"
                return
            yield b"end\n"
        finally:
            RELEASES.pop(token, None)

    return parts(), 200, {"Content-Type": "text/plain; charset=utf-8"}


@app.get("/streams")
async def streams():
    """The tokens of the streams still waiting for their release."""
    return {"waiting": sorted(RELEASES)}


@app.get("/stream/<token>/release")
async def release_stream(token):
    event = RELEASES.get(token)
    if event is None:
        abort(404)
    event.set()
    return {"released": token}


@app.websocket("/ws")
async def ws():
    """Greets with what ``before_serving`` set, then echoes each message (text as text, bytes as
    bytes) until the client sends ``bye``, which closes with 1000."""
    await websocket.accept()
    await websocket.send(app.config.get("STARTED_BY") or "no startup")
    while True:
        message = await websocket.receive()
        if message == "bye":
            await websocket.close(1000, "bye to you")
            return
        if isinstance(message, bytes):
            await websocket.send(message[::-1])
        else:
            await websocket.send(f"echo: {message}")
