"""Weight sharing across one mbv2 decision's candidates (Once-for-All style).

A decision's candidates (kernel 3/5/7 × expansion 3/6) are views of one block that holds
the largest of them: a candidate uses the centre k × k of the depthwise kernels and the
first ``hidden`` expansion channels (and the matching slices of the batch norms). With
separate weights per candidate, single-path training (ProxylessNAS, GDAS) splits every
step among 6 candidates per block and 6^n paths: on the digits data mbv2/small's
training loss stayed at 2.4 (chance) over 240 uniformly sampled steps. Shared, every
step trains the common core and the loss falls to 0.1 in the same 240 steps, so the
supernet's accuracy signal means something within a CPU budget. Sub-network batch-norm
statistics are re-estimated before scoring (:func:`hwnas.train.recalibrate_bn`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from hwnas.errors import HwnasError
from hwnas.layers import LayerSpec
from hwnas.ops import hidden_channels


def _shape_of(spec: LayerSpec) -> tuple:
    return spec.input, spec.output, spec.stride or 1, bool(spec.idskip)


class SharedInvertedResidual(nn.Module):
    """The largest inverted-residual block of a decision; ``forward(x, kernel, hidden)``."""

    def __init__(self, specs: list[LayerSpec]) -> None:
        super().__init__()
        if not specs or len({_shape_of(s) for s in specs}) != 1:
            raise HwnasError("shared candidates must have one input, output, stride and residual")
        c_in, c_out = specs[0].input[2], specs[0].output[2]
        hiddens = [hidden_channels(c_in, s.expand or 1) for s in specs]
        if any(h == c_in for h in hiddens):
            raise HwnasError("weight sharing needs an expansion layer in every candidate (expand != 1)")
        self.c_in, self.stride, self.residual = c_in, specs[0].stride or 1, bool(specs[0].idskip)
        self.kmax, self.hmax = max(s.kernel or 3 for s in specs), max(hiddens)
        self.expand_w = nn.Parameter(torch.empty(self.hmax, c_in, 1, 1))
        self.depthwise_w = nn.Parameter(torch.empty(self.hmax, 1, self.kmax, self.kmax))
        self.project_w = nn.Parameter(torch.empty(c_out, self.hmax, 1, 1))
        for w in (self.expand_w, self.depthwise_w, self.project_w):
            nn.init.kaiming_normal_(w, mode="fan_out")
        self.bn1, self.bn2, self.bn3 = nn.BatchNorm2d(self.hmax), nn.BatchNorm2d(self.hmax), nn.BatchNorm2d(c_out)

    def _bn(self, bn: nn.BatchNorm2d, x: torch.Tensor, n: int) -> torch.Tensor:
        """``bn`` on its first ``n`` channels, with nn.BatchNorm2d's running-average rules."""
        factor = 0.0
        if self.training:
            bn.num_batches_tracked.add_(1)
            factor = 1.0 / float(bn.num_batches_tracked) if bn.momentum is None else bn.momentum
        return F.batch_norm(x, bn.running_mean[:n], bn.running_var[:n], bn.weight[:n], bn.bias[:n],
                            self.training, factor, bn.eps)

    def forward(self, x: torch.Tensor, kernel: int, hidden: int) -> torch.Tensor:
        o = (self.kmax - kernel) // 2
        y = F.relu6(self._bn(self.bn1, F.conv2d(x, self.expand_w[:hidden]), hidden))
        y = F.conv2d(y, self.depthwise_w[:hidden, :, o:o + kernel, o:o + kernel], stride=self.stride,
                     padding=kernel // 2, groups=hidden)
        y = F.relu6(self._bn(self.bn2, y, hidden))
        y = self._bn(self.bn3, F.conv2d(y, self.project_w[:, :hidden]), self.bn3.num_features)
        return x + y if self.residual else y


class CandidateView(nn.Module):
    """One candidate of a shared block. The block is deliberately not registered as a
    submodule here (the mixed op owns it), so its weights are saved and counted once."""

    def __init__(self, block: SharedInvertedResidual, spec: LayerSpec) -> None:
        super().__init__()
        object.__setattr__(self, "block", block)
        self.kernel, self.hidden = spec.kernel or 3, hidden_channels(spec.input[2], spec.expand or 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x, self.kernel, self.hidden)

    def extra_repr(self) -> str:
        return f"kernel={self.kernel}, hidden={self.hidden}"
