"""Counting what a built module really has, independently of the spec formulas.

The spec-derived counts (:meth:`Arch.counts`) are what hwnas uses; this module runs the
real module once with forward hooks so tests and ``arch info --verify`` can check them.
"""

from __future__ import annotations

import torch
from torch import nn

from hwnas.ops import Counts


def module_counts(model: nn.Module, input_shape: tuple[int, int, int]) -> Counts:
    """Parameters, and multiply-adds of every Conv2d and Linear for one sample."""
    macs = 0

    def conv_hook(m: nn.Conv2d, _inp: tuple, out: torch.Tensor) -> None:
        nonlocal macs
        kh, kw = m.kernel_size
        macs += out[0].numel() * (m.in_channels // m.groups) * kh * kw

    def linear_hook(m: nn.Linear, _inp: tuple, out: torch.Tensor) -> None:
        nonlocal macs
        macs += m.in_features * m.out_features

    handles = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear_hook))
    try:
        was_training = model.training
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, *input_shape))
        model.train(was_training)
    finally:
        for h in handles:
            h.remove()
    return Counts(sum(p.numel() for p in model.parameters()), macs)
