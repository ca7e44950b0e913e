"""The contracts of the service layer: services, service makers and endpoint parsers."""

from __future__ import annotations

from zope.interface import Attribute, Interface, taggedValue


class IService(Interface):
    """Something with a start/stop lifecycle, arranged in a tree under an Application.

    Lifecycle contract: ``privileged_start()`` runs first, synchronously, while the process may
    still hold privileges (bind low ports, open protected files); then ``await start()``; later
    ``await stop()``.  ``stop()`` is only awaited for a service whose ``start()`` succeeded, and it
    must be safe to call once per start.  ``running`` is true between a successful start and stop.
    """

    name = Attribute("A name, unique among the service's siblings, or None.")
    parent = Attribute("The parent MultiService, or None.")
    running = Attribute("True between a successful start() and stop().")

    def set_parent(parent):
        """Attach this service to ``parent`` (a MultiService), detaching it from any other."""

    def privileged_start():  # type: ignore[misc]
        """Do the work that needs privileges, before the runner drops them; synchronous."""

    async def start():  # type: ignore[misc]
        """Start the service; raise to report that it could not start."""

    async def stop():  # type: ignore[misc]
        """Stop the service, releasing what start() acquired."""


class IServiceMaker(Interface):
    """A plugin that the ``dropins`` runner exposes as a command: ``dropins NAME [options]``."""

    name = Attribute("The command name, e.g. 'web'.")
    description = Attribute("One line, shown by 'dropins --help'.")
    options = Attribute("An Options subclass describing the command's options.")

    def make_service(options):
        """Build and return the IService to run, from the parsed options mapping."""

    # twistd's names for the same things: discovery lists a plugin that still has them as
    # broken, saying what to rename (see dropins.plugin.scan).
    taggedValue("dropins.renamed", {"tapname": "name", "makeService": "make_service"})


class IServerEndpointParser(Interface):
    """A plugin adding a kind of server endpoint string, e.g. ``quic:4433:...``."""

    prefix = Attribute("The endpoint kind, the text before the first colon, e.g. 'tcp'.")

    def parse(args, kwargs):
        """Return a server endpoint for the positional ``args`` and ``key=value`` ``kwargs``.

        Both come already split and unescaped.  Raise ``EndpointError`` naming the faulty field
        (``parse_endpoint`` prefixes the message with the whole string).  The endpoint returned
        follows the protocol described in ``dropins.service.endpoints`` (``describe``, ``bind``,
        ``serve``); subclassing ``dropins.service.SocketEndpoint`` provides all but ``bind``.
        """
