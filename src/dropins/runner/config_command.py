"""``dropins config check FILE`` and ``dropins config dump FILE``.

``check`` reports every problem it can find without running anything (see ``load_config``),
one line per problem, exit 1 if there is any; else ``FILE: ok, N services`` and exit 0.
``dump`` prints the file as it would run, as TOML: environment substituted, paths absolute,
defaults filled in.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from dropins.options import OneLineErrorParser

__all__ = ["main"]


def build_parser(prog: str) -> OneLineErrorParser:
    parser = OneLineErrorParser(prog=prog, description="Check an application file, or print "
                                "it as it would run.")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, text in (("check", "report every problem of FILE, one line each"),
                       ("dump", "print FILE resolved (environment, paths, defaults) as TOML")):
        action = actions.add_parser(name, help=text, description=text)
        action.add_argument("file", metavar="FILE")
        action.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                            help="override a value of the file (repeatable)")
    return parser


def main(argv: Sequence[str], prog: str = "dropins config") -> int:
    from dropins.config.resolve import load_config
    from dropins.runner.config_app import config_context

    args = build_parser(prog).parse_args(list(argv))
    context = config_context()
    config, problems = load_config(args.file, context, args.set,
                                   try_make=args.action == "check")
    if problems:
        sys.stderr.write("".join(f"{line}\n" for line in problems))
        if args.action == "check":
            return 1
        return 2
    assert config is not None
    if args.action == "dump":
        from dropins.config.dump import resolved_data, to_toml

        sys.stdout.write(to_toml(resolved_data(config, context.runner_parser)))
        return 0
    count = len(config.services)
    sys.stdout.write(f"{args.file}: ok, {count} service{'s' if count != 1 else ''}\n")
    return 0
