"""The one-shot strategies: how a supernet's mixed operations relax a decision (the
differentiable modes), or which controller picks the path each step trains (ENAS).

They live in the one strategy registry beside the black-box ones, so ``--strategy`` and
its help come from one place; :class:`hwnas.nn.mixed.MixedOp` implements each mode of
the same name, and :mod:`hwnas.supernet.search` trains with it.
"""

from __future__ import annotations

from typing import ClassVar

from hwnas.strategies.base import register_strategy


class DifferentiableStrategy:
    name: ClassVar[str] = ""
    search: ClassVar[str] = "differentiable"
    help: ClassVar[str] = ""
    #: whether ``--unrolled`` (DARTS's second-order architecture gradient) applies
    second_order: ClassVar[bool] = False
    #: binary gates: the architecture gradient comes from the sampled gates (BinaryConnect)
    binary_gates: ClassVar[bool] = False
    #: a controller network samples the paths and learns by REINFORCE (:mod:`hwnas.supernet.enas`)
    controller: ClassVar[bool] = False
    #: a weight step trains one path the supernet samples itself (so ``--sandwich`` applies)
    samples_paths: ClassVar[bool] = False


@register_strategy
class Proxyless(DifferentiableStrategy):
    name = "proxyless"
    help = "ProxylessNAS: binary gates, one or two sampled paths per step"
    binary_gates = True
    samples_paths = True


@register_strategy
class Darts(DifferentiableStrategy):
    name = "darts"
    help = "DARTS: the softmax-weighted sum of every candidate"
    second_order = True


@register_strategy
class Gdas(DifferentiableStrategy):
    name = "gdas"
    help = "GDAS: hard Gumbel-softmax, one sampled path"
    samples_paths = True


@register_strategy
class Enas(DifferentiableStrategy):
    name = "enas"
    help = "ENAS: an LSTM controller samples the trained path; REINFORCE on accuracy x latency factor"
    controller = True
