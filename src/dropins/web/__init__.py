"""The ``dropins web`` server: static files, WSGI and ASGI applications over HTTP/1.1.

The command is registered by ``dropins.plugins.web`` and implemented by ``dropins.web.maker``.
Each module here has one job:

* ``server``    - the protocol factory: limits, live connections, deadlines, graceful stop;
* ``protocol``  - one HTTP/1.1 connection, driven by httptools' parser callbacks;
* ``exchange``  - one request and its response, the object every handler works with;
* ``static``    - files from a folder (types, validators, ranges, sendfile);
* ``paths``     - turning a request path into a file path that cannot leave the served root;
* ``listing``   - the HTML directory index;
* ``precompressed`` - ``file.br``/``file.gz`` twins chosen by Accept-Encoding;
* ``cgi``       - ``--cgi``: RFC 3875 scripts as asyncio subprocesses;
* ``userdir``, ``relay``, ``socketaccess`` - ``--userdir``: ``/~USER/`` sites and the relay
  to personal servers on unix sockets; ``personal`` - ``--personal``, the user's side;
* ``wsgi``, ``threads`` - PEP 3333 applications, run in a pool of daemon threads;
* ``asgi``, ``lifespan`` - ASGI 3 applications and their startup/shutdown;
* ``auth``      - HTTP Basic authentication through a ``dropins.cred`` portal;
* ``accesslog`` - the combined log format;
* ``loading``   - importing the application named by ``--wsgi``/``--asgi``;
* ``maker``     - the command's options and the service tree.

Nothing here is imported by ``import dropins``: the HTTP parser is loaded only when a server
is built, so ``dropins --help`` does not pay for it.
"""
