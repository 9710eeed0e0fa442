"""Kernels a delegate folds into the next one, found by measuring on the device.

A TFLite file pads explicitly: a stride-2 convolution is a ``PAD`` then the convolution.
XNNPACK folds a zero ``PAD`` into the convolution that reads it, so the pair costs what the
convolution on a pre-padded input costs and the ``PAD`` costs nothing; another delegate may
copy the tensor. Without a profiler the fit only ever sees the two together, and it then
charges the ``PAD`` a share of the convolution's time that does not follow the ``PAD``'s own
work. So the build asks the device (:func:`probe_pad_folding`): the pair against the same
convolution on an input padded beforehand. When the pair is no slower, the predictor
treats every such ``PAD`` as part of its convolution (:func:`folded`).
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from hwnas.kernels.tflite_graph import BUILTIN

FOLDS_INTO = ("CONV_2D", "DEPTHWISE_CONV_2D")
"""The operators a ``PAD`` right before them (their input is its output) may fold into."""
FOLD_TOLERANCE = 1.1
"""The pair counts as folded when it takes at most this times the pre-padded convolution's
time; a copied ``PAD`` adds about half of it (a 32 x 114 x 114 copy beside a depthwise 3x3)."""


def folded(ops: Sequence[tuple[str, dict[str, float]]], folds: Sequence[str]) -> list[bool]:
    """For each kernel (operator, configuration) in execution order: whether it is a ``PAD``
    that the device folds into the convolution after it (listed in ``folds``)."""
    out = [False] * len(ops)
    if "PAD" not in folds:
        return out
    for i in range(len(ops) - 1):
        (op, f), (nxt, g) = ops[i], ops[i + 1]
        if op == "PAD" and nxt in FOLDS_INTO and not nxt.endswith(BUILTIN) \
                and abs(f["log_out"] - g["log_in"]) < 1e-6:
            out[i] = True
    return out


def probe_pad_folding(time_ms: Callable[[bytes, tuple[int, ...]], float]) -> dict[str, Any]:
    """Whether the device that ``time_ms`` (a ``.tflite`` model and its input shape -> ms)
    measures on folds a ``PAD`` into the depthwise convolution after it: a 3x3 stride-2
    depthwise convolution on 32 x 112 x 112 with its ``PAD`` against the same convolution on a
    32 x 114 x 114 input (no ``PAD``). Returns both times and the verdict."""
    from torch import nn

    from hwnas.kernels.predict import exported_bytes
    from hwnas.kernels.tflite_graph import tflite_kernels

    cases = {"pad_conv_ms": (nn.Conv2d(32, 32, 3, 2, 1, groups=32), (1, 32, 112, 112)),
             "prepadded_conv_ms": (nn.Conv2d(32, 32, 3, 2, 0, groups=32), (1, 32, 114, 114))}
    out: dict[str, Any] = {}
    for name, (module, shape) in cases.items():
        data = exported_bytes(module.eval(), shape, "tflite")
        out[name.replace("_ms", "_ops")] = [k.op for k in tflite_kernels(data)]
        out[name] = time_ms(data, shape)
    has_pad = "PAD" in out["pad_conv_ops"] and "PAD" not in out["prepadded_conv_ops"]
    out["pad_folded"] = bool(has_pad and out["pad_conv_ms"] <= FOLD_TOLERANCE * out["prepadded_conv_ms"])
    return out
