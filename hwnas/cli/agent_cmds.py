"""``hwnas agent serve`` (run the agent here) and ``hwnas agent bundle`` (one file for a target)."""

from __future__ import annotations

import argparse

from hwnas.agent.server import add_serve_arguments, serve


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("agent", help="the on-device latency agent")
    asub = p.add_subparsers(dest="agent_cmd", required=True, metavar="ACTION")
    s = asub.add_parser("serve", help="serve measurement requests over TCP or a serial line",
                        description="Same as 'python3 hwnas-agent.pyz serve ...' on a target.")
    add_serve_arguments(s)
    s.set_defaults(func=cmd_serve)
    b = asub.add_parser("bundle", help="write the agent as one file (hwnas-agent.pyz) to copy to a target")
    b.add_argument("-o", "--output", default="hwnas-agent.pyz")
    b.set_defaults(func=cmd_bundle)


def cmd_serve(args: argparse.Namespace) -> int:
    return serve(args)


def cmd_bundle(args: argparse.Namespace) -> int:
    from hwnas.agent.bundle import bundle

    out = bundle(args.output)
    print(f"wrote {out} ({out.stat().st_size} bytes): copy it to the target and run "
          f"'python3 {out.name} serve --tcp 127.0.0.1:7777' (needs numpy and a runtime; pyserial for --serial)")
    return 0
