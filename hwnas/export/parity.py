"""One parity check for every runtime: the exported network and the torch module it came
from, run on the same seeded random input, must agree within a tolerance chosen for
float32 kernels that sum in different orders."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

PARITY_ATOL = 1e-4
"""Absolute tolerance of the parity check, plus ``PARITY_RTOL`` times the largest output:
float32 kernels in onnxruntime and torch differ by summation order, ~1e-6 relative."""
PARITY_RTOL = 1e-3


@dataclass(frozen=True)
class Parity:
    max_abs_diff: float
    tolerance: float

    @property
    def ok(self) -> bool:
        return self.max_abs_diff <= self.tolerance


def check_parity(run: Callable[[np.ndarray], Any], model: Any, input_shape: tuple[int, ...], seed: int = 0) -> Parity:
    """``run(x)`` (a runtime's output for the batch ``x``) against ``model(x)`` in torch."""
    import torch

    shape = input_shape if len(input_shape) == 4 else (1, *input_shape)
    x = torch.randn(shape, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        expected = model.eval()(x).numpy()
    got = np.asarray(run(x.numpy()))
    diff = float(np.max(np.abs(got - expected)))
    return Parity(diff, PARITY_ATOL + PARITY_RTOL * float(np.max(np.abs(expected))))
