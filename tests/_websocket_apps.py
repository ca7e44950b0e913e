"""Source of the FastAPI application (with a Starlette application mounted in it) that the
WebSocket tests serve with ``dropins web`` and with uvicorn, alike.

What the endpoints saw is kept in ``EVENTS`` and read over HTTP (``GET /events/NAME``), since
a test can only watch the server from outside.
"""

from __future__ import annotations

WEBSOCKET_APPS = """
    import asyncio

    from fastapi import FastAPI, WebSocket, WebSocketDisconnect
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import WebSocketRoute

    EVENTS = {}


    def record(name, event):
        EVENTS.setdefault(name, []).append(event)


    async def echo(websocket):
        # Plain Starlette: raw receive() messages, text and bytes echoed as they came.
        await websocket.accept()
        name = websocket.query_params.get("id", "echo")
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                record(name, {"code": message["code"]})
                return
            if message.get("text") is not None:
                await websocket.send_text(message["text"])
            else:
                await websocket.send_bytes(message["bytes"])


    async def deny(websocket):
        await websocket.send_denial_response(
            PlainTextResponse("no entry", status_code=401, headers={"x-why": "token"}))


    async def refuse(websocket):
        await websocket.close(code=1008)


    starlette_app = Starlette(routes=[WebSocketRoute("/echo", echo),
                                      WebSocketRoute("/deny", deny),
                                      WebSocketRoute("/refuse", refuse)])

    app = FastAPI()
    app.mount("/st", starlette_app)
    members = set()


    @app.get("/events/{name}")
    async def events(name: str):
        return EVENTS.get(name, [])


    @app.websocket("/chat")
    async def chat(websocket: WebSocket):
        offered = websocket.scope["subprotocols"]
        await websocket.accept(subprotocol="chat" if "chat" in offered else None,
                               headers=[(b"x-room", b"main")])
        scope = websocket.scope
        await websocket.send_json({"scheme": scope["scheme"], "path": scope["path"],
                                   "root_path": scope["root_path"], "offered": offered,
                                   "client": scope["client"][0],
                                   "extensions": sorted(scope.get("extensions") or {})})
        try:
            while True:
                await websocket.send_text("chat: " + await websocket.receive_text())
        except WebSocketDisconnect:
            pass


    @app.websocket("/broadcast")
    async def broadcast(websocket: WebSocket):
        await websocket.accept()
        members.add(websocket)
        await websocket.send_text(f"joined {len(members)}")
        try:
            while True:
                text = await websocket.receive_text()
                for member in list(members):
                    await member.send_text(text)
        except WebSocketDisconnect:
            pass
        finally:
            members.discard(websocket)


    @app.websocket("/watch/{name}")
    async def watch(websocket: WebSocket, name: str):
        await websocket.accept()
        record(name, "accepted")
        try:
            while True:
                await websocket.send_text(await websocket.receive_text())
        except WebSocketDisconnect as gone:
            record(name, {"code": gone.code, "reason": gone.reason})


    @app.websocket("/slow")
    async def slow(websocket: WebSocket):
        # Takes its time before reading: the client's messages pile up meanwhile.
        await websocket.accept()
        await asyncio.sleep(2)
        total = 0
        for _ in range(int(websocket.query_params["count"])):
            total += len(await websocket.receive_bytes())
        await websocket.send_text(str(total))


    @app.websocket("/fail")
    async def fail(websocket: WebSocket):
        await websocket.accept()
        raise RuntimeError("the application broke")


    @app.websocket("/bye")
    async def bye(websocket: WebSocket):
        await websocket.accept()
        await websocket.close(code=4002, reason="done")
"""
