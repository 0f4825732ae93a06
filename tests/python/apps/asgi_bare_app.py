"""An ASGI application that imports nothing (no asyncio, no threading): the first import of
``threading`` then happens inside tern, which must not make uvloop take the loop's thread for the
main one."""


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"bare"})
