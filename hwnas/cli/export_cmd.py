"""``hwnas export``: write a built architecture in the formats devices run."""

from __future__ import annotations

import argparse
from pathlib import Path

from hwnas import __version__
from hwnas.cli.common import add_json, add_space_args, arch_from_args, emit_json, space_from_args
from hwnas.errors import HwnasError
from hwnas.export.onnx import export_onnx, onnx_parity


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="build an architecture and export it (ONNX), checked against torch")
    add_space_args(p)
    p.add_argument("arch", metavar="ARCH", help="an arch string or a reference name")
    p.add_argument("--format", choices=["onnx"], default="onnx", help="output format (default onnx)")
    p.add_argument("-o", "--output", required=True, help="output file")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (>= 17, default 17)")
    add_json(p)
    p.set_defaults(func=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    if args.opset < 17:
        raise HwnasError(f"--opset {args.opset} is too old; use 17 or later")
    space = space_from_args(args)
    arch = arch_from_args(space, args.arch)
    model = arch.build()
    out = Path(args.output)
    meta = {"hwnas_version": __version__, "space": space.name, "preset": space.preset, "arch": str(arch)}
    export_onnx(model, space.input_shape(), out, opset=args.opset, metadata=meta)
    parity = onnx_parity(out, model, space.input_shape())
    result = {"path": str(out), "format": "onnx", "opset": args.opset, "arch": str(arch),
              "max_abs_diff": parity.max_abs_diff, "tolerance": parity.tolerance, "parity_ok": parity.ok}
    if not parity.ok:
        raise HwnasError(f"{out}: onnxruntime output differs from torch by {parity.max_abs_diff:.3g} "
                         f"(tolerance {parity.tolerance:.3g})")
    if args.json:
        emit_json(result)
    else:
        print(f"wrote {out} (ONNX opset {args.opset}); onnxruntime matches torch: "
              f"max |diff| {parity.max_abs_diff:.2e} <= {parity.tolerance:.2e}")
    return 0
