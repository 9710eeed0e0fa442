"""Network morphism: a child network that starts from its parent's trained weights and
computes exactly the parent's function (Net2Net, Chen et al. 2016; EAS; LEMONADE).

The growth steps of the two spaces, each function-preserving:

- **deepen**: a skipped ``mbv2`` block (``zero``) becomes an inverted-residual block whose
  projection batch norm has zero scale and shift, so the block adds nothing to its
  residual; a ``none`` cell edge becomes a convolution whose batch norm is zeroed, so the
  edge adds nothing to its node;
- **widen**: an ``mbv2`` block's expansion grows (``e3`` -> ``e6``): Net2Net's channel
  duplication, each new hidden channel a copy of a random old one (expansion conv, its batch
  norm, the depthwise conv), the projection's input weights divided among the copies;
- **enlarge kernel**: a depthwise kernel (``k3`` -> ``k5`` -> ``k7``) or a cell convolution
  (``nor_conv_1x1`` -> ``nor_conv_3x3``) grows, the old kernel at the centre of zeros.

Any child that differs from its parent by such steps (several at once, on any positions) is
a morphism of it; anything else (a smaller kernel, a dropped block, a new pooling edge) is
not, and :func:`morph` refuses it. Exactness holds for the network in eval mode (and in
train mode batch by batch, duplicated channels having identical statistics); the tests
check it on random input for every step.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import torch
from torch import nn

from hwnas.errors import HwnasError

_MBV2 = re.compile(r"k(\d+)e(\d+)")
_CELL_GROWTH = {("none", "nor_conv_1x1"), ("none", "nor_conv_3x3"), ("nor_conv_1x1", "nor_conv_3x3")}


def morphism_steps(space: Any, parent: Any, child: Any) -> list[tuple[int, str, str]]:
    """The decisions that change, as (index, parent option, child option); raises when the
    child is not a morphism of the parent."""
    steps = []
    for i, (a, b) in enumerate(zip(parent.choices, child.choices)):
        if a == b:
            continue
        if not grows(space.name, a, b):
            raise HwnasError(f"{space.name}: {a} -> {b} at decision {i} is not a function-preserving step (deepen, "
                             "widen or enlarge a kernel); a child must grow from its parent")
        steps.append((i, a, b))
    return steps


def is_morphism(space: Any, parent: Any, child: Any) -> bool:
    try:
        morphism_steps(space, parent, child)
    except HwnasError:
        return False
    return True


def shrunk_parent(space: Any, child: Any, rng: np.random.Generator) -> Any | None:
    """A parent the child grows from by one step: one decision, drawn at random among those that
    can shrink, set to an option the child's grows from (a smaller kernel or expansion, a
    skipped block, a ``none`` edge). None when nothing can shrink (a cell without
    convolutions). How an evolution with ``--inherit`` meets its children, from the other side."""
    options = [(i, a) for i, (d, c) in enumerate(zip(space.decisions(), child.choices))
               for a in d.choices if a != c and grows(space.name, a, c)]
    if not options:
        return None
    i, a = options[int(rng.integers(len(options)))]
    return space.from_choices(child.choices[:i] + (a,) + child.choices[i + 1:])


def grows(space: str, a: str, b: str) -> bool:
    if space == "nb201":
        return (a, b) in _CELL_GROWTH
    if b == "zero":
        return False
    if a == "zero":
        return True
    ma, mb = _MBV2.fullmatch(a), _MBV2.fullmatch(b)
    return bool(ma and mb and int(mb.group(1)) >= int(ma.group(1)) and int(mb.group(2)) >= int(ma.group(2)))


def morph(space: Any, parent: Any, parent_model: nn.Module, child: Any, seed: int = 0) -> nn.Module:
    """The child's network, built and loaded from the parent's trained one so that it computes
    the same function."""
    morphism_steps(space, parent, child)
    model = space.build(child)
    if space.name == "nb201":
        _morph_cells(space, parent, parent_model, child, model)
    elif space.name == "mbv2":
        _morph_chain(space, parent, parent_model, child, model, np.random.default_rng(seed))
    else:
        raise HwnasError(f"network morphism exists for the mbv2 and nb201 spaces, not {space.name}")
    return model


def _pad(w: torch.Tensor, k: int) -> torch.Tensor:
    """A kernel at the centre of a k x k one of zeros."""
    p = (k - w.shape[-1]) // 2
    return nn.functional.pad(w, (p, p, p, p))


def _zero_bn(bn: nn.BatchNorm2d) -> None:
    with torch.no_grad():
        bn.weight.zero_()
        bn.bias.zero_()


def _morph_cells(space: Any, parent: Any, parent_model: nn.Module, child: Any, model: nn.Module) -> None:
    """Fixed layers copied; a cell edge alive in the parent keeps its weights (a 1x1 kernel
    padded to 3x3), any other convolution edge is zeroed (its contribution starts at 0)."""
    from hwnas.nn.blocks import Cell, ReLUConvBN

    with torch.no_grad():
        for p_mod, c_mod in zip(parent_model, model):
            if not isinstance(c_mod, Cell):
                c_mod.load_state_dict(p_mod.state_dict())
                continue
            for p_edge, c_edge in zip(p_mod.edges, c_mod.edges):
                if not isinstance(c_edge, ReLUConvBN):
                    continue
                if isinstance(p_edge, ReLUConvBN):
                    state = dict(p_edge.state_dict())
                    state["1.weight"] = _pad(state["1.weight"], c_edge[1].weight.shape[-1])
                    c_edge.load_state_dict(state)
                else:
                    _zero_bn(c_edge[2])


def _morph_chain(space: Any, parent: Any, parent_model: nn.Module, child: Any, model: nn.Module,
                 rng: np.random.Generator) -> None:
    """Layers matched by role (stem, first block, block position, tail) across the two chains,
    whose module indices differ where blocks are skipped."""
    def roles(arch: Any) -> list[Any]:
        blocks = [("block", i) for i, c in enumerate(arch.choices) if c != "zero"]
        n_tail = len(space.layers(arch)) - 2 - len(blocks)
        return ["stem", "first", *blocks, *(("tail", j) for j in range(n_tail))]

    parent_at = dict(zip(roles(parent), parent_model))
    with torch.no_grad():
        for role, c_mod in zip(roles(child), model):
            p_mod = parent_at.get(role)
            if p_mod is None:  # deepen: the projection's batch norm zeroed, the residual carries the input
                _zero_bn(c_mod.conv[-1])
            elif role[0] == "block" and parent.choices[role[1]] != child.choices[role[1]]:
                _widen_block(p_mod, c_mod, rng)
            else:
                c_mod.load_state_dict(p_mod.state_dict())


def _widen_block(p_mod: nn.Module, c_mod: nn.Module, rng: np.random.Generator) -> None:
    """An inverted-residual block grown in expansion and/or kernel (Net2Net WiderNet plus a
    zero-padded depthwise kernel)."""
    p_layers, c_layers = list(p_mod.conv), list(c_mod.conv)
    if len(p_layers) != len(c_layers) or len(c_layers) != 8:
        raise HwnasError("widening needs blocks with an expansion convolution on both sides")
    expand, bn1, dw, bn2, proj = c_layers[0], c_layers[1], c_layers[3], c_layers[4], c_layers[6]
    h, h2 = p_layers[0].weight.shape[0], expand.weight.shape[0]
    g = np.concatenate([np.arange(h), rng.integers(0, h, size=h2 - h)])
    count = np.bincount(g, minlength=h)[g]
    gi = torch.as_tensor(g)
    expand.weight.copy_(p_layers[0].weight[gi])
    for src, dst in ((p_layers[1], bn1), (p_layers[4], bn2)):
        for name in ("weight", "bias", "running_mean", "running_var"):
            getattr(dst, name).copy_(getattr(src, name)[gi])
        dst.num_batches_tracked.copy_(src.num_batches_tracked)
    dw.weight.copy_(_pad(p_layers[3].weight[gi], dw.weight.shape[-1]))
    proj.weight.copy_(p_layers[6].weight[:, gi] / torch.as_tensor(count, dtype=proj.weight.dtype).view(1, -1, 1, 1))
    c_layers[7].load_state_dict(p_layers[7].state_dict())
