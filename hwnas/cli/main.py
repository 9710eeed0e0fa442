"""Entry point of the ``hwnas`` command."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

from hwnas import __version__
from hwnas.errors import HwnasError


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line on stderr (the full usage is one ``--help`` away)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    from hwnas.cli import (agent_cmds, bench_cmds, export_cmd, hypernet_cmd, measure_cmds, predictor_cmds,
                           profile_cmd, search_cmds, space_cmds, verify_cmd)
    from hwnas.plugins import load_plugins

    load_plugins()  # what plugins register appears in --help

    parser = _Parser(prog="hwnas", description="Hardware-aware neural architecture search for edge devices.")
    parser.add_argument("--version", action="version", version=f"hwnas {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)
    space_cmds.register(sub)
    export_cmd.register(sub)
    measure_cmds.register(sub)
    profile_cmd.register(sub)
    predictor_cmds.register(sub)
    search_cmds.register(sub)
    hypernet_cmd.register(sub)
    bench_cmds.register(sub)
    agent_cmds.register(sub)
    verify_cmd.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        parser = build_parser()
    except HwnasError as e:
        print(f"hwnas: error: {e}", file=sys.stderr)
        return 2
    from hwnas.cli.profile_cmd import route

    args = parser.parse_args(route(list(sys.argv[1:] if argv is None else argv)))
    try:
        return int(args.func(args) or 0)
    except HwnasError as e:
        print(f"hwnas: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hwnas: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into head and the like
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
