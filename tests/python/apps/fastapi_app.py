"""An unmodified FastAPI application: path and query parameters, a validated JSON body, a
streamed response, a background task, a WebSocket endpoint speaking JSON, and a startup that
fails when asked to (through an environment variable)."""

import contextlib
import os

from fastapi import BackgroundTasks, FastAPI, WebSocket
from fastapi.responses import StreamingResponse
from pydantic import BaseModel


@contextlib.asynccontextmanager
async def lifespan(app):
    if os.environ.get("FASTAPI_APP_FAIL_STARTUP"):
        raise RuntimeError("fastapi_app: startup refused")
    app.state.items = {}
    yield


app = FastAPI(lifespan=lifespan)


class Item(BaseModel):
    name: str
    price: float


@app.get("/items/{item_id}")
async def read_item(item_id: int, q: str | None = None):
    return {"item_id": item_id, "q": q}


@app.post("/items/")
async def create_item(item: Item):
    return {"name": item.name, "price_with_tax": round(item.price * 1.2, 2)}


@app.get("/countdown/{start}")
async def countdown(start: int):
    async def numbers():
        for number in range(start, 0, -1):
            yield f"{number}\n"

    return StreamingResponse(numbers(), media_type="text/plain")


DONE = []


@app.post("/notify/{who}")
async def notify(who: str, background_tasks: BackgroundTasks):
    background_tasks.add_task(DONE.append, f"notified {who}")
    return {"queued": who}


@app.get("/notified")
async def notified():
    return DONE


@app.websocket("/ws")
async def price_with_tax(websocket: WebSocket):
    """Reads one item as JSON, answers it with the price with tax, and closes normally."""
    await websocket.accept()
    item = Item(**await websocket.receive_json())
    await websocket.send_json({"name": item.name, "price_with_tax": round(item.price * 1.2, 2)})
    await websocket.close(code=1000)
