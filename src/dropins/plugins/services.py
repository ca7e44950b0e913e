"""The built-in service makers: one line per command, implementations imported only when run."""

from dropins.service.maker import ServiceMaker

echo = ServiceMaker("echo", "dropins.services.inetd:echo", "Echo back what clients send (RFC 862)")
discard = ServiceMaker("discard", "dropins.services.inetd:discard",
                       "Read and discard what clients send (RFC 863)")
chargen = ServiceMaker("chargen", "dropins.services.inetd:chargen",
                       "Send a rotating character pattern until the client leaves (RFC 864)")
daytime = ServiceMaker("daytime", "dropins.services.inetd:daytime",
                       "Send the date and time, then close (RFC 867)")
portforward = ServiceMaker("portforward", "dropins.services.portforward",
                           "Relay TCP connections to another HOST:PORT")
