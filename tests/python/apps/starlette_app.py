"""An unmodified Starlette application: routes, a JSON body, a streamed response, server-sent
events, static files from the app (StaticFiles), a lifespan that puts a value in the state, a
background task, and a WebSocket endpoint class."""

import asyncio
import contextlib
import os

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.endpoints import WebSocketEndpoint
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, StreamingResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles

DONE = []


@contextlib.asynccontextmanager
async def lifespan(app):
    yield {"greeting": "hello from lifespan"}


async def home(request):
    return PlainTextResponse(request.state.greeting)


async def echo(request):
    data = await request.json()
    return JSONResponse({"got": data, "path": request.url.path, "root_path": request.scope["root_path"]})


async def stream(request):
    async def parts():
        for index in range(3):
            yield f"part {index}\n"

    return StreamingResponse(parts(), media_type="text/plain")


async def events(request):
    """Server-sent events: three events, a moment apart, then the stream ends."""

    async def feed():
        for index in range(3):
            yield f"id: {index}\nevent: tick\ndata: tick {index}\n\n"
            await asyncio.sleep(0.01)

    return StreamingResponse(feed(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


async def later(request):
    return PlainTextResponse("later", background=BackgroundTask(DONE.append, "background ran"))


async def done(request):
    return JSONResponse(DONE)


async def source(request):
    return FileResponse(__file__)


class Shout(WebSocketEndpoint):
    """Greets with the lifespan's value, then answers each text message in upper case."""

    encoding = "text"

    async def on_connect(self, websocket):
        await websocket.accept()
        await websocket.send_text(websocket.state.greeting)

    async def on_receive(self, websocket, data):
        await websocket.send_text(data.upper())


app = Starlette(
    routes=[
        Route("/", home),
        Route("/echo", echo, methods=["POST"]),
        Route("/stream", stream),
        Route("/later", later),
        Route("/done", done),
        Route("/source", source),
        Route("/events", events),
        Mount("/files", StaticFiles(directory=os.path.dirname(__file__)), name="files"),
        WebSocketRoute("/shout", Shout),
    ],
    lifespan=lifespan,
)
