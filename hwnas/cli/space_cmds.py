"""``hwnas space ...`` and ``hwnas arch ...``: look at spaces and architectures."""

from __future__ import annotations

import argparse

from hwnas.cli.common import answers_json, add_space_args, arch_from_args, emit_json, space_from_args, format_table
from hwnas.errors import HwnasError
from hwnas.ops import count_layer
from hwnas.spaces import SPACES, get_space, space_presets


def register(sub: argparse._SubParsersAction) -> None:
    space = sub.add_parser("space", help="list, show and sample search spaces")
    ssub = space.add_subparsers(dest="action", required=True, metavar="ACTION")

    p = ssub.add_parser("list", help="the registered spaces and their presets")
    answers_json(p, cmd_list)

    p = ssub.add_parser("show", help="a space's skeleton and decisions")
    add_space_args(p)
    answers_json(p, cmd_show)

    p = ssub.add_parser("sample", help="seeded uniform samples of arch strings")
    add_space_args(p)
    p.add_argument("-n", type=int, default=1, help="how many (default 1)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    answers_json(p, cmd_sample)

    arch = sub.add_parser("arch", help="inspect one architecture")
    asub = arch.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = asub.add_parser("info", help="parameters, multiply-adds and per-layer latency keys")
    add_space_args(p)
    p.add_argument("arch", metavar="ARCH", help="an arch string or a reference name (see 'space show')")
    p.add_argument("--verify", action="store_true", help="also build the module and count what it really has")
    answers_json(p, cmd_info)


def cmd_list(args: argparse.Namespace) -> int:
    rows = []
    for name in SPACES.names():
        presets = space_presets(name)
        sizes = [get_space(name, p).size() for p in presets]
        rows.append({"space": name, "presets": list(presets), "sizes": sizes})
    if args.json:
        emit_json(rows)
    else:
        print(format_table([[r["space"], ", ".join(r["presets"]), ", ".join(f"{s:.3g}" for s in r["sizes"])]
                     for r in rows], ["space", "presets", "architectures per preset"]))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    space = space_from_args(args)
    info = {**space.describe(), "references": {k: str(v) for k, v in space.references().items()},
            "distinct_layers": len(space.all_layers())}
    if args.json:
        emit_json(info)
        return 0
    for k, v in info.items():
        if k == "decisions":
            print("decisions:")
            for d in v:
                print(f"  {d['name']}: {' '.join(d['choices'])}")
        elif k == "references":
            print("references:")
            for name, arch in v.items():
                print(f"  {name}: {arch}")
        else:
            print(f"{k}: {v}")
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    if args.n < 0:
        raise HwnasError("-n must be >= 0")
    space = space_from_args(args)
    archs = [str(a) for a in space.sample(args.n, seed=args.seed)]
    if args.json:
        emit_json(archs)
    else:
        print("\n".join(archs))
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    space = space_from_args(args)
    arch = arch_from_args(space, args.arch)
    counts = arch.counts()
    layers = []
    for spec in arch.layers():
        c = count_layer(spec)
        layers.append({"key": spec.key, "op": spec.op, "input": list(spec.input), "output": list(spec.output),
                       "params": c.params, "macs": c.macs})
    info = {"space": space.name, "preset": space.preset, "arch": str(arch),
            "input_shape": list(space.input_shape()), "params": counts.params, "macs": counts.macs,
            "layers": layers}
    if args.verify:
        from hwnas.counting import module_counts

        real = module_counts(arch.build(), space.input_shape())
        info["verified"] = real == counts
        if real != counts:
            raise HwnasError(f"counts from the architecture {counts} differ from the built module {real}")
    if args.json:
        emit_json(info)
        return 0
    print(f"space: {space.name} ({space.preset})   input: {'x'.join(map(str, space.input_shape()))}")
    print(f"arch: {arch}")
    print(f"params: {counts.params:,}   multiply-adds: {counts.macs:,} ({counts.macs / 1e6:.1f} M)")
    if args.verify:
        print("verified: the built module has the same counts")
    print()
    print(format_table([[l["key"], f"{l['params']:,}", f"{l['macs']:,}"] for l in layers], ["layer key", "params", "macs"]))
    return 0
