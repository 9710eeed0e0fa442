"""Converted files for latency measurement, kept between runs.

Converting a network to TFLite with litert-torch takes about two seconds, far longer than
measuring it; a table build converts every layer of a space, again for every TFLite device
(a board over serial, a phone over TCP, this CPU). Latency does not depend on the weights,
so a module that carries a build recipe (``hwnas_recipe``: a layer key or an architecture
string, set by :func:`hwnas.ops.build_layer` and :meth:`Arch.build`) is converted once per
recipe, input shape and converter version and the file is reused. Only measurement goes
through this cache; exports of trained networks (``hwnas export``) never do.

The cache lives in :func:`hwnas.paths.cache_dir` (``measure/``). Files are written atomically and
a file the runtime cannot load is converted again.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path
from typing import Any, Callable

from hwnas.files import write_atomic
from hwnas.paths import cache_dir

Convert = Callable[[Any, tuple[int, ...], Path], Any]


def _versions(fmt: str) -> dict[str, str]:
    from importlib import metadata

    import torch

    out = {"torch": torch.__version__}
    for dist in {"tflite": ("litert-torch", "ai-edge-litert"), "onnx": ("onnx",)}.get(fmt, ()):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "none"
    return out


def cache_path(model: Any, input_shape: tuple[int, ...], fmt: str) -> Path | None:
    """Where ``model``'s converted file is kept, or None when it has no recipe (or the cache is off)."""
    recipe = getattr(model, "hwnas_recipe", None)
    root = cache_dir()
    if not recipe or root is None:
        return None
    ident = json.dumps({"recipe": recipe, "input_shape": list(input_shape), "format": fmt,
                        "versions": _versions(fmt)}, sort_keys=True)
    return root / "measure" / fmt / f"{hashlib.sha256(ident.encode()).hexdigest()}.{fmt}"


def converted_bytes(model: Any, input_shape: tuple[int, ...], fmt: str, convert: Convert,
                    valid: Callable[[bytes], bool] = lambda data: len(data) > 0) -> bytes:
    """The bytes of ``model`` converted to ``fmt`` by ``convert(model, shape, path)``, from the
    cache when it holds them (and ``valid`` accepts them), else converted and kept."""
    path = cache_path(model, input_shape, fmt)
    if path is not None and path.is_file():
        data = path.read_bytes()
        if valid(data):
            return data
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / f"model.{fmt}"
        convert(model, input_shape, out)
        data = out.read_bytes()
    if path is not None:
        try:
            write_atomic(path, data)
        except OSError:
            pass  # a read-only or full cache only costs time
    return data
