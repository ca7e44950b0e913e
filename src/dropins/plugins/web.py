"""The ``dropins web`` command (implemented in ``dropins.web.maker``, imported only when used)."""

from dropins.service.maker import ServiceMaker

web = ServiceMaker("web", "dropins.web.maker",
                   "Serve static files, a WSGI or an ASGI application over HTTP")
