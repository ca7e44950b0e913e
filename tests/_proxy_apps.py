"""The backend the reverse-proxy tests forward to: one ASGI application, served by a real
``dropins web --asgi`` (or uvicorn) in its own process, written into a temporary project.

Its endpoints report what arrived (``/info``), stream a large body in and out while a test
watches its progress directly on the backend (``/upload``, ``/download``, ``/progress``,
``/release``), answer late (``/slow``), and echo WebSocket messages (``/ws``).
"""

BACKEND_APP = r'''
import asyncio
import contextlib
import hashlib
import json

RECEIVED = {"upload": 0, "download": 0}
RELEASE = asyncio.Event()


async def reply(send, body, status=200, headers=()):
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), *headers]})
    await send({"type": "http.response.body", "body": json.dumps(body).encode()})


async def read_body(receive, counter=None):
    digest, size = hashlib.sha256(), 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        digest.update(chunk)
        size += len(chunk)
        if counter:
            RECEIVED[counter] = size
        if not message.get("more_body"):
            return size, digest.hexdigest()


async def websocket(scope, receive, send):
    await receive()  # websocket.connect
    offered = scope.get("subprotocols") or []
    await send({"type": "websocket.accept", "subprotocol": offered[0] if offered else None})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") == "close":
            await send({"type": "websocket.close", "code": 4001, "reason": "asked"})
            return
        await send({"type": "websocket.send", "text": message.get("text"),
                    "bytes": message.get("bytes")})


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    if scope["type"] == "websocket":
        return await websocket(scope, receive, send)
    path = scope["path"]
    if path.endswith("/upload"):
        RECEIVED["upload"] = 0
        size, digest = await read_body(receive, "upload")
        return await reply(send, {"size": size, "sha256": digest})
    if path.endswith("/progress"):
        return await reply(send, RECEIVED)
    if path.endswith("/release"):
        RELEASE.set()
        return await reply(send, "released")
    if path.endswith("/download"):
        RELEASE.clear()
        size = int(scope["query_string"].decode().partition("=")[2])
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/octet-stream")]})
        block, sent = b"x" * 65536, 0
        while sent < size:
            if sent >= size // 4 and not RELEASE.is_set():
                await asyncio.wait_for(RELEASE.wait(), 20)  # the test saw the first quarter
            await send({"type": "http.response.body", "body": block, "more_body": True})
            sent += len(block)
            RECEIVED["download"] = sent
        return await send({"type": "http.response.body", "body": b""})
    if path.endswith("/slow"):
        RECEIVED["slow_started"] = RECEIVED.get("slow_started", 0) + 1
        await receive()  # the (empty) body; then wait for the proxy to give up and leave
        with contextlib.suppress(TimeoutError):
            if (await asyncio.wait_for(receive(), 30))["type"] == "http.disconnect":
                RECEIVED["slow_left"] = RECEIVED.get("slow_left", 0) + 1
                return
        return await reply(send, "late")
    size, digest = await read_body(receive)
    await reply(send, {
        "path": path, "raw_path": scope["raw_path"].decode(),
        "query": scope["query_string"].decode(), "method": scope["method"],
        "client": list(scope["client"] or ("unix", 0)),
        "headers": [[k.decode(), v.decode()] for k, v in scope["headers"]],
        "size": size, "sha256": digest})
'''

#: The application served beside the proxies in the routing tests (WSGI).
FRONT_APP = r'''
def app(environ, start_response):
    body = ("front " + environ["PATH_INFO"]).encode()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body]
'''
