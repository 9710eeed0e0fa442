"""Export a search run's network: ONNX, TFLite, the architecture as JSON, weights as safetensors.

The network is the run's chosen architecture with the weights ``hwnas train`` (or
``--retrain-epochs``) left in ``model.safetensors``; without them the export is of the
untrained network (latency does not depend on the weights) and says so. Each file is
checked in the runtime that will run it on the device: ONNX in onnxruntime, TFLite in the
LiteRT interpreter. When the converter fails on the whole network, each layer is
converted alone to name the one it cannot handle.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hwnas import __version__
from hwnas.errors import HwnasError
from hwnas.files import interpreting, read_fields
from hwnas.spaces.base import Arch, SearchSpace

FORMATS = ("onnx", "tflite")


def load_run(run_dir: str | Path) -> tuple[SearchSpace, Arch, dict[str, Any], dict[str, Any]]:
    """(space, arch, result, recipe) of a search run directory."""
    from hwnas.spaces.stored import stored_space

    run = Path(run_dir)
    if not (run / "result.json").is_file():
        raise HwnasError(f"{run} is not a finished search run (no result.json); run 'hwnas search -o {run}' first")
    hint = f"search again into a new directory ('hwnas search -o {run}-new')"
    result = read_fields(run / "result.json", "search result", hint, {"space": str, "preset": str, "arch": str})
    recipe = read_fields(run / "recipe.json", "search recipe", hint, {}) if (run / "recipe.json").is_file() else {}
    with interpreting(run / "result.json", "search result"):
        space = stored_space({**recipe, **result}, f"search result {run / 'result.json'}")
        return space, space.parse(result["arch"]), result, recipe


def run_model(run_dir: str | Path, space: SearchSpace, arch: Arch) -> tuple[Any, bool]:
    """The run's network with its trained weights when there are any: (module, trained)."""
    import torch

    weights = Path(run_dir) / "model.safetensors"
    torch.manual_seed(0)
    model = arch.build().eval()
    if not weights.is_file() or not (Path(run_dir) / "train.json").is_file():  # train.json: hwnas train ran
        return model, False
    from safetensors.torch import load_file

    try:
        model.load_state_dict(load_file(str(weights)))
    except RuntimeError as e:
        raise HwnasError(f"{weights} does not fit {arch} ({str(e).splitlines()[0]}); retrain with 'hwnas train'")
    return model, True


def failing_layer(arch: Arch) -> str | None:
    """The key of the first layer litert-torch cannot convert alone (None if all convert)."""
    import tempfile

    import torch

    from hwnas.export.tflite import export_tflite
    from hwnas.ops import build_layer

    with tempfile.TemporaryDirectory() as tmp:
        for spec in arch.layers():
            h, w, c = spec.input
            torch.manual_seed(0)
            try:
                export_tflite(build_layer(spec), (c, h, w), Path(tmp) / "layer.tflite")
            except HwnasError as e:
                return f"{spec.key} ({e})"
    return None


def export_checked(model: Any, space: SearchSpace, arch: Arch, fmt: str, path: str | Path,
                   metadata: dict[str, str], opset: int = 17) -> dict[str, Any]:
    """Write ``model`` (the network of ``arch``) as ``fmt`` to ``path`` and check the file in the
    runtime that will run it (onnxruntime, the LiteRT interpreter) against torch; returns the
    parity figures and raises when the file computes something else."""
    if fmt == "onnx":
        from hwnas.export.onnx import export_onnx, onnx_parity

        export_onnx(model, space.input_shape(), path, opset=opset, metadata=metadata)
        p = onnx_parity(path, model, space.input_shape())
        runtime = "onnxruntime"
    elif fmt == "tflite":
        from hwnas.export.tflite import export_tflite, tflite_parity

        try:
            export_tflite(model, space.input_shape(), path)
        except HwnasError as e:
            layer = failing_layer(arch)
            where = f"; the converter cannot handle layer {layer}" if layer else ""
            raise HwnasError(f"TFLite export of {arch} failed: {e}{where}") from None
        p = tflite_parity(path, model, space.input_shape())
        runtime = "LiteRT"
    else:
        raise HwnasError(f"unknown export format {fmt!r}; use {', '.join(FORMATS)}")
    if not p.ok:
        raise HwnasError(f"{path}: {runtime} differs from torch by {p.max_abs_diff:.3g} (tolerance {p.tolerance:.3g})")
    return {"max_abs_diff": p.max_abs_diff, "tolerance": p.tolerance, "ok": p.ok}


def export_run(run_dir: str | Path, formats: tuple[str, ...] = FORMATS) -> dict[str, Any]:
    from safetensors.torch import save_file

    run = Path(run_dir)
    space, arch, result, _ = load_run(run)
    bad = set(formats) - set(FORMATS)
    if bad:
        raise HwnasError(f"unknown export format(s) {', '.join(sorted(bad))}; use onnx, tflite or all")
    model, trained = run_model(run, space, arch)
    counts = arch.counts()
    meta = {"hwnas_version": __version__, "space": space.name, "preset": space.preset, "arch": str(arch)}
    info: dict[str, Any] = {"arch": str(arch), "space": space.name, "preset": space.preset, "trained": trained,
                            "params": counts.params, "macs": counts.macs, "input_shape": [1, *space.input_shape()],
                            "files": {}}
    (run / "arch.json").write_text(json.dumps({**meta, "params": counts.params, "macs": counts.macs,
                                               "input_shape": info["input_shape"], "keys": arch.keys()}, indent=1))
    info["files"]["arch"] = str(run / "arch.json")
    if not trained:
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(run / "model.safetensors"),
                  metadata=meta)
    info["files"]["weights"] = str(run / "model.safetensors")
    for fmt in formats:
        path = run / f"model.{fmt}"
        info[f"{fmt}_parity"] = export_checked(model, space, arch, fmt, path, meta)
        info["files"][fmt] = str(path)
    (run / "export.json").write_text(json.dumps(info, indent=1))
    return info
