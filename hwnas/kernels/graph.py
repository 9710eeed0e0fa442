"""The kernels a runtime executes for an ONNX model, and the configuration of each.

Which operators a runtime fuses (a convolution with its batch norm and activation, ``x *
sigmoid(x)`` into one ``QuickGelu``, layout changes around NCHWc convolutions) is not
written down here: it is read from the runtime itself, by profiling the model for a few
runs and taking the nodes its profiler reports — the optimised graph the runtime really
runs, with each node's input and output shapes. A kernel's configuration (operator,
shapes, kernel size, stride, groups, channels, multiply-accumulates) is derived from those
shapes, so the same code describes any model the runtime can load.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any

FAMILIES = {
    "conv": ("Conv", "FusedConv", "NhwcConv", "NhwcFusedConv", "ConvTranspose",
             "CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV"),
    "gemm": ("Gemm", "MatMul", "FusedGemm", "FusedMatMul", "MatMulNBits", "FULLY_CONNECTED", "BATCH_MATMUL"),
    "pool": ("MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "LpPool",
             "MAX_POOL_2D", "AVERAGE_POOL_2D", "MEAN", "REDUCE_MAX", "SUM"),
    "layout": ("ReorderInput", "ReorderOutput", "Transpose", "Reshape", "Flatten", "Squeeze", "Unsqueeze",
               "Concat", "Split", "Slice", "Gather", "Identity", "Expand", "Pad",
               "TRANSPOSE", "RESHAPE", "SQUEEZE", "EXPAND_DIMS", "CONCATENATION", "SPLIT", "SPLIT_V", "SLICE",
               "STRIDED_SLICE", "GATHER", "PAD", "PADV2", "PACK", "UNPACK", "BROADCAST_TO", "TILE"),
}
"""Operator families, each predicted by its own model (onnxruntime's operators and LiteRT's,
which never share a name); any other operator is ``elementwise`` (activations, arithmetic,
normalisations): its cost follows the elements it touches."""

FEATURES = ("log_macs", "log_in", "log_out", "log_params", "kernel", "stride", "depthwise", "grouped",
            "log_cin", "log_cout", "log_hw", "log_group_width", "inputs")
"""A kernel's numeric configuration, in the order the models take it."""

_BLOCK = re.compile(r"^/(\d+)/")


def family_of(op: str) -> str:
    """The operator's family; ``OP@RUNNER`` (an operator run by another implementation, as
    :mod:`hwnas.kernels.tflite_graph` names them) is in ``OP``'s."""
    base = op.split("@")[0]
    for family, ops in FAMILIES.items():
        if base in ops:
            return family
    return "elementwise"


def _prod(shape: list[int]) -> int:
    return int(math.prod(max(int(d), 1) for d in shape)) if shape else 1


@dataclass
class Kernel:
    """One node of the runtime's optimised graph: its operator, its tensors' shapes, and (when
    measured) its mean time per run."""

    name: str
    op: str
    input_shapes: list[list[int]]
    output_shapes: list[list[int]]
    ms: float | None = None
    features: dict[str, float] = field(default_factory=dict)

    @property
    def family(self) -> str:
        return family_of(self.op)

    @property
    def block(self) -> int | None:
        """The index of the top-level module the node came from (``/3/Conv`` is block 3), as
        PyTorch's exporter names nodes; None for nodes the runtime added."""
        m = _BLOCK.match(self.name)
        return int(m.group(1)) if m else None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def configure(kernel: Kernel) -> dict[str, float]:
    """The kernel's configuration as :data:`FEATURES` (also kept in ``kernel.features``)."""
    ins = kernel.input_shapes or [[1]]
    out = kernel.output_shapes[0] if kernel.output_shapes else ins[0]
    x = ins[0]
    in_elems = sum(_prod(s) for s in ins if s) if kernel.family in ("layout", "elementwise") else _prod(x)
    out_elems = sum(_prod(s) for s in kernel.output_shapes) or _prod(out)
    params = 0
    kernel_size, stride, depthwise, grouped, group_width = 1.0, 1.0, 0.0, 0.0, 0
    cin = x[1] if len(x) > 1 else (x[-1] if x else 1)
    cout = out[1] if len(out) > 1 else (out[-1] if out else 1)
    hw = _prod(out[2:]) if len(out) > 2 else 1
    family = kernel.family
    if family == "conv" and len(ins) > 1 and len(ins[1]) >= 3:
        w = ins[1]
        params = _prod(w) + (_prod(ins[2]) if len(ins) > 2 else 0)
        groups = max(int(round(cin / max(w[1], 1))), 1)
        group_width = w[1]
        kernel_size = float(_prod(w[2:])) ** (1.0 / max(len(w) - 2, 1))
        depthwise = float(groups > 1 and groups >= cin)
        grouped = float(1 < groups < cin)
        macs = out_elems * w[1] * _prod(w[2:])
        if len(x) > 2 and len(out) > 2 and out[2]:
            stride = max(float(x[2]) / float(out[2]), 1.0)
    elif family == "gemm":
        k = x[-1] if x else 1
        n = out[-1] if out else 1
        macs = _prod(out) * k
        params = k * n
        cin, cout, hw = k, n, max(_prod(out) // max(n, 1), 1)
    elif family == "pool":
        macs = in_elems
        if len(x) > 2 and len(out) > 2 and out[2]:
            stride = max(float(x[2]) / float(out[2]), 1.0)
            kernel_size = stride
    else:
        macs = max(in_elems, out_elems)
    features = {
        "log_macs": math.log(max(macs, 1)), "log_in": math.log(max(in_elems, 1)),
        "log_out": math.log(max(out_elems, 1)), "log_params": math.log1p(params), "kernel": kernel_size,
        "stride": stride, "depthwise": depthwise, "grouped": grouped, "log_cin": math.log(max(cin, 1)),
        "log_cout": math.log(max(cout, 1)), "log_hw": math.log(max(hw, 1)),
        "log_group_width": math.log(max(group_width or cin, 1)), "inputs": float(len(ins)),
    }
    kernel.features = features
    return features


def kernels_from_profile(profile: dict[str, Any]) -> list[Kernel]:
    """Kernels from an onnxruntime profile (:func:`hwnas.measure.op_profile.profile_onnx`),
    with their measured times, configured."""
    if not profile.get("available"):
        raise ValueError(f"{profile.get('runtime')} reports no per-operator profile: {profile.get('reason', '')}")
    kernels = []
    for op in sorted(profile["ops"], key=lambda o: o.get("order", 0.0)):  # in the order they run
        k = Kernel(op["name"], op["op"], op.get("input_shapes", []), op.get("output_shapes", []), op.get("ms"))
        configure(k)
        kernels.append(k)
    return kernels


def model_kernels(model: bytes | str, threads: int = 1) -> list[Kernel]:
    """The kernels this machine's onnxruntime executes for ``model`` (profiled for a few runs
    here: the optimised graph does not depend on the device the prediction is for, only on
    onnxruntime's version and the instruction set's block size)."""
    from hwnas.measure.op_profile import profile_onnx

    return kernels_from_profile(profile_onnx(model, threads=threads, runs=2, warmup=1))
