"""Small Flask, Django (WSGI and ASGI) and Starlette applications for end-to-end web tests.

``FRAMEWORK_APPS`` maps module file names to their source (for ``write_tree``).  Each
application has the same routes:

* ``/text`` (GET and HEAD) a short text;  ``/no-content`` a 204;  ``/stream`` a streamed body;
* ``/custom`` status 299 with the reason ``Custom Reason`` (not Starlette: it has no reason);
* ``/not-modified`` a 304 (Django only);
* ``/echo`` (GET only) JSON of what the framework saw: method, host, path and query.
"""

from __future__ import annotations

__all__ = ["FRAMEWORK_APPS", "FRAMEWORK_SERVERS"]

#: ``dropins web`` arguments serving each application.
FRAMEWORK_SERVERS = {
    "flask": ["--wsgi", "flaskapp:app"],
    "django-wsgi": ["--wsgi", "djangoapp:wsgi"],
    "django-asgi": ["--asgi", "djangoapp:asgi"],
    "starlette": ["--asgi", "starletteapp:app"],
}

FRAMEWORK_APPS = {
    "flaskapp.py": """
        from flask import Flask, Response, request

        app = Flask(__name__)


        @app.route("/text")
        def text():
            return "hello flask"


        @app.route("/no-content")
        def no_content():
            return "", 204


        @app.route("/custom")
        def custom():
            return "custom", "299 Custom Reason"


        @app.route("/stream")
        def stream():
            return Response(iter(["one ", "two"]), mimetype="text/plain")


        @app.route("/echo")
        def echo():
            return {"method": request.method, "host": request.host, "path": request.path,
                    "query": request.query_string.decode()}
    """,
    "djangoapp.py": """
        import django
        from django.conf import settings

        settings.configure(DEBUG=False, SECRET_KEY="test", ROOT_URLCONF=__name__,
                           ALLOWED_HOSTS=["*"], MIDDLEWARE=[])
        django.setup()

        from django.core.asgi import get_asgi_application
        from django.core.wsgi import get_wsgi_application
        from django.http import (HttpResponse, HttpResponseNotModified, JsonResponse,
                                 StreamingHttpResponse)
        from django.urls import path
        from django.views.decorators.http import require_GET


        def text(request):
            return HttpResponse("hello django", content_type="text/plain")


        def no_content(request):
            return HttpResponse(status=204)


        def not_modified(request):
            return HttpResponseNotModified()


        def custom(request):
            return HttpResponse("custom", status=299, reason="Custom Reason")


        def stream(request):
            return StreamingHttpResponse(iter([b"one ", b"two"]))


        @require_GET
        def echo(request):
            return JsonResponse({"method": request.method, "host": request.get_host(),
                                 "path": request.path,
                                 "query": request.META.get("QUERY_STRING", "")})


        urlpatterns = [path("text", text), path("no-content", no_content),
                       path("not-modified", not_modified), path("custom", custom),
                       path("stream", stream), path("echo", echo)]
        wsgi = get_wsgi_application()
        asgi = get_asgi_application()
    """,
    "starletteapp.py": """
        from starlette.applications import Starlette
        from starlette.responses import (JSONResponse, PlainTextResponse, Response,
                                         StreamingResponse)
        from starlette.routing import Route


        async def text(request):
            return PlainTextResponse("hello starlette")


        async def no_content(request):
            return Response(status_code=204)


        async def stream(request):
            async def parts():
                yield b"one "
                yield b"two"
            return StreamingResponse(parts(), media_type="text/plain")


        async def echo(request):
            return JSONResponse({"method": request.method, "host": request.headers["host"],
                                 "path": request.url.path, "query": request.url.query})


        app = Starlette(routes=[Route("/text", text, methods=["GET", "HEAD"]),
                                Route("/no-content", no_content),
                                Route("/stream", stream, methods=["GET", "HEAD"]),
                                Route("/echo", echo, methods=["GET"])])
    """,
}
