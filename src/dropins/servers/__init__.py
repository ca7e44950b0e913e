"""The small built-in protocol servers: inetd services, port forwarding, and the other 0.19
protocols. Each is a service maker named in ``dropins.plugins``; a server of web's size gets a
folder of its own instead."""
