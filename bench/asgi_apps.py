"""The ASGI applications of the benchmark: the same code for tern and its ASGI peers (Granian,
uvicorn, Hypercorn). Plain ASGI except `fastapi_app`, a FastAPI endpoint with a pydantic model."""

import asyncio

from fastapi import FastAPI
from pydantic import BaseModel

HELLO = b"Hello, World!"  # 13 bytes
HELLO_HEADERS = [(b"content-type", b"text/plain"), (b"content-length", b"13")]


async def _refuse_lifespan(receive, send):
    """Lifespan the short way: startup and shutdown acknowledged, nothing to set up."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def hello(scope, receive, send):
    """13-byte body with Content-Length."""
    if scope["type"] != "http":
        return await _refuse_lifespan(receive, send)
    await send({"type": "http.response.start", "status": 200, "headers": HELLO_HEADERS})
    await send({"type": "http.response.body", "body": HELLO})


async def slow(scope, receive, send):
    """Waits 10 ms without blocking the loop (a database call, say), then answers like hello."""
    if scope["type"] != "http":
        return await _refuse_lifespan(receive, send)
    await asyncio.sleep(0.01)
    await send({"type": "http.response.start", "status": 200, "headers": HELLO_HEADERS})
    await send({"type": "http.response.body", "body": HELLO})


async def ws_echo(scope, receive, send):
    """Accepts every WebSocket and sends each message back as it came."""
    if scope["type"] == "lifespan":
        return await _refuse_lifespan(receive, send)
    if scope["type"] != "websocket":
        await send({"type": "http.response.start", "status": 404, "headers": [(b"content-length", b"0")]})
        return await send({"type": "http.response.body", "body": b""})
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] != "websocket.receive":
            return
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"]})


class Item(BaseModel):
    id: int
    name: str
    price: float
    tags: list[str]


fastapi_app = FastAPI()


@fastapi_app.get("/items/{item_id}", response_model=Item)
async def read_item(item_id: int, q: str = "") -> Item:
    """A JSON endpoint as FastAPI's tutorial writes it: a path and a query parameter validated, a
    pydantic model serialized."""
    return Item(id=item_id, name=f"item {item_id}{q}", price=9.5, tags=["bench", "json"])
