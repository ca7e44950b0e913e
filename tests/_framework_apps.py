"""Source of small real Django, Starlette and Flask applications for the end-to-end tests.

Each is written into a temporary folder as a module and served by a real ``dropins web``
process.  They record what happened to them as marker files in ``$APP_MARKERS``, since a
test can only watch the server from outside.
"""

from __future__ import annotations

MARKERS = """
    import os

    MARKERS = os.environ["APP_MARKERS"]


    def mark(name, text="1"):
        with open(os.path.join(MARKERS, name), "w") as marker:
            marker.write(text)
"""

DJANGO = MARKERS + """
    import asyncio
    import itertools

    from django.conf import settings

    settings.configure(DEBUG=False, ALLOWED_HOSTS=["*"], ROOT_URLCONF=__name__,
                       SECRET_KEY="only-for-tests", MIDDLEWARE=[], INSTALLED_APPS=[],
                       DATA_UPLOAD_MAX_MEMORY_SIZE=None)

    from django.core.asgi import get_asgi_application
    from django.core.wsgi import get_wsgi_application
    from django.http import HttpResponse
    from django.urls import path

    _polls = itertools.count()


    def hello(request):
        return HttpResponse(f"{request.method} hello {len(request.body)}")


    async def poll(request):
        # A long-poll: answers only after a minute, unless its client leaves first.
        number = next(_polls)
        mark(f"poll-started-{number}")
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            mark(f"poll-cancelled-{number}")
            raise
        return HttpResponse("late")


    urlpatterns = [path("", hello), path("poll", poll)]
    asgi = get_asgi_application()
    wsgi = get_wsgi_application()
"""

STARLETTE = MARKERS + """
    import asyncio
    import itertools

    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse, StreamingResponse
    from starlette.routing import Route

    _streams = itertools.count()


    async def ticks():
        number = next(_streams)
        mark(f"stream-started-{number}")
        try:
            while True:
                yield b"tick\\n" * 1000
                await asyncio.sleep(0.01)
        finally:
            mark(f"stream-stopped-{number}")


    async def stream(request):
        return StreamingResponse(ticks(), media_type="text/plain")


    async def watch(request):
        # The request.is_disconnected() loop of a long-poll or an event source.
        mark("watch-started")
        while not await request.is_disconnected():
            await asyncio.sleep(0.02)
        mark("watch-disconnected")
        return PlainTextResponse("gone")


    async def upload(request):
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
        return PlainTextResponse(f"received {size}")


    app = Starlette(routes=[Route("/stream", stream), Route("/watch", watch),
                            Route("/upload", upload, methods=["POST"])])
"""

FLASK = MARKERS + """
    import time

    from flask import Flask, Response, request

    app = Flask(__name__)


    @app.route("/stream")
    def stream():
        def blocks():
            try:
                yield b"first block\\n"
                # The test closes its connection and then says "go".
                while not os.path.exists(os.path.join(MARKERS, "go")):
                    time.sleep(0.02)
                yield b"second block\\n"
                mark("resumed-after-second-block")
                for _ in range(500):
                    yield b"more\\n"
                    time.sleep(0.01)
                mark("stream-ran-to-the-end")
            finally:
                mark("stream-closed")
        return Response(blocks(), mimetype="text/plain")


    @app.route("/upload", methods=["POST"])
    def upload():
        size = 0
        while chunk := request.stream.read(1 << 20):
            size += len(chunk)
        return f"received {size}"
"""
