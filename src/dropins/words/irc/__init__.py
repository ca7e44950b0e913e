"""The IRC front-end of ``dropins words``: line parsing, numerics, the connection, commands."""
