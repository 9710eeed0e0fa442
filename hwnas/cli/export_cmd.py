"""``hwnas export``: write a search run's network (or any architecture) in the formats
devices run, each checked in its runtime."""

from __future__ import annotations

import argparse
from pathlib import Path

from hwnas import __version__
from hwnas.cli.common import add_json, add_space_args, arch_from_args, emit_json, space_from_args
from hwnas.errors import HwnasError
from hwnas.export.onnx import export_onnx, onnx_parity


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a run's network (RUN_DIR) or an architecture (SPACE ARCH)",
                       description="hwnas export RUN_DIR --format onnx|tflite|all   or   "
                                   "hwnas export SPACE ARCH --format onnx -o FILE")
    add_space_args(p)
    p.add_argument("arch", metavar="ARCH", nargs="?", help="an arch string or a reference name (SPACE form)")
    p.add_argument("--format", choices=["onnx", "tflite", "all"], default=None,
                   help="RUN_DIR: onnx, tflite or all (default all); SPACE ARCH: onnx")
    p.add_argument("-o", "--output", help="output file (SPACE ARCH form)")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (>= 17, default 17)")
    add_json(p)
    p.set_defaults(func=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    if Path(args.space).is_dir():
        return export_run_dir(args)
    if args.arch is None or args.output is None:
        raise HwnasError(f"{args.space!r} is not a run directory; to export an architecture give "
                         "SPACE ARCH -o FILE")
    if args.format not in (None, "onnx"):
        raise HwnasError("SPACE ARCH exports ONNX; for TFLite export a run directory (hwnas export RUN_DIR)")
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


def export_run_dir(args: argparse.Namespace) -> int:
    from hwnas.export.run import FORMATS, export_run

    formats = FORMATS if args.format in (None, "all") else (args.format,)
    info = export_run(args.space, formats)
    if args.json:
        emit_json(info)
        return 0
    print(f"{info['arch']} ({'trained' if info['trained'] else 'UNTRAINED: run hwnas train first'} weights)")
    for kind, path in info["files"].items():
        parity = info.get(f"{kind}_parity")
        check = f"  (matches torch: max |diff| {parity['max_abs_diff']:.2e})" if parity else ""
        print(f"  {kind:8s} {path}{check}")
    return 0
