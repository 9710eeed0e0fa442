"""The kernels of a ``.tflite`` model, configured like onnxruntime's.

A TFLite file already holds the converter's fused graph (a convolution carries its batch
norm and activation, padding is an explicit ``PAD``), so its kernels are read from the file
itself: the operators the interpreter's built-in resolver would run, before a delegate
(XNNPACK) takes them over as one node. Shapes are turned into the layout
:func:`hwnas.kernels.graph.configure` reads (activations NCHW, convolution weights
``[out, in / groups, kh, kw]``), so one configuration describes a kernel of either runtime.
LiteRT's Python interpreter has no op profiler, so these kernels carry no times: a TFLite
kernel predictor learns them from whole-model times (:mod:`hwnas.kernels.attribution`).
"""

from __future__ import annotations

from typing import Any

from hwnas.errors import HwnasError
from hwnas.kernels.graph import Kernel, configure

_CONV_WEIGHT = {"CONV_2D": "ohwi", "DEPTHWISE_CONV_2D": "1hwo", "TRANSPOSE_CONV": "ohwi"}


def _nchw(shape: list[int]) -> list[int]:
    return [shape[0], shape[3], shape[1], shape[2]] if len(shape) == 4 else shape


def _weight(shape: list[int], layout: str) -> list[int]:
    """A TFLite convolution weight as ONNX's ``[out, in / groups, kh, kw]``."""
    if len(shape) != 4:
        return shape
    if layout == "1hwo":  # depthwise: [1, kh, kw, channels x multiplier]
        return [shape[3], 1, shape[1], shape[2]]
    return [shape[0], shape[3], shape[1], shape[2]]


def kernel_from_op(index: int, op: str, inputs: list[list[int]], outputs: list[list[int]]) -> Kernel:
    """One TFLite operator (its NHWC tensor shapes) as a configured :class:`Kernel`."""
    layout = _CONV_WEIGHT.get(op)
    if op == "TRANSPOSE_CONV" and len(inputs) >= 3:  # (output shape, weights, input[, bias])
        inputs = [inputs[2], inputs[1], *inputs[3:]]
    if layout:
        ins = [_nchw(inputs[0]), _weight(inputs[1], layout), *inputs[2:]] if len(inputs) >= 2 else inputs
    else:
        ins = [_nchw(s) for s in inputs]
    kernel = Kernel(f"{op}_{index}", op, ins, [_nchw(s) for s in outputs])
    configure_tflite(kernel)
    return kernel


def is_tflite_op(op: str) -> bool:
    """LiteRT's builtin operators are upper-case codes (``CONV_2D``); onnxruntime's are not."""
    return op.isupper()


def configure_tflite(kernel: Kernel) -> dict[str, float]:
    """:func:`configure` for a TFLite kernel (shapes already in ONNX's layout), whose inputs are
    padded explicitly by a ``PAD`` before it: 230 / 112 is stride 2."""
    features = configure(kernel)
    if features["stride"] > 1:
        features["stride"] = float(max(round(features["stride"]), 1))
        if kernel.family == "pool":
            features["kernel"] = features["stride"]
    return features


def tflite_kernels(model: bytes | str) -> list[Kernel]:
    """The operators of ``model`` (bytes or a path), in execution order, configured."""
    from hwnas.measure.runtimes import _interpreter_class

    cls = _interpreter_class()[0]
    module = __import__(cls.__module__, fromlist=["OpResolverType"])
    kwargs: dict[str, Any] = {"model_content": bytes(model)} if isinstance(model, (bytes, bytearray)) else \
        {"model_path": str(model)}
    resolver = getattr(module, "OpResolverType", None)
    if resolver is not None:  # the operators themselves, not the delegate that would take them
        kwargs["experimental_op_resolver_type"] = resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    try:
        interpreter = cls(**kwargs)
        interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as e:
        raise HwnasError(f"LiteRT cannot load the model to read its operators: {str(e).splitlines()[0]}") from None
    shapes = {int(t["index"]): [int(d) for d in t["shape"]] for t in interpreter.get_tensor_details()}
    kernels = []
    for i, d in enumerate(interpreter._get_ops_details()):  # noqa: SLF001 (the interpreter's only op listing)
        op = str(d.get("op_name", "?"))
        if op == "DELEGATE":
            continue
        ins = [shapes.get(int(t), []) for t in d.get("inputs", []) if int(t) >= 0]
        outs = [shapes.get(int(t), []) for t in d.get("outputs", []) if int(t) >= 0]
        kernels.append(kernel_from_op(int(d.get("index", i)), op, ins, outs))
    return kernels
