"""``dropins mail``: SMTP (on aiosmtpd) receiving into per-user Maildirs, and POP3 (written to
RFC 1939, 2449 and 2595) reading them.  ``maker`` builds the service, ``smtp`` and ``pop3``
speak the protocols, ``maildirs`` owns the folders."""
