"""``hwnas export``: write a search run's network (or any architecture) in the formats
devices run, each checked in its runtime."""

from __future__ import annotations

import argparse
from pathlib import Path

from hwnas import __version__
from hwnas.cli.common import answers_json, add_space_args, arch_from_args, emit_json, space_from_args
from hwnas.errors import HwnasError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a run's network (RUN_DIR) or an architecture (SPACE ARCH)",
                       description="hwnas export RUN_DIR --format onnx|tflite|all   or   "
                                   "hwnas export SPACE ARCH -o FILE.onnx|FILE.tflite [--format onnx|tflite]. "
                                   "Every file is checked against torch in the runtime that will run it.")
    add_space_args(p)
    p.add_argument("arch", metavar="ARCH", nargs="?", help="an arch string or a reference name (SPACE form)")
    p.add_argument("--format", choices=["onnx", "tflite", "all"], default=None,
                   help="RUN_DIR: onnx, tflite or all (default all); SPACE ARCH: onnx or tflite "
                        "(default: from the output file's extension)")
    p.add_argument("-o", "--output", help="output file (SPACE ARCH form)")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (>= 17, default 17)")
    answers_json(p, cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    if Path(args.space).is_dir():
        return export_run_dir(args)
    if args.arch is None or args.output is None:
        raise HwnasError(f"{args.space!r} is not a run directory; to export an architecture give "
                         "SPACE ARCH -o FILE")
    if args.opset < 17:
        raise HwnasError(f"--opset {args.opset} is too old; use 17 or later")
    from hwnas.export.run import export_checked

    space = space_from_args(args)
    arch = arch_from_args(space, args.arch)
    out = Path(args.output)
    fmt = args.format or _format_of(out)
    if fmt == "all":
        raise HwnasError("SPACE ARCH writes one file: give --format onnx or --format tflite")
    import torch

    torch.manual_seed(0)
    model = arch.build().eval()
    meta = {"hwnas_version": __version__, "space": space.name, "preset": space.preset, "arch": str(arch)}
    parity = export_checked(model, space, arch, fmt, out, meta, opset=args.opset)
    runtime = {"onnx": "onnxruntime", "tflite": "LiteRT"}[fmt]
    result = {"path": str(out), "format": fmt, "arch": str(arch), **({"opset": args.opset} if fmt == "onnx" else {}),
              "max_abs_diff": parity["max_abs_diff"], "tolerance": parity["tolerance"], "parity_ok": parity["ok"]}
    if args.json:
        emit_json(result)
    else:
        what = f"ONNX opset {args.opset}" if fmt == "onnx" else "TFLite"
        print(f"wrote {out} ({what}, untrained weights); {runtime} matches torch: "
              f"max |diff| {parity['max_abs_diff']:.2e} <= {parity['tolerance']:.2e}")
    return 0


def _format_of(path: Path) -> str:
    """The format a file name asks for (``.onnx``, ``.tflite``)."""
    from hwnas.export.run import FORMATS

    fmt = path.suffix.lstrip(".").lower()
    if fmt not in FORMATS:
        raise HwnasError(f"cannot tell the format of {path}: name it .onnx or .tflite, or give --format")
    return fmt


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
