"""The kernels of a ``.tflite`` model, configured like onnxruntime's.

A TFLite file already holds the converter's fused graph (a convolution carries its batch
norm and activation, padding is an explicit ``PAD``), so its kernels are read from the file
itself: the operators the interpreter's built-in resolver would run, before a delegate
(XNNPACK) takes them over as one node. Shapes are turned into the layout
:func:`hwnas.kernels.graph.configure` reads (activations NCHW, convolution weights
``[out, in / groups, kh, kw]``), so one configuration describes a kernel of either runtime.
LiteRT's Python interpreter has no op profiler, so these kernels carry no times: a TFLite
kernel predictor learns them from whole-model times (:mod:`hwnas.kernels.attribution`).

Which operators the delegate takes is read from the runtime too, not from a list: the model
is loaded a second time with the default delegates, and an operator left outside every
``DELEGATE`` node runs on LiteRT's built-in kernels (XNNPACK leaves ``PADV2`` and a
concatenation of many inputs, for one). Such a kernel is named ``OP@BUILTIN``, a different
implementation with its own cost, and each delegated partition becomes a ``DELEGATE``
kernel over the tensors that cross its boundary, the cost of entering and leaving it. The
partitioning is this machine's LiteRT's; a device with another delegate may split otherwise.
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
    layout = _CONV_WEIGHT.get(op.split("@")[0])
    if op.startswith("TRANSPOSE_CONV") and len(inputs) >= 3:  # (output shape, weights, input[, bias])
        inputs = [inputs[2], inputs[1], *inputs[3:]]
    if layout:
        ins = [_nchw(inputs[0]), _weight(inputs[1], layout), *inputs[2:]] if len(inputs) >= 2 else inputs
    else:
        ins = [_nchw(s) for s in inputs]
    kernel = Kernel(f"{op}_{index}", op, ins, [_nchw(s) for s in outputs])
    configure_tflite(kernel)
    return kernel


BUILTIN = "@BUILTIN"
"""The suffix of an operator that the delegate leaves to LiteRT's built-in kernels."""


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


def _load(cls: Any, model: bytes | str, delegates: bool) -> Any:
    module = __import__(cls.__module__, fromlist=["OpResolverType"])
    kwargs: dict[str, Any] = {"model_content": bytes(model)} if isinstance(model, (bytes, bytearray)) else \
        {"model_path": str(model)}
    resolver = getattr(module, "OpResolverType", None)
    if resolver is not None and not delegates:  # the operators themselves, not the delegate that would take them
        kwargs["experimental_op_resolver_type"] = resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    try:
        interpreter = cls(num_threads=1, **kwargs)
        interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as e:
        raise HwnasError(f"LiteRT cannot load the model to read its operators: {str(e).splitlines()[0]}") from None
    return interpreter


def _ids(tensors: Any) -> list[int]:
    return [int(t) for t in tensors if int(t) >= 0]


def partitions(ops: list[dict[str, Any]], graph_outputs: set[int]) -> tuple[set[int], list[dict[str, Any]]]:
    """The operators (indices) that no delegate took, and the delegate nodes, from a delegated
    interpreter's op listing: an operator runs on its own when an output of it that no delegate
    produces is read by a delegate or is the model's output, and then so does every operator
    whose output it reads that no delegate produces."""
    delegates = [d for d in ops if d.get("op_name") == "DELEGATE"]
    if not delegates:
        return set(), []
    produced = {t for d in delegates for t in _ids(d["outputs"])}
    read = {t for d in delegates for t in _ids(d["inputs"])} | graph_outputs
    producer = {t: o for o in ops if o.get("op_name") != "DELEGATE" for t in _ids(o["outputs"])}
    stack = [o for o in ops if o.get("op_name") != "DELEGATE"
             and any(t in read and t not in produced for t in _ids(o["outputs"]))]
    builtin: set[int] = set()
    while stack:
        o = stack.pop()
        if int(o["index"]) in builtin:
            continue
        builtin.add(int(o["index"]))
        stack.extend(producer[t] for t in _ids(o["inputs"]) if t not in produced and t in producer)
    return builtin, delegates


def tflite_kernels(model: bytes | str) -> list[Kernel]:
    """The operators of ``model`` (bytes or a path), in execution order, configured; those the
    delegate leaves to the built-in kernels marked :data:`BUILTIN`, and one ``DELEGATE`` kernel
    per delegated partition, after them."""
    from hwnas.measure.runtimes import _interpreter_class

    cls = _interpreter_class()[0]
    interpreter = _load(cls, model, delegates=False)
    shapes = {int(t["index"]): [int(d) for d in t["shape"]] for t in interpreter.get_tensor_details()}
    delegated = _load(cls, model, delegates=True)
    builtin, delegates = partitions(delegated._get_ops_details(),  # noqa: SLF001 (the only op listing)
                                    {int(d["index"]) for d in delegated.get_output_details()})
    produced = {t for d in interpreter._get_ops_details() for t in _ids(d.get("outputs", []))}  # noqa: SLF001
    graph_inputs = {int(d["index"]) for d in interpreter.get_input_details()}
    kernels = []
    for i, d in enumerate(interpreter._get_ops_details()):  # noqa: SLF001 (the interpreter's only op listing)
        op = str(d.get("op_name", "?"))
        if op == "DELEGATE":
            continue
        index = int(d.get("index", i))
        ins = [shapes.get(t, []) for t in _ids(d.get("inputs", []))]
        outs = [shapes.get(t, []) for t in _ids(d.get("outputs", []))]
        kernels.append(kernel_from_op(index, op + (BUILTIN if index in builtin else ""), ins, outs))
    for d in delegates:
        ins = [shapes.get(t, []) for t in _ids(d["inputs"]) if t in produced or t in graph_inputs]
        outs = [shapes.get(t, []) for t in _ids(d["outputs"])]
        kernels.append(kernel_from_op(len(kernels), "DELEGATE", ins, outs))
    return kernels
