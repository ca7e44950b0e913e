"""Application files: many services in one process from a TOML or YAML file.

``source`` reads and parses a file (with line numbers), ``values`` applies ``--set`` and
``${NAME}``, ``resolve`` checks it against the commands' own option parsers, ``build`` makes the
services, ``save`` writes an invocation as a file, and ``reload`` works out what a re-read
changed.  The runner (``dropins -c FILE``) drives them; see docs/config.md.
"""
