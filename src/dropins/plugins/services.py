"""The built-in service makers: one line per command, implementations imported only when run."""

from dropins.service.maker import ServiceMaker

echo = ServiceMaker("echo", "dropins.servers.inetd:echo", "Echo back what clients send (RFC 862)")
discard = ServiceMaker("discard", "dropins.servers.inetd:discard",
                       "Read and discard what clients send (RFC 863)")
chargen = ServiceMaker("chargen", "dropins.servers.inetd:chargen",
                       "Send a rotating character pattern until the client leaves (RFC 864)")
daytime = ServiceMaker("daytime", "dropins.servers.inetd:daytime",
                       "Send the date and time, then close (RFC 867)")
portforward = ServiceMaker("portforward", "dropins.servers.portforward",
                           "Relay TCP connections to another HOST:PORT")
mail = ServiceMaker("mail", "dropins.servers.mail.maker",
                    "Receive mail over SMTP into Maildirs and serve them over POP3")
ftp = ServiceMaker("ftp", "dropins.servers.ftp",
                   "Serve a folder over FTP and explicit FTPS, logins through --auth")
nntp = ServiceMaker("nntp", "dropins.servers.nntp",
                    "Serve newsgroups from a folder over NNTP, posting through --auth")
dns = ServiceMaker("dns", "dropins.servers.dns",
                   "Answer DNS queries for zone files, over UDP and TCP (authoritative)")
finger = ServiceMaker("finger", "dropins.servers.finger",
                      "Answer finger queries (RFC 1288) for chosen users, no forwarding")
socks = ServiceMaker("socks", "dropins.servers.socks",
                     "A SOCKS4/4a/5 proxy (CONNECT) with destination rules and --auth")
