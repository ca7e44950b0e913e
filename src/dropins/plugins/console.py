"""``dropins console`` and ``dropins telnet`` (implemented in ``dropins.console.maker``,
imported only when used)."""

from dropins.service.maker import ServiceMaker

console = ServiceMaker("console", "dropins.console.maker:console",
                       "A Python console into the running application, over SSH, telnet or a "
                       "unix socket")
telnet = ServiceMaker("telnet", "dropins.console.maker:telnet",
                      "A Python console on telnet for one user (the Twisted 0.19 command)")
