"""The Python console into a running application, over SSH, telnet and unix sockets.

``dropins console`` (``maker``) builds a ``ConsoleService`` (``service``) whose transports
(``ssh``, ``telnet``, ``peercred`` for unix sockets) log a user in and hand each connection to
a ``ConsoleSession`` (``session``), which compiles and runs statements on the application's
event loop (``evaluate``) in a namespace of its own (``namespace``), with what they print sent
to that session only (``routing``).  Nothing here is imported by ``dropins --help``.
"""
