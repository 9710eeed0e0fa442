"""Export torchvision classification models (random weights; nothing is downloaded) to ONNX
with hwnas's exporter, for ``tools/bench_kernel_predictor.py`` and ``hwnas profile``.

torchvision needs the torch build it was made for, which is not the CPU torch ``make``
installs; run this with a Python that has both, e.g.::

    python3 -m venv /tmp/tv && /tmp/tv/bin/pip install torch==2.14.1 torchvision==0.29.1 onnx
    PYTHONPATH=. /tmp/tv/bin/python -m tools.export_torchvision -o /tmp/tvonnx

``--format tflite`` converts with litert-torch, which lives in this project's environment:
there, put torchvision for its torch beside it. Its PyPI wheel is built for CUDA torch, so
its compiled operators (detection's ``nms``, ...) do not load; the classification models
do not use them, and emptying the file that registers them lets it import::

    .venv/bin/pip install --no-deps --target /tmp/tvpkg torchvision==0.28.0
    : > /tmp/tvpkg/torchvision/_meta_registrations.py
    PYTHONPATH=.:/tmp/tvpkg .venv/bin/python -m tools.export_torchvision --format tflite -o /tmp/tvtflite

Every file is written at batch 1, 3x224x224 (299 for inception_v3) as ``hwnas export``
writes its own models (ONNX at opset 17).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

MODELS = ("resnet18", "resnet34", "resnet50", "resnext50_32x4d", "mobilenet_v2", "mobilenet_v3_small",
          "mobilenet_v3_large", "efficientnet_b0", "efficientnet_b1", "mnasnet0_5", "mnasnet1_0",
          "shufflenet_v2_x0_5", "shufflenet_v2_x1_0", "squeezenet1_0", "squeezenet1_1", "regnet_x_400mf",
          "regnet_y_400mf", "regnet_y_800mf", "densenet121", "googlenet", "convnext_tiny")
"""The models the benchmark's goals were set on (ResNet, MobileNetV2/V3, EfficientNet, MnasNet,
ShuffleNetV2, SqueezeNet, RegNet, DenseNet, GoogLeNet, ConvNeXt)."""


def main() -> int:
    import torch
    import torchvision

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-o", "--output", required=True, help="folder for the exported files")
    ap.add_argument("--format", choices=("onnx", "tflite"), default="onnx")
    ap.add_argument("models", nargs="*", default=list(MODELS), help="torchvision model names (default: the benchmark's)")
    args = ap.parse_args()
    out = Path(args.output)
    for name in args.models:
        path = out / f"{name}.{args.format}"
        if path.exists():
            print(f"{path} exists")
            continue
        torch.manual_seed(0)
        kwargs = {"aux_logits": False, "init_weights": True} if name in ("googlenet", "inception_v3") else {}
        model = torchvision.models.get_model(name, weights=None, **kwargs).eval()
        size = 299 if name == "inception_v3" else 224
        if args.format == "tflite":
            from hwnas.export.tflite import export_tflite

            export_tflite(model, (3, size, size), path)
        else:
            from hwnas.export.onnx import export_onnx

            export_onnx(model, (3, size, size), path, metadata={"torchvision_model": name})
        print(f"{path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
