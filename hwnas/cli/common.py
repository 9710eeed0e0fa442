"""Argument helpers shared by the CLI commands."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Callable

from hwnas.spaces import SPACES, Arch, SearchSpace, get_space


def add_space_args(p: argparse.ArgumentParser, positional: bool = True, required: bool = True) -> None:
    if positional:
        p.add_argument("space", metavar="SPACE", help=f"search space ({', '.join(SPACES.names())})")
    else:
        p.add_argument("--space", required=required, choices=SPACES.names(), help="search space")
    p.add_argument("--preset", help="space preset (see 'hwnas space list')")
    p.add_argument("--num-classes", type=int, help="override the preset's class count")
    p.add_argument("--resolution", type=int, help="override the preset's input resolution")
    p.add_argument("--width-mult", type=float, help="mbv2: override the width multiplier")


def space_from_args(args: argparse.Namespace) -> SearchSpace:
    overrides = {k: getattr(args, k, None) for k in ("num_classes", "resolution", "width_mult")}
    return get_space(args.space, args.preset, **{k: v for k, v in overrides.items() if v is not None})


def arch_from_args(space: SearchSpace, text: str) -> Arch:
    return space.resolve(text)


def answers_json(p: argparse.ArgumentParser, func: Callable[[argparse.Namespace], int], **defaults: Any) -> None:
    """Make ``p`` run ``func`` and give it the ``--json`` flag every command has."""
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=func, **defaults)


def emit_json(obj: Any) -> None:
    json.dump(obj, sys.stdout, indent=2)
    sys.stdout.write("\n")


def format_table(rows: list[list[Any]], header: list[str]) -> str:
    cells = [header] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
